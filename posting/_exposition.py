"""Serving the metrics: one process, or many sharing prometheus-client's multiprocess mode.

With `PROMETHEUS_MULTIPROC_DIR` set before prometheus-client is imported, every process
writes its samples to files in that directory and any one of them can answer a scrape
for all. A process that exits cleanly calls `process_exiting` so its live gauges stop
counting; files of processes that died without doing so are found and dropped at the
next scrape. Counters and histograms of dead processes are kept: totals never go back.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from posting._metrics import start_batch_series

log = structlog.get_logger("posting.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


class MultiprocessMisconfigured(RuntimeError):
    """PROMETHEUS_MULTIPROC_DIR was set after prometheus-client was imported."""


def multiprocess_dir() -> Path | None:
    """The shared directory when this process runs in multiprocess mode, else None."""
    path = os.environ.get(ENV)
    if not path:
        return None
    if not getattr(values.ValueClass, "_multiprocess", False):
        raise MultiprocessMisconfigured(
            f"{ENV} is set but this process imported prometheus_client before it was;"
            f" set {ENV} before starting the process"
        )
    return Path(path)


def fresh_multiprocess_dir(path: Path) -> Path:
    """Make `path` ready for a new set of processes: created, with no samples left over."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path


class _LiveProcesses(MultiProcessCollector):
    """The multiprocess collector, first dropping the live gauges of vanished processes."""

    def collect(self) -> Iterable[Metric]:
        for entry in os.scandir(self._path):
            match = _LIVE_FILE.match(entry.name)
            if match and not _alive(int(match.group(1))):
                log.info("metrics.reaped", pid=int(match.group(1)))
                mark_process_dead(int(match.group(1)), self._path)
        return super().collect()


def _alive(pid: int) -> bool:
    """Whether `pid` still runs. A zombie (killed, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs, or the process went in between: kill(0) has answered
        return True
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


@functools.cache
def _shared_registry(path: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    _LiveProcesses(registry, path=path)
    return registry


def registry() -> CollectorRegistry:
    """What a scrape should read: every process's files, or this process's registry.

    `_created` samples are left out: in the text format they only double the series.
    """
    disable_created_metrics()
    path = multiprocess_dir()
    return REGISTRY if path is None else _shared_registry(str(path))


def exposition() -> tuple[bytes, str]:
    """The body and content type of a scrape, in the Prometheus text format."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def process_exiting() -> None:
    """Call once as a process stops: its live gauges stop counting in multiprocess mode."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(os.getpid(), str(path))


class MetricsServer:
    """`/metrics` on its own port, served from a daemon thread (for workers)."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def port(self) -> int:
        return self._httpd.server_port

    def close(self) -> None:
        """Stop serving and mark this process as exiting; call at worker shutdown."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        process_exiting()


def serve_worker_metrics(*, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve `/metrics` on `host:port` (0 picks a free port) without an ASGI app."""
    start_batch_series()
    httpd, thread = start_http_server(port, addr=host, registry=registry())
    server = MetricsServer(httpd, thread)
    log.info("metrics.serving", host=host, port=server.port,
             multiprocess=multiprocess_dir() is not None)
    return server

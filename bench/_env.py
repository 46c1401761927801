"""The world a benchmark runs in: the simulator, PostgreSQL, Redis, and child processes.

The simulator runs as its own process (as a real backend would), so its CPU time is not
charged to whoever is measured. PostgreSQL is `DATABASE_URL` when set, else the embedded
server the service starts anyway; its URL is handed on to every child process. Redis is
used when it answers, in a database of its own (15), so the bench's arq jobs never meet a
real deployment's queue.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import redis.asyncio as aioredis
import structlog

from config import Settings, SettingsError, load_settings
from posting import PostingService

log = structlog.get_logger("bench.env")

BIN = Path(sys.executable).parent
REDIS_DB = 15
SIM_SEED = 20240607
# Backend name → simulator profile; names are plain words so they fit variable names.
PROFILE_BACKENDS = {"gpt-4o-mini": "sim_mini", "vllm-h200": "sim_h200", "instant": "sim_instant"}
_KINDS = {"gpt-4o-mini": "other", "vllm-h200": "vllm", "instant": "vllm"}
# Hedging as a deployment would set it: at about the p99 of the profile's normal time to
# first token (gpt-4o-mini: 0.5 s spread by sigma 0.25, so 0.9 s), off for vLLM. The
# environment may set the variable itself to measure another value, or 0 for none.
_HEDGE_AFTER_S = {"gpt-4o-mini": "1.0"}
_START_TIMEOUT_S = 30.0


class BenchError(Exception):
    """The bench could not start something it needs, or a measured run went wrong; the
    message says what and, where known, what to fix."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchEnv:
    """Everything the scenarios share; build it with `BenchEnv.open()`."""

    def __init__(self, *, workdir: Path, sim_url: str, environ: dict[str, str],
                 settings: Settings, service: PostingService, redis_url: str | None) -> None:
        self.workdir = workdir
        self.sim_url = sim_url
        self.environ = environ  # for child processes: os.environ plus the bench's settings
        self.settings = settings
        self.service = service
        self.redis_url = redis_url

    @property
    def database_url(self) -> str:
        return self.environ["DATABASE_URL"]

    @classmethod
    @asynccontextmanager
    async def open(cls, *, base_environ: Mapping[str, str] | None = None
                   ) -> AsyncIterator[BenchEnv]:
        environ = dict(os.environ if base_environ is None else base_environ)
        workdir = Path(tempfile.mkdtemp(prefix="autoposter-bench-"))
        sim = await start_simulator(workdir / "simulator.log")
        try:
            environ.update(sim_backends(sim.url, environ))
            settings = _settings(environ)
            async with PostingService.open(settings) as service:
                environ["DATABASE_URL"] = settings.database_url or service.pool.conninfo
                redis_url = await _bench_redis(environ.get("REDIS_URL"))
                if redis_url:
                    environ["REDIS_URL"] = redis_url
                else:
                    environ.pop("REDIS_URL", None)
                yield cls(workdir=workdir, sim_url=sim.url, environ=environ,
                          settings=settings, service=service, redis_url=redis_url)
        finally:
            sim.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    def backend_for(self, profile: str) -> str:
        return PROFILE_BACKENDS[profile]

    async def sim_requests(self) -> int:
        """How many chat-completion requests the simulator has answered so far."""
        async with httpx.AsyncClient(timeout=5) as http:
            stats = (await http.get(self.sim_url.removesuffix("/v1") + "/sim/stats")).json()
        return int(stats["requests"])


def sim_backends(sim_url: str, given: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings variables for one backend per simulator profile; sim_h200 is the default,
    so a server started with them does not start the local model. A hedge setting in
    `given` (the environment) is kept."""
    env = {"AUTOPOSTER_BACKEND": PROFILE_BACKENDS["vllm-h200"],
           "AUTOPOSTER_SPEED_BACKEND": PROFILE_BACKENDS["vllm-h200"]}
    for profile, name in PROFILE_BACKENDS.items():
        prefix = f"AUTOPOSTER_BACKENDS__{name.upper()}__"
        env.update({prefix + "KIND": _KINDS[profile], prefix + "BASE_URL": sim_url,
                    prefix + "MODEL": profile})
        hedge = prefix + "HEDGE_AFTER_S"
        if profile in _HEDGE_AFTER_S and hedge not in (given or {}):
            env[hedge] = _HEDGE_AFTER_S[profile]
    return env


def _settings(environ: Mapping[str, str]) -> Settings:
    try:
        return load_settings(environ)
    except SettingsError as exc:
        raise BenchError(str(exc)) from None


class SimProcess:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def stop(self) -> None:
        stop_process(self.process)


async def start_simulator(log_path: Path) -> SimProcess:
    """`python -m inference.simulator` on a free port, default profile `instant`."""
    port = free_port()
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "inference.simulator", "--port", str(port),
             "--profile", "instant", "--seed", str(SIM_SEED), "--max-n", "16"],
            stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    sim = SimProcess(process, f"{base}/v1", log_path)
    try:
        await wait_http(f"{base}/health", process, log_path)
    except BaseException:
        sim.stop()
        raise
    return sim


async def wait_http(url: str, process: subprocess.Popen[bytes], log_path: Path,
                    timeout_s: float = _START_TIMEOUT_S) -> None:
    """Poll `url` until it answers 200; fails with the child's log tail if it dies."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1) as http:
        while True:
            if process.poll() is not None:
                raise BenchError(f"{process.args[0]} exited: {tail(log_path)}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{url} did not answer in {timeout_s:g}s: {tail(log_path)}")
            await asyncio.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], wait_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `wait_s`."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(wait_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def tail(path: Path, chars: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-chars:].strip().replace("\n", " | ")


async def _bench_redis(configured: str | None) -> str | None:
    """The bench's own Redis database on the configured (or local) server, emptied of
    arq's and our keys; None when no Redis answers."""
    base = configured or "redis://127.0.0.1:6379"
    url = re.sub(r"(/\d+)?$", f"/{REDIS_DB}", base.split("?", 1)[0], count=1)
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
        for pattern in ("arq:*", "autoposter:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=500)]
            if keys:
                await client.delete(*keys)
    except (aioredis.RedisError, OSError) as exc:
        log.warning("bench.redis_unavailable", url=url, error=str(exc))
        return None
    finally:
        await client.aclose()
    return url


def machine_lines() -> list[str]:
    """What a reader needs to weigh the figures: CPU, memory, OS, versions."""
    lines = [
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical cores"
        f" ({len(os.sched_getaffinity(0))} usable by this process)",
        f"Memory: {_memory_gib():.1f} GiB",
        f"OS: {platform.system()} {platform.release()} ({platform.machine()})",
        f"Python {platform.python_version()}",
    ]
    if commit := _git_commit():
        lines.append(f"Code: git {commit}")
    return lines


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")

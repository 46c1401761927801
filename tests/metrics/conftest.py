"""Helpers for the metrics tests: scraping, promtool, and the server as a real process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inference.simulator import Simulator
from tests.server.conftest import API_KEY, sim_env

BIN = Path(sys.executable).parent
POST = {"stock": "2330", "kol": 208, "posting_type": "interaction", "max_words": 100,
        "variants": 2}
PRICED_MODEL = "gpt-4.1-nano"  # priced in models.toml; paced by the simulator's default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metrics_env(base: dict[str, str], sim: Simulator, **extra: str) -> dict[str, str]:
    """The simulator as the default backend with a priced model; `simfail`, the same
    simulator answering every request with a 500; `simfallback`, failing the same way
    but falling back to the default."""
    failing = {}
    for name in ("SIMFAIL", "SIMFALLBACK"):
        failing.update({
            f"AUTOPOSTER_BACKENDS__{name}__KIND": "vllm",
            f"AUTOPOSTER_BACKENDS__{name}__BASE_URL": sim.base_url,
            f"AUTOPOSTER_BACKENDS__{name}__MODEL": PRICED_MODEL,
            f"AUTOPOSTER_BACKENDS__{name}__HEADERS__X-SIM-FAULT": "500",
        })
    return sim_env(base, sim, profile=PRICED_MODEL, **failing,
                   AUTOPOSTER_FALLBACKS__SIMFALLBACK="sim", **extra)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name → [(labels, value)] from a scrape in the text format."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(value for got, value in samples(text).get(name, [])
               if all(got.get(k) == v for k, v in labels.items()))


@pytest.fixture
def server_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "AUTOPOSTER_SERVER__API_KEYS": f"tester:{API_KEY}"}


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: run scripts/services.sh (it installs Debian's"
                    " prometheus package)")
    return path


def check_metrics(promtool: str, text: str) -> None:
    result = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@contextmanager
def serve_process(env: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`autoposter serve` as its own process group on a free port; yields its URL."""
    port = free_port()
    log = Path(env["AUTOPOSTER_DATA_DIR"]) / f"server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "autoposter"), "serve", "--port", str(port), *args],
            env={**os.environ, **env}, stdout=sink, stderr=sink,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/healthz", process, log)
        yield url, process
    finally:
        process.terminate()
        process.wait(40)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up: {log.read_text()[-3000:]}")

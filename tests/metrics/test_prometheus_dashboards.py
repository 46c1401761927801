"""A real Prometheus scrapes a server, a worker and a vLLM-shaped endpoint under load; every
query of every dashboard panel must then return data through its HTTP API.

The worker is a stand-in process that serves `posting.metrics.serve_worker_metrics` and
records batch figures, until the real arq worker can be started here instead. The vLLM
endpoint serves vLLM's metric names from a private registry: no vLLM runs in tests.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from httpx_sse import aconnect_sse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from inference.simulator import Simulator
from tests.metrics.conftest import POST, check_metrics, free_port, metrics_env, serve_process
from tests.server.conftest import AUTH

pytestmark = pytest.mark.timeout(120)

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
RATE_INTERVAL = "10s"  # what Grafana would put for $__rate_interval at a 1 s scrape

WORKER = """
import random, sys, time
from posting import metrics
endpoint = metrics.serve_worker_metrics(port=int(sys.argv[1]))
rng = random.Random(4)
while True:
    with metrics.job_in_progress():
        metrics.record_batch_item(rng.choice(["queued", "running", "done", "failed"]))
        metrics.set_queue_depth(rng.randrange(10))
        metrics.observe_job_wait(rng.uniform(0.01, 3))
        time.sleep(0.1)
"""


@contextmanager
def _worker(port: int) -> Iterator[None]:
    process = subprocess.Popen([sys.executable, "-c", WORKER, str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/metrics", process)
        yield
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def _vllm(port: int) -> Iterator[None]:
    """vLLM's own metric names and labels, moving a little every 100 ms."""
    reg, labels = CollectorRegistry(), ["model_name"]
    ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT.", labels, registry=reg)
    itl = Histogram("vllm:inter_token_latency_seconds", "ITL.", labels, registry=reg)
    running = Gauge("vllm:num_requests_running", "Running.", labels, registry=reg)
    waiting = Gauge("vllm:num_requests_waiting", "Waiting.", labels, registry=reg)
    kv_cache = Gauge("vllm:kv_cache_usage_perc", "KV cache.", labels, registry=reg)
    queries = Counter("vllm:prefix_cache_queries", "Queried.", labels, registry=reg)
    hits = Counter("vllm:prefix_cache_hits", "Hit.", labels, registry=reg)
    stop, rng, model = threading.Event(), random.Random(2), "Qwen/Qwen2.5-7B-Instruct"

    def move() -> None:
        while not stop.wait(0.1):
            ttft.labels(model).observe(rng.uniform(0.02, 0.3))
            itl.labels(model).observe(rng.uniform(0.005, 0.03))
            running.labels(model).set(rng.randrange(8))
            waiting.labels(model).set(rng.randrange(3))
            kv_cache.labels(model).set(rng.random())
            queries.labels(model).inc(100)
            hits.labels(model).inc(rng.randrange(100))

    class Handler(BaseHTTPRequestHandler):
        # Always the classic text format: prometheus-client would rewrite the colons
        # of vLLM's names when Prometheus asks for OpenMetrics.
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
            body = generate_latest(reg)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threads = [threading.Thread(target=move, daemon=True),
               threading.Thread(target=httpd.serve_forever, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        for thread in threads:
            thread.join(5)


def _prometheus_config(targets: dict[str, int]) -> dict:
    """The committed prometheus.yml, scraping our loopback ports every second."""
    config = yaml.safe_load((GRAFANA / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(targets), "prometheus.yml jobs changed; update this test"
    for name, port in targets.items():
        jobs[name].pop("dns_sd_configs", None)
        jobs[name]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    return config


@contextmanager
def _prometheus(tmp: Path, targets: dict[str, int]) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run scripts/services.sh")
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(_prometheus_config(targets)))
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/-/ready", process)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer (exit status {process.poll()})")


async def _load(url: str, *, rounds: int = 6) -> int:
    """Streaming and plain posts of every type, a few against the failing backend, in
    rounds a second apart so that every series is seen rising; returns how many."""
    async def stream(body: dict) -> None:
        async with aconnect_sse(client, "POST", "/v1/posts", json=body) as source:
            async for _ in source.aiter_sse():
                pass

    bodies = [{**POST, "posting_type": kind, "kol": kol}
              for kind in ("interaction", "analysis", "personalized") for kol in (208, 201)]
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as client:
        for _ in range(rounds):
            await asyncio.gather(
                *(stream(body) for body in bodies), client.post("/v1/posts", json=POST),
                *(client.post("/v1/posts", json={**POST, "backend": name})
                  for name in ("simfail", "simfallback")),
            )
            await asyncio.sleep(1)
    return rounds * (len(bodies) + 3)


def _panel_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((path.stem, panel["title"], target["expr"]))
    return found


def _has_data(prometheus: str, expr: str, start: float, end: float) -> bool:
    reply = httpx.get(f"{prometheus}/api/v1/query_range", timeout=10, params={
        "query": expr.replace("$__rate_interval", RATE_INTERVAL),
        "start": start, "end": end, "step": "1s",
    }).json()
    assert reply["status"] == "success", (expr, reply)
    return any(math.isfinite(float(value)) for series in reply["data"]["result"]
               for _, value in series["values"])


async def _all_up(prometheus: str, jobs: int) -> None:
    deadline = time.monotonic() + 20
    while _scraped(prometheus, "sum(up)") < jobs:
        assert time.monotonic() < deadline, httpx.get(f"{prometheus}/api/v1/targets").text
        await asyncio.sleep(0.2)


def _scraped(prometheus: str, expr: str) -> float:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    return sum(float(r["value"][1]) for r in reply["data"]["result"])


async def test_every_dashboard_query_returns_data(
    server_env: dict[str, str], promtool: str, tmp_path: Path,
) -> None:
    ports = {"autoposter-worker": free_port(), "vllm": free_port()}
    async with Simulator(profile="vllm-h200", seed=9) as sim:
        env = metrics_env(server_env, sim)
        with serve_process(env, "--workers", "2") as (url, _), _worker(
            ports["autoposter-worker"]
        ), _vllm(ports["vllm"]):
            ports["autoposter-server"] = int(url.rsplit(":", 1)[1])
            with _prometheus(tmp_path, ports) as prometheus:
                await _all_up(prometheus, len(ports))
                started = time.time()
                posts = await _load(url)
                deadline = time.monotonic() + 20
                while _scraped(prometheus, "sum(autoposter_posts_total)") < posts:
                    assert time.monotonic() < deadline, "Prometheus never saw the posts"
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2)
                empty = [(board, title, expr) for board, title, expr in _panel_queries()
                         if not _has_data(prometheus, expr, started - 5, time.time())]
            check_metrics(promtool, httpx.get(f"{url}/metrics").text)
            worker = httpx.get(f"http://127.0.0.1:{ports['autoposter-worker']}/metrics")
            check_metrics(promtool, worker.text)
    assert not empty, "\n".join(f"{b} / {t}: {e}" for b, t, e in empty)
    assert len(_panel_queries()) > 40

"""The server as a separate process: many concurrent streams, memory, and a schema fuzz.

These run `autoposter serve` for real, so memory is the server's own, not pytest's.
"""

from __future__ import annotations

import asyncio
import json
import re
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
from httpx_sse import aconnect_sse

from inference.simulator import Simulator
from tests.server.conftest import API_KEY, AUTH, sim_env

BIN = Path(sys.executable).parent
BODY = {"stock": "2330", "kol": 208, "posting_type": "interaction", "max_words": 100,
        "variants": 5}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _serve(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = _free_port()
    log = Path(env["AUTOPOSTER_DATA_DIR"]) / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen([str(BIN / "autoposter"), "serve", "--port", str(port)],
                                   env={**os.environ, **env}, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(30)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def _one_stream(client: httpx.AsyncClient) -> str:
    async with aconnect_sse(client, "POST", "/v1/posts", json=BODY) as source:
        async for event in source.aiter_sse():
            if event.event == "post.done":
                return json.loads(event.data)["post"]["status"]
    return "no post.done"


async def test_fifty_concurrent_streams_complete_under_300mb(
    server_env: dict[str, str], simulator: Simulator
) -> None:
    env = sim_env(server_env, simulator, AUTOPOSTER_DB_POOL_MAX="20")
    with _serve(env) as (url, pid):
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60,
                                     limits=limits) as client:
            statuses = await asyncio.gather(*(_one_stream(client) for _ in range(50)))
        peak_mb = _peak_rss_mb(pid)
    assert statuses == ["draft"] * 50
    print(f"peak RSS of the server with 50 streams: {peak_mb:.0f} MB")
    assert peak_mb < 300, f"peak RSS {peak_mb:.0f} MB"


async def test_schemathesis_finds_no_server_error(
    server_env: dict[str, str], simulator: Simulator
) -> None:
    # Batches need Redis: a database of its own, emptied afterwards (no worker runs here).
    env = sim_env(server_env, simulator, profile="instant",
                  REDIS_URL="redis://127.0.0.1:6379/11")
    with _serve(env) as (url, _):
        result = await asyncio.to_thread(subprocess.run, [
            str(BIN / "st"), "run", f"{url}/schema/openapi.json", "--url", url,
            "-H", f"Authorization: Bearer {API_KEY}", "--checks", "not_a_server_error",
            "--max-examples", "25", "--phases", "examples,coverage,fuzzing", "--no-color",
        ], capture_output=True, text=True, timeout=600)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    assert result.returncode == 0, result.stdout[-4000:]
    assert re.search(r"Tested: (\d+)", result.stdout), result.stdout[-2000:]
    assert int(re.search(r"Tested: (\d+)", result.stdout).group(1)) >= 10

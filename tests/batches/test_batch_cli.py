"""`autoposter batch` as a user runs it: in process without Redis, on workers with it."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from config import load_settings
from tests.batches.batch_support import AUTOPOSTER, Workers, api_client, items, posts
from tests.server.conftest import serving

ISSUE_LINE = ["batch", "--stocks", "2330,2454,2317,2303,2412", "--kols", "208,209",
              "--type", "interaction", "--max-words", "100", "--wait"]


async def _batch_cli(env: dict[str, str], args: list[str]) -> tuple[str, str]:
    """Run `autoposter <args>`; (batch id from the first line of stdout, whole stdout)."""
    full = {**os.environ, **env}
    if "REDIS_URL" not in env:
        full.pop("REDIS_URL", None)
    result = await asyncio.to_thread(subprocess.run, [AUTOPOSTER, *args], env=full,
                                     capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()[0].strip(), result.stdout


@pytest.mark.timeout(120)
async def test_batch_without_redis_runs_in_process(
    batch_env: dict[str, str], database_url: str
) -> None:
    env = {k: v for k, v in batch_env.items() if k != "REDIS_URL"}
    batch_id, out = await _batch_cli(env, ["batch", "--stocks", "2330,2454", "--kols", "208",
                                           "--type", "interaction", "--max-words", "100",
                                           "--wait"])
    assert [(n, status) for n, status, _ in posts(database_url, batch_id)] == [
        (0, "draft"), (1, "draft")]
    assert [(n, state, worker) for n, state, _, worker, _ in items(database_url, batch_id)] == [
        (0, "done", "local"), (1, "done", "local")]
    assert f"batch {batch_id} · done" in out


@pytest.mark.timeout(120)
async def test_issue_command_on_server_and_two_workers_stores_five_posts(
    batch_env: dict[str, str], workers: Workers, database_url: str
) -> None:
    workers.start(batch_env, count=2)
    await workers.ready()
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        batch_id, out = await _batch_cli(batch_env, ISSUE_LINE)
        view = (await client.get(f"/v1/batches/{batch_id}")).json()
    assert view["status"] == "done" and view["counts"]["done"] == 5, view["counts"]
    assert [(n, status) for n, status, _ in posts(database_url, batch_id)] == [
        (n, "draft") for n in range(5)]
    assert {worker for *_, worker, _ in items(database_url, batch_id)} <= {
        workers.name(p) for p in workers.processes}
    assert f"batch {batch_id} · done" in out

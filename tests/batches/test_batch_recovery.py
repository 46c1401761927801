"""A worker killed with SIGKILL mid-batch: its items run again elsewhere, once each."""

from __future__ import annotations

import asyncio
import time

import pytest

from config import load_settings
from inference.simulator import Simulator
from tests.batches.batch_support import (
    Workers,
    api_client,
    create,
    finished,
    item_list,
    items,
    posts,
)
from tests.server.conftest import serving


async def _running_on(database_url: str, batch_id: str, worker: str, *,
                      at_least: int, timeout_s: float = 30.0) -> list[int]:
    """Wait until `worker` runs at least this many items of the batch; their numbers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = [n for n, state, _, name, _ in items(database_url, batch_id)
                   if state == "running" and name == worker]
        if len(running) >= at_least:
            return running
        await asyncio.sleep(0.1)
    raise AssertionError(f"{worker} never ran {at_least} items at once")


async def _generating(database_url: str, batch_id: str, item_nos: list[int]) -> None:
    """Wait until each of these items has its post stored as `generating`."""
    deadline = time.monotonic() + 15
    while not set(item_nos) <= {n for n, status, _ in posts(database_url, batch_id)
                                if status == "generating"}:
        if time.monotonic() > deadline:
            raise AssertionError(f"posts of {item_nos}: {posts(database_url, batch_id)}")
        await asyncio.sleep(0.1)


async def _streaming(simulator: Simulator, count: int) -> None:
    """Wait until the simulator has been sent this many requests: a post row is stored
    as `generating` a moment before its stream is asked for."""
    deadline = time.monotonic() + 15
    while simulator.stats()["requests"] < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"simulator saw {simulator.stats()}")
        await asyncio.sleep(0.05)


@pytest.mark.timeout(150)
async def test_sigkilled_worker_items_finish_once_on_another(
    batch_env: dict[str, str], workers: Workers, database_url: str
) -> None:
    env = {**batch_env, "AUTOPOSTER_BACKENDS__SIM__MODEL": "gpt-4o-mini",
           "AUTOPOSTER_BATCHES__STALE_AFTER_S": "3", "AUTOPOSTER_BATCHES__WORKER_MAX_JOBS": "3"}
    [doomed] = workers.start(env)
    await workers.ready()
    async with serving(load_settings(env)) as url, api_client(url) as client:
        batch = await create(client, {"items": item_list(8, max_words=200)})
        batch_id = batch["batch_id"]
        killed = await _running_on(database_url, batch_id, workers.name(doomed), at_least=3)
        await _generating(database_url, batch_id, killed)
        doomed.kill()
        doomed.wait(5)
        [survivor] = workers.start(env)
        view = await finished(client, batch_id, timeout_s=100, workers=workers)
    found = items(database_url, batch_id)
    assert view["status"] == "done"
    assert [state for _, state, *_ in found] == ["done"] * 8, found
    assert [(n, status) for n, status, _ in posts(database_url, batch_id)] == [
        (n, "draft") for n in range(8)]
    assert all(found[n][2] >= 2 for n in killed), found
    assert {found[n][3] for n in killed} == {workers.name(survivor)}


@pytest.mark.timeout(90)
async def test_cancelled_batch_does_not_rerun_a_dead_workers_items(
    batch_env: dict[str, str], workers: Workers, simulator: Simulator, database_url: str
) -> None:
    env = {**batch_env, "AUTOPOSTER_BACKENDS__SIM__MODEL": "gpt-4o-mini",
           "AUTOPOSTER_BATCHES__STALE_AFTER_S": "3", "AUTOPOSTER_BATCHES__WORKER_MAX_JOBS": "2"}
    [doomed] = workers.start(env)
    await workers.ready()
    async with serving(load_settings(env)) as url, api_client(url) as client:
        batch = await create(client, {"items": item_list(4, max_words=400)})
        batch_id = batch["batch_id"]
        orphans = await _running_on(database_url, batch_id, workers.name(doomed), at_least=2)
        await _generating(database_url, batch_id, orphans)
        await _streaming(simulator, len(orphans))
        doomed.kill()
        doomed.wait(5)
        assert (await client.delete(f"/v1/batches/{batch_id}")).status_code == 202
        requests_before = simulator.stats()["requests"]
        await asyncio.sleep(3)  # stale by the time the next worker reconciles at start
        workers.start(env)
        view = await finished(client, batch_id, timeout_s=40, workers=workers)
    assert view["status"] == "cancelled"
    assert view["counts"]["cancelled"] == 4, items(database_url, batch_id)
    assert simulator.stats()["requests"] == requests_before == 2
    assert [(n, status) for n, status, _ in posts(database_url, batch_id)] == [
        (n, "cancelled") for n in orphans]

"""DELETE /v1/batches/{id} while items are queued and running."""

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
    item_list,
    items,
    posts,
    rows,
)
from tests.server.conftest import serving


async def _until(check, *, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.timeout(90)
async def test_cancel_stops_queued_and_aborts_running_items(
    batch_env: dict[str, str], workers: Workers, simulator: Simulator, database_url: str
) -> None:
    env = {**batch_env, "AUTOPOSTER_BACKENDS__SIM__MODEL": "gpt-4o-mini",
           "AUTOPOSTER_BATCHES__WORKER_MAX_JOBS": "2"}
    workers.start(env)
    await workers.ready()
    async with serving(load_settings(env)) as url, api_client(url) as client:
        batch = await create(client, {"items": item_list(6, max_words=400)})
        batch_id = batch["batch_id"]
        await _until(lambda: simulator.stats()["active_streams"] >= 2, timeout_s=20,
                     what="two streams")
        running = [n for n, state, *_ in items(database_url, batch_id) if state == "running"]
        reply = await client.delete(f"/v1/batches/{batch_id}")

        def settled() -> bool:
            states = {state for _, state, *_ in items(database_url, batch_id)}
            return not states & {"queued", "running"}

        await _until(settled, timeout_s=5, what="no item queued or running")
        await _until(lambda: simulator.stats()["active_streams"] == 0, timeout_s=5,
                     what="the simulator's streams to end")
        view = (await client.get(f"/v1/batches/{batch_id}")).json()
    assert reply.status_code == 202, reply.text
    assert reply.json()["status"] == "cancelled"
    assert sorted(running) == running and len(running) == 2
    assert view["status"] == "cancelled" and view["finished_at"] is not None
    assert view["counts"]["cancelled"] == 6, items(database_url, batch_id)
    assert [(n, status) for n, status, _ in posts(database_url, batch_id)] == [
        (n, "cancelled") for n in running]
    assert rows(database_url, "SELECT count(*) FROM batch_items WHERE batch_id = %s"
                " AND state = 'cancelled' AND finished_at IS NOT NULL", batch_id) == [(6,)]

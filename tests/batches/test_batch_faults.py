"""Backend faults during a batch: a 429 storm is ridden out, a spent quota is not retried."""

from __future__ import annotations

import uuid

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

HEADER = "AUTOPOSTER_BACKENDS__SIM__HEADERS__"


@pytest.mark.timeout(90)
async def test_429_storm_then_every_item_done(
    batch_env: dict[str, str], workers: Workers, simulator: Simulator, database_url: str
) -> None:
    env = {**batch_env, f"{HEADER}X-SIM-FAIL-FIRST": "10",
           f"{HEADER}X-SIM-KEY": f"storm-{uuid.uuid4().hex}",
           f"{HEADER}X-SIM-RETRY-AFTER": "0.2"}
    workers.start(env)
    await workers.ready()
    async with serving(load_settings(env)) as url, api_client(url) as client:
        batch = await create(client, {"items": item_list(6)})
        view = await finished(client, batch["batch_id"], timeout_s=60, workers=workers)
    stats = simulator.stats()
    assert view["counts"]["done"] == 6, items(database_url, batch["batch_id"])
    assert stats["faults"] == {"429": 10}
    assert stats["requests"] == 6 + 10
    assert {status for _, status, _ in posts(database_url, batch["batch_id"])} == {"draft"}


@pytest.mark.timeout(90)
async def test_insufficient_quota_fails_each_item_after_one_request(
    batch_env: dict[str, str], workers: Workers, simulator: Simulator, database_url: str
) -> None:
    env = {**batch_env, f"{HEADER}X-SIM-FAULT": "quota"}
    workers.start(env)
    await workers.ready()
    async with serving(load_settings(env)) as url, api_client(url) as client:
        batch = await create(client, {"items": item_list(5)})
        view = await finished(client, batch["batch_id"], timeout_s=60, workers=workers)
    found = items(database_url, batch["batch_id"])
    assert view["status"] == "done"
    assert view["counts"]["failed"] == 5
    assert all(state == "failed" and "insufficient_quota" in (error or "")
               for _, state, _, _, error in found), found
    assert [attempts for _, _, attempts, _, _ in found] == [1] * 5
    assert simulator.stats()["requests"] == 5
    assert simulator.stats()["faults"] == {"quota": 5}

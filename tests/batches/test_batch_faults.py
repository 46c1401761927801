"""Backend faults during a batch: a 429 storm is ridden out, a spent quota is not retried."""

from __future__ import annotations

import uuid

import pytest

from config import Settings, load_settings
from inference.simulator import Simulator
from posting import Batches, LocalLimiter, PostingService, PostRequest, run_in_process
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


@pytest.mark.timeout(30)
async def test_item_that_cannot_route_at_run_time_is_a_stored_failure(
    service: PostingService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = Batches(pool=service.pool, pipeline=service.pipeline, settings=settings,
                      limiter=LocalLimiter(1))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # accepted while the key is set
    request = PostRequest(stock="2330", kol=210, posting_type="analysis", max_words=100)
    view = await batches.create([request], spec={"items": 1}, actor="tester")
    monkeypatch.delenv("OPENAI_API_KEY")  # and removed before the item runs
    await run_in_process(batches, uuid.UUID(view.batch_id), concurrency=1)
    item = (await batches.view(uuid.UUID(view.batch_id), with_items=True)).items[0]
    post = await service.store.get_post(uuid.UUID(item.post_id))
    assert item.state == "failed" and "OPENAI_API_KEY" in (item.error or "")
    assert post is not None and post.status == "failed"
    assert post.failure_reason == item.error
    assert (post.kol.serial, post.stock.code, post.backend) == (210, "2330", "openai")

"""Batches run on real `autoposter worker` processes: each item once, one post each."""

from __future__ import annotations

import pytest

from config import load_settings
from tests.batches.batch_support import (
    Workers,
    api_client,
    create,
    finished,
    item_list,
    items,
    posts,
    rows,
)
from tests.server.conftest import serving


@pytest.mark.timeout(120)
async def test_thirty_items_on_two_workers_give_thirty_posts(
    batch_env: dict[str, str], workers: Workers, database_url: str
) -> None:
    workers.start(batch_env, count=2)
    await workers.ready()
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        batch = await create(client, {"items": item_list(30)})
        view = await finished(client, batch["batch_id"], timeout_s=90, workers=workers)
    stored = posts(database_url, batch["batch_id"])
    assert view["status"] == "done"
    assert view["counts"]["done"] == 30, items(database_url, batch["batch_id"])
    assert [state for _, state, *_ in items(database_url, batch["batch_id"])] == ["done"] * 30
    assert [item_no for item_no, *_ in stored] == list(range(30))
    assert {status for _, status, _ in stored} == {"draft"}


@pytest.mark.timeout(120)
async def test_two_workers_never_run_an_item_twice(
    batch_env: dict[str, str], workers: Workers, database_url: str
) -> None:
    env = {**batch_env, "AUTOPOSTER_BATCHES__WORKER_MAX_JOBS": "3"}
    first, second = workers.start(env, count=2)
    await workers.ready()
    async with serving(load_settings(env)) as url, api_client(url) as client:
        batch = await create(client, {"items": item_list(16)})
        view = await finished(client, batch["batch_id"], timeout_s=90, workers=workers)
    found = items(database_url, batch["batch_id"])
    assert view["counts"]["done"] == 16, workers.tail()
    assert [attempts for _, _, attempts, _, _ in found] == [1] * 16
    assert {worker for *_, worker, _ in found} == {workers.name(first), workers.name(second)}
    assert rows(database_url, "SELECT count(*) FROM posts WHERE batch_id = %s",
                batch["batch_id"]) == [(16,)]

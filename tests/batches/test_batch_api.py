"""POST and GET /v1/batches before any worker runs: plans expand, limits, bad items."""

from __future__ import annotations

from typing import Any

import pytest

from config import load_settings
from tests.batches.batch_support import api_client, create, plan, rows
from tests.server.conftest import serving

pytestmark = pytest.mark.timeout(60)

ITEM = {"stock": "2330", "kol": 208, "posting_type": "interaction", "max_words": 100}


def _kols(view: dict[str, Any]) -> list[int]:
    return [item["kol"] for item in view["items"]]


async def test_plan_expands_by_assignment_and_is_readable_at_once(
    batch_env: dict[str, str]
) -> None:
    stocks = ["2330", "2454", "2317", "2303", "2412"]
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        round_robin = await create(client, plan(stocks, [208, 209]))
        same = await create(client, plan(stocks[:2], [210], assignment="same_kol",
                                         backend="sim"))
        read = await client.get(f"/v1/batches/{round_robin['batch_id']}")
    assert _kols(round_robin) == [208, 209, 208, 209, 208]
    assert [item["stock"] for item in round_robin["items"]] == stocks
    assert {item["state"] for item in round_robin["items"]} == {"queued"}
    assert _kols(same) == [210, 210]
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "running"
    assert read.json()["counts"]["queued"] == 5


async def test_random_pool_with_a_seed_repeats(batch_env: dict[str, str]) -> None:
    stocks = ["2330", "2454", "2317", "2303", "2412", "2882", "2881", "1301"]
    body = plan(stocks, [201, 202, 203, 204, 205], assignment="random_pool", seed=42)
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        first, second = await create(client, body), await create(client, body)
    assert _kols(first) == _kols(second)
    assert set(_kols(first)) <= {201, 202, 203, 204, 205}
    assert len(set(_kols(first))) > 1
    assert first["batch_id"] != second["batch_id"]


async def test_create_answers_202_with_location(batch_env: dict[str, str]) -> None:
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        reply = await client.post("/v1/batches", json={"items": [ITEM, ITEM]})
    assert reply.status_code == 202, reply.text
    assert reply.headers["location"] == f"/v1/batches/{reply.json()['batch_id']}"
    assert reply.json()["total"] == 2


async def test_over_the_size_limit_names_items(batch_env: dict[str, str],
                                               database_url: str) -> None:
    before = rows(database_url, "SELECT count(*) FROM batches")
    settings = load_settings({**batch_env, "AUTOPOSTER_BATCHES__MAX_ITEMS": "3"})
    async with serving(settings) as url, api_client(url) as client:
        reply = await client.post("/v1/batches", json={"items": [ITEM] * 4})
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == "items"
    assert "at most 3" in reply.json()["detail"]
    assert rows(database_url, "SELECT count(*) FROM batches") == before


@pytest.mark.parametrize(("bad", "field"), [
    ({"max_words": 0}, "items[2].max_words"),
    ({"stock": "99999"}, "items[2].stock"),
    ({"kol": 424242}, "items[2].kol"),
])
async def test_invalid_item_names_its_index_and_field(
    batch_env: dict[str, str], database_url: str, bad: dict[str, Any], field: str
) -> None:
    before = rows(database_url, "SELECT count(*) FROM batches")
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        reply = await client.post("/v1/batches", json={"items": [ITEM, ITEM, {**ITEM, **bad}]})
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field
    assert rows(database_url, "SELECT count(*) FROM batches") == before


async def test_item_whose_backend_lacks_its_key_is_refused(
    batch_env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # KOL 210 defaults to openai
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        before = rows(database_url, "SELECT count(*) FROM batches")
        reply = await client.post("/v1/batches", json={"items": [ITEM, {**ITEM, "kol": 210}]})
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == "items[1].backend"
    assert "OPENAI_API_KEY" in reply.json()["detail"]
    assert rows(database_url, "SELECT count(*) FROM batches") == before


@pytest.mark.parametrize(("fields", "field"), [
    ({}, "plan.kols"),
    ({"speed_mode": True}, "plan.speed_mode"),
    ({"backend": "openai"}, "plan.backend"),
])
async def test_plan_that_routes_to_a_keyless_backend_names_the_plan_field(
    batch_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any],
    field: str,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    env = {**batch_env, "AUTOPOSTER_SPEED_BACKEND": "openai"}
    kols = [208] if fields else [208, 207]
    async with serving(load_settings(env)) as url, api_client(url) as client:
        reply = await client.post("/v1/batches", json=plan(["2330", "2454"], kols, **fields))
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field


async def test_plan_error_names_the_stock_by_its_place(batch_env: dict[str, str]) -> None:
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        reply = await client.post("/v1/batches", json=plan(["2330", "99999"], [208]))
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == "plan.stocks[1]"


async def test_items_store_the_resolved_stock_code(batch_env: dict[str, str]) -> None:
    typed = ["２３１７", "台積電", "2454"]
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        by_items = await create(client, {"items": [{**ITEM, "stock": s} for s in typed]})
        by_plan = await create(client, plan(typed, [208]))
    assert [item["stock"] for item in by_items["items"]] == ["2317", "2330", "2454"]
    assert [item["stock"] for item in by_plan["items"]] == ["2317", "2330", "2454"]

"""The review and catalog API over HTTP: the real app, its lifespan and the test database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from config import load_settings
from posting import PostingService
from posting._store import NewPost, Outcome, VariantRow
from server import create_app

KEY = "secret-key"


@pytest.fixture
async def client(env: dict[str, str]) -> AsyncIterator[AsyncTestClient]:
    app = create_app(load_settings(env | {"AUTOPOSTER_SERVER__API_KEYS": f"tester:{KEY}"}))
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client


async def _post(client: AsyncTestClient, stock: str = "", *, status: str = "draft") -> str:
    service: PostingService = client.app.state.service
    post_id = uuid.uuid4()
    await service.store.create_post(NewPost(
        id=post_id, kol_serial=201, stock_code=stock or f"T{uuid.uuid4().hex[:7]}",
        stock_name="測試股", posting_type="analysis", max_words=100, variants_requested=2,
        backend="fake", model="m", facts={},
    ))
    variants = [VariantRow(variant=i, title=f"標題{i}", body=f"內文{i}", raw_text="", checks=[],
                           score=1.0, finish_reason="stop", error=None, tokens=5)
                for i in range(2)]
    await service.store.finish_post(post_id, Outcome(
        backend="fake", model="Qwen/Qwen2.5-7B-Instruct", fallback_from=None, status=status, selected_variant=0, title="標題0", body="內文0", failure_reason=None,
        timings_ms={"total": 12.5}, variants=variants, calls=[],
    ))
    return str(post_id)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def _persona(serial: int) -> dict[str, Any]:
    return {"serial": serial, "nickname": "測試達人", "persona_type": "technical",
            "persona": "看線的人", "style": "短句", "guardrails": ["不報明牌"],
            "skeleton": "開場、分析、結論"}


# Keys


async def test_request_without_key_is_401_problem(client: AsyncTestClient) -> None:
    response = await client.get("/v1/posts", headers={"Authorization": ""})
    assert _problem(response, 401)["type"].endswith(":unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_request_with_wrong_key_is_401_problem(client: AsyncTestClient) -> None:
    response = await client.get("/v1/kols", headers={"Authorization": "Bearer nope"})
    assert "unknown or revoked" in _problem(response, 401)["detail"]


# Posts


async def test_list_pages_through_filtered_posts(client: AsyncTestClient) -> None:
    query = {"stock": "1101", "created_after": datetime.now(timezone.utc).isoformat()}
    ids = {await _post(client, "1101") for _ in range(3)}
    first = (await client.get("/v1/posts", params={**query, "limit": 2})).json()
    second = (await client.get("/v1/posts", params={**query, "limit": 2,
                                                     "cursor": first["next_cursor"]})).json()
    assert len(first["items"]) == 2 and second["next_cursor"] is None
    assert {item["post_id"] for item in first["items"] + second["items"]} == ids
    assert first["items"][0]["kol"]["serial"] == 201


@pytest.mark.parametrize("typed", ["台積電", "２３３０", " 2330 "])
async def test_list_filters_by_stock_name_or_full_width_code(client: AsyncTestClient,
                                                             typed: str) -> None:
    since = datetime.now(timezone.utc).isoformat()
    post_id = await _post(client, "2330")
    listing = (await client.get("/v1/posts", params={"stock": typed,
                                                     "created_after": since})).json()
    assert [item["post_id"] for item in listing["items"]] == [post_id]


async def test_list_with_unknown_stock_is_422(client: AsyncTestClient) -> None:
    response = await client.get("/v1/posts", params={"stock": "99999"})
    assert _problem(response, 422)["field"] == "stock"


async def test_list_with_bad_cursor_is_422(client: AsyncTestClient) -> None:
    response = await client.get("/v1/posts", params={"cursor": "garbage"})
    assert _problem(response, 422)["field"] == "cursor"


async def test_list_with_bad_limit_is_422(client: AsyncTestClient) -> None:
    response = await client.get("/v1/posts", params={"limit": 500})
    assert _problem(response, 422)["field"] == "limit"


async def test_get_post_shows_alternatives_and_timings(client: AsyncTestClient) -> None:
    post_id = await _post(client)
    body = (await client.get(f"/v1/posts/{post_id}")).json()
    assert body["selected"] == {"variant": 0, "title": "標題0", "body": "內文0"}
    assert [v["variant"] for v in body["alternatives"]] == [1]
    assert body["timings_ms"] == {"total": 12.5} and body["cost_usd"] == 0


async def test_get_unknown_post_is_404(client: AsyncTestClient) -> None:
    for path in (f"/v1/posts/{uuid.uuid4()}", f"/v1/posts/{uuid.uuid4()}/history"):
        assert _problem(await client.get(path), 404)["field"] == "post_id"


async def test_patch_selects_variant_and_records_actor(client: AsyncTestClient) -> None:
    post_id = await _post(client)
    response = await client.patch(f"/v1/posts/{post_id}",
                                  json={"selected_variant": 1, "status": "approved"})
    assert response.status_code == 200, response.text
    assert response.json()["selected"]["title"] == "標題1"
    assert response.json()["status"] == "approved"
    [change] = (await client.get(f"/v1/posts/{post_id}/history")).json()
    assert (change["actor"], change["action"]) == ("tester", "approve")
    assert change["changes"]["selected_variant"] == {"old": 0, "new": 1}


async def test_patch_forbidden_transition_is_409(client: AsyncTestClient) -> None:
    post_id = await _post(client)
    response = await client.patch(f"/v1/posts/{post_id}", json={"status": "published"})
    problem = _problem(response, 409)
    assert problem["field"] == "status"
    assert problem["type"].endswith(":transition_not_allowed")


async def test_forbidden_move_of_an_approved_post_reads_well(client: AsyncTestClient) -> None:
    post_id = await _post(client, status="approved")
    response = await client.patch(f"/v1/posts/{post_id}", json={"status": "draft"})
    assert _problem(response, 409)["detail"].startswith(
        "status: an approved post cannot become draft")


async def test_patch_unknown_post_is_404(client: AsyncTestClient) -> None:
    response = await client.patch(f"/v1/posts/{uuid.uuid4()}", json={"title": "x"})
    assert _problem(response, 404)["field"] == "post_id"


@pytest.mark.parametrize(("body", "field"), [({"headline": "x"}, "headline"),
                                             ({"selected_variant": "two"}, "selected_variant"),
                                             ({"status": "done"}, "status")])
async def test_patch_bad_body_is_400_naming_field(client: AsyncTestClient,
                                                  body: dict[str, Any], field: str) -> None:
    post_id = await _post(client)
    response = await client.patch(f"/v1/posts/{post_id}", json=body)
    assert _problem(response, 400)["field"] == field


async def test_patch_empty_title_is_422(client: AsyncTestClient) -> None:
    post_id = await _post(client)
    response = await client.patch(f"/v1/posts/{post_id}", json={"title": "  "})
    assert _problem(response, 422)["field"] == "title"


# KOLs and stocks


async def test_create_kol_then_read_it(client: AsyncTestClient) -> None:
    serial = 100_000 + uuid.uuid4().int % 1_000_000
    response = await client.post("/v1/kols", json=_persona(serial))
    assert response.status_code == 201, response.text
    fetched = (await client.get(f"/v1/kols/{serial}")).json()
    assert fetched["nickname"] == "測試達人" and fetched["signature"] is None
    assert serial in [k["serial"] for k in (await client.get("/v1/kols")).json()]


async def test_create_existing_kol_is_409(client: AsyncTestClient) -> None:
    response = await client.post("/v1/kols", json=_persona(201))
    assert _problem(response, 409)["field"] == "serial"


async def test_patch_kol_records_actor(client: AsyncTestClient) -> None:
    serial = 100_000 + uuid.uuid4().int % 1_000_000
    await client.post("/v1/kols", json=_persona(serial))
    response = await client.patch(f"/v1/kols/{serial}", json={"style": "長句"})
    assert response.json()["style"] == "長句"
    history = (await client.get(f"/v1/kols/{serial}/history")).json()
    assert [(c["actor"], c["action"]) for c in history] == [("tester", "create"),
                                                            ("tester", "update")]


async def test_patch_kol_with_bad_persona_type_is_422(client: AsyncTestClient) -> None:
    response = await client.patch("/v1/kols/201", json={"persona_type": "astrology"})
    assert _problem(response, 422)["field"] == "persona_type"


@pytest.mark.parametrize(("body", "field"), [({"backend": "nope"}, "backend"),
                                             ({"nickname": ""}, "nickname"),
                                             ({"nickname": "  "}, "nickname")])
async def test_patch_kol_that_would_break_it_is_422(client: AsyncTestClient,
                                                    body: dict[str, Any], field: str) -> None:
    response = await client.patch("/v1/kols/201", json=body)
    assert _problem(response, 422)["field"] == field
    kol = (await client.get("/v1/kols/201")).json()
    assert kol["nickname"].strip() and kol.get("backend") != "nope"


async def test_kol_may_name_a_configured_backend_or_none(client: AsyncTestClient) -> None:
    serial = 100_000 + uuid.uuid4().int % 1_000_000
    response = await client.post("/v1/kols", json={**_persona(serial), "backend": "nope"})
    assert _problem(response, 422)["field"] == "backend"
    assert (await client.post("/v1/kols", json=_persona(serial))).status_code == 201
    response = await client.patch(f"/v1/kols/{serial}", json={"backend": "fake"})
    assert response.status_code == 200 and response.json()["backend"] == "fake"
    response = await client.patch(f"/v1/kols/{serial}", json={"backend": None})
    assert response.status_code == 200 and response.json()["backend"] is None


async def test_unknown_kol_is_404(client: AsyncTestClient) -> None:
    assert _problem(await client.get("/v1/kols/99"), 404)["field"] == "serial"
    response = await client.patch("/v1/kols/99", json={"nickname": "x"})
    assert _problem(response, 404)["field"] == "serial"


async def test_stocks_search_finds_by_code(client: AsyncTestClient) -> None:
    response = await client.get("/v1/stocks", params={"q": "2330", "limit": 3})
    assert response.json()[0]["name"] == "台積電"


async def test_stocks_search_without_q_names_q(client: AsyncTestClient) -> None:
    assert _problem(await client.get("/v1/stocks"), 400)["field"] == "q"

"""POST /v1/posts over real HTTP: JSON and SSE, failures as problem+json, auth."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from httpx_sse import aconnect_sse
from pytest_httpx import HTTPXMock

from config import load_settings
from tests.conftest import FIXTURES
from tests.llm_wire import sse_body
from tests.server.conftest import AUTH, serving

LLM = "http://llm.test/v1/chat/completions"
GOOD = "台積電還能追嗎？\n" + "台積電 2330 量價俱揚，站上月線，短線偏多，留意外資動向。" * 2
BODY = {"stock": "2330", "kol": 208, "posting_type": "analysis", "max_words": 100,
        "variants": 3}
only_llm = pytest.mark.httpx_mock(should_mock=lambda request: request.url.host == "llm.test",
                                  assert_all_responses_were_requested=False)


def _serve_llm(httpx_mock: HTTPXMock, content: bytes) -> None:
    httpx_mock.add_response(url=LLM, content=content, is_reusable=True,
                            headers={"content-type": "text/event-stream"})


async def _events(api: httpx.AsyncClient, body: dict) -> list[tuple[str, dict, str]]:
    async with aconnect_sse(api, "POST", "/v1/posts", json=body) as source:
        assert source.response.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in source.response.headers
        return [(e.event, json.loads(e.data), e.id) async for e in source.aiter_sse()]


@only_llm
async def test_stream_sends_whole_event_sequence(api, httpx_mock: HTTPXMock) -> None:
    _serve_llm(httpx_mock, sse_body([GOOD, GOOD, GOOD]))
    events = await _events(api, BODY)
    kinds = [kind for kind, _, _ in events]
    assert kinds[0] == "post.created" and kinds[-1] == "post.done"
    assert "stage" in kinds and "variant.delta" in kinds and "post.selected" in kinds
    assert kinds.count("variant.done") == 3
    ids = [int(event_id) for _, _, event_id in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert events[-1][1]["post"]["status"] == "draft"


@only_llm
async def test_post_without_stream_answers_201_with_alternatives(api, httpx_mock) -> None:
    _serve_llm(httpx_mock, sse_body([GOOD, GOOD, GOOD]))
    reply = await api.post("/v1/posts", json=BODY)
    assert reply.status_code == 201
    post = reply.json()
    assert reply.headers["location"] == f"/v1/posts/{post['post_id']}"
    assert len(post["alternatives"]) == 2 and post["selected"]["title"]


@only_llm
@pytest.mark.parametrize("fixture", ["openai-midstream-error.sse", "truncated.sse",
                                     "truncated-mid-event.sse"])
async def test_broken_stream_is_stored_failure_not_success(
    api, httpx_mock: HTTPXMock, fixture: str
) -> None:
    _serve_llm(httpx_mock, (FIXTURES / fixture).read_bytes())
    reply = await api.post("/v1/posts", json={**BODY, "variants": 1})
    assert reply.status_code == 502
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    stored = (await api.get(f"/v1/posts/{problem['post_id']}")).json()
    assert stored["status"] == "failed" and stored["failure_reason"]


@only_llm
async def test_stream_of_broken_upstream_ends_with_error_then_done(api, httpx_mock) -> None:
    _serve_llm(httpx_mock, (FIXTURES / "vllm-midstream-error.sse").read_bytes())
    events = await _events(api, {**BODY, "variants": 2})
    kinds = [kind for kind, _, _ in events]
    assert kinds[-2:] == ["error", "post.done"]
    assert events[-1][1]["post"]["status"] == "failed"


@only_llm
async def test_replay_of_finished_post_honours_last_event_id(api, httpx_mock) -> None:
    _serve_llm(httpx_mock, sse_body([GOOD, GOOD]))
    live = await _events(api, {**BODY, "variants": 2})
    post_id = live[0][1]["post_id"]
    async with aconnect_sse(api, "GET", f"/v1/posts/{post_id}/events",
                            headers={"Last-Event-ID": live[-3][2]}) as source:
        replayed = [(e.event, e.id) async for e in source.aiter_sse()]
    assert replayed == [(kind, event_id) for kind, _, event_id in live[-2:]]


@only_llm
async def test_resume_after_the_live_run_is_forgotten_still_ends_with_the_post(
    server_env: dict[str, str], httpx_mock: HTTPXMock
) -> None:
    _serve_llm(httpx_mock, sse_body([GOOD, GOOD]))
    httpx_mock.add_response(url="http://llm.test/v1/models", json={"data": []},
                            is_reusable=True)  # the health probe, made as the server starts
    settings = load_settings({**server_env, "AUTOPOSTER_SERVER__RESUME_TTL_S": "0.05"})
    async with serving(settings) as url, httpx.AsyncClient(base_url=url, headers=AUTH,
                                                           timeout=30) as api:
        live = await _events(api, {**BODY, "variants": 2})
        await asyncio.sleep(0.3)  # past the TTL: only the stored post is left to replay
        seen = live[-3][2]  # the client dropped before post.selected and post.done
        async with aconnect_sse(api, "GET", f"/v1/posts/{live[0][1]['post_id']}/events",
                                headers={"Last-Event-ID": seen}) as source:
            resumed = [(e.event, int(e.id), json.loads(e.data))
                       async for e in source.aiter_sse()]
    assert [(kind, event_id) for kind, event_id, _ in resumed] == [("post.done", int(seen) + 1)]
    assert resumed[0][2]["post"]["status"] == "draft"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**BODY, "stock": "99999"}, 422, "stock"),
        ({**BODY, "kol": 424242}, 422, "kol"),
        ({**BODY, "max_words": 0}, 422, "max_words"),
        ({**BODY, "posting_type": "essay"}, 422, "posting_type"),
        ({**BODY, "variants": 9}, 422, "variants"),
        ({**BODY, "max_words": "lots"}, 400, "max_words"),
        ({**BODY, "colour": "red"}, 400, "colour"),
        ({k: v for k, v in BODY.items() if k != "kol"}, 400, "kol"),
        ({**BODY, "facts": {"notes": ["bad \u0000 byte"]}}, 422, "facts.notes"),
    ],
)
async def test_bad_input_is_problem_json_naming_field(api, body, status, field) -> None:
    reply = await api.post("/v1/posts", json=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["field"] == field


async def test_lone_surrogate_is_refused_as_malformed(api) -> None:
    body = json.dumps({**BODY, "model": "MARK"}).replace("MARK", "\\ud800")
    reply = await api.post("/v1/posts", content=body.encode(),
                           headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/problem+json")


async def test_malformed_json_is_400_problem(api) -> None:
    reply = await api.post("/v1/posts", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["field"] == "body"
    assert reply.json()["type"].endswith(":malformed_request")


async def test_oversized_body_is_413(api) -> None:
    reply = await api.post("/v1/posts", json={**BODY, "facts": {"notes": ["x" * 100_000]}})
    assert reply.status_code == 413


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic dGVzdA=="}])
async def test_v1_needs_a_valid_key(base_url: str, headers: dict) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        reply = await client.post("/v1/posts", json=BODY, headers=headers)
    assert reply.status_code == 401
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert "wrong" not in reply.text


async def test_health_and_schema_need_no_key(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/schema/openapi.json")).status_code == 200

"""Which backend a post goes to, and when it may fall back to another."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pytest_httpx import HTTPXMock

from config import load_settings
from posting import Plan, PostingService, PostRequest, expand
from tests.llm_wire import sse_body

PRIMARY = "http://primary.test/v1/chat/completions"
SECONDARY = "http://secondary.test/v1/chat/completions"
GOOD = "台積電還能追嗎？\n台積電 2330 量價俱揚，站上月線，短線偏多。"


def _backend(name: str, host: str) -> dict[str, str]:
    prefix = f"AUTOPOSTER_BACKENDS__{name.upper()}__"
    return {prefix + "KIND": "vllm", prefix + "BASE_URL": f"http://{host}/v1",
            prefix + "MODEL": "Qwen/Qwen2.5-7B-Instruct"}


@pytest.fixture
async def routed(env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[PostingService]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # KOL 207 defaults to openai
    settings = load_settings({
        **env, **_backend("primary", "primary.test"), **_backend("secondary", "secondary.test"),
        **_backend("speedy", "speedy.test"),
        "AUTOPOSTER_BACKEND": "primary", "AUTOPOSTER_SPEED_BACKEND": "speedy",
        "AUTOPOSTER_FALLBACKS__PRIMARY": "secondary",
        "AUTOPOSTER_HEALTH__CIRCUIT_FAILURES": "2",
        "AUTOPOSTER_RETRIES__ATTEMPTS": "2",
    })
    async with PostingService.open(settings) as service:
        yield service


def _request(**overrides: object) -> PostRequest:
    fields = {"stock": "2330", "kol": 208, "posting_type": "interaction", "max_words": 60,
              "variants": 2, **overrides}
    return PostRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "chosen"),
    [
        ({"backend": "secondary"}, "secondary"),  # the request wins
        ({"backend": "secondary", "speed_mode": True}, "secondary"),
        ({"speed_mode": True}, "speedy"),  # then speed mode
        ({"kol": 207}, "openai"),  # then the KOL's default
        ({}, "primary"),  # then the global default
    ],
)
async def test_routing_precedence(routed: PostingService, overrides: dict, chosen: str) -> None:
    prepared = await routed.pipeline.prepare(_request(**overrides))
    assert prepared.client.name == chosen


def test_batch_backend_applies_to_every_item() -> None:
    plan = Plan(stocks=["2330", "2454"], kols=[208], posting_type="analysis", max_words=100,
                backend="secondary")
    assert [r.backend for r in expand(plan)] == ["secondary", "secondary"]


async def test_server_errors_fall_back_and_the_post_says_so(
    routed: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=PRIMARY, status_code=500, is_reusable=True,
                            json={"error": {"message": "boom", "type": "server_error"}})
    httpx_mock.add_response(url=SECONDARY, content=sse_body([GOOD, GOOD]),
                            headers={"content-type": "text/event-stream"})
    post = await routed.pipeline.run(_request())
    assert post.status == "draft"
    assert (post.backend, post.fallback_from) == ("secondary", "primary")


async def test_connection_error_falls_back(routed: PostingService, httpx_mock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=PRIMARY, is_reusable=True)
    httpx_mock.add_response(url=SECONDARY, content=sse_body([GOOD, GOOD]),
                            headers={"content-type": "text/event-stream"})
    post = await routed.pipeline.run(_request())
    assert post.backend == "secondary" and post.status == "draft"


async def test_no_fallback_after_the_first_token(routed: PostingService, httpx_mock) -> None:
    broken = sse_body([GOOD, GOOD], finish=[None, None]) + (
        b'data: {"error": {"message": "engine died", "type": "server_error"}}\n\n')
    httpx_mock.add_response(url=PRIMARY, content=broken,
                            headers={"content-type": "text/event-stream"})
    post = await routed.pipeline.run(_request())
    assert post.status == "failed" and post.backend == "primary"
    assert not [r for r in httpx_mock.get_requests() if r.url.host == "secondary.test"]


async def test_bad_request_does_not_fall_back(routed: PostingService, httpx_mock) -> None:
    httpx_mock.add_response(url=PRIMARY, status_code=400,
                            json={"error": {"message": "context too long", "code": 400}})
    post = await routed.pipeline.run(_request())
    assert post.status == "failed" and post.fallback_from is None


async def test_open_circuit_skips_the_backend(routed: PostingService, httpx_mock) -> None:
    httpx_mock.add_response(url=PRIMARY, status_code=503, is_reusable=True,
                            json={"error": {"message": "overloaded", "type": "server_error"}})
    httpx_mock.add_response(url=SECONDARY, content=sse_body([GOOD, GOOD]), is_reusable=True,
                            headers={"content-type": "text/event-stream"})
    for _ in range(2):  # two failures in a row open the primary's circuit
        await routed.pipeline.run(_request())
    primary_calls = len([r for r in httpx_mock.get_requests() if r.url.host == "primary.test"])
    post = await routed.pipeline.run(_request())
    assert routed.backends.circuit("primary") == "open"
    assert post.backend == "secondary" and post.fallback_from == "primary"
    assert len([r for r in httpx_mock.get_requests()
                if r.url.host == "primary.test"]) == primary_calls

"""The whole pipeline against the real PostgreSQL, with the LLM faked at its HTTP edge."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pytest_httpx import HTTPXMock

from posting import (
    InvalidRequest,
    PostCreated,
    PostDone,
    PostingService,
    PostRequest,
    PostSelected,
    UnknownKol,
    UnknownStock,
    VariantDelta,
    VariantDone,
)
from tests.llm_wire import request_n, sse_body, sse_response

URL = "http://llm.test/v1/chat/completions"
GOOD = "台積電還能追嗎？\n" + "台積電 2330 今天量價俱揚，站上月線，短線偏多，但要留意外資動向。" * 2
LONG = "台積電長文\n" + "台積電的技術面很強勢。" * 40


def _request(**overrides: object) -> PostRequest:
    fields = {"stock": "2330", "kol": 208, "posting_type": "analysis", "max_words": 100,
              "variants": 3}
    fields.update(overrides)
    return PostRequest(**fields)  # type: ignore[arg-type]


async def _count_posts(service: PostingService) -> int:
    return len(await service.store.list_posts(limit=10_000))


async def test_generate_stores_draft_with_selected_and_alternatives(
    service: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, content=sse_body([GOOD, LONG, GOOD]),
                            headers={"content-type": "text/event-stream"})
    events: list[object] = []
    post = await service.pipeline.run(_request(), emit=events.append)
    assert post.status == "draft"
    assert post.selected.variant in (0, 2)
    assert post.selected.title == "台積電還能追嗎？"
    assert len(post.alternatives) == 2
    assert post.usage.prompt_tokens == 120 and not post.usage.estimated
    stored = await service.store.get_post(uuid.UUID(post.post_id))
    assert stored == post


async def test_generate_emits_events_in_order(
    service: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, content=sse_body([GOOD, GOOD, GOOD]),
                            headers={"content-type": "text/event-stream"})
    events: list[object] = []
    await service.pipeline.run(_request(), emit=events.append)
    kinds = [type(e) for e in events]
    assert kinds[0] is PostCreated
    assert kinds.index(VariantDelta) < kinds.index(VariantDone) < kinds.index(PostSelected)
    assert kinds[-1] is PostDone
    assert sum(k is VariantDone for k in kinds) == 3


async def test_generate_sends_n_and_derived_max_tokens(
    service: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, content=sse_body([GOOD] * 5),
                            headers={"content-type": "text/event-stream"})
    await service.pipeline.run(_request(variants=5, max_words=200))
    body = httpx_mock.get_requests()[0].read()
    sent = httpx.Request("POST", URL, content=body)
    assert request_n(sent) == 5
    import json
    payload = json.loads(body)
    assert payload["max_tokens"] != 2000
    assert payload["stream_options"]["include_usage"] is True
    assert payload["messages"][0]["role"] == "system"


async def test_truncated_variant_is_recorded_not_accepted_whole(
    service: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, content=sse_body([GOOD, LONG], finish=["length", "length"]),
                            headers={"content-type": "text/event-stream"})
    post = await service.pipeline.run(_request(variants=2))
    checks = {c.name: c.passed for c in post.checks}
    assert checks["not_truncated"] is False
    assert all(a.finish_reason == "length" for a in post.alternatives)


async def test_all_variants_failing_stores_failed_post_with_reason(
    service: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, status_code=400,
                            json={"error": {"message": "context too long", "code": 400}})
    before = await _count_posts(service)
    post = await service.pipeline.run(_request(variants=2))
    assert post.status == "failed"
    assert "context too long" in (post.failure_reason or "")
    assert await _count_posts(service) == before + 1


async def test_stream_cut_off_stores_partial_text_as_failure(
    service: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, content=sse_body([GOOD], finish=[None]),
                            headers={"content-type": "text/event-stream"})
    post = await service.pipeline.run(_request(variants=1))
    assert post.status == "failed"
    assert "stream_broken" in (post.failure_reason or "")
    variant = post.alternatives[0]
    assert variant.body and variant.error


async def test_idle_timeout_ends_as_failed_post(
    service: PostingService, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("no chunk"), url=URL, is_reusable=True)
    post = await service.pipeline.run(_request(variants=1))
    assert post.status == "failed"
    assert (post.failure_reason or "").startswith("timeout")
    assert len(httpx_mock.get_requests()) == service.settings.retries.attempts


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"stock": "99999"}, UnknownStock, "stock"),
        ({"kol": 424242}, UnknownKol, "kol"),
        ({"max_words": 0}, InvalidRequest, "max_words"),
        ({"max_words": 2001}, InvalidRequest, "max_words"),
        ({"posting_type": "essay"}, InvalidRequest, "posting_type"),
        ({"variants": 9}, InvalidRequest, "variants"),
        ({"backend": "nope"}, InvalidRequest, "backend"),
    ],
)
async def test_bad_input_names_field_and_stores_nothing(
    service: PostingService, overrides: dict, error: type, field: str
) -> None:
    before = await _count_posts(service)
    with pytest.raises(error) as caught:
        await service.pipeline.run(_request(**overrides))
    assert caught.value.field == field
    assert await _count_posts(service) == before


async def test_backend_without_n_uses_concurrent_requests(
    service: PostingService, httpx_mock: HTTPXMock, settings
) -> None:
    settings.backends["fake"].supports_n = False
    httpx_mock.add_callback(lambda request: sse_response(sse_body([GOOD])), url=URL,
                            is_reusable=True)
    post = await service.pipeline.run(_request(variants=3))
    assert len(httpx_mock.get_requests()) == 3
    assert post.status == "draft" and len(post.alternatives) == 2

"""LLMClient.stream when the backend fails: before the stream, inside it, or by cutting it."""

from __future__ import annotations

import time
import warnings

import httpx
import openai
import pytest

from config._settings import Retries
from inference import (
    BadRequest,
    QuotaExceeded,
    RateLimited,
    StreamBroken,
    UpstreamError,
)
from inference._errors import from_openai, retry_after_s
from inference._retry import retrying

pytestmark = [
    pytest.mark.timeout(10),
]


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [("openai-midstream-error", "openai"), ("vllm-midstream-error", "vllm")],
)
async def test_stream_midstream_error_fails_unfinished_variant(
    make_client, serve, collect, meta, fixture, kind
):
    serve(f"{fixture}.sse")
    expected = meta(fixture)["expected"]

    streamed = await collect(make_client(kind=kind))

    assert streamed.texts() == {0: expected["partial_content"]}
    [error] = streamed.failures().values()
    assert isinstance(error, UpstreamError)
    assert expected["error"]["message"] in str(error)
    assert streamed.records[0].error == "upstream_error"


async def test_stream_truncated_fails_with_stream_broken(make_client, serve, collect, meta):
    serve("truncated.sse")

    streamed = await collect(make_client(kind="openai", model="gpt-4o-mini"))

    assert streamed.texts() == {0: meta("truncated")["expected"]["partial_content"]}
    assert streamed.finish_reasons() == {}
    assert isinstance(streamed.failures()[0], StreamBroken)
    assert streamed.records[0].error == "stream_broken"
    assert streamed.records[0].usage.estimated is True


async def test_stream_truncated_mid_event_fails_without_raising(make_client, serve, collect, meta):
    serve("truncated-mid-event.sse")

    streamed = await collect(make_client(kind="openai", model="gpt-4o-mini"))

    assert streamed.texts() == {0: meta("truncated-mid-event")["expected"]["partial_content"]}
    assert isinstance(streamed.failures()[0], (StreamBroken, UpstreamError))
    assert streamed.records[0].error in ("stream_broken", "upstream_error")


async def test_open_rate_limited_retries_then_streams(make_client, serve, collect, httpx_mock):
    serve("rate-limit-429.json")
    serve("openai-n1-usage.sse")

    started = time.monotonic()
    streamed = await collect(make_client(kind="openai", model="gpt-4o-mini"))

    assert len(httpx_mock.get_requests()) == 2
    assert streamed.records[0].attempts == 2
    assert streamed.finish_reasons() == {0: "stop"}
    # retry-after: 2 is capped by max_backoff_s (0.05 s).
    assert time.monotonic() - started < 1.0


async def test_open_rate_limited_waits_retry_after_ms(make_client, collect, httpx_mock):
    httpx_mock.add_response(status_code=429, headers={"retry-after-ms": "300"},
                            json={"error": {"message": "slow down", "code": "rate_limit"}})
    httpx_mock.add_response(content=b"data: [DONE]\n\n",
                            headers={"content-type": "text/event-stream"})
    patient = Retries(attempts=2, initial_backoff_s=0.01, max_backoff_s=5.0)

    started = time.monotonic()
    await collect(make_client(kind="openai", model="gpt-4o-mini", retries=patient))

    assert time.monotonic() - started >= 0.3


async def test_open_quota_exceeded_is_not_retried(make_client, serve, collect, httpx_mock):
    serve("quota-429.json")

    streamed = await collect(make_client(kind="openai", model="gpt-4o-mini"), n=2)

    assert len(httpx_mock.get_requests()) == 1
    assert set(streamed.failures()) == {0, 1}
    assert all(isinstance(e, QuotaExceeded) for e in streamed.failures().values())
    assert streamed.records[0].error == "insufficient_quota"


async def test_open_server_error_retried_until_attempts_run_out(
    make_client, serve, collect, httpx_mock
):
    serve("server-error-500.json", is_reusable=True)

    streamed = await collect(make_client(kind="openai", model="gpt-4o-mini"))

    assert len(httpx_mock.get_requests()) == 3
    assert isinstance(streamed.failures()[0], UpstreamError)
    assert streamed.records[0].error == "upstream_error"
    assert streamed.records[0].usage.prompt_tokens == 0  # nothing answered, nothing billed


async def test_open_server_error_records_every_attempt(make_client, serve, collect):
    serve("server-error-500.json", is_reusable=True)

    streamed = await collect(make_client(kind="openai", model="gpt-4o-mini"))

    assert streamed.records[0].attempts == 3


async def test_open_bad_request_is_not_retried(make_client, serve, collect, httpx_mock):
    serve("llamacpp-error-context-exceeded.json")

    streamed = await collect(make_client(kind="local"))

    assert len(httpx_mock.get_requests()) == 1
    assert isinstance(streamed.failures()[0], BadRequest)
    assert streamed.records[0].error == "bad_request"


_NO_INDEX_CHUNK = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
                   b'"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
                   b"data: [DONE]\n\n")


async def test_stream_unexpected_chunk_fails_variant(make_client, httpx_mock, collect):
    httpx_mock.add_response(content=_NO_INDEX_CHUNK,
                            headers={"content-type": "text/event-stream"})

    streamed = await collect(make_client(kind="vllm"))

    assert set(streamed.failures()) == {0}
    assert streamed.records[0].error is not None


def test_retrying_builds_without_deprecation_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        retrying(Retries())


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({}, None),
    ],
)
def test_retry_after_s_reads_ms_then_seconds(headers, seconds):
    assert retry_after_s(httpx.Headers(headers)) == seconds


def test_retry_after_s_without_headers_is_none():
    assert retry_after_s(None) is None


def test_from_openai_maps_rate_limit_with_its_wait():
    request = httpx.Request("POST", "http://llm.test/v1/chat/completions")
    response = httpx.Response(429, headers={"retry-after": "3"}, request=request)
    exc = openai.RateLimitError("slow down", response=response,
                                body={"code": "rate_limit_exceeded"})

    mapped = from_openai(exc)

    assert isinstance(mapped, RateLimited) and mapped.retryable
    assert mapped.retry_after_s == 3.0

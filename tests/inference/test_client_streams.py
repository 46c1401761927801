"""LLMClient.stream against recorded and hand-written streams: texts, finishes, usage."""

from __future__ import annotations

import asyncio

import pytest

from config import model_catalog
from inference import TextDelta, Usage, VariantFinished

pytestmark = [
    pytest.mark.timeout(10),
]


def _content(meta: dict) -> dict[int, str]:
    block = meta.get("expected") or meta["observed"]
    return {int(k): v for k, v in block["content_by_index"].items()}


async def test_stream_llamacpp_n3_joins_deltas_per_variant(make_client, serve, collect, meta):
    serve("llamacpp-n3-usage.sse")

    streamed = await collect(make_client(kind="local", max_n=5), n=3)

    assert streamed.texts() == _content(meta("llamacpp-n3-usage"))
    assert streamed.finish_reasons() == {0: "stop", 1: "stop", 2: "stop"}
    assert streamed.failures() == {}


async def test_usage_llamacpp_n3_counts_prompt_once_and_sums_choices(make_client, serve, collect):
    serve("llamacpp-n3-usage.sse")

    streamed = await collect(make_client(kind="local", max_n=5), n=3)

    [record] = streamed.records
    # One usage chunk per choice (23, 27, 49), each repeating the 59-token prompt.
    assert record.usage == Usage(prompt_tokens=59, completion_tokens=99, cached_tokens=58)
    assert record.variants == (0, 1, 2)
    assert record.error is None


async def test_usage_without_stream_options_is_estimated(
    make_client, serve, collect, sent_bodies, meta
):
    serve("llamacpp-n1-no-stream-options.sse")

    streamed = await collect(make_client(kind="local", stream_usage=False))

    usage = streamed.records[0].usage
    assert usage.estimated is True
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert streamed.texts() == _content(meta("llamacpp-n1-no-stream-options"))
    assert "stream_options" not in sent_bodies()[0]


async def test_stream_without_role_chunk_parses_cjk_deltas(make_client, serve, collect, meta):
    serve("llamacpp-zh-tw.sse")

    streamed = await collect(make_client(kind="local"))

    assert streamed.texts() == _content(meta("llamacpp-zh-tw"))
    assert streamed.finish_reasons() == {0: "length"}
    assert streamed.records[0].usage.completion_tokens == 60


async def test_stream_skips_keepalive_comments(make_client, serve, collect):
    serve("llamacpp-keepalive-ping.sse")

    streamed = await collect(make_client(kind="local"))

    assert streamed.texts()[0].startswith("Hon Hai shares slipped")
    assert streamed.finish_reasons() == {0: "length"}
    assert streamed.records[0].usage.prompt_tokens == 985


async def test_stream_finish_length_yields_variant_finished(make_client, serve, collect):
    serve("llamacpp-finish-length.sse")

    streamed = await collect(make_client(kind="local"))

    assert VariantFinished(0, "length") in streamed.events
    assert streamed.texts() == {0: "Just another day in the world of Apple"}
    assert streamed.records[0].usage.completion_tokens == 8


async def test_usage_openai_reads_cached_tokens_and_prices_them(make_client, serve, collect, meta):
    serve("openai-n1-usage.sse")
    expected = meta("openai-n1-usage")["expected"]

    streamed = await collect(make_client(kind="openai", model="gpt-4o-mini"))

    [record] = streamed.records
    assert streamed.texts() == {0: expected["content"]}
    assert record.usage == Usage(prompt_tokens=1342, completion_tokens=49, cached_tokens=1152)
    card = model_catalog().card("gpt-4o-mini")
    uncached_usd = (1342 - 1152) * card.input_usd_per_mtok
    cached_usd = 1152 * card.cached_input_usd_per_mtok
    output_usd = 49 * card.output_usd_per_mtok
    assert record.cost_usd == pytest.approx((uncached_usd + cached_usd + output_usd) / 1e6)
    assert record.cost_usd > 0


async def test_stream_vllm_n2_matches_expected_texts_and_finishes(
    make_client, serve, collect, meta
):
    serve("vllm-n2-continuous-usage.sse")
    expected = meta("vllm-n2-continuous-usage")["expected"]

    streamed = await collect(make_client(kind="vllm"), n=2)

    assert streamed.texts() == _content(meta("vllm-n2-continuous-usage"))
    reasons = {int(k): v for k, v in expected["finish_reason_by_index"].items()}
    assert streamed.finish_reasons() == reasons


async def test_usage_vllm_continuous_takes_final_sum(make_client, serve, collect, meta):
    serve("vllm-n2-continuous-usage.sse")
    final = meta("vllm-n2-continuous-usage")["expected"]["final_usage"]

    streamed = await collect(make_client(kind="vllm"), n=2)

    usage = streamed.records[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        final["prompt_tokens"], final["completion_tokens"])
    assert usage.estimated is False


@pytest.mark.parametrize(
    ("kind", "limit_key", "options"),
    [
        ("openai", "max_completion_tokens", {"include_usage": True}),
        ("vllm", "max_tokens", {"include_usage": True, "continuous_usage_stats": True}),
        ("local", "max_tokens", {"include_usage": True}),
    ],
)
async def test_request_body_follows_backend_kind(
    make_client, serve, collect, sent_bodies, kind, limit_key, options
):
    serve("vllm-n2-continuous-usage.sse")

    await collect(make_client(kind=kind), n=2, seed=40)

    [body] = sent_bodies()
    [other_key] = {"max_tokens", "max_completion_tokens"} - {limit_key}
    assert body[limit_key] == 64 and other_key not in body
    assert body["stream_options"] == options
    assert (body["n"], body["seed"], body["temperature"], body["top_p"]) == (2, 40, 0.9, 0.95)
    assert body["stream"] is True


async def test_stream_without_n_support_sends_one_call_per_variant(
    make_client, serve_by_seed, collect, sent_bodies, meta
):
    serve_by_seed({7: "llamacpp-n1-usage.sse", 8: "llamacpp-zh-tw.sse",
                   9: "llamacpp-finish-length.sse"})

    streamed = await collect(make_client(kind="local", supports_n=False), n=3)

    bodies = sent_bodies()
    assert sorted(b["seed"] for b in bodies) == [7, 8, 9]
    assert all("n" not in b for b in bodies)
    assert streamed.texts() == {0: _content(meta("llamacpp-n1-usage"))[0],
                                1: _content(meta("llamacpp-zh-tw"))[0],
                                2: "Just another day in the world of Apple"}
    assert sorted(r.variants for r in streamed.records) == [(0,), (1,), (2,)]


def test_plan_calls_splits_at_max_n(make_client):
    client = make_client(kind="vllm", max_n=2)

    assert client.plan_calls(5) == [range(0, 2), range(2, 4), range(4, 5)]


async def test_stream_split_at_max_n_offsets_indexes_and_seeds(
    make_client, serve_by_seed, collect, sent_bodies, meta
):
    serve_by_seed({7: "vllm-n2-continuous-usage.sse", 9: "vllm-n2-continuous-usage.sse",
                   11: "llamacpp-n1-usage.sse"})

    streamed = await collect(make_client(kind="vllm", max_n=2), n=5)

    assert sorted((b["seed"], b.get("n")) for b in sent_bodies()) == [(7, 2), (9, 2), (11, None)]
    pair = _content(meta("vllm-n2-continuous-usage"))
    single = _content(meta("llamacpp-n1-usage"))[0]
    assert streamed.texts() == {0: pair[0], 1: pair[1], 2: pair[0], 3: pair[1], 4: single}
    assert set(streamed.finish_reasons()) == {0, 1, 2, 3, 4}


_ONE_CHUNK = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
              b'"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],'
              b'"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}\n\n')


async def test_leaving_context_early_closes_upstream(make_client, hanging_server, chat):
    server = await hanging_server(_ONE_CHUNK)
    client = make_client(kind="vllm", base_url=server.base_url)

    async with asyncio.timeout(2):
        async with client.stream(chat()) as stream:
            async for event in stream.events():
                break

    assert event == TextDelta(0, "Hello")
    await asyncio.wait_for(server.closed.wait(), timeout=1)


async def test_leaving_context_early_bills_running_usage(make_client, hanging_server, chat):
    server = await hanging_server(_ONE_CHUNK)
    client = make_client(kind="vllm", base_url=server.base_url)

    async with client.stream(chat()) as stream:
        async for _ in stream.events():
            break

    [record] = stream.records
    assert record.usage == Usage(prompt_tokens=12, completion_tokens=3)
    assert record.ttft_ms is not None

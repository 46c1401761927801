"""The simulated backend, over real loopback HTTP: wire format, timing, faults, hang-ups."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

import inference.simulator as simulator
from inference.simulator import Simulator
from inference.simulator._profiles import PROFILES, Throttle, draw_pacing
from inference.simulator._text import (
    PostLimits,
    StockRef,
    compose_post,
    parse_prompt,
    text_units,
    tokenize,
)

PROMPT = ("請以「阿明」的身分，為 台積電（2330，TWSE，半導體業）寫一篇論壇貼文。\n"
          "格式：第一行只寫標題，不超過 18 個字，標題要提到「台積電」。第二行起是內文。\n"
          "長度：內文不超過 120 個字，寧可短一點。")
MESSAGES = [{"role": "system", "content": "你是散戶投資人。"}, {"role": "user", "content": PROMPT}]
SIMPLIFIED = ("这个", "软件", "发布", "数据", "关注", "营收", "观察", "风险", "资金", "讨论")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=11) as running:
        yield running


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def sdk(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="x", max_retries=0)
    yield client
    await client.close()


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "instant", "messages": MESSAGES, "seed": 7, **overrides}


async def events(response: httpx.Response) -> list[Any]:
    """Every `data:` payload of an SSE response, JSON-decoded except `[DONE]`."""
    found: list[Any] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            found.append(data if data == "[DONE]" else json.loads(data))
    return found


async def stream_events(http: httpx.AsyncClient, headers: dict[str, str] | None = None,
                        **overrides: Any) -> list[Any]:
    async with http.stream("POST", "/chat/completions", headers=headers,
                           json=body(stream=True, **overrides)) as response:
        assert response.status_code == 200
        return await events(response)


def texts_of(chunks: list[Any]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"] if isinstance(chunk, dict) else ():
            texts[choice["index"]] = texts.get(choice["index"], "") + (
                choice["delta"].get("content") or "")
    return texts


async def stats(sim: Simulator) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(sim.base_url.removesuffix("/v1") + "/sim/stats")
    return response.json()


async def test_stream_n3_parses_with_openai_sdk(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="instant", messages=MESSAGES, n=3, seed=7, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True})
    texts: dict[int, str] = {}
    usage = None
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
        usage = chunk.usage or usage

    assert sorted(texts) == [0, 1, 2] and len(set(texts.values())) == 3
    assert all("台積電" in text.splitlines()[0] for text in texts.values())
    assert usage is not None
    assert usage.completion_tokens == sum(len(tokenize(t)) for t in texts.values())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_stream_interleaves_choices_one_per_chunk(http: httpx.AsyncClient) -> None:
    chunks = await stream_events(http, n=3, stream_options={"include_usage": True})

    *body_chunks, usage_chunk, done = chunks
    assert done == "[DONE]" and usage_chunk["choices"] == []
    assert all(len(c["choices"]) == 1 for c in body_chunks)
    order = [c["choices"][0]["index"] for c in body_chunks]
    assert order[:3] == [0, 1, 2] and order != sorted(order)
    roles = [c["choices"][0]["index"] for c in body_chunks if "role" in c["choices"][0]["delta"]]
    assert roles == [0, 1, 2]
    assert sorted(c["choices"][0]["finish_reason"] for c in body_chunks
                  if c["choices"][0]["finish_reason"]) == ["stop"] * 3


async def test_stream_usage_counts_prompt_once_and_sums_choices(http: httpx.AsyncClient) -> None:
    chunks = await stream_events(http, n=2, stream_options={"include_usage": True})

    usage = chunks[-2]["usage"]
    lengths = [len(tokenize(t)) for t in texts_of(chunks).values()]
    assert usage["completion_tokens"] == sum(lengths)
    assert usage["total_tokens"] == usage["prompt_tokens"] + sum(lengths)
    assert all(c["usage"] is None for c in chunks[:-2])


async def test_stream_continuous_usage_runs_per_choice(http: httpx.AsyncClient) -> None:
    chunks = await stream_events(
        http, n=2, stream_options={"include_usage": True, "continuous_usage_stats": True})

    running = {0: 0, 1: 0}
    for chunk in chunks[:-2]:
        choice = chunk["choices"][0]
        running[choice["index"]] += len(tokenize(choice["delta"].get("content") or ""))
        assert chunk["usage"]["completion_tokens"] == running[choice["index"]]
    assert chunks[-2]["usage"]["completion_tokens"] == sum(running.values())


async def test_stream_without_usage_option_has_no_usage_key(http: httpx.AsyncClient) -> None:
    chunks = await stream_events(http)

    assert chunks[-1] == "[DONE]"
    assert all("usage" not in c for c in chunks[:-1])


async def test_max_tokens_gives_finish_reason_length(sdk: openai.AsyncOpenAI) -> None:
    reply = await sdk.chat.completions.create(
        model="instant", messages=MESSAGES, n=2, max_tokens=10)  # type: ignore[arg-type]

    assert [c.finish_reason for c in reply.choices] == ["length", "length"]
    assert all(len(tokenize(c.message.content or "")) == 10 for c in reply.choices)
    assert reply.usage is not None and reply.usage.completion_tokens == 20


async def test_max_completion_tokens_caps_stream(http: httpx.AsyncClient) -> None:
    chunks = await stream_events(http, max_completion_tokens=5)

    assert len(tokenize(texts_of(chunks)[0])) == 5
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


async def test_non_streaming_answers_n_choices_with_usage(http: httpx.AsyncClient) -> None:
    response = await http.post("/chat/completions", json=body(n=3))

    reply = response.json()
    assert reply["object"] == "chat.completion" and len(reply["choices"]) == 3
    total = sum(len(tokenize(c["message"]["content"])) for c in reply["choices"])
    assert reply["usage"]["completion_tokens"] == total


async def test_same_seed_gives_same_texts(http: httpx.AsyncClient) -> None:
    first = await http.post("/chat/completions", json=body(n=2, seed=42))
    second = await http.post("/chat/completions", json=body(n=2, seed=42))

    assert first.json()["choices"] == second.json()["choices"]


async def test_some_variants_carry_simplified_words(http: httpx.AsyncClient) -> None:
    reply = (await http.post("/chat/completions", json=body(n=10, seed=0))).json()

    texts = [c["message"]["content"] for c in reply["choices"]]
    flagged = [t for t in texts if any(word in t for word in SIMPLIFIED)]
    assert 1 <= len(flagged) < len(texts)


async def test_instant_profile_is_fast(http: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    chunks = await stream_events(http, n=5)

    assert len(texts_of(chunks)) == 5
    assert time.perf_counter() - started < 1.0


async def test_gpt_4o_mini_time_to_first_token_is_about_half_a_second() -> None:
    ttfts = []
    async with Simulator(seed=5) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        for _ in range(3):
            started = time.perf_counter()
            async with http.stream("POST", "/chat/completions",
                                   json=body(model="gpt-4o-mini", stream=True)) as response:
                async for line in response.aiter_lines():
                    if '"content":"' in line and '"content":""' not in line:
                        ttfts.append(time.perf_counter() - started)
                        break

    assert 0.2 <= sorted(ttfts)[1] <= 1.5


async def test_vllm_profile_streams_many_concurrent_requests() -> None:
    async with Simulator(seed=3) as sim, httpx.AsyncClient(
            base_url=sim.base_url, timeout=30,
            limits=httpx.Limits(max_connections=200)) as http:
        started = time.perf_counter()
        results = await asyncio.gather(*(
            stream_events(http, model="vllm-h200", max_tokens=40, seed=i) for i in range(120)))
        elapsed = time.perf_counter() - started

    assert all(r[-1] == "[DONE]" for r in results)
    assert elapsed < 15


def test_throttle_shares_aggregate_cap() -> None:
    throttle = Throttle(6000.0)

    with throttle.holding(100):
        assert throttle.rate(150.0) == 60.0
    assert throttle.rate(150.0) == 150.0


def test_gpt_4o_mini_pacing_has_slow_tail() -> None:
    import random

    rng = random.Random(0)
    draws = [draw_pacing(PROFILES["gpt-4o-mini"], rng) for _ in range(2000)]

    slow = [d for d in draws if d.slow]
    assert 0.02 < len(slow) / len(draws) < 0.08
    assert all(d.tokens_per_s <= 30 for d in slow)


@pytest.mark.parametrize(("fault", "status", "code"), [
    ("429", 429, "rate_limit_exceeded"),
    ("quota", 429, "insufficient_quota"),
    ("500", 500, None),
])
async def test_upfront_fault_answers_openai_error(
    http: httpx.AsyncClient, fault: str, status: int, code: str | None
) -> None:
    response = await http.post("/chat/completions", json=body(stream=True),
                               headers={"X-Sim-Fault": fault})

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert ("retry-after" in response.headers) == (fault == "429")


async def test_rate_limit_fault_raises_rate_limit_error_in_sdk(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(
            model="instant", messages=MESSAGES,  # type: ignore[arg-type]
            extra_headers={"X-Sim-Fault": "429"})

    assert caught.value.response.headers["retry-after"] == "1"


async def test_fault_query_parameter_works(http: httpx.AsyncClient) -> None:
    response = await http.post("/chat/completions", params={"fault": "500"}, json=body())

    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


async def test_midstream_fault_sends_error_event_then_ends(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="instant", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        extra_headers={"X-Sim-Fault": "midstream", "X-Sim-Fault-After": "6"})
    text = ""
    with pytest.raises(openai.APIError, match="simulated server"):
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)

    assert 6 <= len(tokenize(text)) <= 12  # the fault waits for the piece that reaches 6


async def test_truncate_fault_ends_without_finish_or_done(http: httpx.AsyncClient) -> None:
    chunks = await stream_events(http, headers={"X-Sim-Fault": "truncate"})

    assert "[DONE]" not in chunks
    assert texts_of(chunks)[0]
    assert not any(c["choices"][0]["finish_reason"] for c in chunks)


async def test_stall_fault_goes_silent_then_finishes(http: httpx.AsyncClient) -> None:
    gaps: list[float] = []
    lines: list[str] = []
    headers = {"X-Sim-Fault": "stall", "X-Sim-Stall-S": "0.6"}
    async with http.stream("POST", "/chat/completions", headers=headers,
                           json=body(stream=True)) as response:
        last = time.perf_counter()
        async for line in response.aiter_lines():
            if line:
                gaps.append(time.perf_counter() - last)
                lines.append(line)
                last = time.perf_counter()

    assert max(gaps) >= 0.5
    assert lines[-1] == "data: [DONE]"


async def test_fail_first_fails_k_requests_then_succeeds(
    sim: Simulator, sdk: openai.AsyncOpenAI
) -> None:
    before = (await stats(sim))["faults"].get("429", 0)
    headers = {"X-Sim-Fail-First": "2", "X-Sim-Key": uuid.uuid4().hex,
               "X-Sim-Retry-After": "0.01"}

    reply = await sdk.with_options(max_retries=3).chat.completions.create(
        model="instant", messages=MESSAGES, extra_headers=headers)  # type: ignore[arg-type]

    assert reply.choices[0].finish_reason == "stop"
    assert (await stats(sim))["faults"]["429"] == before + 2


async def test_unknown_fault_is_a_bad_request(http: httpx.AsyncClient) -> None:
    response = await http.post("/chat/completions", json=body(),
                               headers={"X-Sim-Fault": "explode"})

    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


async def test_bad_n_is_a_bad_request(http: httpx.AsyncClient) -> None:
    response = await http.post("/chat/completions", json=body(n=0))

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "n"


async def test_client_disconnect_stops_the_stream_within_a_second() -> None:
    async with Simulator(profile="gpt-4o-mini", seed=1) as sim, httpx.AsyncClient(
            base_url=sim.base_url, timeout=10) as http:
        async with http.stream("POST", "/chat/completions",
                               json=body(model="gpt-4o-mini", stream=True)) as response:
            lines = response.aiter_lines()  # held, so leaving the loop does not close it
            async for line in lines:
                if '"content":"' in line and '"content":""' not in line:
                    break
            assert (await stats(sim))["active_streams"] == 1
        closed = time.perf_counter()
        while (await stats(sim))["active_streams"] and time.perf_counter() - closed < 1.0:
            await asyncio.sleep(0.02)
        counters = await stats(sim)

    assert counters["active_streams"] == 0
    assert counters["disconnected"] == 1 and counters["completed"] == 0


async def test_models_health_and_stats_answer(http: httpx.AsyncClient, sim: Simulator) -> None:
    models = (await http.get("/models")).json()
    health = await http.get(sim.base_url.removesuffix("/v1") + "/health")

    assert {m["id"] for m in models["data"]} >= {"instant", "gpt-4o-mini", "vllm-h200"}
    assert health.json() == {"status": "ok"}
    assert set(await stats(sim)) >= {"requests", "active_streams", "completed",
                                     "disconnected", "faults", "tokens_out"}


def test_parse_prompt_finds_stock_and_limits() -> None:
    stock, limits = parse_prompt(PROMPT)

    assert stock == StockRef("台積電", "2330")
    assert limits == PostLimits(body_chars=120, title_chars=18)


def test_parse_prompt_knows_a_bare_code_or_name() -> None:
    assert parse_prompt("聊聊 2454 吧，不超過 2000 個字")[0] == StockRef("聯發科", "2454")
    assert parse_prompt("聊聊鴻海。")[0] == StockRef("鴻海", "2317")


def test_compose_post_fills_70_to_95_percent_with_short_title() -> None:
    for seed in range(50):
        title, body_text = compose_post(StockRef("台積電", "2330"), PostLimits(300, 20),
                                        seed).split("\n", 1)
        assert "台積電" in title and len(title) <= 20
        assert 0.7 * 300 <= text_units(body_text) <= 0.95 * 300


def test_compose_post_has_no_numbers_besides_the_code() -> None:
    text = compose_post(StockRef("台積電", "2330"), PostLimits(2000, 20), 1)

    assert set(filter(str.isdigit, text.replace("2330", ""))) == set()


def test_unknown_profile_or_fault_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        Simulator(profile="gpt-5")
    with pytest.raises(ValueError, match="unknown fault"):
        Simulator(fault_rates={"boom": 0.1})


def test_main_rejects_a_malformed_fault_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulator.main(["--fault", "429"]) == 2
    assert "KIND=RATE" in capsys.readouterr().err


def test_exported_members() -> None:
    assert set(simulator.__all__) == {"FAULT_KINDS", "PROFILES", "Profile", "SimConfig",
                                      "Simulator", "main", "make_config", "run"}

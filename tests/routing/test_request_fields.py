"""The request bodies each backend kind receives hold only fields that kind documents."""

from __future__ import annotations

import json

import pytest
from pytest_httpx import HTTPXMock

from config import Backend, model_catalog
from config._settings import Retries, Timeouts
from inference import ChatRequest, LLMClient, Message
from tests.llm_wire import sse_body

# OpenAI Chat Completions request fields (platform.openai.com API reference, "Create chat
# completion"), the subset a streaming text call may use.
OPENAI_FIELDS = {
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "n",
    "max_completion_tokens", "max_tokens", "seed", "stop", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "response_format",
    "service_tier", "store", "metadata", "parallel_tool_calls", "tools", "tool_choice",
}
OPENAI_STREAM_OPTIONS = {"include_usage", "include_obfuscation"}
# vLLM's OpenAI-compatible server: the OpenAI fields plus its extra sampling parameters
# (docs.vllm.ai, "OpenAI-Compatible Server", extra parameters for the Chat API).
VLLM_EXTRA = {"top_k", "min_p", "repetition_penalty", "use_beam_search", "length_penalty",
              "stop_token_ids", "include_stop_str_in_output", "ignore_eos", "min_tokens",
              "skip_special_tokens", "spaces_between_special_tokens", "guided_json",
              "guided_regex", "guided_choice", "structured_outputs", "priority"}
VLLM_STREAM_OPTIONS = OPENAI_STREAM_OPTIONS | {"continuous_usage_stats"}

URL = "http://llm.test/v1/chat/completions"


def _client(kind: str, model: str) -> LLMClient:
    backend = Backend(kind=kind, base_url="http://llm.test/v1", model=model)  # type: ignore[arg-type]
    return LLMClient(name=kind, backend=backend, base_url=backend.base_url, api_key="k",
                     card=model_catalog().card(model), timeouts=Timeouts(),
                     retries=Retries(attempts=1))


async def _sent_body(kind: str, model: str, httpx_mock: HTTPXMock) -> dict:
    httpx_mock.add_response(url=URL, content=sse_body(["台積電\n內文"] * 3),
                            headers={"content-type": "text/event-stream"})
    request = ChatRequest(messages=(Message("system", "s"), Message("user", "u")), n=3,
                          max_tokens=64, temperature=0.9, top_p=0.95, seed=11)
    client = _client(kind, model)
    async with client.stream(request) as stream:
        [event async for event in stream.events()]
    await client.aclose()
    return json.loads(httpx_mock.get_requests()[0].content)


async def test_openai_body_uses_only_documented_fields(httpx_mock: HTTPXMock) -> None:
    body = await _sent_body("openai", "gpt-4o-mini", httpx_mock)
    assert set(body) <= OPENAI_FIELDS
    assert set(body["stream_options"]) <= OPENAI_STREAM_OPTIONS
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    assert body["n"] == 3 and body["temperature"] == 0.9 and body["top_p"] == 0.95


async def test_vllm_body_pins_sampling_and_asks_for_continuous_usage(
    httpx_mock: HTTPXMock,
) -> None:
    body = await _sent_body("vllm", "Qwen/Qwen2.5-7B-Instruct", httpx_mock)
    assert set(body) <= OPENAI_FIELDS | VLLM_EXTRA
    assert set(body["stream_options"]) <= VLLM_STREAM_OPTIONS
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert (body["top_k"], body["min_p"], body["repetition_penalty"]) == (-1, 0.0, 1.0)
    assert body["n"] == 3 and body["max_tokens"] == 64


@pytest.mark.parametrize(("kind", "model"), [("openai", "gpt-4o-mini"),
                                             ("local", "smollm2-135m-instruct"),
                                             ("other", "some-model")])
async def test_vllm_only_fields_go_only_to_vllm(
    httpx_mock: HTTPXMock, kind: str, model: str
) -> None:
    body = await _sent_body(kind, model, httpx_mock)
    assert not set(body) & VLLM_EXTRA
    assert "continuous_usage_stats" not in body.get("stream_options", {})

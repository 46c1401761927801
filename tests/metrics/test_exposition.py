"""/metrics on the server and on a worker's port: what a generation records, and lint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_sse import aconnect_sse
from prometheus_client import CONTENT_TYPE_LATEST

from config import load_settings
from inference.simulator import Simulator
from posting import metrics
from tests.metrics.conftest import POST, PRICED_MODEL, check_metrics, metrics_env, total
from tests.server.conftest import AUTH, serving

STAGES = ("resolve", "prompt", "queue_wait", "first_token", "generate", "check", "persist",
          "total")


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(profile="instant", seed=3) as simulator:
        yield simulator


@pytest.fixture
async def api(server_env: dict[str, str], sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(load_settings(metrics_env(server_env, sim))) as url:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
            yield client


async def _scrape(api: httpx.AsyncClient) -> str:
    reply = await api.get("/metrics", headers={"Authorization": ""})
    assert reply.status_code == 200, reply.text
    # Exactly prometheus-client's: Prometheus 3 refuses a parameter given twice.
    assert reply.headers["content-type"] == CONTENT_TYPE_LATEST
    return reply.text


async def _stream(api: httpx.AsyncClient, body: dict) -> str:
    async with aconnect_sse(api, "POST", "/v1/posts", json=body) as source:
        async for event in source.aiter_sse():
            if event.event == "post.done":
                return json.loads(event.data)["post"]["status"]
    return "no post.done"


async def test_one_generation_records_every_stage_tokens_and_cost(
    api: httpx.AsyncClient,
) -> None:
    before = await _scrape(api)
    assert (await api.post("/v1/posts", json=POST)).status_code == 201
    after = await _scrape(api)
    mine = {"backend": "sim", "model": PRICED_MODEL, "posting_type": "interaction"}
    for stage in STAGES:
        name = "autoposter_stage_duration_seconds_count"
        grew = total(after, name, stage=stage, **mine) - total(before, name, stage=stage, **mine)
        assert grew == 1, stage
    for name in ("autoposter_prompt_tokens_total", "autoposter_completion_tokens_total",
                 "autoposter_cost_usd_total"):
        assert total(after, name, kol="208", status="reported") > total(before, name, kol="208",
                                                                       status="reported"), name
    posts = "autoposter_posts_total"
    assert total(after, posts, status="draft") - total(before, posts, status="draft") == 1


async def test_failed_generation_counts_errors_retries_and_reason(api: httpx.AsyncClient) -> None:
    before = await _scrape(api)
    reply = await api.post("/v1/posts", json={**POST, "backend": "simfail"})
    assert reply.status_code == 502
    after = await _scrape(api)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("autoposter_posts_total", status="failed", reason="upstream_error") == 1
    assert grew("autoposter_llm_errors_total", backend="simfail", reason="upstream_error") == 1
    assert grew("autoposter_llm_retries_total", backend="simfail", reason="upstream_error") == 3
    assert grew("autoposter_variants_total", backend="simfail", status="error") == 2


async def test_a_fallback_is_counted_against_the_backend_given_up(
    api: httpx.AsyncClient,
) -> None:
    before = await _scrape(api)
    reply = await api.post("/v1/posts", json={**POST, "backend": "simfallback"})
    assert reply.status_code == 201, reply.text
    after = await _scrape(api)
    name, labels = "autoposter_backend_fallbacks_total", {"backend": "simfallback"}
    assert total(after, name, **labels) - total(before, name, **labels) == 1
    assert total(after, name, reason="upstream_error") >= 1


async def test_sse_streams_are_counted_while_open(api: httpx.AsyncClient) -> None:
    statuses = await asyncio.gather(*(_stream(api, POST) for _ in range(3)))
    assert statuses == ["draft"] * 3
    assert total(await _scrape(api), "autoposter_sse_active_streams") == 0


async def test_a_model_named_in_a_request_cannot_mint_a_label(api: httpx.AsyncClient) -> None:
    await api.post("/v1/posts", json={**POST, "model": "made-up-model-123"})
    text = await _scrape(api)
    assert "made-up-model-123" not in text
    assert total(text, "autoposter_posts_total", model="other") >= 1


async def test_promtool_accepts_the_server_metrics(
    api: httpx.AsyncClient, promtool: str
) -> None:
    await api.post("/v1/posts", json=POST)
    await api.post("/v1/posts", json={**POST, "backend": "simfail"})
    await _stream(api, POST)
    check_metrics(promtool, await _scrape(api))


async def test_promtool_accepts_a_worker_endpoint(promtool: str) -> None:
    endpoint = metrics.serve_worker_metrics(port=0)
    try:
        metrics.record_batch_item("done")
        metrics.set_queue_depth(4)
        metrics.observe_job_wait(0.2)
        with metrics.job_in_progress():
            async with httpx.AsyncClient() as http:
                reply = await http.get(f"http://127.0.0.1:{endpoint.port}/metrics")
    finally:
        endpoint.close()
    assert total(reply.text, "autoposter_jobs_in_progress") == 1
    assert total(reply.text, "autoposter_queue_jobs") == 4
    check_metrics(promtool, reply.text)

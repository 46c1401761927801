"""GET /v1/batches/{id}/events agrees with the counts stored at the end."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest
from httpx_sse import aconnect_sse

from config import load_settings
from inference.simulator import Simulator
from tests.batches.batch_support import Workers, api_client, create, item_list
from tests.server.conftest import serving


async def _all_events(client: httpx.AsyncClient, batch_id: str) -> list[tuple[str, dict]]:
    seen = []
    async with aconnect_sse(client, "GET", f"/v1/batches/{batch_id}/events") as source:
        async for event in source.aiter_sse():
            if event.event != "message":  # heartbeats are comments
                seen.append((event.event, json.loads(event.data)))
    return seen


@pytest.mark.timeout(90)
async def test_event_stream_matches_the_final_counts(
    batch_env: dict[str, str], workers: Workers, simulator: Simulator
) -> None:
    env = {**batch_env, "AUTOPOSTER_BACKENDS__BROKE__KIND": "vllm",
           "AUTOPOSTER_BACKENDS__BROKE__BASE_URL": simulator.base_url,
           "AUTOPOSTER_BACKENDS__BROKE__MODEL": "vllm-h200",
           "AUTOPOSTER_BACKENDS__BROKE__HEADERS__X-SIM-FAULT": "quota"}
    body = {"items": item_list(7) + [{**item, "backend": "broke"} for item in item_list(3)]}
    workers.start(env, count=2)
    await workers.ready()
    async with serving(load_settings(env)) as url, api_client(url) as client:
        batch = await create(client, body)
        events = await asyncio.wait_for(_all_events(client, batch["batch_id"]), 60)
        view = (await client.get(f"/v1/batches/{batch['batch_id']}")).json()
    kinds = Counter(kind for kind, _ in events)
    finished = sorted(data["item_no"] for kind, data in events
                      if kind in ("item.done", "item.failed"))
    assert view["counts"]["done"] == 7 and view["counts"]["failed"] == 3
    assert kinds["item.done"] == view["counts"]["done"]
    assert kinds["item.failed"] == view["counts"]["failed"]
    assert kinds["item.started"] == 10 and kinds["batch.done"] == 1
    assert finished == list(range(10))
    assert events[-1] == ("batch.done", {"status": view["status"], "counts": view["counts"],
                                         "cost_usd": view["cost_usd"]})

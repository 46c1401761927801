"""Ids and paths never become labels: a thousand odd requests add no series."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable

import httpx

from config import load_settings
from inference.simulator import Simulator
from tests.metrics.conftest import POST, metrics_env
from tests.server.conftest import AUTH, serving


def _series(text: str) -> set[str]:
    """Every sample line's name and labels, without its value."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def _odd_requests(rng: random.Random) -> list[Callable[[httpx.AsyncClient], object]]:
    def one() -> Callable[[httpx.AsyncClient], object]:
        post_id = uuid.UUID(int=rng.getrandbits(128))
        kind = rng.randrange(6)
        if kind == 0:
            return lambda c: c.get(f"/v1/posts/{post_id}")
        if kind == 1:
            return lambda c: c.get(f"/v1/posts/{post_id}/events")
        if kind == 2:
            return lambda c: c.patch(f"/v1/posts/{post_id}", json={"status": "approved"})
        if kind == 3:
            return lambda c: c.get(f"/no/such/{post_id}/path-{rng.random()}")
        if kind == 4:
            return lambda c: c.get(f"/v1/batches/{post_id}", headers={"Authorization": "x"})
        return lambda c: c.get(f"/metrics/{post_id}")

    return [one() for _ in range(1000)]


async def test_random_ids_and_unknown_paths_add_no_series(server_env: dict[str, str]) -> None:
    async with Simulator(profile="instant", seed=11) as sim:
        settings = load_settings(metrics_env(server_env, sim))
        async with serving(settings) as url, httpx.AsyncClient(
            base_url=url, headers=AUTH, timeout=30, limits=httpx.Limits(max_connections=20),
        ) as client:
            assert (await client.post("/v1/posts", json=POST)).status_code == 201
            before = _series((await client.get("/metrics")).text)
            requests = _odd_requests(random.Random(1))
            for start in range(0, len(requests), 50):
                replies = await asyncio.gather(*(make(client) for make in
                                                 requests[start:start + 50]))
                assert all(reply.status_code < 500 for reply in replies)
            after = _series((await client.get("/metrics")).text)
    assert after == before

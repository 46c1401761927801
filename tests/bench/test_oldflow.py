"""The old-flow baseline, against the simulator's `instant` profile and the test database."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from bench import OldFlow
from bench._oldflow import CREATED_BY, MAX_TOKENS
from inference.simulator import Simulator
from posting import Facts, PostingService, build_messages

pytestmark = pytest.mark.timeout(60)


class Recording(httpx.AsyncHTTPTransport):
    """Notes each request's body and when it started and finished (body read)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[float, float, dict[str, Any]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await super().handle_async_request(request)
        await response.aread()
        self.calls.append((started, time.perf_counter(), json.loads(request.content)))
        return response


class Connections:
    """A `connect` that counts connections and keeps them, to check each was closed."""

    def __init__(self) -> None:
        self.opened: list[psycopg.AsyncConnection[Any]] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(*args, **kwargs)
        self.opened.append(conn)
        return conn


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(profile="instant", seed=5) as running:
        yield running


async def _run_old(service: PostingService, sim: Simulator, database_url: str,
                   transport: Recording, connections: Connections) -> Any:
    persona = await service.store.get_kol(208)
    assert persona is not None
    stock = service.stocks.resolve("2330")
    messages = build_messages(persona=persona, stock=stock, posting_type="analysis",
                              max_words=120, facts=Facts(),
                              title_max_chars=25)
    async with httpx.AsyncClient(transport=transport) as http:
        flow = OldFlow(base_url=sim.base_url, model="instant", backend="sim",
                       database_url=database_url, http_client=http, connect=connections)
        try:
            return await flow.run(kol=208, stock=stock, posting_type="analysis", max_words=120,
                                  messages=messages, title_max_chars=25, seed=3)
        finally:
            await flow.aclose()


async def test_old_flow_makes_six_sequential_calls_with_max_tokens_2000(
    service: PostingService, sim: Simulator, database_url: str
) -> None:
    transport = Recording()
    await _run_old(service, sim, database_url, transport, Connections())

    bodies = [body for _, _, body in transport.calls]
    assert len(bodies) == 6
    assert [body["max_tokens"] for body in bodies] == [MAX_TOKENS] * 6 == [2000] * 6
    assert not any(body.get("stream") for body in bodies)
    assert all(body.get("n", 1) == 1 for body in bodies)
    for (_, ended, _), (started, _, _) in zip(transport.calls, transport.calls[1:]):
        assert started >= ended, "a call began before the previous one had finished"


async def test_old_flow_opens_a_new_connection_for_every_db_request(
    service: PostingService, sim: Simulator, database_url: str
) -> None:
    connections = Connections()
    post = await _run_old(service, sim, database_url, Recording(), connections)

    # Read the KOL, store the base post, store five versions, mark it done.
    assert post.connections == len(connections.opened) == 8
    assert len({id(conn) for conn in connections.opened}) == 8
    assert all(conn.closed for conn in connections.opened)


async def test_old_flow_stores_a_draft_with_base_and_five_versions(
    service: PostingService, sim: Simulator, database_url: str
) -> None:
    post = await _run_old(service, sim, database_url, Recording(), Connections())

    with psycopg.connect(database_url) as conn:
        status, created_by = conn.execute("SELECT status, created_by FROM posts WHERE id = %s",
                                          (post.post_id,)).fetchone()
        variants = conn.execute("SELECT variant, body <> '' FROM post_variants WHERE"
                                " post_id = %s ORDER BY variant", (post.post_id,)).fetchall()
    assert (status, created_by) == ("draft", CREATED_BY)
    assert variants == [(n, True) for n in range(6)]
    assert 0 < post.first_text_s <= post.wall_s
    assert [c.max_tokens for c in post.calls] == [2000] * 6

"""Hedged calls: one backup request when the first token is late, first to deliver wins.

The scripted server holds each answer behind a gate the test opens, so which request
delivers first is decided by the test, not by timing; the only clock in play is the
hedge threshold itself, asserted as a lower bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import REGISTRY

from inference import LLMClient, spare_capacity
from tests.inference.conftest import Script, ScriptedServer, Streamed, chat_request
from tests.llm_wire import sse_body

pytestmark = [pytest.mark.timeout(15)]

HEDGE_S = 0.2
MODEL = "gpt-4o-mini"  # priced, so that a billed prompt costs something
Start = Callable[..., Awaitable[tuple[LLMClient, ScriptedServer]]]
PRIMARY_TEXT = "台積電先發\n先到的請求寫的。"
BACKUP_TEXT = "台積電後補\n後補的請求寫的。"


def _split(text: str) -> tuple[bytes, bytes]:
    """An SSE body cut after its first text chunk: (first token, the rest)."""
    frames = sse_body([text], prompt_tokens=77).split(b"\n\n")
    return frames[0] + b"\n\n", b"\n\n".join(frames[1:])


def _whole(text: str, gate: asyncio.Event | None = None) -> Script:
    return Script(tail=sse_body([text], prompt_tokens=77), gate=gate)


def _hedges(backend: str, status: str) -> float:
    value = REGISTRY.get_sample_value("autoposter_llm_hedges_total",
                                      {"backend": backend, "model": MODEL, "status": status})
    return value or 0.0


async def _stream(client: LLMClient, n: int = 1) -> Streamed:
    async with client.stream(chat_request(n)) as stream:
        events = [event async for event in stream.events()]
    return Streamed(events, stream.records)


@pytest.fixture
def hedging(make_client, scripted_server) -> Start:
    """A client hedging after HEDGE_S and a server answering with `scripts`. A client
    that never hedges makes one call first: the openai SDK's first request in a process
    spends ~0.25 s before it reaches the wire, longer than the threshold."""
    async def start(scripts: list[Script], **capabilities: object
                    ) -> tuple[LLMClient, ScriptedServer]:
        server = await scripted_server([_whole(PRIMARY_TEXT), *scripts])
        await _stream(make_client(kind="other", model=MODEL, base_url=server.base_url))
        server.forget()
        options = {"hedge_after_s": HEDGE_S, **capabilities}
        client = make_client(kind="other", model=MODEL, base_url=server.base_url, **options)
        return client, server
    return start


async def test_late_first_token_starts_one_identical_backup(hedging):
    client, server = await hedging([_whole(PRIMARY_TEXT, asyncio.Event()),
                                    Script(tail=sse_body([BACKUP_TEXT] * 3))])

    started = time.monotonic()
    await _stream(client, n=3)

    primary, backup = server.received
    assert backup.body == primary.body  # same messages, seed and n
    assert backup.body["n"] == 3 and backup.body["seed"] == 7
    assert backup.arrived - started >= HEDGE_S


async def test_backup_first_serves_the_call_and_closes_the_primary(hedging):
    before = _hedges("other", "won")
    client, server = await hedging([_whole(PRIMARY_TEXT, asyncio.Event()),
                                    _whole(BACKUP_TEXT)])

    streamed = await _stream(client)

    assert streamed.texts() == {0: BACKUP_TEXT}
    assert streamed.finish_reasons() == {0: "stop"} and streamed.failures() == {}
    await asyncio.wait_for(server.received[0].hung_up.wait(), 5)
    assert _hedges("other", "won") == before + 1


async def test_primary_first_serves_the_call_and_closes_the_backup(hedging):
    before = _hedges("other", "lost")
    primary_gate = asyncio.Event()
    client, server = await hedging([_whole(PRIMARY_TEXT, primary_gate),
                                    _whole(BACKUP_TEXT, asyncio.Event())])

    async def release_primary_once_backup_is_sent() -> None:
        await server.requests(2)
        primary_gate.set()

    streamed, _ = await asyncio.gather(_stream(client), release_primary_once_backup_is_sent())

    assert streamed.texts() == {0: PRIMARY_TEXT}
    await asyncio.wait_for(server.received[1].hung_up.wait(), 5)
    assert _hedges("other", "lost") == before + 1


async def test_usage_is_recorded_for_winner_and_loser(hedging):
    client, server = await hedging([_whole(PRIMARY_TEXT, asyncio.Event()),
                                    _whole(BACKUP_TEXT)])

    streamed = await _stream(client)

    loser, winner = streamed.records
    assert winner.variants == (0,) and winner.error is None
    assert winner.usage.prompt_tokens == 77 and not winner.usage.estimated
    assert winner.usage.completion_tokens == len(BACKUP_TEXT)
    assert loser.variants == ()  # it served no variant, but it was sent and is billed
    assert loser.usage.estimated and loser.usage.prompt_tokens > 0
    assert loser.cost_usd > 0


async def test_loser_without_a_response_yet_is_billed_its_prompt(hedging):
    silent = Script(tail=sse_body([PRIMARY_TEXT]), gate=asyncio.Event(), silent=True)
    client, server = await hedging([silent, _whole(BACKUP_TEXT)])

    streamed = await _stream(client)

    loser, winner = streamed.records
    assert streamed.texts() == {0: BACKUP_TEXT}
    assert loser.usage.estimated and loser.usage.prompt_tokens > 0
    assert loser.usage.completion_tokens == 0
    await asyncio.wait_for(server.received[0].hung_up.wait(), 5)


async def test_no_hedge_once_a_token_has_streamed(hedging):
    first, rest = _split(PRIMARY_TEXT)
    gate = asyncio.Event()
    client, server = await hedging([Script(head=first, tail=rest, gate=gate),
                                    _whole(BACKUP_TEXT)])

    async def stall_past_the_threshold() -> None:
        await asyncio.sleep(HEDGE_S * 3)
        gate.set()

    streamed, _ = await asyncio.gather(_stream(client), stall_past_the_threshold())

    assert len(server.received) == 1
    assert streamed.texts() == {0: PRIMARY_TEXT}
    assert len(streamed.records) == 1


async def test_no_hedge_when_off(hedging):
    gate = asyncio.Event()
    client, server = await hedging([_whole(PRIMARY_TEXT, gate), _whole(BACKUP_TEXT)],
                                   hedge_after_s=0)

    async def late_first_token() -> None:
        await asyncio.sleep(HEDGE_S * 3)
        gate.set()

    streamed, _ = await asyncio.gather(_stream(client), late_first_token())

    assert len(server.received) == 1
    assert streamed.texts() == {0: PRIMARY_TEXT}


async def test_no_hedge_without_a_free_slot(hedging):
    before = _hedges("other", "skipped")
    gate = asyncio.Event()
    client, server = await hedging([_whole(PRIMARY_TEXT, gate), _whole(BACKUP_TEXT)],
                                   max_concurrency=1)

    async def late_first_token() -> None:
        await asyncio.sleep(HEDGE_S * 3)
        gate.set()

    streamed, _ = await asyncio.gather(_stream(client), late_first_token())

    assert len(server.received) == 1
    assert streamed.texts() == {0: PRIMARY_TEXT}
    assert _hedges("other", "skipped") == before + 1


async def test_backup_holds_a_lent_shared_slot_until_it_ends(hedging):
    taken: list[str] = []
    released: list[str] = []

    async def take(backend: str):
        taken.append(backend)

        async def release() -> None:
            released.append(backend)
        return release

    client, _ = await hedging([_whole(PRIMARY_TEXT, asyncio.Event()), _whole(BACKUP_TEXT)])
    with spare_capacity(take):
        await _stream(client)

    assert taken == released == ["other"]


async def test_no_hedge_when_the_lent_shared_limit_is_full(hedging):
    async def full(backend: str) -> None:
        return None

    gate = asyncio.Event()
    client, server = await hedging([_whole(PRIMARY_TEXT, gate), _whole(BACKUP_TEXT)])

    async def late_first_token() -> None:
        await asyncio.sleep(HEDGE_S * 3)
        gate.set()

    with spare_capacity(full):
        streamed, _ = await asyncio.gather(_stream(client), late_first_token())

    assert len(server.received) == 1
    assert streamed.texts() == {0: PRIMARY_TEXT}


def test_hedging_defaults_on_for_openai_only():
    from config import load_settings

    backends = load_settings({}).backends

    assert backends["openai"].hedge_delay_s == 2.0
    assert backends["vllm"].hedge_delay_s == 0.0
    assert backends["local"].hedge_delay_s == 0.0

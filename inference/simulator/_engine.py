"""Decoding in simulated time: choices emit their tokens at the pace a profile allows.

Each choice is a sequence earning tokens at its speed (slowed by the profile's aggregate
cap when many sequences decode at once); every pause, the tokens earned meanwhile go
out as one piece, so a slow event loop sends bigger pieces rather than falling behind.
The pieces of n choices interleave, one choice per piece, as vLLM streams them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import NamedTuple

import msgspec

from inference.simulator._profiles import Pacing, Profile, Throttle, draw_pacing
from inference.simulator._state import SimState
from inference.simulator._text import compose_post, estimate_prompt_tokens, parse_prompt, tokenize
from inference.simulator._wire import ChatCompletionRequest

_MAX_STEP_S = 0.25  # longest pause credited at once, so a stall is not repaid in a burst
_INSTANT_PIECE_TOKENS = 4

ROLE, TEXT, FINISH = 0, 1, 2


class Event(NamedTuple):
    kind: int
    index: int
    text: str = ""
    tokens: int = 0
    finish_reason: str | None = None


class ChoicePlan(msgspec.Struct, frozen=True):
    tokens: list[str]
    finish_reason: str


class Job(msgspec.Struct, kw_only=True):
    """One chat-completion request, planned: its texts, timing and bookkeeping."""

    id: str
    created: int
    model: str
    profile: Profile
    pacing: Pacing
    speeds: list[float]
    plans: list[ChoicePlan]
    prompt_tokens: int
    include_usage: bool
    continuous_usage: bool

    @property
    def total_tokens(self) -> int:
        return sum(len(plan.tokens) for plan in self.plans)


def plan_job(request: ChatCompletionRequest, state: SimState) -> Job:
    """Write every choice's text up front and draw the request's timing."""
    profile = state.profile_for(request.model)
    seed = request.seed if request.seed is not None else state.rng.randrange(2**31)
    stock, limits = parse_prompt(request.prompt_text())
    plans = [_plan_choice(tokenize(compose_post(stock, limits, seed + index)), request.token_cap)
             for index in range(request.n)]
    pacing = draw_pacing(profile, state.rng)
    options = request.stream_options
    include_usage = bool(request.stream and options and options.include_usage)
    return Job(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=request.model or profile.name,
        profile=profile,
        pacing=pacing,
        speeds=[pacing.tokens_per_s * state.rng.uniform(0.9, 1.1) for _ in plans],
        plans=plans,
        prompt_tokens=estimate_prompt_tokens([m.text() for m in request.messages]),
        include_usage=include_usage,
        continuous_usage=include_usage and bool(options and options.continuous_usage_stats),
    )


def _plan_choice(tokens: list[str], cap: int | None) -> ChoicePlan:
    if cap is not None and len(tokens) > cap:
        return ChoicePlan(tokens[:cap], "length")
    return ChoicePlan(tokens, "stop")


async def decode(job: Job, throttle: Throttle) -> AsyncIterator[Event]:
    """A role event per choice after the first-token delay, then interleaved text, then
    a finish event per choice as each one runs out."""
    if job.pacing.ttft_s > 0:
        await asyncio.sleep(job.pacing.ttft_s)
    for index in range(len(job.plans)):
        yield Event(ROLE, index)
    pieces = _instant(job.plans) if job.pacing.instant else _timed(job, throttle)
    async for event in pieces:
        yield event


async def _instant(plans: list[ChoicePlan]) -> AsyncIterator[Event]:
    positions = [0] * len(plans)
    live = list(range(len(plans)))
    while live:
        for index in list(live):
            plan, start = plans[index], positions[index]
            piece = plan.tokens[start:start + _INSTANT_PIECE_TOKENS]
            positions[index] += len(piece)
            if piece:
                yield Event(TEXT, index, "".join(piece), len(piece))
            if positions[index] >= len(plan.tokens):
                live.remove(index)
                yield Event(FINISH, index, finish_reason=plan.finish_reason)
        await asyncio.sleep(0)  # let disconnects and other streams through


async def _timed(job: Job, throttle: Throttle) -> AsyncIterator[Event]:
    loop = asyncio.get_running_loop()
    plans = job.plans
    positions = [0] * len(plans)
    credit = [1.0] * len(plans)  # the first token is ready when the delay ends
    live = list(range(len(plans)))
    with throttle.holding(len(live)) as held:
        last = loop.time()
        while live:
            now = loop.time()
            step, last = min(now - last, _MAX_STEP_S), now
            wait = _MAX_STEP_S
            for index in list(live):
                rate = throttle.rate(job.speeds[index])
                credit[index] += step * rate
                take = int(credit[index])
                if take:
                    plan, start = plans[index], positions[index]
                    piece = plan.tokens[start:start + take]
                    positions[index] += len(piece)
                    credit[index] -= take
                    yield Event(TEXT, index, "".join(piece), len(piece))
                    if positions[index] >= len(plan.tokens):
                        live.remove(index)
                        throttle.release(held)
                        yield Event(FINISH, index, finish_reason=plan.finish_reason)
                        continue
                wait = min(wait, (1.0 - credit[index]) / rate)
            if live:
                await asyncio.sleep(max(wait, job.profile.tick_s))

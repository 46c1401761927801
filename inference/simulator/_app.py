"""The HTTP face of the simulator: an OpenAI-compatible Litestar app.

Routes: `POST /v1/chat/completions` (streaming or not), `GET /v1/models`, `GET /health`
and `GET /sim/stats` (the counters). A stream's body generator runs under Litestar's
disconnect listener, so a client that hangs up cancels it at its next pause; the
generator's `finally` then counts the disconnect and frees the request's share of the
profile's throughput.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream

from inference.simulator._engine import FINISH, ROLE, TEXT, Event, Job, decode, plan_job
from inference.simulator._faults import (
    UPFRONT_FAULTS,
    FaultHeaderError,
    FaultPlan,
    invalid_request,
    midstream_error,
    plan_fault,
    upfront_error,
)
from inference.simulator._profiles import PROFILES
from inference.simulator._state import SimState
from inference.simulator._wire import (
    DONE,
    ENCODER,
    REQUEST_DECODER,
    AssistantMessage,
    Choice,
    Chunk,
    ChunkChoice,
    Completion,
    Delta,
    ErrorEnvelope,
    ModelCard,
    ModelList,
    Usage,
    sse,
)

log = structlog.get_logger("inference.simulator")

_JSON = "application/json"
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def create_app(state: SimState) -> Litestar:
    """The simulator app, bound to one `SimState` (its settings and counters)."""

    @post("/v1/chat/completions", status_code=200)
    async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
        return await _handle(request, state)

    @get("/v1/models")
    async def models() -> ModelList:
        created = int(time.time())
        return ModelList([ModelCard(name, created) for name in PROFILES])

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/sim/stats")
    async def stats() -> dict[str, object]:
        return state.stats.snapshot()

    return Litestar(route_handlers=[chat_completions, models, health, stats],
                    openapi_config=None, logging_config=None, debug=False)


async def _handle(request: Request[Any, Any, Any], state: SimState) -> Response[Any]:
    state.stats.requests += 1
    try:
        body = REQUEST_DECODER.decode(await request.body())
    except msgspec.DecodeError as exc:
        return _error(400, invalid_request(f"invalid request body: {exc}"))
    problem = _check_request(body.n, body.token_cap, state.config.max_n)
    if problem:
        return _error(400, problem)
    try:
        fault = plan_fault(request.headers, request.query_params, defaults=state.config.faults,
                           attempts=state.attempts, rng=state.rng)
    except FaultHeaderError as exc:
        return _error(400, invalid_request(str(exc)))
    if fault.kind:
        state.stats.count_fault(fault.kind)
    if fault.kind in UPFRONT_FAULTS:
        status, headers, envelope = upfront_error(fault, body.model)
        log.info("sim.request", model=body.model, n=body.n, fault=fault.kind, status=status)
        return _error(status, envelope, headers)
    job = plan_job(body, state)
    if body.stream:
        closing = {"connection": "close"} if fault.kind in ("midstream", "truncate") else {}
        return Stream(_tracked_stream(job, fault, state), media_type="text/event-stream",
                      headers={**_SSE_HEADERS, **closing})
    return await _complete(job, fault, state)


def _check_request(n: int, cap: int | None, max_n: int) -> ErrorEnvelope | None:
    if not 1 <= n <= max_n:
        return invalid_request(f"n is {n}; it must be between 1 and {max_n}", "n")
    if cap is not None and cap < 1:
        return invalid_request(f"max_tokens is {cap}; it must be at least 1", "max_tokens")
    return None


def _error(status: int, envelope: ErrorEnvelope,
           headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(ENCODER.encode(envelope), status_code=status, media_type=_JSON,
                    headers=headers)


class _Strike:
    """When a mid-stream fault strikes: after `after_tokens` tokens (at most half the
    text, so short answers still fail), once."""

    def __init__(self, fault: FaultPlan, total_tokens: int) -> None:
        self.kind = fault.kind
        self.after = min(fault.after_tokens, max(total_tokens // 2, 1))
        self.sent = 0

    def due(self, tokens: int) -> str | None:
        self.sent += tokens
        if self.kind is None or self.sent < self.after:
            return None
        kind, self.kind = self.kind, None
        return kind


async def _tracked_stream(job: Job, fault: FaultPlan, state: SimState) -> AsyncIterator[bytes]:
    """The SSE body, with the request's lifecycle in the counters and one log line."""
    stats = state.stats
    stats.active_requests += 1
    stats.active_streams += 1
    started = time.perf_counter()
    outcome = "disconnected"
    try:
        async for frame in _sse_frames(job, fault, state):
            yield frame
        outcome = fault.kind or "completed"
    finally:
        stats.active_streams -= 1
        stats.active_requests -= 1
        if outcome == "disconnected":
            stats.disconnected += 1
        elif outcome in ("completed", "stall"):
            stats.completed += 1
        log.info("sim.request", id=job.id, profile=job.profile.name, n=len(job.plans),
                 stream=True, fault=fault.kind, outcome=outcome,
                 elapsed_s=round(time.perf_counter() - started, 3))


async def _sse_frames(job: Job, fault: FaultPlan, state: SimState) -> AsyncIterator[bytes]:
    running = [0] * len(job.plans)
    strike = _Strike(fault, job.total_tokens)
    async with aclosing(decode(job, state.throttles[job.profile.name])) as events:
        async for event in events:
            if event.kind == TEXT:
                running[event.index] += event.tokens
                state.stats.tokens_out += event.tokens
            yield sse(_chunk(job, event, running[event.index]))
            kind = strike.due(event.tokens) if event.kind == TEXT else None
            if kind == "stall":
                await asyncio.sleep(fault.stall_s)
            elif kind == "midstream":
                yield sse(midstream_error())
                return
            elif kind == "truncate":
                return
    if job.include_usage:
        completion = sum(running)
        usage = Usage(job.prompt_tokens, completion, job.prompt_tokens + completion)
        yield sse(Chunk(id=job.id, created=job.created, model=job.model, choices=[],
                        usage=usage))
    yield DONE


def _chunk(job: Job, event: Event, running: int) -> Chunk:
    if event.kind == ROLE:
        delta = Delta(role="assistant", content="")
    elif event.kind == FINISH:
        delta = Delta()
    else:
        delta = Delta(content=event.text)
    chunk = Chunk(id=job.id, created=job.created, model=job.model,
                  choices=[ChunkChoice(event.index, delta, finish_reason=event.finish_reason)])
    if job.continuous_usage:
        chunk.usage = Usage(job.prompt_tokens, running, job.prompt_tokens + running)
    elif job.include_usage:
        chunk.usage = None
    return chunk


async def _complete(job: Job, fault: FaultPlan, state: SimState) -> Response[Any]:
    """A non-streaming answer: the same decoding, waited out, then one JSON body."""
    stats = state.stats
    stats.active_requests += 1
    started = time.perf_counter()
    texts = [""] * len(job.plans)
    strike = _Strike(fault, job.total_tokens)
    outcome = fault.kind or "completed"
    try:
        async with aclosing(decode(job, state.throttles[job.profile.name])) as events:
            async for event in events:
                texts[event.index] += event.text
                stats.tokens_out += event.tokens
                kind = strike.due(event.tokens) if event.kind == TEXT else None
                if kind == "stall":
                    await asyncio.sleep(fault.stall_s)
                elif kind == "midstream":
                    return _error(500, midstream_error())
    finally:
        stats.active_requests -= 1
        log.info("sim.request", id=job.id, profile=job.profile.name, n=len(job.plans),
                 stream=False, fault=fault.kind, outcome=outcome,
                 elapsed_s=round(time.perf_counter() - started, 3))
    body = ENCODER.encode(_completion(job, texts))
    if fault.kind == "truncate":
        return Response(body[: len(body) // 2], media_type=_JSON)  # invalid JSON on purpose
    stats.completed += 1
    return Response(body, media_type=_JSON)


def _completion(job: Job, texts: list[str]) -> Completion:
    choices = [Choice(index, AssistantMessage(text), plan.finish_reason)
               for index, (text, plan) in enumerate(zip(texts, job.plans, strict=True))]
    completion = job.total_tokens
    return Completion(id=job.id, created=job.created, model=job.model, choices=choices,
                      usage=Usage(job.prompt_tokens, completion, job.prompt_tokens + completion))

"""Server-sent events for a post: live from its run, or replayed from the database.

Every event has a growing numeric `id` and one JSON object in `data`; a comment goes
out as a heartbeat when nothing else has for `heartbeat_s`. Responses are never
compressed and carry `X-Accel-Buffering: no`, so the first token is not held back by a
proxy.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import msgspec
import structlog
from litestar.response import ServerSentEvent, ServerSentEventMessage

from posting import (
    PostCreated,
    PostDone,
    PostError,
    PostEvent,
    PostSelected,
    PostView,
    Store,
    VariantDone,
    VariantView,
)
from server._metrics import counted
from server._runs import Run

log = structlog.get_logger("server.sse")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_encoder = msgspec.json.Encoder()


def message(event_id: int, event: PostEvent) -> ServerSentEventMessage:
    data = _encoder.encode(msgspec.structs.asdict(event)).decode()
    tag = type(event).__struct_config__.tag
    return ServerSentEventMessage(data=data, event=str(tag), id=event_id)


def heartbeat() -> ServerSentEventMessage:
    return ServerSentEventMessage(data=None, comment="keepalive")


class EventStream(ServerSentEvent):
    """An SSE response that keeps `text/event-stream` even from a JSON route handler.

    POST /v1/posts answers JSON or SSE depending on `Accept`; Litestar would otherwise
    stamp the handler's JSON media type onto the stream.
    """

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = None
        return super().to_asgi_response(*args, **kwargs)


def response(stream: AsyncGenerator[ServerSentEventMessage, None]) -> ServerSentEvent:
    return EventStream(counted(stream), headers=SSE_HEADERS)


async def live(
    run: Run, *, after: int, heartbeat_s: float, cancel_on_disconnect: bool
) -> AsyncIterator[ServerSentEventMessage]:
    """Follow a run. If the client leaves, the run goes on unless told to cancel."""
    finished = False
    try:
        async for item in run.follow(after=after, heartbeat_s=heartbeat_s):
            if item is None:
                yield heartbeat()
            else:
                yield message(*item)
        finished = True
        if not run.done:  # the generation task died without a post.done
            yield message(len(run.events) + 1, _crash_event(run))
    finally:
        if not finished and not run.done:
            log.info("sse.client_left", post_id=str(run.post_id),
                     action="cancel" if cancel_on_disconnect else "continue")
            if cancel_on_disconnect:
                run.cancel()  # the pipeline stores it as cancelled, shielded


def _crash_event(run: Run) -> PostError:
    error = run.task.exception() if run.task and not run.task.cancelled() else None
    return PostError("internal_error", f"the generation stopped: {error!r}")


def replay_events(post: PostView, variants: list[VariantView]) -> list[PostEvent]:
    """The events of a finished post, rebuilt from what was stored."""
    events: list[PostEvent] = [PostCreated(post.post_id)]
    for v in variants:
        events.append(VariantDone(variant=v.variant, title=v.title, body=v.body,
                                  checks=v.checks, score=v.score, usage=None,
                                  finish_reason=v.finish_reason, error=v.error))
    if post.selected.variant is not None:
        events.append(PostSelected(post.selected.variant))
    if post.status in ("failed", "cancelled"):
        events.append(PostError(post.status, post.failure_reason or post.status))
    events.append(PostDone(post))
    return events


async def stored(
    store: Store, post_id: uuid.UUID, *, after: int, heartbeat_s: float, wait_s: float
) -> AsyncIterator[ServerSentEventMessage]:
    """Replay a post from the database, waiting (with heartbeats) while it is generating
    in another process, for at most `wait_s`."""
    deadline = time.monotonic() + wait_s
    last_beat = time.monotonic()
    while True:
        post = await store.get_post(post_id)
        if post is None:
            return
        if post.status != "generating":
            break
        if time.monotonic() > deadline:
            yield message(after + 1, PostError("timeout", "the post is still generating"))
            return
        if time.monotonic() - last_beat >= heartbeat_s:
            last_beat = time.monotonic()
            yield heartbeat()
        await asyncio.sleep(0.25)
    events = replay_events(post, variants=await store.variants(post_id))
    if after >= len(events):
        # The client followed the live run, whose ids count every delta too, past the
        # rebuilt sequence: it still gets the outcome, numbered after what it saw.
        outcome = [e for e in events if isinstance(e, (PostError, PostDone))]
        for number, event in enumerate(outcome, start=after + 1):
            yield message(number, event)
        return
    for number, event in enumerate(events, start=1):
        if number > after:
            yield message(number, event)

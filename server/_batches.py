"""Batches over HTTP: create (202), read progress, follow events over SSE, cancel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.response import ServerSentEventMessage

from posting import (
    BatchQueue,
    Batches,
    BatchView,
    InvalidRequest,
    Plan,
    PostingService,
    PostRequest,
    expand,
    longest_first,
)
from server import _sse
from server._generate import PostCreate
from server._problems import Problem


class BatchCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Either explicit `items` (each like a post request) or a `plan`."""

    items: list[PostCreate] | None = None
    plan: Plan | None = None
    # Batch-level routing for items that name no backend of their own.
    backend: str | None = None
    speed_mode: bool = False


class BatchesNeedRedis(Problem):
    def __init__(self) -> None:
        super().__init__(503, "batches_unavailable",
                         "batches run on workers: set REDIS_URL for the server and workers")


def _need(queue: BatchQueue | None) -> BatchQueue:
    if queue is None:
        raise BatchesNeedRedis()
    return queue


class BatchController(Controller):
    path = "/v1/batches"
    tags = ["batches"]

    @post("/", status_code=202, summary="Create a batch; its items run on the workers")
    async def create(self, request: Request, data: JSONBody[BatchCreate],
                     batches: NamedDependency[Batches],
                     queue: NamedDependency[BatchQueue | None]) -> Response[BatchView]:
        jobs = _need(queue)
        actor = str(request.user)
        if (data.items is None) == (data.plan is None):
            raise InvalidRequest("items", "give either items or plan, not both or neither")
        if data.plan is not None:
            requests = expand(data.plan)
            spec: dict[str, Any] = {"plan": msgspec.to_builtins(data.plan)}
        else:
            requests = [_request(item, data) for item in data.items or []]
            spec = {"items": len(requests)}
        view = await batches.create(requests, spec=spec, actor=actor, plan=data.plan)
        await jobs.enqueue(uuid.UUID(view.batch_id), longest_first(requests))
        return Response(view, status_code=202,
                        headers={"Location": f"/v1/batches/{view.batch_id}"})

    @get("/{batch_id:uuid}", summary="Counts by state, ETA, tokens and cost so far")
    async def read(self, batch_id: FromPath[uuid.UUID],
                   batches: NamedDependency[Batches]) -> BatchView:
        return await batches.view(batch_id, with_items=True)

    @delete("/{batch_id:uuid}", status_code=202, summary="Cancel queued items, abort running")
    async def cancel(self, batch_id: FromPath[uuid.UUID],
                     batches: NamedDependency[Batches],
                     queue: NamedDependency[BatchQueue | None]) -> Response[BatchView]:
        running = await batches.cancel(batch_id)
        if queue is not None:
            await queue.abort(running)
        return Response(await batches.view(batch_id), status_code=202)

    @get("/{batch_id:uuid}/events", summary="item.started, item.done, item.failed, batch.done")
    async def events(
        self,
        batch_id: FromPath[uuid.UUID],
        batches: NamedDependency[Batches],
        queue: NamedDependency[BatchQueue | None],
        service: NamedDependency[PostingService],
        last_event_id: Annotated[str, HeaderParameter(name="Last-Event-ID")] = "0",
    ) -> Any:
        await batches.view(batch_id)  # 404 for an unknown batch
        jobs = _need(queue)
        heartbeat_s = service.settings.server.heartbeat_s
        return _sse.response(_follow(jobs, batch_id, last_event_id, heartbeat_s))


async def _follow(queue: BatchQueue, batch_id: uuid.UUID, after: str,
                  heartbeat_s: float) -> AsyncIterator[ServerSentEventMessage]:
    """Read the batch's Redis stream from `after` until batch.done."""
    while True:
        events = await queue.events(batch_id, after=after, block_ms=int(heartbeat_s * 1000))
        if not events:
            yield _sse.heartbeat()
            continue
        for event_id, kind, data in events:
            after = event_id
            yield ServerSentEventMessage(data=msgspec.json.encode(data).decode(), event=kind,
                                         id=event_id)
            if kind == "batch.done":
                return


def _request(item: PostCreate, batch: BatchCreate) -> PostRequest:
    request = item.to_request(actor="")
    if request.backend is None:
        request.backend = batch.backend
    request.speed_mode = request.speed_mode or batch.speed_mode
    return request

"""POST /v1/posts (JSON or SSE) and GET /v1/posts/{id}/events (attach, resume, replay)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar.di import NamedDependency
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody

from posting import Facts, PostingService, PostRequest, PostView
from server import _sse
from server._problems import Problem
from server._runs import Runs


class PostCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Ask for a post. `Accept: text/event-stream` streams it as it is written."""

    stock: str
    kol: int
    posting_type: str
    max_words: int
    variants: int = 5
    backend: str | None = None
    model: str | None = None
    speed_mode: bool = False
    facts: Facts = msgspec.field(default_factory=Facts)
    on_disconnect: Literal["continue", "cancel"] = "continue"

    def to_request(self, actor: str) -> PostRequest:
        fields = msgspec.structs.asdict(self)
        fields.pop("on_disconnect")
        return PostRequest(**fields, actor=actor)


def _wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def _failure_status(post: PostView) -> int:
    reason = post.failure_reason or ""
    if reason.startswith("timeout"):
        return 504
    return 503 if post.status == "cancelled" else 502


class GenerateController(Controller):
    path = "/v1/posts"
    tags = ["posts"]

    @post("/", status_code=201, summary="Generate a post with variants",
          responses={})
    async def create(
        self,
        request: Request,
        data: JSONBody[PostCreate],
        service: NamedDependency[PostingService],
        runs: NamedDependency[Runs],
    ) -> Any:
        prepared = await service.pipeline.prepare(data.to_request(str(request.user)))
        run = runs.start(prepared)
        settings = service.settings.server
        if _wants_stream(request):
            return _sse.response(_sse.live(
                run, after=0, heartbeat_s=settings.heartbeat_s,
                cancel_on_disconnect=data.on_disconnect == "cancel",
            ))
        view = await run.result()
        if view.status != "draft":
            raise Problem(_failure_status(view), view.status,
                          view.failure_reason or view.status,
                          extra={"post_id": view.post_id, "post": msgspec.to_builtins(view)})
        return Response(view, status_code=201,
                        headers={"Location": f"/v1/posts/{view.post_id}"})

    @get("/{post_id:uuid}/events", summary="Attach to, resume or replay a post's events")
    async def events(
        self,
        post_id: FromPath[uuid.UUID],
        service: NamedDependency[PostingService],
        runs: NamedDependency[Runs],
        last_event_id: Annotated[int, HeaderParameter(name="Last-Event-ID", ge=0)] = 0,
    ) -> Any:
        settings = service.settings.server
        run = runs.get(post_id)
        if run is not None:
            return _sse.response(_sse.live(run, after=last_event_id,
                                           heartbeat_s=settings.heartbeat_s,
                                           cancel_on_disconnect=False))
        if await service.store.get_post(post_id) is None:
            raise Problem(404, "not_found", f"no post {post_id}", field="post_id")
        return _sse.response(_sse.stored(
            service.store, post_id, after=last_event_id, heartbeat_s=settings.heartbeat_s,
            wait_s=service.settings.timeouts.request_s + 30,
        ))

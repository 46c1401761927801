"""Review API: list, read, edit, approve or reject posts, and read their history."""

from __future__ import annotations

import uuid
from datetime import datetime

from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from posting import (
    Change,
    Page,
    PostChange,
    PostFilters,
    PostingService,
    PostView,
    Review,
)


# Litestar 2 cannot merge two controllers on one path (each brings its own OPTIONS
# handler), and GenerateController owns POST /v1/posts. So the listing is a plain handler;
# register it after GenerateController, which then shares its route.
@get("/v1/posts", tags=["posts"],
     summary="Posts, newest first; pass next_cursor back as cursor for the next page;"
             " stock takes a code or a name")
async def list_posts(
    service: NamedDependency[PostingService],
    status: FromQuery[str | None] = None,
    kol: FromQuery[int | None] = None,
    stock: FromQuery[str | None] = None,
    batch: FromQuery[uuid.UUID | None] = None,
    created_after: FromQuery[datetime | None] = None,
    created_before: FromQuery[datetime | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: FromQuery[int] = 20,
) -> Page:
    # By code or name, as POST takes it: `台積電` and `２３３０` list the posts of 2330.
    code = service.stocks.resolve(stock).code if stock else None
    filters = PostFilters(status=status, kol=kol, stock=code, batch=batch,
                          created_after=created_after, created_before=created_before,
                          cursor=cursor, limit=limit)
    return await Review(service.pool).list_posts(filters)


class ReviewController(Controller):
    path = "/v1/posts"
    tags = ["posts"]

    @get("/{post_id:uuid}", summary="One post with alternatives, checks, usage, cost, timings")
    async def read(self, post_id: FromPath[uuid.UUID],
                   service: NamedDependency[PostingService]) -> PostView:
        return await Review(service.pool).get_post(post_id)

    @patch("/{post_id:uuid}", summary="Edit a draft, pick another variant, or move its status")
    async def update(self, request: Request, post_id: FromPath[uuid.UUID],
                     data: JSONBody[PostChange],
                     service: NamedDependency[PostingService]) -> PostView:
        return await Review(service.pool).update_post(post_id, data, actor=str(request.user))

    @get("/{post_id:uuid}/history", summary="Every change to a post: who, when, old and new")
    async def history(self, post_id: FromPath[uuid.UUID],
                      service: NamedDependency[PostingService]) -> list[Change]:
        return await Review(service.pool).history(post_id)

"""Review API: list, read and change posts."""

from __future__ import annotations

import uuid

from litestar.di import NamedDependency
from litestar import Controller, get
from litestar.params import FromPath, FromQuery

from posting import PostingService, PostView
from server._problems import Problem


class ReviewController(Controller):
    path = "/v1/posts"
    tags = ["posts"]

    @get("/{post_id:uuid}", summary="One post with alternatives, checks, usage, cost, timings")
    async def read(self, post_id: FromPath[uuid.UUID], service: NamedDependency[PostingService]) -> PostView:
        post = await service.store.get_post(post_id)
        if post is None:
            raise Problem(404, "not_found", f"no post {post_id}", field="post_id")
        return post

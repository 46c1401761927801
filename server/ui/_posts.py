"""The pages about single posts: the generate form, the filtered list, one post."""

from __future__ import annotations

import uuid
from typing import get_args
from urllib.parse import urlencode

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from config import POSTING_TYPES
from posting import (
    LENGTH_UNIT_PATTERN,
    InvalidRequest,
    Limits,
    PostFilters,
    PostingService,
    PostStatus,
    PostView,
    Review,
    StockDirectory,
)
from server.ui._render import page

STATUSES: tuple[str, ...] = get_args(PostStatus)
_FILTERS = ("status", "kol", "stock", "batch")
_DEFAULT_MAX_WORDS = 200


@get("/generate", include_in_schema=False)
async def generate_page(request: Request, service: NamedDependency[PostingService]) -> Template:
    settings = service.settings
    return page(request, "generate.html", title="generate.title", script="generate.js",
                kols=await service.store.list_kols(), posting_types=POSTING_TYPES,
                backends=sorted(settings.backends), max_words=_DEFAULT_MAX_WORDS,
                variants=settings.generation.variants)


@get("/posts", include_in_schema=False)
async def posts_page(request: Request, service: NamedDependency[PostingService]) -> Template:
    form = {name: request.query_params.get(name, "").strip() for name in _FILTERS}
    cursor = request.query_params.get("cursor") or None
    try:
        filters = _filters(form, cursor, service.stocks)
        listing = await Review(service.pool).list_posts(filters)
        error = None
    except InvalidRequest as exc:
        listing, error = None, f"{exc.field}: {exc.message}"
    next_url = None
    if listing is not None and listing.next_cursor:
        next_url = "/ui/posts?" + urlencode({**form, "cursor": listing.next_cursor})
    return page(request, "posts.html", title="posts.title", form=form, error=error,
                posts=listing.items if listing else [], next_url=next_url,
                statuses=STATUSES, kols=await service.store.list_kols())


def _filters(form: dict[str, str], cursor: str | None, stocks: StockDirectory) -> PostFilters:
    """The list's filters from the form's text; raises InvalidRequest naming the field."""
    filters = PostFilters(status=form["status"] or None, cursor=cursor)
    if form["kol"]:
        if not form["kol"].isdigit():
            raise InvalidRequest("kol", f"a KOL serial is a number, not {form['kol']!r}")
        filters.kol = int(form["kol"])
    if form["stock"]:
        filters.stock = stocks.resolve(form["stock"]).code
    if form["batch"]:
        try:
            filters.batch = uuid.UUID(form["batch"])
        except ValueError:
            raise InvalidRequest("batch", f"not a batch id: {form['batch']!r}") from None
    return filters


@get("/posts/{post_id:uuid}", include_in_schema=False)
async def post_page(request: Request, post_id: FromPath[uuid.UUID],
                    service: NamedDependency[PostingService]) -> Template:
    review = Review(service.pool)
    post = await review.get_post(post_id)
    variants = await service.store.variants(post_id)
    return page(request, "post.html", title="post.title", script="post.js", post=post,
                variants=variants, history=await review.history(post_id),
                data={"post_id": post.post_id, "status": post.status,
                      "rules": _edit_rules(post, service),
                      "saved": msgspec.to_builtins(post.selected)})


def _edit_rules(post: PostView, service: PostingService) -> dict[str, object]:
    """What the editor needs to run the length and title checks as the pipeline does."""
    generation = service.settings.generation
    limits = Limits(max_words=post.max_words, tolerance=generation.length_tolerance,
                    title_max_chars=generation.title_max_chars)
    return {"max_words": limits.max_words, "hard_max": limits.hard_max,
            "title_max_chars": limits.title_max_chars, "unit_pattern": LENGTH_UNIT_PATTERN,
            "stock_code": post.stock.code, "stock_name": post.stock.name}

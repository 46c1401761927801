"""The batch pages: the plan form with recent batches, and one batch followed live."""

from __future__ import annotations

import uuid
from typing import get_args, get_type_hints

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from config import POSTING_TYPES
from posting import Batches, BatchQueue, Plan, PostingService
from server.ui._render import page

ASSIGNMENTS: tuple[str, ...] = get_args(get_type_hints(Plan)["assignment"])
_RECENT = 20


@get("/batches", include_in_schema=False)
async def batches_page(request: Request, service: NamedDependency[PostingService],
                       batches: NamedDependency[Batches],
                       queue: NamedDependency[BatchQueue | None]) -> Template:
    settings = service.settings
    return page(request, "batches.html", title="batches.title", script="batches.js",
                recent=await batches.recent(limit=_RECENT), kols=await service.store.list_kols(),
                posting_types=POSTING_TYPES, assignments=ASSIGNMENTS,
                backends=sorted(settings.backends), variants=settings.generation.variants,
                max_items=settings.batches.max_items, workers=queue is not None)


@get("/batches/{batch_id:uuid}", include_in_schema=False)
async def batch_page(request: Request, batch_id: FromPath[uuid.UUID],
                     service: NamedDependency[PostingService],
                     batches: NamedDependency[Batches],
                     queue: NamedDependency[BatchQueue | None]) -> Template:
    view = await batches.view(batch_id, with_items=True)
    nicknames = {kol.serial: kol.nickname for kol in await service.store.list_kols()}
    return page(request, "batch.html", title="batch.title", script="batch.js", batch=view,
                data={"batch": msgspec.to_builtins(view), "kols": nicknames,
                      "live": queue is not None})

"""A batch's items: requests given one by one, or stocks × KOLs expanded from a plan."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import msgspec

from posting._errors import InvalidRequest
from posting._models import PostRequest


class Plan(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Stocks × KOLs expanded into items by an assignment rule."""

    stocks: list[str]
    kols: list[int]
    posting_type: str
    max_words: int
    assignment: Literal["one_kol_per_stock", "same_kol", "random_pool"] = "one_kol_per_stock"
    variants: int = 5
    seed: int | None = None
    backend: str | None = None
    model: str | None = None
    speed_mode: bool = False



def expand(plan: Plan) -> list[PostRequest]:
    """One request per stock, with its KOL chosen by the plan's assignment."""
    if not plan.stocks:
        raise InvalidRequest("plan.stocks", "give at least one stock")
    if not plan.kols:
        raise InvalidRequest("plan.kols", "give at least one KOL serial")
    if plan.assignment == "same_kol" and len(set(plan.kols)) != 1:
        raise InvalidRequest("plan.kols", "same_kol takes exactly one KOL serial")
    chooser = random.Random(plan.seed)
    requests = []
    for index, stock in enumerate(plan.stocks):
        if plan.assignment == "random_pool":
            kol = chooser.choice(plan.kols)
        else:
            kol = plan.kols[index % len(plan.kols)]
        requests.append(PostRequest(
            stock=stock, kol=kol, posting_type=plan.posting_type, max_words=plan.max_words,
            variants=plan.variants, backend=plan.backend, model=plan.model,
            speed_mode=plan.speed_mode,
        ))
    return requests


def longest_first(requests: Sequence[PostRequest]) -> list[int]:
    """Item numbers in the order to start them: the longest posts first (LPT), so that a
    batch does not end waiting on a long item that started last. Ties keep their order.

    A post's variants stream together, so its time goes with its `max_words`. arq takes
    jobs by enqueue time, to the millisecond, then by job id, so items queued within the
    same millisecond may swap; the order holds at that grain."""
    return sorted(range(len(requests)), key=lambda item_no: -requests[item_no].max_words)


def item_error(index: int, exc: InvalidRequest, plan: Plan | None) -> InvalidRequest:
    if plan is None:
        return InvalidRequest(f"items[{index}].{exc.field}", exc.message)
    return InvalidRequest(_plan_field(index, exc.field, plan), exc.message)


def _plan_field(index: int, field: str, plan: Plan) -> str:
    """The plan's field behind item `index`'s: item N is plan.stocks[N]; its KOL and,
    unless the plan names one, its backend come from plan.kols."""
    if field == "stock":
        return f"plan.stocks[{index}]"
    if field == "backend" and plan.backend is None:
        return "plan.speed_mode" if plan.speed_mode else "plan.kols"
    return "plan.kols" if field == "kol" else f"plan.{field}"

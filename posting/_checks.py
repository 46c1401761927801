"""Checks on one variant, and the score that picks the selected post.

Each check is named, passes or fails, and says why; the score prefers variants that
pass every check and whose length sits near the target, so the selection is explained
by the stored checks rather than by a hidden model judgement.
"""

from __future__ import annotations

import math

import msgspec

from posting._stocks import Stock
from posting._text import Draft, text_length


class Check(msgspec.Struct, frozen=True):
    name: str
    passed: bool
    detail: str


class Limits(msgspec.Struct, kw_only=True, frozen=True):
    max_words: int
    tolerance: float
    title_max_chars: int

    @property
    def hard_max(self) -> int:
        # A hair of slack so that 200 * 1.15 is 230, not 229.99999999999997 rounded down.
        return math.floor(self.max_words * (1 + self.tolerance) + 1e-9)


# How much each failed check costs; a failed hard check rules a variant out for
# selection unless every variant failed it.
_WEIGHTS = {"not_empty": 100.0, "not_truncated": 40.0, "stock_named": 25.0,
            "length": 20.0, "title_length": 10.0}


def check_variant(
    draft: Draft, *, finish_reason: str | None, stock: Stock, limits: Limits
) -> list[Check]:
    body_len = text_length(draft.body)
    title_len = len(draft.title.strip())
    text = f"{draft.title}\n{draft.body}"
    named = any(token in text for token in (stock.code, stock.name))
    truncated = finish_reason != "stop"
    return [
        Check("not_empty", bool(draft.title and draft.body),
              "title and body present" if draft.title and draft.body else "title or body empty"),
        Check("not_truncated", not truncated,
              f"finish_reason={finish_reason or 'none'}"),
        Check("stock_named", named,
              f"mentions {stock.code} or {stock.name}" if named else "stock not named"),
        Check("length", 0 < body_len <= limits.hard_max,
              f"{body_len} of {limits.max_words} (allowed up to {limits.hard_max})"),
        Check("title_length", 0 < title_len <= limits.title_max_chars,
              f"{title_len} of {limits.title_max_chars} characters"),
    ]


def score(checks: list[Check], *, body_len: int, limits: Limits) -> float:
    """100 for a variant that passes everything and fills 60-100% of the length."""
    value = 100.0 - sum(_WEIGHTS[c.name] for c in checks if not c.passed)
    ratio = body_len / limits.max_words if limits.max_words else 0.0
    if ratio < 0.6:
        value -= (0.6 - ratio) * 25  # too thin: up to 15 off
    elif ratio > 1.0:
        value -= min((ratio - 1.0) * 50, 20)
    return round(value, 2)


def select(scores: list[float | None]) -> int | None:
    """Index of the best score; the earliest wins a tie. None when nothing was scored."""
    best = None
    for index, value in enumerate(scores):
        if value is not None and (best is None or value > scores[best]):
            best = index
    return best

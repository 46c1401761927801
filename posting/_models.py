"""The posting domain's request, its stored post as read back, and the live events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from posting._checks import Check
from posting._prompts import Facts

# Stage timings, in the order they happen; first_token is time to the first token.
STAGES = ("resolve", "prompt", "first_token", "generate", "check", "persist", "total")



class PostRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What an operator asks for. Validated before anything is stored."""

    stock: str
    kol: int
    posting_type: str
    max_words: int
    variants: int = 5
    backend: str | None = None
    model: str | None = None
    speed_mode: bool = False
    facts: Facts = msgspec.field(default_factory=Facts)
    actor: str | None = None  # who asked: an API key's name, or "cli"


class UsageView(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False


class VariantView(msgspec.Struct, kw_only=True):
    variant: int
    title: str
    body: str
    score: float | None
    checks: list[Check]
    finish_reason: str | None
    error: str | None = None
    tokens: int = 0


class Selected(msgspec.Struct, kw_only=True):
    variant: int | None
    title: str
    body: str


class KolRef(msgspec.Struct, kw_only=True):
    serial: int
    nickname: str


class StockRef(msgspec.Struct, kw_only=True):
    code: str
    name: str


PostStatus = Literal[
    "generating", "draft", "approved", "published", "rejected", "failed", "cancelled"
]


class PostView(msgspec.Struct, kw_only=True):
    """A post as stored: the selected text, the alternatives, and what it cost."""

    post_id: str
    status: PostStatus
    kol: KolRef
    stock: StockRef
    posting_type: str
    max_words: int
    backend: str
    model: str
    selected: Selected
    alternatives: list[VariantView]
    checks: list[Check]
    usage: UsageView
    cost_usd: float
    timings_ms: dict[str, float]
    failure_reason: str | None
    fallback_from: str | None = None  # the backend first chosen, when a fallback wrote it
    created_at: datetime
    updated_at: datetime


# Live events, in the order a generation emits them. The tag is the SSE event name.


class PostCreated(msgspec.Struct, tag="post.created"):
    post_id: str


class StageDone(msgspec.Struct, tag="stage"):
    name: str
    ms: float


class VariantDelta(msgspec.Struct, tag="variant.delta"):
    variant: int
    text: str


class VariantDone(msgspec.Struct, tag="variant.done"):
    variant: int
    title: str
    body: str
    checks: list[Check]
    score: float | None
    usage: UsageView | None
    finish_reason: str | None
    error: str | None = None


class PostSelected(msgspec.Struct, tag="post.selected"):
    variant: int


class PostDone(msgspec.Struct, tag="post.done"):
    post: PostView


class PostError(msgspec.Struct, tag="error"):
    code: str
    message: str


PostEvent = PostCreated | StageDone | VariantDelta | VariantDone | PostSelected | PostDone | PostError

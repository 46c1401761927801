"""What goes into a generation and what comes out of it, as msgspec Structs."""

from __future__ import annotations

import msgspec

from inference._errors import LLMError


class Message(msgspec.Struct, frozen=True):
    role: str
    content: str


class ChatRequest(msgspec.Struct, kw_only=True, frozen=True):
    """One prompt, asked for `n` variants. Sampling is always explicit."""

    messages: tuple[Message, ...]
    n: int
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None = None


class Usage(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False  # the backend reported nothing; counted by characters

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            estimated=self.estimated or other.estimated,
        )


class CallRecord(msgspec.Struct, kw_only=True):
    """One upstream HTTP request: what it cost and how long it took."""

    backend: str
    model: str
    variants: tuple[int, ...]
    usage: Usage
    cost_usd: float
    ttft_ms: float | None
    duration_ms: float
    attempts: int
    error: str | None = None
    queue_ms: float = 0.0  # waiting for one of the backend's concurrency slots


# Events yielded while streaming, in the order they happen.


class TextDelta(msgspec.Struct, frozen=True):
    variant: int
    text: str


class VariantFinished(msgspec.Struct, frozen=True):
    variant: int
    finish_reason: str  # "stop", "length", ...; "length" means truncated


class VariantFailed(msgspec.Struct, frozen=True):
    variant: int
    error: LLMError


class CallFinished(msgspec.Struct, frozen=True):
    record: CallRecord


StreamEvent = TextDelta | VariantFinished | VariantFailed | CallFinished

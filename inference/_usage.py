"""Per-call bookkeeping: texts, finish reasons, first-token time and token usage.

Backends report usage differently while streaming, and all three shapes are summed the
same way here:

* OpenAI: one chunk with empty `choices` carries the totals.
* llama.cpp: with n > 1, one such chunk per choice, each repeating the prompt count.
* vLLM with `continuous_usage_stats`: a running count for its choice on every chunk,
  then one final chunk with the sum.

So completion tokens are summed over the empty-choice chunks and the prompt is counted
once. When no final chunk came (a stream we cancelled), the last running counts are
used; when nothing at all was reported, characters are counted and the figure is
marked as estimated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from config import ModelCard
from inference._tokens import estimate_tokens
from inference._types import Message, StreamEvent, TextDelta, Usage, VariantFinished


class UsageTally:
    """One call's texts and usage. `on_gap` hears the seconds between two deltas of the
    same variant (inter-token latency)."""

    def __init__(self, variants: range, card: ModelCard, *, prompt: Sequence[Message],
                 on_gap: Callable[[float], None] | None = None) -> None:
        self._variants = variants
        self._card = card
        self._prompt_text = "\n".join(m.content for m in prompt)
        self._texts: dict[int, list[str]] = {v: [] for v in variants}
        self._finished: dict[int, str] = {}
        self._first_token_at: float | None = None
        self._last_delta_at: dict[int, float] = {}
        self._on_gap = on_gap
        self._final: list[Usage] = []
        self._running: dict[int, int] = {}
        self._running_prompt = 0
        self.opened = False  # no response, no bill

    def feed(self, chunk: object, offset: int) -> Iterator[StreamEvent]:
        """Record one ChatCompletionChunk; yield the events it carries."""
        choices = getattr(chunk, "choices", None) or []
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._take_usage(usage, [offset + c.index for c in choices])
        for choice in choices:
            variant = offset + choice.index
            if variant not in self._texts:
                continue  # a backend answering more choices than asked for
            text = choice.delta.content if choice.delta is not None else None
            if text:
                self._arrived(variant)
                self._texts[variant].append(text)
                yield TextDelta(variant, text)
            if choice.finish_reason and variant not in self._finished:
                self._finished[variant] = choice.finish_reason
                yield VariantFinished(variant, choice.finish_reason)

    def _arrived(self, variant: int) -> None:
        now = time.monotonic()
        if self._first_token_at is None:
            self._first_token_at = now
        last = self._last_delta_at.get(variant)
        if last is not None and self._on_gap is not None:
            self._on_gap(now - last)
        self._last_delta_at[variant] = now

    def _take_usage(self, usage: object, variants: list[int]) -> None:
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        details = getattr(usage, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        if not variants:
            self._final.append(Usage(prompt_tokens=prompt, completion_tokens=completion,
                                     cached_tokens=cached))
            return
        self._running_prompt = max(self._running_prompt, prompt)
        for variant in variants:
            self._running[variant] = completion

    def text(self, variant: int) -> str:
        return "".join(self._texts[variant])

    def unfinished(self) -> list[int]:
        return [v for v in self._variants if v not in self._finished]

    def ttft_ms(self, started: float) -> float | None:
        if self._first_token_at is None:
            return None
        return (self._first_token_at - started) * 1000

    @property
    def usage_source(self) -> str:
        """Where `usage()` comes from: final, running, estimated, or none (never opened)."""
        if not self.opened:
            return "none"
        if self._final:
            return "final"
        return "running" if self._running else "estimated"

    def usage(self) -> Usage:
        if not self.opened:
            return Usage()
        if self._final:
            return Usage(
                prompt_tokens=max(u.prompt_tokens for u in self._final),
                completion_tokens=sum(u.completion_tokens for u in self._final),
                cached_tokens=max(u.cached_tokens for u in self._final),
            )
        if self._running:
            return Usage(prompt_tokens=self._running_prompt,
                         completion_tokens=sum(self._running.values()))
        produced = "".join(self.text(v) for v in self._variants)
        return Usage(
            prompt_tokens=estimate_tokens(self._prompt_text, self._card),
            completion_tokens=estimate_tokens(produced, self._card),
            estimated=True,
        )

    def cost_usd(self) -> float:
        usage = self.usage()
        return self._card.cost_usd(prompt=usage.prompt_tokens, cached=usage.cached_tokens,
                                   completion=usage.completion_tokens)

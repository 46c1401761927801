"""Latency profiles: how long the first token takes and how fast the rest arrive.

A profile is plain data; add one to `PROFILES` and a request whose `model` names it
gets that behaviour. Each request draws its own `Pacing` from the profile, so time to
first token spreads around the median and a small share of requests run slow, as real
hosted APIs do. A profile with an aggregate cap shares that many tokens per second
among every sequence decoding at once, the way a continuously batching server slows
all its streams when it is busy.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec


class Profile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulated backend's timing; zero means "no delay" for every field."""

    name: str
    ttft_s: float = 0.0
    """Median seconds from request to first token."""
    ttft_spread: float = 0.0
    """Sigma of the log-normal spread around `ttft_s` (0.25 keeps 95% within ~0.6-1.6x)."""
    tokens_per_s: float = 0.0
    """Decode speed of one sequence (one choice); 0 streams everything at once."""
    tail_share: float = 0.0
    """Share of requests that run slow: first token and decoding both."""
    tail_slowdown: tuple[float, float] = (1.0, 1.0)
    """How much slower a slow request is, drawn uniformly from this range."""
    aggregate_tokens_per_s: float = 0.0
    """Cap on all sequences of this profile together; 0 means uncapped."""
    tick_s: float = 0.02
    """Shortest pause between chunks; tokens earned meanwhile ride in one chunk."""


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="instant"),
        Profile(name="gpt-4o-mini", ttft_s=0.5, ttft_spread=0.25, tokens_per_s=60.0,
                tail_share=0.05, tail_slowdown=(2.0, 4.0)),
        Profile(name="vllm-h200", ttft_s=0.05, ttft_spread=0.2, tokens_per_s=150.0,
                aggregate_tokens_per_s=6000.0, tick_s=0.01),
    )
}


class Pacing(msgspec.Struct, frozen=True):
    """The timing one request got: its first-token delay and per-sequence speed."""

    ttft_s: float
    tokens_per_s: float
    slow: bool = False

    @property
    def instant(self) -> bool:
        return self.tokens_per_s <= 0


def draw_pacing(profile: Profile, rng: random.Random) -> Pacing:
    """Draw one request's timing; the same `rng` state always gives the same draw."""
    if profile.tokens_per_s <= 0 and profile.ttft_s <= 0:
        return Pacing(0.0, 0.0)
    ttft = profile.ttft_s
    if profile.ttft_spread > 0:
        ttft *= min(max(rng.lognormvariate(0.0, profile.ttft_spread), 0.3), 3.0)
    slow = rng.random() < profile.tail_share
    factor = rng.uniform(*profile.tail_slowdown) if slow else 1.0
    return Pacing(ttft * factor, profile.tokens_per_s / factor, slow)


class Throttle:
    """Shares a profile's aggregate tokens/s among the sequences decoding at once.

    Lives on the server's event loop only, so plain integers need no lock.
    """

    def __init__(self, cap_tokens_per_s: float) -> None:
        self.cap = cap_tokens_per_s
        self.active = 0

    def rate(self, wanted: float) -> float:
        """The speed one sequence may decode at now, given everyone else decoding."""
        if self.cap <= 0 or self.active <= 0:
            return wanted
        return min(wanted, self.cap / self.active)

    @contextmanager
    def holding(self, sequences: int) -> Iterator[list[int]]:
        """Count `sequences` as active; the caller lowers `held[0]` as each one ends."""
        held = [sequences]
        self.active += sequences
        try:
            yield held
        finally:
            self.active -= held[0]

    def release(self, held: list[int]) -> None:
        """One sequence finished before the others: give its share back now."""
        if held[0] > 0:
            held[0] -= 1
            self.active -= 1

"""The simulator's settings, counters and shared random state: one object per server."""

from __future__ import annotations

import random

import msgspec

from inference.simulator._faults import FaultDefaults, check_rates
from inference.simulator._profiles import PROFILES, Profile, Throttle


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a simulator server behaves when a request does not say otherwise."""

    profile: str = "instant"
    """Latency profile for requests whose `model` names no profile."""
    faults: FaultDefaults = msgspec.field(default_factory=FaultDefaults)
    seed: int | None = None
    """Seeds timing draws, fault draws and the text of requests sent without a seed."""
    max_n: int = 16

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; "
                             f"choose one of {', '.join(PROFILES)}")
        check_rates(self.faults.rates)
        if self.max_n < 1:
            raise ValueError(f"max_n is {self.max_n}; it must be at least 1")


class Stats:
    """Counters read by `GET /sim/stats`; only the server's event loop writes them."""

    def __init__(self) -> None:
        self.requests = 0
        self.active_requests = 0
        self.active_streams = 0
        self.completed = 0
        self.disconnected = 0
        self.tokens_out = 0
        self.faults: dict[str, int] = {}

    def count_fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "active_requests": self.active_requests,
            "active_streams": self.active_streams,
            "completed": self.completed,
            "disconnected": self.disconnected,
            "faults": dict(self.faults),
            "tokens_out": self.tokens_out,
        }


class SimState:
    """Everything request handlers share: settings, counters, throttles, fault counters."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.stats = Stats()
        self.attempts: dict[str, int] = {}
        self.throttles = {name: Throttle(p.aggregate_tokens_per_s)
                          for name, p in PROFILES.items()}

    def profile_for(self, model: str) -> Profile:
        """The profile a request's `model` names, else the server's default."""
        return PROFILES.get(model) or PROFILES[self.config.profile]

"""Circuit breakers and health probes: which backends look able to answer right now.

A breaker opens after `circuit_failures` failed calls in a row and stays open for
`circuit_open_s`; then it lets requests through again (half-open), and the first
success closes it. A periodic probe of `GET /v1/models` feeds the same breaker, so a
backend that comes back is noticed without a user paying for the discovery.
"""

from __future__ import annotations

import time

import msgspec

from config._settings import Health

# Errors that say the backend, not the request, is in trouble.
BACKEND_FAULTS = frozenset({"upstream_error", "timeout", "backend_unavailable", "stream_broken"})


class Circuit(msgspec.Struct, kw_only=True):
    failures: int = 0
    opened_at: float | None = None
    last_probe: str = "never"

    def state(self, policy: Health, *, now: float | None = None) -> str:
        if self.opened_at is None:
            return "closed"
        now = time.monotonic() if now is None else now
        return "open" if now - self.opened_at < policy.circuit_open_s else "half-open"

    def allows(self, policy: Health) -> bool:
        return self.state(policy) != "open"

    def record(self, ok: bool, policy: Health) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= policy.circuit_failures:
            self.opened_at = time.monotonic()

"""Hedged calls: one backup request when a call's first token is late.

The tail-at-scale remedy for the slow few percent of a hosted API's requests. A call
whose first try has delivered nothing `hedge_after_s` after it was sent gets one
identical backup (the same body: messages, seed, `n`), if a concurrency slot is free
right away: the process's own and, for a batch worker, the one shared through Redis
that `spare_capacity` lends. Whichever request delivers first serves every variant of
the call; the other is cancelled at once, which closes its HTTP stream so the backend
stops generating. Nothing is hedged once anything reached a variant, a call gets at
most one backup, and a call that is already being retried (429, 5xx) gets none: the
backend is pushing back, and a copy would only add to its load.

Both requests are paid for. The loser keeps its own record, with the usage it reported
or, when it reported none, its prompt and any text counted by characters (estimated).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from inference._errors import LLMError
from inference._usage import UsageTally

Release = Callable[[], Awaitable[None]]
# Takes a slot of a limit shared beyond this process for the named backend, without
# waiting: the function that gives it back, or None when none is free.
SpareSlot = Callable[[str], Awaitable[Release | None]]

_SPARE: ContextVar[SpareSlot | None] = ContextVar("autoposter_hedge_spare", default=None)


@contextmanager
def spare_capacity(take: SpareSlot) -> Iterator[None]:
    """Make hedges started in this context also hold a slot from `take`; no slot there,
    no hedge. Calls started inside inherit it (their tasks copy the context)."""
    token = _SPARE.set(take)
    try:
        yield
    finally:
        _SPARE.reset(token)


def shared_slot() -> SpareSlot | None:
    return _SPARE.get()


class Leg:
    """One upstream request of a call: its first request, or the backup."""

    def __init__(self, role: str, tally: UsageTally) -> None:
        self.role = role  # "primary" or "backup"
        self.tally = tally
        self.attempts = [0]
        self.started = time.monotonic()
        self.error: LLMError | None = None
        self.task: asyncio.Task[None] | None = None
        self.release: Release | None = None  # a backup's slot, given back at the end


class Race:
    """The requests of one call and which of them serves it: the first to deliver."""

    def __init__(self) -> None:
        self.legs: list[Leg] = []
        self.winner: Leg | None = None
        self.changed = asyncio.Event()  # a leg delivered or ended

    @property
    def primary(self) -> Leg:
        return self.legs[0]

    @property
    def backup(self) -> Leg | None:
        return self.legs[1] if len(self.legs) > 1 else None

    def add(self, role: str, tally: UsageTally) -> Leg:
        leg = Leg(role, tally)
        self.legs.append(leg)
        return leg

    def claim(self, leg: Leg) -> bool:
        """True if `leg` serves the call: it is the first to deliver. The others are
        cancelled, and billed their prompt even if their response had not begun."""
        if self.winner is None:
            self.winner = leg
            self.changed.set()
            for other in self.legs:
                if other is not leg and other.task is not None:
                    other.tally.opened = other.tally.opened or other.attempts[0] > 0
                    other.task.cancel()
        return self.winner is leg

    def serving(self) -> Leg:
        """The leg whose variants the caller saw: the winner, else the primary."""
        return self.winner or self.primary

    def error(self) -> LLMError | None:
        """The call's error: the serving leg's; with no winner, the first leg's that has
        one (a failed backup does not hide why the primary failed)."""
        if self.winner is not None:
            return self.winner.error
        return next((leg.error for leg in self.legs if leg.error is not None), None)

    async def wait_undecided(self, delay_s: float) -> bool:
        """Wait up to `delay_s` after the primary was sent; True if by then it has neither
        delivered nor ended, and is still on its first try."""
        left = self.primary.started + delay_s - time.monotonic()
        if left > 0:
            try:
                async with asyncio.timeout(left):
                    await self.changed.wait()
            except TimeoutError:
                pass
        primary = self.primary
        return (self.winner is None and primary.task is not None and not primary.task.done()
                and primary.attempts[0] <= 1)

"""How many items may call a backend at once: the shells' limiters share one protocol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from inference import Release


class Limiter(Protocol):
    """Capacity of a backend, shared by whoever runs items."""

    def slot(self, backend: str, tokens: int) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def spare(self, backend: str) -> Release | None:
        """A slot taken only if one is free now (for a hedged request); its release."""
        ...


class LocalLimiter:
    """A semaphore per backend, for batches run inside one process."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._slots: dict[str, asyncio.Semaphore] = {}

    @contextlib.asynccontextmanager
    async def slot(self, backend: str, tokens: int) -> AsyncIterator[None]:
        async with self._semaphore(backend):
            yield

    async def spare(self, backend: str) -> Release | None:
        semaphore = self._semaphore(backend)
        if semaphore.locked():
            return None
        await semaphore.acquire()  # free and nobody queued: returns at once

        async def release() -> None:
            semaphore.release()

        return release

    def _semaphore(self, backend: str) -> asyncio.Semaphore:
        return self._slots.setdefault(backend, asyncio.Semaphore(self._concurrency))

"""Everything one process needs to generate and store posts, opened and closed together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from psycopg_pool import AsyncConnectionPool

from config import Settings, personas
from inference import Backends
from posting import _text as text
from posting._db import open_pool
from posting._metrics import watch_pool
from posting._pipeline import Pipeline
from posting._stocks import StockDirectory
from posting._store import Store


class PostingService:
    """The shared core of the CLI, the server and the workers."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: AsyncConnectionPool,
        backends: Backends,
        stocks: StockDirectory,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.store = Store(pool)
        self.backends = backends
        self.stocks = stocks
        self.pipeline = Pipeline(
            settings=settings, store=self.store, backends=backends, stocks=stocks
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, *, http_client: httpx.AsyncClient | None = None
    ) -> AsyncIterator[PostingService]:
        """Open the pool (starting the embedded database if needed) and the backends."""
        stocks = await asyncio.to_thread(StockDirectory.load)
        await asyncio.to_thread(text.warm_up)
        pool = await open_pool(settings, data_dir=settings.data_path())
        try:
            await Store(pool).seed_kols(personas())
            backends = Backends(settings, data_dir=settings.data_path(), http_client=http_client)
            try:
                async with watch_pool(pool):
                    yield cls(settings=settings, pool=pool, backends=backends, stocks=stocks)
            finally:
                await backends.aclose()
        finally:
            await pool.close()

"""The Litestar application: built by a factory, resources opened once in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from config import Settings, configure_logging, load_settings
from posting import BatchQueue, Batches, LocalLimiter, PostingService
from posting._queue import connect
from server._auth import ApiKeyMiddleware
from server._batches import BatchController
from server._catalog import CatalogController
from server._generate import GenerateController
from server._health import healthz, readyz
from server._keys import KeyStore, parse_setting
from server._metrics import process_lifespan, prometheus_metrics
from server._problems import HANDLERS
from server._review import ReviewController, list_posts
from server._runs import Runs
from server.ui import UI_PATHS, ReviewPages

# Open without a key: health checks, the OpenAPI schema, metrics, and the review pages,
# which check their own login session. All of /v1 needs a key (or that session).
_PUBLIC = [r"^/healthz$", r"^/readyz$", r"^/schema", r"^/metrics", *UI_PATHS]


def create_app(settings: Settings | None = None, *,
               http_client: httpx.AsyncClient | None = None) -> Litestar:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with PostingService.open(settings, http_client=http_client) as service:
            keys = KeyStore(service.pool)
            for name, key in parse_setting(settings.server.api_keys):
                await keys.add(name, key)
            if settings.backends[settings.backend].kind == "local":
                await service.backends.client(settings.backend)  # start the model now
            runs = Runs(service.pipeline, keep_s=settings.server.resume_ttl_s)
            redis = await connect(settings) if settings.redis_url else None
            queue = BatchQueue(redis) if redis is not None else None
            # The server creates, reads and cancels batches; workers run the items.
            batches = Batches(pool=service.pool, pipeline=service.pipeline, settings=settings,
                              limiter=LocalLimiter(1))
            if queue is not None:
                batches = Batches(pool=service.pool, pipeline=service.pipeline,
                                  settings=settings, limiter=LocalLimiter(1),
                                  publish=queue.publish)
            app.state.update(service=service, api_keys=keys, runs=runs, queue=queue,
                             batches=batches)
            probes = asyncio.create_task(service.backends.probe_forever(), name="probes")
            try:
                yield
            finally:
                probes.cancel()
                await runs.drain(settings.server.shutdown_grace_s)
                if redis is not None:
                    await redis.aclose()

    return Litestar(
        # list_posts shares /v1/posts with GenerateController's POST, so it comes after it.
        route_handlers=[GenerateController, list_posts, ReviewController, CatalogController,
                        BatchController, healthz, readyz, prometheus_metrics],
        lifespan=[process_lifespan, lifespan],
        dependencies={
            "service": Provide(_service, sync_to_thread=False),
            "runs": Provide(_runs, sync_to_thread=False),
            "batches": Provide(_batches, sync_to_thread=False),
            "queue": Provide(_queue, sync_to_thread=False),
        },
        middleware=[DefineMiddleware(ApiKeyMiddleware, exclude=_PUBLIC)],
        plugins=[ReviewPages(settings)],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=settings.server.max_body_bytes,
        # Litestar's default config would replace the root handler with a plain-text one;
        # configure_logging's JSON lines already cover Litestar's records.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="Forum AutoPoster",
            version="0.1.0",
            components=Components(security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer"),
            }),
            security=[{"apiKey": []}],
        ),
        debug=False,
    )


def _service(state: State) -> PostingService:
    return state.service


def _runs(state: State) -> Runs:
    return state.runs


def _batches(state: State) -> Batches:
    return state.batches


def _queue(state: State) -> BatchQueue | None:
    return state.queue


def serve_app() -> Litestar:
    """The factory `autoposter serve` hands to uvicorn, in every worker process."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)

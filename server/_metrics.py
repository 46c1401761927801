"""GET /metrics for Prometheus, and the server's own figure: SSE streams open now.

In multiprocess mode (`autoposter serve --workers N`) any process answers a scrape for
all of them; see `posting.metrics`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from litestar import Litestar, Response, get
from prometheus_client import Gauge

from posting import metrics

T = TypeVar("T")

SSE_STREAMS = Gauge(
    "autoposter_sse_active_streams", "Server-sent event streams open to clients.",
    multiprocess_mode="livesum",
)


async def counted(stream: AsyncGenerator[T, None]) -> AsyncIterator[T]:
    """`stream`, counted as an open SSE stream from its first pull until it ends.

    Closing this generator closes `stream` at once, so its own cleanup (cancelling a run
    whose client left) does not wait for the garbage collector.
    """
    with SSE_STREAMS.track_inprogress():
        try:
            async for item in stream:
                yield item
        finally:
            await stream.aclose()


@get("/metrics", summary="Prometheus metrics", include_in_schema=False, sync_to_thread=True)
def prometheus_metrics() -> Response[bytes]:
    body, content_type = metrics.exposition()
    # Given as a header: a text/ media type would get a second charset from Litestar,
    # which Prometheus 3 refuses.
    return Response(body, headers={"Content-Type": content_type})


@asynccontextmanager
async def process_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Outermost lifespan: once the process has drained, its live gauges stop counting."""
    try:
        yield
    finally:
        metrics.process_exiting()

"""The arq worker: runs batch items through the same pipeline as the server.

Everything a job needs is opened once in `startup` (database pool, backends, Redis
limiter) and closed in `shutdown`. Items whose worker died are found by `reconcile`,
at start and every 20 s, and enqueued again under a fresh job id.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import msgspec
import structlog
from arq import cron, func

from config import Settings, configure_logging, load_settings
from posting import BatchQueue, Batches, PostingService, RedisLimiter
from posting._queue import JOB_NAME

log = structlog.get_logger("workers.worker")


def batch_settings(settings: Settings) -> Settings:
    """Workers try harder to open a stream: a batch must ride out rate limits."""
    retries = msgspec.structs.replace(settings.retries,
                                      attempts=settings.batches.retry_attempts)
    return msgspec.structs.replace(settings, retries=retries)


async def startup(ctx: dict[str, Any]) -> None:
    settings = batch_settings(ctx.get("settings") or load_settings())
    configure_logging(settings.log_level)
    opener = PostingService.open(settings)
    service = await opener.__aenter__()
    queue = BatchQueue(ctx["redis"])
    ctx.update(
        settings=settings,
        service_opener=opener,
        service=service,
        queue=queue,
        worker_name=f"{socket.gethostname()}:{os.getpid()}",
        batches=Batches(pool=service.pool, pipeline=service.pipeline, settings=settings,
                        limiter=RedisLimiter(ctx["redis"], settings), publish=queue.publish),
    )
    log.info("worker.started", worker=ctx["worker_name"])
    await reconcile(ctx)


async def shutdown(ctx: dict[str, Any]) -> None:
    opener = ctx.get("service_opener")
    if opener is not None:
        await opener.__aexit__(None, None, None)
    log.info("worker.stopped", worker=ctx.get("worker_name"))


async def run_batch_item(ctx: dict[str, Any], batch_id: str, item_no: int) -> str:
    batches: Batches = ctx["batches"]
    return await batches.run_item(uuid.UUID(batch_id), item_no, worker=ctx["worker_name"],
                                  job_id=ctx.get("job_id"))


async def reconcile(ctx: dict[str, Any]) -> int:
    """Queue again every item whose heartbeat stopped (its worker died)."""
    batches: Batches = ctx["batches"]
    queue: BatchQueue = ctx["queue"]
    stale = await batches.reconcile()
    for batch_id, item_no, attempts in stale:
        await queue.enqueue(batch_id, [item_no], attempt=attempts)
    return len(stale)


class WorkerSettings:
    """For `arq workers.WorkerSettings`; `autoposter worker` adds the settings-driven parts
    (Redis URL, max_jobs, poll delay, timeouts) as overrides."""

    functions = [func(run_batch_item, name=JOB_NAME, max_tries=1000)]
    cron_jobs = [cron(reconcile, second={0, 20, 40}, run_at_startup=False)]
    on_startup = startup
    on_shutdown = shutdown
    allow_abort_jobs = True


def worker_overrides(settings: Settings) -> dict[str, Any]:
    from arq.connections import RedisSettings

    return {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url or "redis://127.0.0.1:6379"),
        "max_jobs": settings.batches.worker_max_jobs,
        "poll_delay": settings.batches.poll_delay_s,
        "job_timeout": int(settings.timeouts.request_s * 3 + 60),
        "job_completion_wait": int(settings.batches.shutdown_wait_s),
        "keep_result": 3600,
        "ctx": {"settings": settings},
    }

"""Redis side of batches: arq jobs, progress events, and per-backend limits.

Jobs carry only `(batch_id, item_no)`; their id is deterministic, so enqueueing twice
is harmless. Progress events go to a Redis stream per batch, which lets an SSE reader
resume from any event id. Backend limits (concurrent requests, tokens per minute) are
kept in Redis so that every worker on every host shares them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import abort_jobs_ss
from redis.exceptions import RedisError

from config import Settings
from inference import Release
from posting._db import redact

log = structlog.get_logger("posting.queue")

PREFIX = "autoposter:"
JOB_NAME = "run_batch_item"
_EVENTS_KEEP_S = 7 * 24 * 3600

# Take a lease if fewer than ARGV[1] unexpired leases exist. KEYS[1]: the lease zset.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
    return 1
end
return 0
"""
# Spend ARGV[2] tokens in this minute's window if the limit ARGV[1] allows it.
_SPEND = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 and used + tonumber(ARGV[2]) > tonumber(ARGV[1]) then
    return 0
end
redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 120)
return 1
"""


def job_id(batch_id: uuid.UUID, item_no: int, attempt: int = 0) -> str:
    """`batch:item` for the first run; a requeued run gets a fresh id, since arq keeps
    the id of a job whose worker died until its in-progress key expires."""
    base = f"{batch_id}:{item_no}"
    return base if attempt <= 0 else f"{base}:r{attempt}"


class QueueUnavailable(Exception):
    """Redis cannot be reached at REDIS_URL; the message says where (redacted) and why."""


async def connect(settings: Settings, *, retries: int | None = None) -> ArqRedis:
    """A pool on REDIS_URL, checked with a PING; `retries` overrides arq's reconnect tries
    (a command a user is waiting on wants 0, a long-lived process the default)."""
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set")
    where = redact(settings.redis_url)
    try:
        redis_settings = RedisSettings.from_dsn(settings.redis_url)
    except (ValueError, RuntimeError) as exc:  # arq: RuntimeError for a wrong scheme
        raise QueueUnavailable(f"REDIS_URL: {where} is not a Redis URL like "
                               f"redis://host:6379/0 ({redact(str(exc), settings.redis_url)})"
                               ) from None
    if retries is not None:
        redis_settings.conn_retries = retries
    try:
        return await create_pool(redis_settings)
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise QueueUnavailable(
            f"REDIS_URL: cannot connect to Redis at {where}: {redact(reason, settings.redis_url)}"
        ) from exc


class BatchQueue:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def enqueue(self, batch_id: uuid.UUID, item_nos: list[int], *,
                      attempt: int = 0) -> int:
        queued = 0
        for item_no in item_nos:
            job = await self.redis.enqueue_job(JOB_NAME, str(batch_id), item_no,
                                               _job_id=job_id(batch_id, item_no, attempt))
            queued += job is not None
        return queued

    async def abort(self, job_ids: list[str]) -> None:
        """Ask arq to cancel these running jobs (workers run with allow_abort_jobs)."""
        if job_ids:
            now_ms = int(time.time() * 1000)
            await self.redis.zadd(abort_jobs_ss, {job: now_ms for job in job_ids})

    async def publish(self, batch_id: uuid.UUID, kind: str, data: dict[str, Any]) -> None:
        key = _events_key(batch_id)
        await self.redis.xadd(key, {"kind": kind, "data": json.dumps(data)},
                              maxlen=100_000, approximate=True)
        await self.redis.expire(key, _EVENTS_KEEP_S)

    async def events(self, batch_id: uuid.UUID, *, after: str = "0",
                     block_ms: int = 15_000) -> list[tuple[str, str, dict[str, Any]]]:
        """Events after stream id `after`; waits up to `block_ms` for the first one."""
        reply = await self.redis.xread({_events_key(batch_id): after}, count=500,
                                       block=block_ms)
        found = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                kind, data = _decode(fields)
                found.append((_text(entry_id), kind, data))
        return found

    async def depth(self) -> int:
        return int(await self.redis.zcard("arq:queue"))


class RedisLimiter:
    """Concurrent requests and tokens per minute per backend, shared through Redis."""

    def __init__(self, redis: ArqRedis, settings: Settings, *, lease_s: float = 300.0) -> None:
        self._redis = redis
        self._settings = settings
        self._lease_s = lease_s
        self._acquire = redis.register_script(_ACQUIRE)
        self._spend = redis.register_script(_SPEND)

    @contextlib.asynccontextmanager
    async def slot(self, backend: str, tokens: int) -> AsyncIterator[None]:
        limits = self._settings.backends[backend]
        lease = uuid.uuid4().hex
        key = f"{PREFIX}limit:{backend}:leases"
        await self._wait_for_tokens(backend, tokens, limits.tokens_per_minute)
        delay = 0.02
        while True:
            now = time.time()
            taken = await self._acquire(keys=[key], args=[limits.max_concurrency, now,
                                                          now + self._lease_s, lease])
            if taken:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            await asyncio.shield(self._redis.zrem(key, lease))

    async def spare(self, backend: str) -> Release | None:
        """One more lease, only if one is free now; never waits for tokens or leases."""
        limits = self._settings.backends[backend]
        lease = uuid.uuid4().hex
        key = f"{PREFIX}limit:{backend}:leases"
        now = time.time()
        taken = await self._acquire(keys=[key], args=[limits.max_concurrency, now,
                                                      now + self._lease_s, lease])
        if not taken:
            return None

        async def release() -> None:
            await asyncio.shield(self._redis.zrem(key, lease))

        return release

    async def _wait_for_tokens(self, backend: str, tokens: int, per_minute: int) -> None:
        if per_minute <= 0:
            return
        while True:
            minute = int(time.time() // 60)
            key = f"{PREFIX}limit:{backend}:tpm:{minute}"
            if await self._spend(keys=[key], args=[per_minute, min(tokens, per_minute)]):
                return
            await asyncio.sleep(60 - time.time() % 60 + 0.05)


def _events_key(batch_id: uuid.UUID) -> str:
    return f"{PREFIX}batch:{batch_id}:events"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(fields: dict[Any, Any]) -> tuple[str, dict[str, Any]]:
    decoded = {_text(k): _text(v) for k, v in fields.items()}
    return decoded.get("kind", "unknown"), json.loads(decoded.get("data", "{}"))

"""Batches: many post requests, each run exactly once as a numbered item.

PostgreSQL holds the truth about every item. A run claims its item with a conditional
update (`queued` → `running`), so a job delivered twice does nothing the second time,
and the post of item N of batch B always has the same id, so a re-run after a crash
reuses it instead of adding another. A running item beats a heartbeat; `reconcile`
puts items whose heartbeat stopped back in the queue.

Where the items run is the shell's business: arq workers with a Redis-shared limit per
backend, or this process with a semaphore. Both call `run_item`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

import msgspec
import structlog
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from config import Settings
from inference import spare_capacity
from posting._errors import InvalidRequest, NotFound, PostingError
from posting._models import PostRequest
from posting._limits import Limiter
from posting._pipeline import Pipeline
from posting._plans import Plan, item_error

log = structlog.get_logger("posting.batches")

_POST_NAMESPACE = uuid.UUID("5b0c2d6e-4f0a-4a57-9d0e-706f7374696e")
ItemState = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_POST = ("draft", "approved", "published", "rejected", "failed")


class BatchItem(msgspec.Struct, kw_only=True):
    item_no: int
    state: ItemState
    post_id: str
    stock: str
    kol: int
    attempts: int = 0
    error: str | None = None


class BatchCounts(msgspec.Struct, kw_only=True):
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0


class BatchView(msgspec.Struct, kw_only=True):
    batch_id: str
    status: str
    total: int
    counts: BatchCounts
    eta_s: float | None
    elapsed_s: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    created_at: datetime
    finished_at: datetime | None
    items: list[BatchItem] = []


Publish = Callable[[uuid.UUID, str, dict[str, Any]], Awaitable[None]]


async def _no_events(batch_id: uuid.UUID, kind: str, data: dict[str, Any]) -> None:
    return None


def post_id_for(batch_id: uuid.UUID, item_no: int) -> uuid.UUID:
    """The one post an item can ever have."""
    return uuid.uuid5(_POST_NAMESPACE, f"{batch_id}:{item_no}")


class Batches:
    def __init__(self, *, pool: AsyncConnectionPool, pipeline: Pipeline, settings: Settings,
                 limiter: Limiter, publish: Publish = _no_events) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._settings = settings
        self._limiter = limiter
        self._publish = publish

    # Creating

    async def create(self, requests: list[PostRequest], *, spec: dict[str, Any],
                     actor: str | None, plan: Plan | None = None) -> BatchView:
        """Validate every item, then store the batch; nothing is stored if one is bad.

        Items are stored resolved (`２３３０` and `台積電` become `2330`). An error names
        the item's field, or the plan's when the items were expanded from `plan`.
        """
        limit = self._settings.batches.max_items
        if not requests:
            raise InvalidRequest("items", "a batch needs at least one item")
        if len(requests) > limit:
            raise InvalidRequest("items", f"{len(requests)} items; at most {limit} per batch")
        for index, request in enumerate(requests):
            try:
                stock, _ = await self._pipeline.validate(request)
            except InvalidRequest as exc:
                raise item_error(index, exc, plan) from exc
            request.stock = stock.code
        batch_id = uuid.uuid4()
        rows = []
        for item_no, request in enumerate(requests):
            request.actor = request.actor or actor
            rows.append((batch_id, item_no, Jsonb(msgspec.to_builtins(request)),
                         post_id_for(batch_id, item_no)))
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO batches (id, total, spec, created_by) VALUES (%s, %s, %s, %s)",
                (batch_id, len(requests), Jsonb(spec), actor),
            )
            await cur.executemany(
                "INSERT INTO batch_items (batch_id, item_no, request, post_id)"
                " VALUES (%s, %s, %s, %s)",
                rows,
            )
        log.info("batch.created", batch_id=str(batch_id), items=len(requests), actor=actor)
        return await self.view(batch_id, with_items=True)

    # Running

    async def run_item(self, batch_id: uuid.UUID, item_no: int, *, worker: str,
                       job_id: str | None = None) -> str:
        """Run one item if it is still queued; returns its final state, or `skipped`."""
        claimed = await self._claim(batch_id, item_no, worker=worker, job_id=job_id)
        if claimed is None:
            return "skipped"
        request, post_id = claimed
        bound = structlog.contextvars.bound_contextvars(
            batch_id=str(batch_id), item_no=item_no, post_id=str(post_id), kol=request.kol
        )
        with bound:
            await self._publish(batch_id, "item.started", {"item_no": item_no,
                                                           "post_id": str(post_id)})
            heartbeat = asyncio.create_task(self._beat(batch_id, item_no, worker))
            try:
                state, error = await self._generate(batch_id, item_no, request, post_id)
            except asyncio.CancelledError:
                await asyncio.shield(self._interrupted(batch_id, item_no))
                raise
            finally:
                heartbeat.cancel()
            await asyncio.shield(self._settle(batch_id, item_no, state, error, post_id))
        return state

    async def _generate(self, batch_id: uuid.UUID, item_no: int, request: PostRequest,
                        post_id: uuid.UUID) -> tuple[ItemState, str | None]:
        existing = await self._pipeline.store.post_status(post_id)
        if existing in FINAL_POST:  # a run that died after storing its post
            return ("done" if existing != "failed" else "failed"), None
        try:
            prepared = await self._pipeline.prepare(request)
        except PostingError as exc:
            # Valid when accepted, unroutable now (a key removed, say): the item still
            # ends as a stored post, `failed` with the reason.
            await self._pipeline.store_unstarted(request, str(exc), post_id=post_id,
                                                 batch_item=(batch_id, item_no))
            return "failed", str(exc)
        tokens = prepared.chat.n * prepared.chat.max_tokens + _prompt_tokens(prepared)
        # A hedged request takes one more of the backend's shared slots, if one is free.
        async with self._limiter.slot(prepared.client.name, tokens):
            with spare_capacity(self._limiter.spare):
                post = await self._pipeline.generate(prepared, post_id=post_id,
                                                     batch_item=(batch_id, item_no))
        if post.status == "draft":
            return "done", None
        return "failed", post.failure_reason

    async def _claim(self, batch_id: uuid.UUID, item_no: int, *, worker: str,
                     job_id: str | None) -> tuple[PostRequest, uuid.UUID] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE batch_items SET state = 'running', attempts = attempts + 1,"
                " worker = %s, job_id = coalesce(%s, job_id), heartbeat_at = now(),"
                " started_at = coalesce(started_at, now())"
                " WHERE batch_id = %s AND item_no = %s AND state = 'queued'"
                " RETURNING request, post_id",
                (worker, job_id, batch_id, item_no),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return msgspec.convert(row[0], PostRequest), row[1]

    async def _beat(self, batch_id: uuid.UUID, item_no: int, worker: str) -> None:
        while True:
            await asyncio.sleep(self._settings.batches.heartbeat_s)
            async with self._pool.connection() as conn:
                await conn.execute(
                    "UPDATE batch_items SET heartbeat_at = now() WHERE batch_id = %s"
                    " AND item_no = %s AND state = 'running' AND worker = %s",
                    (batch_id, item_no, worker),
                )

    async def _interrupted(self, batch_id: uuid.UUID, item_no: int) -> None:
        """Cancelled mid-run: by the batch's cancel, or by a shutdown (queue it again)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE batch_items i SET state = CASE WHEN b.status = 'cancelled'"
                " THEN 'cancelled' ELSE 'queued' END, finished_at = CASE WHEN"
                " b.status = 'cancelled' THEN now() END"
                " FROM batches b WHERE b.id = i.batch_id AND i.batch_id = %s"
                " AND i.item_no = %s AND i.state = 'running' RETURNING i.state",
                (batch_id, item_no),
            )
            row = await cur.fetchone()
        state = row[0] if row else "unknown"
        log.info("batch.item_interrupted", state=state)
        if state == "cancelled":
            await self._publish(batch_id, "item.failed", {"item_no": item_no,
                                                          "state": "cancelled"})
            await self._finish_batch_if_done(batch_id)

    async def _settle(self, batch_id: uuid.UUID, item_no: int, state: ItemState,
                      error: str | None, post_id: uuid.UUID) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE batch_items SET state = %s, error = %s, finished_at = now()"
                " WHERE batch_id = %s AND item_no = %s AND state = 'running'",
                (state, error, batch_id, item_no),
            )
        kind = "item.done" if state == "done" else "item.failed"
        await self._publish(batch_id, kind, {"item_no": item_no, "post_id": str(post_id),
                                             "state": state, "error": error})
        log.info("batch.item_finished", state=state, error=error)
        await self._finish_batch_if_done(batch_id)

    async def _finish_batch_if_done(self, batch_id: uuid.UUID) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE batches SET status = CASE WHEN status = 'cancelled' THEN status"
                " ELSE 'done' END, finished_at = now()"
                " WHERE id = %s AND finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM"
                " batch_items WHERE batch_id = %s AND state IN ('queued', 'running'))"
                " RETURNING status",
                (batch_id, batch_id),
            )
            row = await cur.fetchone()
        if row is not None:
            view = await self.view(batch_id)
            await self._publish(batch_id, "batch.done", {
                "status": row[0], "counts": msgspec.to_builtins(view.counts),
                "cost_usd": view.cost_usd})
            log.info("batch.finished", batch_id=str(batch_id), status=row[0])

    # Recovery and cancelling

    async def reconcile(self) -> list[tuple[uuid.UUID, int, int]]:
        """Queue again the running items whose heartbeat stopped; returns (batch, item,
        attempts) for each, so that the caller can enqueue a fresh job. Such items of a
        cancelled batch are cancelled instead: their worker died before it could be told."""
        stale_s = self._settings.batches.stale_after_s
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE batch_items i SET worker = NULL, state = CASE WHEN"
                " b.status = 'cancelled' THEN 'cancelled' ELSE 'queued' END, finished_at ="
                " CASE WHEN b.status = 'cancelled' THEN now() END FROM batches b"
                " WHERE b.id = i.batch_id AND i.state = 'running'"
                " AND i.heartbeat_at < now() - make_interval(secs => %s)"
                " RETURNING i.batch_id, i.item_no, i.attempts, i.state, i.post_id",
                (stale_s,),
            )
            rows = await cur.fetchall()
            await conn.execute(
                "UPDATE posts SET status = 'cancelled', updated_at = now(), failure_reason ="
                " 'cancelled before the post was finished' WHERE id = ANY(%s)"
                " AND status = 'generating'",
                ([post_id for *_, state, post_id in rows if state == "cancelled"],),
            )
        requeued = [(batch, item, tries) for batch, item, tries, state, _ in rows
                    if state == "queued"]
        if rows:
            log.warning("batch.requeued_stale", items=len(requeued),
                        cancelled=len(rows) - len(requeued), stale_after_s=stale_s)
        await self._orphans_cancelled([(b, n) for b, n, _, state, _ in rows
                                       if state == "cancelled"])
        return requeued

    async def _orphans_cancelled(self, cancelled: list[tuple[uuid.UUID, int]]) -> None:
        for batch_id, item_no in cancelled:
            await self._publish(batch_id, "item.failed", {"item_no": item_no,
                                                          "state": "cancelled"})
        for batch_id in {batch_id for batch_id, _ in cancelled}:
            await self._finish_batch_if_done(batch_id)

    async def queued_items(self, batch_id: uuid.UUID) -> list[int]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(  # the longest first, as `longest_first` orders them
                "SELECT item_no FROM batch_items WHERE batch_id = %s AND state = 'queued'"
                " ORDER BY (request->>'max_words')::int DESC, item_no", (batch_id,))
            return [row[0] for row in await cur.fetchall()]

    async def cancel(self, batch_id: uuid.UUID) -> list[str]:
        """Cancel queued items now; returns the job ids of running ones to abort."""
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE batches SET status = 'cancelled' WHERE id = %s AND status = 'running'"
                " RETURNING id", (batch_id,))
            if await cur.fetchone() is None:
                await self._require(conn, batch_id)
                return []
            await conn.execute(
                "UPDATE batch_items SET state = 'cancelled', finished_at = now()"
                " WHERE batch_id = %s AND state = 'queued'", (batch_id,))
            cur = await conn.execute(
                "SELECT job_id FROM batch_items WHERE batch_id = %s AND state = 'running'"
                " AND job_id IS NOT NULL", (batch_id,))
            running = [row[0] for row in await cur.fetchall()]
        log.info("batch.cancelled", batch_id=str(batch_id), running=len(running))
        await self._finish_batch_if_done(batch_id)
        return running

    # Reading

    async def view(self, batch_id: uuid.UUID, *, with_items: bool = False) -> BatchView:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            batch = await self._require(conn, batch_id, cur)
            await cur.execute(
                "SELECT state, count(*) AS n, min(started_at) AS first_start,"
                " max(finished_at) AS last_finish FROM batch_items WHERE batch_id = %s"
                " GROUP BY state", (batch_id,))
            groups = await cur.fetchall()
            await cur.execute(
                "SELECT coalesce(sum(c.prompt_tokens), 0) AS prompt,"
                " coalesce(sum(c.completion_tokens), 0) AS completion,"
                " coalesce(sum(c.cost_usd), 0)::float8 AS cost"
                " FROM llm_calls c JOIN posts p ON p.id = c.post_id WHERE p.batch_id = %s",
                (batch_id,))
            usage = await cur.fetchone()
            items = []
            if with_items:
                await cur.execute(
                    "SELECT item_no, state, post_id, request, attempts, error FROM batch_items"
                    " WHERE batch_id = %s ORDER BY item_no", (batch_id,))
                items = [BatchItem(item_no=r["item_no"], state=r["state"],
                                   post_id=str(r["post_id"]), stock=r["request"]["stock"],
                                   kol=r["request"]["kol"], attempts=r["attempts"],
                                   error=r["error"]) for r in await cur.fetchall()]
        counts = BatchCounts(**{g["state"]: g["n"] for g in groups})
        return BatchView(
            batch_id=str(batch_id), status=batch["status"], total=batch["total"],
            counts=counts, eta_s=_eta_s(batch, counts, groups),
            elapsed_s=_elapsed_s(batch), prompt_tokens=usage["prompt"],
            completion_tokens=usage["completion"], cost_usd=round(usage["cost"], 8),
            created_at=batch["created_at"], finished_at=batch["finished_at"], items=items,
        )

    async def recent(self, *, limit: int = 20) -> list[BatchView]:
        """The newest batches first, without their items."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM batches ORDER BY created_at DESC, id LIMIT %s", (limit,))
            ids = [row[0] for row in await cur.fetchall()]
        return [await self.view(batch_id) for batch_id in ids]

    async def _require(self, conn: Any, batch_id: uuid.UUID, cur: Any = None) -> dict:
        cursor = cur or conn.cursor(row_factory=dict_row)
        await cursor.execute("SELECT * FROM batches WHERE id = %s", (batch_id,))
        batch = await cursor.fetchone()
        if batch is None:
            raise NotFound("batch_id", f"no batch {batch_id}")
        return batch


def _prompt_tokens(prepared: Any) -> int:
    from inference import estimate_tokens

    return estimate_tokens("".join(m.content for m in prepared.chat.messages), prepared.card)


def _elapsed_s(batch: dict) -> float:
    end = batch["finished_at"] or datetime.now(batch["created_at"].tzinfo)
    return round((end - batch["created_at"]).total_seconds(), 3)


def _eta_s(batch: dict, counts: BatchCounts, groups: list[dict]) -> float | None:
    """Seconds left, at the pace so far; None before the first item finishes."""
    if batch["finished_at"] is not None:
        return 0.0
    finished = counts.done + counts.failed + counts.cancelled
    left = counts.queued + counts.running
    if not finished:
        return None
    elapsed = _elapsed_s(batch)
    return round(elapsed / finished * left, 1)


async def run_in_process(batches: Batches, batch_id: uuid.UUID, *, concurrency: int,
                         worker: str = "local") -> None:
    """Run every queued item of a batch here, `concurrency` at a time (no Redis)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item_no: int) -> None:
        async with semaphore:
            await batches.run_item(batch_id, item_no, worker=worker)

    started = time.monotonic()
    items = await batches.queued_items(batch_id)
    await asyncio.gather(*(one(item_no) for item_no in items))
    log.info("batch.ran_in_process", batch_id=str(batch_id), items=len(items),
             seconds=round(time.monotonic() - started, 2))

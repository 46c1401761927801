"""Reads and writes of posts, variants, LLM calls and KOLs, on a psycopg pool."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from config import Persona
from inference import CallRecord
from posting._checks import Check
from posting._models import (
    STAGES,
    KolRef,
    PostView,
    Selected,
    StockRef,
    UsageView,
    VariantView,
)

_PROFILE_FIELDS = ("persona", "style", "guardrails", "skeleton", "signature", "language",
                   "backend", "model")


class NewPost(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    kol_serial: int
    stock_code: str
    stock_name: str
    posting_type: str
    max_words: int
    variants_requested: int
    backend: str
    model: str
    facts: dict[str, Any]
    created_by: str | None = None
    batch_id: uuid.UUID | None = None
    item_no: int | None = None


class VariantRow(msgspec.Struct, kw_only=True):
    variant: int
    title: str
    body: str
    raw_text: str
    checks: list[Check]
    score: float | None
    finish_reason: str | None
    error: str | None
    tokens: int


class Outcome(msgspec.Struct, kw_only=True):
    """How a generation ended, written in one transaction."""

    backend: str
    model: str
    fallback_from: str | None
    status: str
    selected_variant: int | None
    title: str | None
    body: str | None
    failure_reason: str | None
    timings_ms: dict[str, float]
    variants: list[VariantRow]
    calls: list[CallRecord]


class Store:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def schema_version(self) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT max(version) FROM schema_migrations")
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # KOLs

    async def seed_kols(self, personas: Iterable[Persona]) -> None:
        """Insert the shipped personas that are not stored yet; edits made later stay."""
        rows = [(p.serial, p.nickname, p.persona_type, Jsonb(_profile(p))) for p in personas]
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO kols (serial, nickname, persona_type, profile)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (serial) DO NOTHING",
                rows,
            )

    async def get_kol(self, serial: int) -> Persona | None:
        async with self._pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM kols WHERE serial = %s", (serial,)
            )
            row = await cur.fetchone()
        return _persona(row) if row else None

    async def list_kols(self) -> list[Persona]:
        async with self._pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM kols ORDER BY serial"
            )
            return [_persona(row) for row in await cur.fetchall()]

    # Posts

    async def create_post(self, post: NewPost) -> None:
        """Insert the post as `generating`.

        A batch item run again after a crash or a shutdown reuses its post (same id):
        what the interrupted run left is cleared, so no text is ever appended to.
        """
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM post_variants WHERE post_id = %s", (post.id,))
            await conn.execute(
                "INSERT INTO posts (id, kol_serial, stock_code, stock_name, posting_type,"
                " max_words, variants_requested, status, backend, model, facts, created_by,"
                " batch_id, item_no)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'generating', %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET status = 'generating', selected_variant = NULL,"
                " title = NULL, body = NULL, failure_reason = NULL, timings_ms = '{}',"
                " backend = EXCLUDED.backend, model = EXCLUDED.model, updated_at = now()"
                " WHERE posts.status IN ('generating', 'cancelled')",
                (post.id, post.kol_serial, post.stock_code, post.stock_name, post.posting_type,
                 post.max_words, post.variants_requested, post.backend, post.model,
                 Jsonb(post.facts), post.created_by, post.batch_id, post.item_no),
            )

    async def post_status(self, post_id: uuid.UUID) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT status FROM posts WHERE id = %s", (post_id,))
            row = await cur.fetchone()
        return row[0] if row else None

    async def finish_post(self, post_id: uuid.UUID, outcome: Outcome) -> None:
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO post_variants (post_id, variant, title, body, raw_text, checks,"
                " score, finish_reason, error, tokens)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(post_id, v.variant, v.title, v.body, v.raw_text,
                  Jsonb(msgspec.to_builtins(v.checks)), v.score, v.finish_reason, v.error,
                  v.tokens) for v in outcome.variants],
            )
            if outcome.calls:
                await cur.executemany(
                    "INSERT INTO llm_calls (post_id, backend, model, variants, prompt_tokens,"
                    " completion_tokens, cached_tokens, estimated, cost_usd, ttft_ms,"
                    " duration_ms, attempts, error)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [_call_row(post_id, c) for c in outcome.calls],
                )
            await cur.execute(
                "UPDATE posts SET status = %s, selected_variant = %s, title = %s, body = %s,"
                " failure_reason = %s, timings_ms = %s, backend = %s, model = %s,"
                " fallback_from = %s, updated_at = now() WHERE id = %s",
                (outcome.status, outcome.selected_variant, outcome.title, outcome.body,
                 outcome.failure_reason, Jsonb(outcome.timings_ms), outcome.backend,
                 outcome.model, outcome.fallback_from, post_id),
            )

    async def merge_timings(self, post_id: uuid.UUID, timings_ms: dict[str, float]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE posts SET timings_ms = timings_ms || %s WHERE id = %s",
                (Jsonb({k: round(v, 2) for k, v in timings_ms.items()}), post_id),
            )

    async def get_post(self, post_id: uuid.UUID) -> PostView | None:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT p.*, k.nickname FROM posts p JOIN kols k ON k.serial = p.kol_serial"
                " WHERE p.id = %s",
                (post_id,),
            )
            post = await cur.fetchone()
            if post is None:
                return None
            await cur.execute(
                "SELECT * FROM post_variants WHERE post_id = %s ORDER BY variant", (post_id,)
            )
            variants = await cur.fetchall()
            await cur.execute(
                "SELECT coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
                " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
                " coalesce(sum(cached_tokens), 0) AS cached_tokens,"
                " coalesce(bool_or(estimated), false) AS estimated,"
                " coalesce(sum(cost_usd), 0)::float8 AS cost_usd"
                " FROM llm_calls WHERE post_id = %s",
                (post_id,),
            )
            totals = await cur.fetchone()
        return _post_view(post, variants, totals)

    async def variants(self, post_id: uuid.UUID) -> list[VariantView]:
        async with self._pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM post_variants WHERE post_id = %s ORDER BY variant", (post_id,)
            )
            return [_variant_view(row) for row in await cur.fetchall()]

    async def list_posts(self, *, status: str | None = None, limit: int = 20) -> list[dict]:
        """Newest first: a summary row per post."""
        async with self._pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "SELECT p.id, p.status, p.kol_serial, k.nickname, p.stock_code, p.stock_name,"
                " p.posting_type, p.title, p.created_at FROM posts p"
                " JOIN kols k ON k.serial = p.kol_serial"
                " WHERE (%(status)s::text IS NULL OR p.status = %(status)s)"
                " ORDER BY p.created_at DESC, p.id LIMIT %(limit)s",
                {"status": status, "limit": limit},
            )
            return list(await cur.fetchall())


def _profile(persona: Persona) -> dict[str, Any]:
    data = msgspec.to_builtins(persona)
    return {key: data.get(key) for key in _PROFILE_FIELDS}


def _persona(row: dict[str, Any]) -> Persona:
    profile = {k: v for k, v in row["profile"].items() if v is not None}
    return msgspec.convert(
        {"serial": row["serial"], "nickname": row["nickname"],
         "persona_type": row["persona_type"], **profile},
        Persona,
    )


def _call_row(post_id: uuid.UUID, call: CallRecord) -> tuple:
    usage = call.usage
    return (post_id, call.backend, call.model, list(call.variants), usage.prompt_tokens,
            usage.completion_tokens, usage.cached_tokens, usage.estimated, call.cost_usd,
            call.ttft_ms, call.duration_ms, call.attempts, call.error)


def _in_stage_order(timings: dict[str, float]) -> dict[str, float]:
    """jsonb keeps keys in its own order; give them back in the order stages run."""
    rank = {name: index for index, name in enumerate(STAGES)}
    return dict(sorted(timings.items(), key=lambda item: rank.get(item[0], len(rank))))


def _variant_view(row: dict[str, Any]) -> VariantView:
    return VariantView(
        variant=row["variant"], title=row["title"], body=row["body"], score=row["score"],
        checks=msgspec.convert(row["checks"], list[Check]), finish_reason=row["finish_reason"],
        error=row["error"], tokens=row["tokens"],
    )


def _post_view(
    post: dict[str, Any], variants: Sequence[dict[str, Any]], totals: dict[str, Any]
) -> PostView:
    views = [_variant_view(row) for row in variants]
    chosen = post["selected_variant"]
    selected_checks = next((v.checks for v in views if v.variant == chosen), [])
    return PostView(
        post_id=str(post["id"]),
        status=post["status"],
        kol=KolRef(serial=post["kol_serial"], nickname=post["nickname"]),
        stock=StockRef(code=post["stock_code"], name=post["stock_name"]),
        posting_type=post["posting_type"],
        max_words=post["max_words"],
        backend=post["backend"],
        model=post["model"],
        selected=Selected(variant=chosen, title=post["title"] or "", body=post["body"] or ""),
        alternatives=[v for v in views if v.variant != chosen],
        checks=selected_checks,
        usage=UsageView(
            prompt_tokens=totals["prompt_tokens"],
            completion_tokens=totals["completion_tokens"],
            cached_tokens=totals["cached_tokens"],
            estimated=totals["estimated"],
        ),
        cost_usd=round(totals["cost_usd"], 8),
        timings_ms=_in_stage_order(post["timings_ms"]),
        failure_reason=post["failure_reason"],
        fallback_from=post["fallback_from"],
        created_at=post["created_at"],
        updated_at=post["updated_at"],
    )

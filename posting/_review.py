"""Review of stored posts and KOL personas: filtered listing, edits, status moves, history.

Each change locks its row (`SELECT ... FOR UPDATE`), then writes the new values and a
history entry (actor, action, old and new value per field) in one transaction. So two
concurrent edits of one post apply one after the other, the second sees the first's
result, and the history never records a change that did not happen.

Status moves a reviewer may make:

    draft ──► approved ──► published
      │  ▲
      ▼  │
    rejected

Title and body change only while the post is, or is being moved back to, a draft.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, get_args

import msgspec
from msgspec import UNSET, UnsetType
from psycopg import AsyncCursor, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from config import Persona
from posting._errors import Conflict, InvalidRequest, NotFound, TransitionNotAllowed
from posting._models import KolRef, PostStatus, PostView, StockRef
from posting._storable import ensure_storable
from posting._store import Store, _persona, _profile

MAX_PAGE = 100
_STATUSES: tuple[str, ...] = get_args(PostStatus)
_MOVES: dict[str, tuple[str, ...]] = {
    "draft": ("approved", "rejected"),
    "approved": ("published",),
    "rejected": ("draft",),
}
_VERBS = {"approved": "approve", "published": "publish", "rejected": "reject",
          "draft": "reopen"}
_MSGSPEC_PATH = re.compile(r"at `\$\.(\w+)")


class PostFilters(msgspec.Struct, kw_only=True):
    """What to list. `created_after` is inclusive and `created_before` exclusive."""

    status: str | None = None
    kol: int | None = None
    stock: str | None = None
    batch: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    cursor: str | None = None  # next_cursor of the previous page, unchanged
    limit: int = 20


class PostSummary(msgspec.Struct, kw_only=True):
    post_id: str
    status: PostStatus
    kol: KolRef
    stock: StockRef
    posting_type: str
    title: str | None
    cost_usd: float
    created_at: datetime
    updated_at: datetime
    batch_id: str | None
    item_no: int | None


class Page(msgspec.Struct, kw_only=True):
    """One page, newest first; `next_cursor` is None on the last one."""

    items: list[PostSummary]
    next_cursor: str | None


class PostChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A reviewer's edit. Fields left out stay as they are.

    Selecting a variant copies its title and body into the post; a title or body given
    alongside overrides the copied one.
    """

    title: str | UnsetType = UNSET
    body: str | UnsetType = UNSET
    selected_variant: int | UnsetType = UNSET
    status: PostStatus | UnsetType = UNSET


class KolChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields of a persona to replace; `null` clears signature, backend or model."""

    nickname: str | UnsetType = UNSET
    persona_type: str | UnsetType = UNSET
    persona: str | UnsetType = UNSET
    style: str | UnsetType = UNSET
    guardrails: list[str] | UnsetType = UNSET
    skeleton: str | UnsetType = UNSET
    signature: str | None | UnsetType = UNSET
    language: str | UnsetType = UNSET
    backend: str | None | UnsetType = UNSET
    model: str | None | UnsetType = UNSET


class ValueChange(msgspec.Struct):
    old: Any
    new: Any


class Change(msgspec.Struct, kw_only=True):
    """One recorded edit: who, what kind, and each field's value before and after."""

    id: int
    actor: str
    action: str
    changes: dict[str, ValueChange]
    created_at: datetime


class Review:
    """Reviewer operations over the database pool; cheap to build per request."""

    def __init__(self, pool: AsyncConnectionPool, *, backends: Collection[str] = ()) -> None:
        """`backends`: the configured backend names, the only ones a KOL may name."""
        self._pool = pool
        self._store = Store(pool)
        self._backends = sorted(backends)

    # Posts

    async def list_posts(self, filters: PostFilters) -> Page:
        """Posts matching every given filter, newest first, `limit` at a time."""
        query, params = _list_query(filters)
        async with self._pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(query, params)
            rows = await cur.fetchall()
        shown = rows[: filters.limit]
        more = len(rows) > filters.limit  # the query fetched one row past the page
        return Page(items=[_summary(row) for row in shown],
                    next_cursor=_encode_cursor(shown[-1]) if more else None)

    async def get_post(self, post_id: uuid.UUID) -> PostView:
        post = await self._store.get_post(post_id)
        if post is None:
            raise NotFound("post_id", f"no post {post_id}")
        return post

    async def update_post(self, post_id: uuid.UUID, change: PostChange, *,
                          actor: str) -> PostView:
        """Apply an edit, variant choice or status move; unchanged values record nothing."""
        ensure_storable(change, "")
        async with self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT id, status, selected_variant, title, body FROM posts"
                " WHERE id = %s FOR UPDATE", (post_id,)
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("post_id", f"no post {post_id}")
            diff = await _post_diff(cur, row, change)
            if diff:
                await _apply(cur, post_id, diff)
                await cur.execute(
                    "INSERT INTO post_changes (post_id, actor, action, changes, created_at)"
                    " VALUES (%s, %s, %s, %s, clock_timestamp())",
                    (post_id, actor, _post_action(diff), Jsonb(diff)),
                )
        return await self.get_post(post_id)

    async def history(self, post_id: uuid.UUID) -> list[Change]:
        """Every recorded change of a post, oldest first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM posts WHERE id = %s", (post_id,))
            if await cur.fetchone() is None:
                raise NotFound("post_id", f"no post {post_id}")
            return await _changes(conn.cursor(row_factory=dict_row), _POST_HISTORY, post_id)

    # KOLs

    async def create_kol(self, persona: Persona, *, actor: str) -> Persona:
        ensure_storable(persona, "")
        persona = _validated(msgspec.to_builtins(persona))
        _check_persona(persona, ("nickname", "backend"), self._backends)
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO kols (serial, nickname, persona_type, profile)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (serial) DO NOTHING RETURNING serial",
                (persona.serial, persona.nickname, persona.persona_type,
                 Jsonb(_profile(persona))),
            )
            if await cur.fetchone() is None:
                raise Conflict("serial", f"a KOL with serial {persona.serial} exists;"
                                         " update it instead, or pick a free serial")
            created = {key: {"old": None, "new": value}
                       for key, value in msgspec.to_builtins(persona).items()}
            await _record_kol(cur, persona.serial, actor, "create", created)
        return persona

    async def update_kol(self, serial: int, change: KolChange, *, actor: str) -> Persona:
        """Replace the given fields; the result must still be a valid persona."""
        ensure_storable(change, "")
        async with self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM kols WHERE serial = %s FOR UPDATE", (serial,))
            row = await cur.fetchone()
            if row is None:
                raise NotFound("serial", f"no KOL with serial {serial}")
            old = msgspec.to_builtins(_persona(row))
            given = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not UNSET}
            updated = _validated(old | given)
            _check_persona(updated, given, self._backends)
            new = msgspec.to_builtins(updated)
            diff = {k: {"old": old[k], "new": new[k]} for k in given if old[k] != new[k]}
            if diff:
                await cur.execute(
                    "UPDATE kols SET nickname = %s, persona_type = %s, profile = %s,"
                    " updated_at = clock_timestamp() WHERE serial = %s",
                    (updated.nickname, updated.persona_type, Jsonb(_profile(updated)), serial),
                )
                await _record_kol(cur, serial, actor, "update", diff)
        return updated

    async def kol_history(self, serial: int) -> list[Change]:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM kols WHERE serial = %s", (serial,))
            if await cur.fetchone() is None:
                raise NotFound("serial", f"no KOL with serial {serial}")
            return await _changes(conn.cursor(row_factory=dict_row), _KOL_HISTORY, serial)


# Listing


_LIST_SQL = (
    "SELECT p.id, p.status, p.kol_serial, k.nickname, p.stock_code, p.stock_name,"
    " p.posting_type, p.title, p.created_at, p.updated_at, p.batch_id, p.item_no,"
    " coalesce((SELECT sum(c.cost_usd) FROM llm_calls c WHERE c.post_id = p.id), 0)::float8"
    " AS cost_usd"
    " FROM posts p JOIN kols k ON k.serial = p.kol_serial"
)
# Each filter's condition, used only when the filter is given.
_CONDITIONS = {
    "status": "p.status = %(status)s",
    "kol": "p.kol_serial = %(kol)s",
    "stock": "p.stock_code = %(stock)s",
    "batch": "p.batch_id = %(batch)s",
    "created_after": "p.created_at >= %(created_after)s",
    "created_before": "p.created_at < %(created_before)s",
}
# Matches the order of the posts_created_idx index: time descending, id ascending.
_AFTER_CURSOR = ("(p.created_at < %(cursor_at)s"
                 " OR (p.created_at = %(cursor_at)s AND p.id > %(cursor_id)s))")


def _list_query(filters: PostFilters) -> tuple[str, dict[str, Any]]:
    if not 1 <= filters.limit <= MAX_PAGE:
        raise InvalidRequest("limit", f"must be between 1 and {MAX_PAGE}, got {filters.limit}")
    if filters.status is not None and filters.status not in _STATUSES:
        raise InvalidRequest("status", f"unknown status {filters.status!r};"
                                       f" one of {', '.join(_STATUSES)}")
    params = {k: v for k, v in msgspec.structs.asdict(filters).items() if v is not None}
    where = [_CONDITIONS[key] for key in _CONDITIONS if key in params]
    if filters.cursor is not None:
        params["cursor_at"], params["cursor_id"] = _decode_cursor(filters.cursor)
        where.append(_AFTER_CURSOR)
    params["fetch"] = filters.limit + 1
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{_LIST_SQL}{clause} ORDER BY p.created_at DESC, p.id LIMIT %(fetch)s", params


def _summary(row: dict[str, Any]) -> PostSummary:
    return PostSummary(
        post_id=str(row["id"]),
        status=row["status"],
        kol=KolRef(serial=row["kol_serial"], nickname=row["nickname"]),
        stock=StockRef(code=row["stock_code"], name=row["stock_name"]),
        posting_type=row["posting_type"],
        title=row["title"],
        cost_usd=round(row["cost_usd"], 8),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        batch_id=str(row["batch_id"]) if row["batch_id"] else None,
        item_no=row["item_no"],
    )


def _encode_cursor(row: dict[str, Any]) -> str:
    raw = f"{row['created_at'].isoformat()}|{row['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, post_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("cursor time without a zone")
        return when, uuid.UUID(post_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "cursor", "not a cursor this API issued; pass a page's next_cursor unchanged"
        ) from None


# Changing posts


async def _post_diff(cur: AsyncCursor[dict[str, Any]], row: dict[str, Any],
                     change: PostChange) -> dict[str, dict[str, Any]]:
    """Old and new value of each field the change really alters; raises if not allowed."""
    current = row["status"]
    target = current if change.status is UNSET else change.status
    if target != current and target not in _MOVES.get(current, ()):
        raise TransitionNotAllowed(current, target, list(_MOVES.get(current, ())))
    new: dict[str, Any] = {}
    if change.selected_variant is not UNSET:
        new |= await _variant_text(cur, row["id"], change.selected_variant)
    for field in ("title", "body"):
        value = getattr(change, field)
        if value is not UNSET:
            if not value.strip():
                raise InvalidRequest(field, "must not be empty")
            new[field] = value
    edited = [key for key, value in new.items() if value != row[key]]
    if edited and "draft" not in (current, target):
        hint = "; set status to draft first" if current == "rejected" else ""
        raise Conflict(edited[0], f"only a draft's text can change; this post is {current}{hint}")
    if target != current:
        new["status"] = target
    return {key: {"old": row[key], "new": value} for key, value in new.items()
            if value != row[key]}


async def _variant_text(cur: AsyncCursor[dict[str, Any]], post_id: uuid.UUID,
                        variant: int) -> dict[str, Any]:
    await cur.execute(
        "SELECT variant, title, body FROM post_variants"
        " WHERE post_id = %s AND error IS NULL ORDER BY variant", (post_id,)
    )
    usable = {r["variant"]: r for r in await cur.fetchall()}
    if variant not in usable:
        choices = ", ".join(str(v) for v in usable) or "none"
        raise InvalidRequest("selected_variant",
                             f"no usable variant {variant}; choose one of: {choices}")
    chosen = usable[variant]
    return {"selected_variant": variant, "title": chosen["title"], "body": chosen["body"]}


async def _apply(cur: AsyncCursor[Any], post_id: uuid.UUID,
                 diff: dict[str, dict[str, Any]]) -> None:
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(key), sql.Placeholder(key)) for key in diff
    )
    query = sql.SQL("UPDATE posts SET {}, updated_at = clock_timestamp() WHERE id = {}").format(
        assignments, sql.Placeholder("id")
    )
    await cur.execute(query, {key: value["new"] for key, value in diff.items()} | {"id": post_id})


def _post_action(diff: dict[str, dict[str, Any]]) -> str:
    if "status" in diff:
        return _VERBS[diff["status"]["new"]]
    return "select" if "selected_variant" in diff else "edit"


# KOLs and history


def _validated(data: dict[str, Any]) -> Persona:
    """A persona checked against its schema, the error naming the offending field."""
    try:
        return msgspec.convert(data, Persona)
    except msgspec.ValidationError as exc:
        match = _MSGSPEC_PATH.search(str(exc))
        raise InvalidRequest(match.group(1) if match else "body", str(exc)) from None


def _check_persona(persona: Persona, fields: Iterable[str], backends: list[str]) -> None:
    """What the schema cannot say: a nickname to show, a backend that exists. Only the
    given `fields` are checked, so an edit is not refused for a value it did not touch."""
    fields = set(fields)
    if "nickname" in fields and not persona.nickname.strip():
        raise InvalidRequest("nickname", "must not be empty")
    if "backend" in fields and persona.backend is not None and persona.backend not in backends:
        known = ", ".join(backends) or "none"
        raise InvalidRequest("backend", f"no backend named {persona.backend!r}"
                                        f" (configured: {known}; null uses the default)")


async def _record_kol(cur: AsyncCursor[Any], serial: int, actor: str, action: str,
                      changes: dict[str, Any]) -> None:
    await cur.execute(
        "INSERT INTO kol_changes (kol_serial, actor, action, changes, created_at)"
        " VALUES (%s, %s, %s, %s, clock_timestamp())",
        (serial, actor, action, Jsonb(changes)),
    )


_POST_HISTORY = ("SELECT id, actor, action, changes, created_at FROM post_changes"
                 " WHERE post_id = %s ORDER BY id")
_KOL_HISTORY = ("SELECT id, actor, action, changes, created_at FROM kol_changes"
                " WHERE kol_serial = %s ORDER BY id")


async def _changes(cur: AsyncCursor[dict[str, Any]], query: str, key: object) -> list[Change]:
    await cur.execute(query, (key,))
    return msgspec.convert(await cur.fetchall(), list[Change])

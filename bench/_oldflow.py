"""The old system's flow, rebuilt as the baseline every comparison is made against.

What the old performance report describes, and nothing better:

1. one chat completion for the base post, not streamed, with a fixed `max_tokens` of
   2000 whatever the length asked for;
2. five more completions, one after another, each rewriting the base post as a version;
3. a new database connection for every database request (read the KOL, store the base
   post, store each version, mark the post done).

The post it stores is an ordinary `draft` row (created_by `bench:old-flow`), with the
base post as variant 0 and the versions as 1..5, so "stored" means the same for both
flows. Nothing here reaches for a pool, a stream or a second task.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import openai
import psycopg
from psycopg.types.json import Jsonb

from config import Persona
from inference import Message
from posting import Stock

MAX_TOKENS = 2000
VERSIONS = 5
TEMPERATURE = 0.9
CREATED_BY = "bench:old-flow"

Connect = Callable[..., Awaitable[psycopg.AsyncConnection[Any]]]

_VERSION_PROMPT = (
    "請為 {name}（{code}）把下面這篇論壇貼文改寫成第 {number} 個版本，重點不變，換一種說法。\n"
    "格式：第一行只寫標題，不超過 {title_chars} 個字。第二行起是內文。\n"
    "長度：內文不超過 {max_words} 個字。\n\n原文：\n{base}"
)


class CallTiming(msgspec.Struct, frozen=True):
    """One LLM request of the old flow, in seconds from the start of its post."""

    started_s: float
    ended_s: float
    max_tokens: int


class OldPost(msgspec.Struct, kw_only=True):
    post_id: str
    wall_s: float
    first_text_s: float  # when the base post's text first existed (the earliest possible)
    calls: list[CallTiming]
    connections: int


class OldFlow:
    """Runs posts the old way against one OpenAI-compatible endpoint."""

    def __init__(self, *, base_url: str, model: str, backend: str, database_url: str,
                 http_client: httpx.AsyncClient | None = None,
                 connect: Connect | None = None) -> None:
        self._model = model
        self._backend = backend
        self._database_url = database_url
        self._connect: Connect = connect or psycopg.AsyncConnection.connect
        self._sdk = openai.AsyncOpenAI(
            base_url=base_url, api_key="unused", http_client=http_client,
            timeout=httpx.Timeout(connect=5.0, read=300.0, write=5.0, pool=5.0),
        )

    async def aclose(self) -> None:
        await self._sdk.close()

    async def run(self, *, kol: int, stock: Stock, posting_type: str, max_words: int,
                  messages: tuple[Message, ...], title_max_chars: int,
                  seed: int | None = None) -> OldPost:
        """One post, start to stored `draft`; `messages` is the base post's prompt."""
        started = time.perf_counter()
        run = _OldRun(started)
        post_id = uuid.uuid4()
        await self._query(run, "SELECT profile FROM kols WHERE serial = %s", (kol,))
        base = await self._complete(run, [{"role": m.role, "content": m.content}
                                          for m in messages], seed)
        first_text_s = time.perf_counter() - started
        title, body = _split(base)
        await self._query(
            run,
            "WITH post AS (INSERT INTO posts (id, kol_serial, stock_code, stock_name,"
            " posting_type, max_words, variants_requested, status, selected_variant, title,"
            " body, backend, model, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " 'generating', 0, %s, %s, %s, %s, %s) RETURNING id)"
            " INSERT INTO post_variants (post_id, variant, title, body, raw_text)"
            " SELECT id, 0, %s, %s, %s FROM post",
            (post_id, kol, stock.code, stock.name, posting_type, max_words, VERSIONS + 1,
             title, body, self._backend, self._model, CREATED_BY, title, body, base),
        )
        for number in range(1, VERSIONS + 1):
            prompt = _VERSION_PROMPT.format(name=stock.name, code=stock.code, number=number,
                                            title_chars=title_max_chars, max_words=max_words,
                                            base=base)
            version = await self._complete(run, [{"role": "user", "content": prompt}],
                                           None if seed is None else seed + number)
            v_title, v_body = _split(version)
            await self._query(
                run,
                "INSERT INTO post_variants (post_id, variant, title, body, raw_text)"
                " VALUES (%s, %s, %s, %s, %s)",
                (post_id, number, v_title, v_body, version),
            )
        await self._query(run, "UPDATE posts SET status = 'draft', updated_at = now(),"
                               " timings_ms = %s WHERE id = %s",
                          (Jsonb({"total": round((time.perf_counter() - started) * 1000, 2)}),
                           post_id))
        return OldPost(post_id=str(post_id), wall_s=time.perf_counter() - started,
                       first_text_s=first_text_s, calls=run.calls,
                       connections=run.connections)

    async def _complete(self, run: _OldRun, messages: list[dict[str, str]],
                        seed: int | None) -> str:
        began = time.perf_counter()
        extra: dict[str, Any] = {} if seed is None else {"seed": seed}
        reply = await self._sdk.chat.completions.create(
            model=self._model, messages=messages,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS, temperature=TEMPERATURE, stream=False, **extra,
        )
        run.calls.append(CallTiming(began - run.started, time.perf_counter() - run.started,
                                    MAX_TOKENS))
        return reply.choices[0].message.content or ""

    async def _query(self, run: _OldRun, sql: str, params: tuple[Any, ...]) -> None:
        """One database request on a connection of its own, closed straight after."""
        run.connections += 1
        conn = await self._connect(self._database_url, autocommit=True)
        try:
            await conn.execute(sql, params)
        finally:
            await conn.close()


class _OldRun:
    def __init__(self, started: float) -> None:
        self.started = started
        self.calls: list[CallTiming] = []
        self.connections = 0


def _split(text: str) -> tuple[str, str]:
    title, _, body = text.strip().partition("\n")
    return title.strip(), body.strip()

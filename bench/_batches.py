"""Scenario 2: batches of posts through arq workers, against the old flow in sequence.

Items cycle through the three posting types, ten stocks and the twelve KOLs. With Redis,
two `autoposter worker` processes (one per core here) run the items, sharing the
backend's concurrency limit through Redis exactly as in production; without it, the
items run in this process with `run_in_process`, as `autoposter batch` would.

The ideal is the work divided by the concurrency the backend's limits allow, whichever
limit binds: the items' floors (scenario 1) over the backend's `max_concurrency`
requests at once; the completion tokens the batch used over the backend's aggregate
tokens per second, when it has such a cap (vLLM on one GPU); and never less than the
longest single floor. That ideal knows nothing of the slow tail a hosted API has, so a
second one is reported beside it: the same rule over the upstream calls' measured
durations (the calls that served variants, not a hedge's losers), which shows how much
of the gap is scheduling and how much is the backend's own spread.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import msgspec
import structlog

from bench._env import BIN, PROFILE_BACKENDS, BenchEnv, BenchError, stop_process, tail
from bench._oldflow import OldFlow
from bench._report import Table, Target, fmt, fmt_ratio, median, ratio
from bench._single import POSTING_TYPES, VARIANTS, Cell
from config import Settings
from inference.simulator import PROFILES
from posting import (
    Batches,
    BatchView,
    LocalLimiter,
    PostRequest,
    longest_first,
    run_in_process,
)
from posting._queue import BatchQueue, connect

log = structlog.get_logger("bench.batches")

STOCKS = ("2330", "2454", "2317", "2303", "2412", "2882", "2881", "1301", "2002", "2308")
KOLS = tuple(range(201, 213))
WORKERS = 2
BATCH_IDEAL_MAX = 1.2
BATCH_SPEEDUP_MIN = 20.0
_POLL_S = 0.05


class BatchRun(msgspec.Struct, kw_only=True):
    profile: str
    posts: int
    runner: str
    wall_s: float
    done: int
    failed: int
    ideal_s: float | None
    completion_tokens: int
    old_s: float | None
    old_how: str  # "measured" or how it was extrapolated
    measured_ideal_s: float | None = None  # the ideal over the calls' measured durations
    backups: int = 0  # hedged calls' backup requests

    @property
    def ours_over_ideal(self) -> float | None:
        return ratio(self.wall_s, self.ideal_s)

    @property
    def ours_over_measured(self) -> float | None:
        return ratio(self.wall_s, self.measured_ideal_s)

    @property
    def old_over_ours(self) -> float | None:
        return ratio(self.old_s, self.wall_s)


def items(count: int, backend: str) -> list[PostRequest]:
    requests = []
    for n in range(count):
        posting_type, max_words = POSTING_TYPES[n % len(POSTING_TYPES)]
        requests.append(PostRequest(stock=STOCKS[n % len(STOCKS)], kol=KOLS[n % len(KOLS)],
                                    posting_type=posting_type, max_words=max_words,
                                    variants=VARIANTS, backend=backend, actor="bench"))
    return requests


def ideal_s(floors: list[float | None], *, max_concurrency: int, tokens: int,
            tokens_per_s_cap: float) -> float | None:
    """The binding limit's time: floors over the request limit, tokens over the token
    rate cap (0: none), never less than the longest item; None without every floor."""
    if not floors or any(f is None for f in floors):
        return None
    known = [f for f in floors if f is not None]
    by_rate = tokens / tokens_per_s_cap if tokens_per_s_cap > 0 else 0.0
    return max(sum(known) / max_concurrency, by_rate, max(known))


def extrapolated_old_s(requests: list[PostRequest], cells: dict[tuple[str, str], Cell],
                       profile: str) -> float | None:
    """The old flow in sequence: the sum of its per-post medians from scenario 1."""
    total = 0.0
    for request in requests:
        per_post = cells[(profile, request.posting_type)].old_per_post_s()
        if per_post is None:
            return None
        total += per_post
    return total


async def run_batches(env: BenchEnv, cells: list[Cell], *, sizes: tuple[int, ...],
                      profiles: tuple[str, ...], measure_old: tuple[tuple[str, int], ...]
                      ) -> list[BatchRun]:
    """Every size on every profile; the old flow runs for real for `measure_old` pairs."""
    by_key = {(c.profile, c.posting_type): c for c in cells}
    pool = _WorkerPool(env) if env.redis_url else None
    runs = []
    try:
        if pool is not None:
            await pool.start(WORKERS)
        for profile in profiles:
            for size in sizes:
                runs.append(await _one(env, pool, by_key, profile, size,
                                       old_for_real=(profile, size) in measure_old))
    finally:
        if pool is not None:
            pool.stop()
    return runs


async def _one(env: BenchEnv, pool: _WorkerPool | None, cells: dict[tuple[str, str], Cell],
               profile: str, size: int, *, old_for_real: bool) -> BatchRun:
    backend = env.backend_for(profile)
    requests = items(size, backend)
    batch_id, wall_s, done, failed, tokens = await _ours(env, requests)
    floors = [median(cells[(profile, r.posting_type)].floor_s) for r in requests]
    limits = {"max_concurrency": env.settings.backends[backend].max_concurrency,
              "tokens": tokens, "tokens_per_s_cap": PROFILES[profile].aggregate_tokens_per_s}
    ideal = ideal_s(floors, **limits)
    served, backups = await _call_durations(env, batch_id)
    if old_for_real:
        old_s, how = await _old_in_sequence(env, requests, profile), "measured"
    else:
        old_s = extrapolated_old_s(requests, cells, profile)
        how = "extrapolated: sum of scenario 1's old-flow medians per item"
    runner = f"arq, {WORKERS} worker processes" if pool is not None else "in process (no Redis)"
    run = BatchRun(profile=profile, posts=size, runner=runner, wall_s=wall_s, done=done,
                   failed=failed, ideal_s=ideal, completion_tokens=tokens, old_s=old_s,
                   old_how=how, measured_ideal_s=ideal_s(served, **limits), backups=backups)
    log.info("bench.batch", profile=profile, posts=size, wall_s=round(wall_s, 2),
             done=done, failed=failed, ideal_s=run.ideal_s,
             measured_ideal_s=run.measured_ideal_s, backups=backups)
    return run


async def _call_durations(env: BenchEnv, batch_id: uuid.UUID) -> tuple[list[float | None], int]:
    """Seconds of each upstream call that served variants in the batch, and how many
    calls served none (a hedge's backup or primary that lost)."""
    async with env.service.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT c.duration_ms, cardinality(c.variants) > 0 FROM llm_calls c"
            " JOIN posts p ON p.id = c.post_id WHERE p.batch_id = %s", (batch_id,))
        rows = await cur.fetchall()
    return [ms / 1000 for ms, served in rows if served], sum(not s for _, s in rows)


async def _ours(env: BenchEnv, requests: list[PostRequest]
                ) -> tuple[uuid.UUID, float, int, int, int]:
    """Create, queue and wait for one batch; its id, wall seconds, items done, items
    failed, and the completion tokens it used."""
    service = env.service
    redis = (await connect(msgspec.structs.replace(service.settings, redis_url=env.redis_url))
             if env.redis_url else None)
    queue = BatchQueue(redis) if redis is not None else None
    batches = Batches(pool=service.pool, pipeline=service.pipeline, settings=service.settings,
                      limiter=LocalLimiter(service.settings.batches.local_concurrency),
                      **({"publish": queue.publish} if queue is not None else {}))
    try:
        started = time.perf_counter()
        view = await batches.create(requests, spec={"bench": True}, actor="bench")
        batch_id = uuid.UUID(view.batch_id)
        if queue is not None:
            await queue.enqueue(batch_id, longest_first(requests))  # as the server does
            view = await _wait(batches, batch_id)
        else:
            await run_in_process(batches, batch_id,
                                 concurrency=service.settings.batches.local_concurrency)
            view = await batches.view(batch_id)
        wall_s = time.perf_counter() - started
    finally:
        if redis is not None:
            await redis.aclose()
    counts = view.counts
    return batch_id, wall_s, counts.done, counts.failed + counts.cancelled, view.completion_tokens


async def _wait(batches: Batches, batch_id: uuid.UUID, timeout_s: float = 900.0) -> BatchView:
    deadline = time.monotonic() + timeout_s
    while True:
        view = await batches.view(batch_id)
        if view.finished_at is not None:
            return view
        if time.monotonic() > deadline:
            raise BenchError(f"batch {batch_id} did not finish in {timeout_s:g}s:"
                                  f" {msgspec.to_builtins(view.counts)}")
        await asyncio.sleep(_POLL_S)


async def _old_in_sequence(env: BenchEnv, requests: list[PostRequest], profile: str) -> float:
    backend = env.backend_for(profile)
    client = await env.service.backends.client(backend)
    old = OldFlow(base_url=env.sim_url, model=client.model, backend=backend,
                  database_url=env.database_url)
    started = time.perf_counter()
    try:
        for request in requests:
            prepared = await env.service.pipeline.prepare(request)
            await old.run(kol=request.kol, stock=prepared.stock,
                          posting_type=request.posting_type, max_words=request.max_words,
                          messages=prepared.chat.messages,
                          title_max_chars=env.settings.generation.title_max_chars)
    finally:
        await old.aclose()
    return time.perf_counter() - started


class _WorkerPool:
    """`autoposter worker` processes with the bench's environment, logging to files."""

    def __init__(self, env: BenchEnv) -> None:
        self._env = env
        self._processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    async def start(self, count: int, timeout_s: float = 60.0) -> None:
        for index in range(count):
            path = self._env.workdir / f"worker-{index}.log"
            with path.open("wb") as sink:
                process = subprocess.Popen([str(BIN / "autoposter"), "worker"],
                                           env=self._env.environ, stdout=sink, stderr=sink)
            self._processes.append((process, path))
        deadline = time.monotonic() + timeout_s
        for process, path in self._processes:
            while "worker.started" not in path.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"a worker did not start: {tail(path)}")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        for process, _ in self._processes:
            if process.poll() is None:
                process.terminate()
        for process, _ in self._processes:
            stop_process(process)


def batch_table(runs: list[BatchRun], *, settings: Settings) -> Table:
    rows = []
    for r in runs:
        per_min = 60 * r.posts / r.wall_s if r.wall_s else None
        old_per_min = 60 * r.posts / r.old_s if r.old_s else None
        rows.append([
            r.profile, str(r.posts), r.runner, f"{r.done}/{r.posts}", fmt(r.wall_s, 1),
            fmt(per_min, 1), fmt(r.ideal_s, 1), fmt_ratio(r.ours_over_ideal),
            fmt(r.measured_ideal_s, 1), fmt_ratio(r.ours_over_measured),
            fmt(r.old_s, 1) + ("" if r.old_how == "measured" else " (est.)"),
            fmt(old_per_min, 1), fmt_ratio(r.old_over_ours),
        ])
    notes = [
        "Items cycle interaction/100, analysis/200, personalized/250 with 5 variants each,"
        " over 10 stocks and 12 KOLs. Wall time runs from creating the batch to its last"
        " item being stored.",
        "Ideal: the binding one of the backend's limits: the items' floors (scenario 1)"
        " over its max_concurrency requests at once, or the completion tokens used over"
        " the profile's aggregate tokens/s, where it has a cap; never less than the"
        " longest floor.",
        "Measured ideal: the same rule over the measured durations of the upstream calls"
        " that served the batch's variants (slow tail included; a hedge's losing request"
        " left out), from the call's start to its last chunk.",
    ]
    for profile in dict.fromkeys(r.profile for r in runs):
        cap = PROFILES[profile].aggregate_tokens_per_s
        limit = settings.backends[PROFILE_BACKENDS[profile]].max_concurrency
        hedge = settings.backends[PROFILE_BACKENDS[profile]].hedge_delay_s
        notes.append(f"{profile}: max_concurrency {limit};"
                     f" aggregate cap {f'{cap:,.0f} tokens/s' if cap else 'none'};"
                     f" hedging {f'after {hedge:g} s without a first token' if hedge else 'off'}.")
    for r in runs:
        notes.append(f"{r.profile}, {r.posts} posts: {r.completion_tokens:,} completion"
                     f" tokens; hedged calls' backup requests: {r.backups}; old flow"
                     f" {r.old_how}.")
    return Table(
        title="2. Batches: arq workers vs the old flow in sequence",
        columns=["profile", "posts", "runner", "done", "ours wall s", "ours posts/min",
                 "ideal s", "ours/ideal", "measured ideal s", "ours/measured", "old wall s",
                 "old posts/min", "old/ours"],
        rows=rows, notes=notes,
    )


def batch_targets(runs: list[BatchRun]) -> list[Target]:
    targets = []
    for r in runs:
        if r.posts < 100:
            continue
        label = f"{r.posts} posts, {r.profile}"
        targets.append(Target(name=f"{label}: ours/ideal", measured=r.ours_over_ideal,
                              comparison="<=", limit=BATCH_IDEAL_MAX))
        targets.append(Target(name=f"{label}: old/ours", measured=r.old_over_ours,
                              comparison=">=", limit=BATCH_SPEEDUP_MIN))
    return targets

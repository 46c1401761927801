"""Prometheus metrics the posting domain observes: stages, tokens, dollars, posts, batches.

A finished generation is recorded once, from its outcome (`observe_post`), wherever it
ran: the CLI, a server process or a worker. Labels are limited to backend, model,
posting_type, stage, status, reason and kol; post ids, batch ids and paths never become
labels. Usage that the backend did not report is counted with `status="estimated"`,
reported usage with `status="reported"`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram
from psycopg_pool import AsyncConnectionPool

from inference import CallRecord
from inference._metrics import DURATION_BUCKETS_S, error_codes, model_label
from posting._store import NewPost, Outcome, VariantRow
from posting._text import text_length

if TYPE_CHECKING:
    from posting._pipeline import Prepared

_POST = ["backend", "model", "posting_type"]
_SPEND = ["backend", "model", "posting_type", "kol", "status"]

STAGE_DURATION = Histogram(
    "autoposter_stage_duration_seconds",
    "Time spent in each stage of a post; stage=total is end to end.",
    ["stage", *_POST], buckets=DURATION_BUCKETS_S,
)
POSTS = Counter(
    "autoposter_posts_total", "Finished posts by status; reason is the failure's code.",
    [*_POST, "kol", "status", "reason"],
)
PROMPT_TOKENS = Counter("autoposter_prompt_tokens_total", "Prompt tokens billed.", _SPEND)
COMPLETION_TOKENS = Counter(
    "autoposter_completion_tokens_total", "Completion tokens billed.", _SPEND
)
CACHED_TOKENS = Counter(
    "autoposter_cached_tokens_total", "Prompt tokens served from the backend's cache.", _SPEND
)
COST = Counter(
    "autoposter_cost_usd_total", "Cost from usage and the models.toml prices, in USD.", _SPEND
)
VARIANTS = Counter(
    "autoposter_variants_total",
    "Variants by result: passed (every check), failed (some check) or error.",
    [*_POST, "status"],
)
CHECKS = Counter(
    "autoposter_variant_checks_total", "Variant checks by name (reason) and result.",
    ["posting_type", "reason", "status"],
)
LENGTH_RATIO = Histogram(
    "autoposter_variant_length_ratio", "A variant body's length divided by max_words.",
    _POST, buckets=(0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.25, 1.5, 2.0),
)
TRUNCATIONS = Counter(
    "autoposter_variant_truncations_total", "Variants cut off by max_tokens.", _POST
)
BACKEND_FALLBACKS = Counter(
    "autoposter_backend_fallbacks_total",
    "Posts moved off the backend first chosen; reason is its error, or circuit_open.",
    ["backend", "reason"],
)

DB_POOL_CONNECTIONS = Gauge(
    "autoposter_db_pool_connections", "Open database connections.", multiprocess_mode="livesum"
)
DB_POOL_IDLE = Gauge(
    "autoposter_db_pool_idle_connections", "Open database connections not lent out.",
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "autoposter_db_pool_max_connections", "The pools' size limit.", multiprocess_mode="livesum"
)
DB_POOL_WAITING = Gauge(
    "autoposter_db_pool_waiting_requests", "Requests waiting for a connection.",
    multiprocess_mode="livesum",
)
DB_POOL_REQUESTS = Counter("autoposter_db_pool_requests_total", "Connections asked for.")
DB_POOL_WAIT = Counter(
    "autoposter_db_pool_wait_seconds_total", "Time requests spent waiting for a connection."
)

BATCH_STATES = ("queued", "running", "done", "failed", "cancelled", "skipped", "retried")
BATCH_ITEMS = Counter(
    "autoposter_batch_items_total", "Batch items reaching each state.", ["status"]
)
QUEUE_DEPTH = Gauge(
    "autoposter_queue_jobs", "Jobs waiting in the queue, as a worker last saw it.",
    multiprocess_mode="livemax",
)
JOBS_IN_PROGRESS = Gauge(
    "autoposter_jobs_in_progress", "Jobs a worker is running now.", multiprocess_mode="livesum"
)
JOB_QUEUE_WAIT = Histogram(
    "autoposter_job_queue_wait_seconds", "From a job being enqueued to a worker starting it.",
    buckets=DURATION_BUCKETS_S,
)

_REASON = re.compile(r"^([a-z_]{1,40}):")


def observe_post(prepared: Prepared, outcome: Outcome) -> None:
    """Record a finished generation: stages, posts, variants, tokens and cost."""
    model = _model_label(prepared.model, prepared)
    post = (prepared.client.name, model, prepared.request.posting_type)
    _observe_stages(post, outcome)
    POSTS.labels(*post, str(prepared.persona.serial), outcome.status,
                 failure_code(outcome.failure_reason)).inc()
    for row in outcome.variants:
        _observe_variant(post, row, max_words=prepared.request.max_words)
    TRUNCATIONS.labels(*post).inc(sum(r.finish_reason == "length" for r in outcome.variants))
    for call in outcome.calls:
        _observe_spend(call, _model_label(call.model, prepared), prepared.request.posting_type,
                       prepared.persona.serial)
    if outcome.fallback_from is not None:
        BACKEND_FALLBACKS.labels(outcome.fallback_from,
                                 _fallback_reason(outcome.fallback_from, outcome.calls)).inc()


def observe_unstarted(post: NewPost, *, configured_model: str, reason: str) -> None:
    """Record an accepted request that failed before any backend was called."""
    model = model_label(post.model, configured=configured_model)
    POSTS.labels(post.backend, model, post.posting_type, str(post.kol_serial), "failed",
                 failure_code(reason)).inc()


def _model_label(model: str, prepared: Prepared) -> str:
    """Only a model typed into the request could mint series, so only it is screened;
    the others come from configuration (a backend's default, a KOL's model)."""
    if model != prepared.request.model:
        return model
    return model_label(model, configured=prepared.client.model)


def _fallback_reason(backend: str, calls: list[CallRecord]) -> str:
    errors = [call.error for call in calls if call.backend == backend and call.error]
    return errors[0] if errors else "circuit_open"


def failure_code(reason: str | None) -> str:
    """A failure reason as a label: the code before the colon, from a closed set."""
    if reason is None:
        return "none"
    match = _REASON.match(reason)
    if match is None:
        return "no_usable_variant"
    code = match.group(1)
    return code if code in error_codes() or code in ("timeout", "cancelled") else "other"


def _observe_stages(post: tuple[str, str, str], outcome: Outcome) -> None:
    for stage, ms in outcome.timings_ms.items():
        STAGE_DURATION.labels(stage, *post).observe(ms / 1000)
    if outcome.calls:
        waited_ms = max(call.queue_ms for call in outcome.calls)
        STAGE_DURATION.labels("queue_wait", *post).observe(waited_ms / 1000)


def _observe_variant(post: tuple[str, str, str], row: VariantRow, *, max_words: int) -> None:
    for check in row.checks:
        CHECKS.labels(post[2], check.name, "passed" if check.passed else "failed").inc()
    if row.error is not None:
        status = "error"
    else:
        status = "passed" if all(check.passed for check in row.checks) else "failed"
    VARIANTS.labels(*post, status).inc()
    if row.body:
        LENGTH_RATIO.labels(*post).observe(text_length(row.body) / max_words)


def _observe_spend(call: CallRecord, model: str, posting_type: str, kol: int) -> None:
    usage = call.usage
    labels = (call.backend, model, posting_type, str(kol),
              "estimated" if usage.estimated else "reported")
    PROMPT_TOKENS.labels(*labels).inc(usage.prompt_tokens)
    COMPLETION_TOKENS.labels(*labels).inc(usage.completion_tokens)
    CACHED_TOKENS.labels(*labels).inc(usage.cached_tokens)
    COST.labels(*labels).inc(call.cost_usd)


class _PoolSampler:
    """Turns `pool.get_stats()` into gauges and counters, by differences, so that several
    pools in one process add up instead of overwriting each other."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._seen: dict[str, int] = {}

    def sample(self) -> None:
        stats = self._pool.get_stats()
        for key, gauge in _POOL_GAUGES.items():
            gauge.inc(self._delta(stats, key))
        DB_POOL_REQUESTS.inc(self._delta(stats, "requests_num"))
        DB_POOL_WAIT.inc(self._delta(stats, "requests_wait_ms") / 1000)

    def withdraw(self) -> None:
        """Take this pool's share out of the gauges; its counters stay."""
        for key, gauge in _POOL_GAUGES.items():
            gauge.dec(self._seen.pop(key, 0))

    def _delta(self, stats: dict[str, int], key: str) -> int:
        value = stats.get(key, 0)
        delta = value - self._seen.get(key, 0)
        self._seen[key] = value
        return delta


_POOL_GAUGES = {
    "pool_size": DB_POOL_CONNECTIONS,
    "pool_available": DB_POOL_IDLE,
    "pool_max": DB_POOL_MAX,
    "requests_waiting": DB_POOL_WAITING,
}


@asynccontextmanager
async def watch_pool(pool: AsyncConnectionPool, *, every_s: float = 2.0) -> AsyncIterator[None]:
    """Sample the pool's statistics every `every_s` seconds while the context is open."""
    sampler = _PoolSampler(pool)

    async def loop() -> None:
        while True:
            sampler.sample()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop(), name="db-pool-metrics")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sampler.withdraw()


def record_batch_item(state: str) -> None:
    """Count one batch item reaching `state`, one of BATCH_STATES."""
    if state not in BATCH_STATES:
        raise ValueError(f"batch item state {state!r} is not one of {', '.join(BATCH_STATES)}")
    BATCH_ITEMS.labels(state).inc()


def set_queue_depth(jobs: int) -> None:
    """How many jobs wait in the queue, as this worker sees it now."""
    QUEUE_DEPTH.set(jobs)


def observe_job_wait(seconds: float) -> None:
    """Seconds between a job's enqueueing and a worker starting it."""
    JOB_QUEUE_WAIT.observe(max(seconds, 0.0))


@contextmanager
def job_in_progress() -> Iterator[None]:
    """Wrap one job's execution: it counts as in progress until the block exits."""
    with JOBS_IN_PROGRESS.track_inprogress():
        yield


def start_batch_series() -> None:
    """Create every batch state's series at zero, so that rates show 0 before any item."""
    for state in BATCH_STATES:
        BATCH_ITEMS.labels(state)

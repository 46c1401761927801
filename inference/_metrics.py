"""Prometheus metrics observed by the inference layer: one upstream call at a time.

Labels stay few and bounded. `backend` is a configured backend name; `model` goes
through `model_label`, so a model typed into a request cannot mint new series;
`reason` is an `LLMError.code` or a usage fallback; `status` is a call's outcome.
Gauges add up over live processes when prometheus-client runs in multiprocess mode.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from config import model_catalog
from inference._errors import LLMError
from inference._types import CallRecord

# Fine below a second (from 5 ms), reaching ten minutes, so that p99 of a long
# generation is not flattened into the last bucket.
DURATION_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0,
    5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 450.0, 600.0,
)
_GAP_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
# Ways of counting usage other than the backend's final usage chunk.
FALLBACK_REASONS = ("usage_running", "usage_estimated")
# A hedge is started, then won or lost (started = won + lost); skipped: it was due, but
# no concurrency slot was free.
HEDGE_STATUSES = ("started", "won", "lost", "skipped")

TIME_TO_FIRST_TOKEN = Histogram(
    "autoposter_llm_time_to_first_token_seconds",
    "From the start of an upstream call (slot wait and retries included) to its first text.",
    ["backend", "model"], buckets=DURATION_BUCKETS_S,
)
INTER_TOKEN = Histogram(
    "autoposter_llm_inter_token_latency_seconds",
    "Gap between two text deltas of the same variant, as received.",
    ["backend", "model"], buckets=_GAP_BUCKETS_S,
)
REQUESTS = Counter(
    "autoposter_llm_requests_total",
    "Upstream calls finished, by status: ok, error or cancelled.",
    ["backend", "model", "status"],
)
ERRORS = Counter(
    "autoposter_llm_errors_total", "Upstream calls that ended in an error, by its code.",
    ["backend", "model", "reason"],
)
RETRIES = Counter(
    "autoposter_llm_retries_total", "Attempts to open a stream that were tried again.",
    ["backend", "model", "reason"],
)
USAGE_FALLBACKS = Counter(
    "autoposter_llm_usage_fallbacks_total",
    "Calls whose usage was not taken from a final usage chunk: running counts or estimated.",
    ["backend", "model", "reason"],
)
HEDGES = Counter(
    "autoposter_llm_hedges_total",
    "Backup requests for calls whose first token was late, by status: started, then won"
    " (the backup served the call) or lost; skipped when no slot was free.",
    ["backend", "model", "status"],
)
WAITING = Gauge(
    "autoposter_llm_waiting_requests",
    "Upstream calls waiting for one of the backend's concurrency slots.",
    ["backend"], multiprocess_mode="livesum",
)
RUNNING = Gauge(
    "autoposter_llm_running_requests", "Upstream calls holding a slot.",
    ["backend"], multiprocess_mode="livesum",
)


def model_label(model: str, *, configured: str) -> str:
    """The model as a label: the backend's own or a priced one, else `other`."""
    if model == configured or model in model_catalog().models:
        return model
    return "other"


def error_codes() -> list[str]:
    """Every LLMError code, so that error series exist (at zero) before the first error."""
    codes, pending = set(), [LLMError]
    while pending:
        kind = pending.pop()
        codes.add(kind.code)
        pending.extend(kind.__subclasses__())
    return sorted(codes)


def start_backend(backend: str, model: str) -> None:
    """Create a backend's series at zero, so that rates and ratios show 0, not nothing."""
    for reason in error_codes():
        ERRORS.labels(backend, model, reason)
        RETRIES.labels(backend, model, reason)
    for reason in FALLBACK_REASONS:
        USAGE_FALLBACKS.labels(backend, model, reason)
    for status in HEDGE_STATUSES:
        HEDGES.labels(backend, model, status)
    WAITING.labels(backend)
    RUNNING.labels(backend)


def observe_call(record: CallRecord, *, model: str, status: str, usage_source: str) -> None:
    """Record one finished upstream call; `model` is already a label."""
    labels = (record.backend, model)
    REQUESTS.labels(*labels, status).inc()
    if record.error is not None:
        ERRORS.labels(*labels, record.error).inc()
    if record.ttft_ms is not None:
        TIME_TO_FIRST_TOKEN.labels(*labels).observe(record.ttft_ms / 1000)
    if usage_source in ("running", "estimated"):
        USAGE_FALLBACKS.labels(*labels, f"usage_{usage_source}").inc()


def count_retry(backend: str, model: str, reason: str) -> None:
    RETRIES.labels(backend, model, reason).inc()


def count_hedge(backend: str, model: str, status: str) -> None:
    HEDGES.labels(backend, model, status).inc()

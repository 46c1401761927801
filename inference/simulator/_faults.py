"""Injected faults: which one a request gets, and the error bodies OpenAI would send.

A request picks its fault, first match wins:

1. `X-Sim-Fail-First: K` with `X-Sim-Key: <key>`: the first K requests carrying that
   key get the fault named by `X-Sim-Fault` (429 when absent); later ones succeed. One
   counter per key for the server's lifetime, so use a fresh key per test. Without
   `X-Sim-Key` all such requests share the key "".
2. `X-Sim-Fault: <kind>` or the query parameter `?fault=<kind>`; `none` forces success.
3. The server's configured `fault_rates` ({kind: probability}), drawn per request.

Kinds: `429` (rate_limit_exceeded with Retry-After), `quota` (429 insufficient_quota),
`500` (server_error), and three that strike after some tokens have streamed:
`midstream` (an `error` event, then the body ends), `stall` (silence, then the rest),
`truncate` (the body ends with no finish chunk and no [DONE]). Tuning headers:
`X-Sim-Fault-After` (the fault strikes after the first chunk that
reaches this many tokens, counted over all choices), `X-Sim-Stall-S` (seconds of
silence), `X-Sim-Retry-After` (seconds in Retry-After; fractions add retry-after-ms).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

import msgspec

from inference.simulator._wire import ErrorBody, ErrorEnvelope

FAULT_KINDS = ("429", "quota", "500", "midstream", "stall", "truncate")
UPFRONT_FAULTS = frozenset({"429", "quota", "500"})


class FaultHeaderError(ValueError):
    """A simulator control header or parameter holds a value it cannot use."""


class FaultDefaults(msgspec.Struct, frozen=True, kw_only=True):
    rates: dict[str, float] = msgspec.field(default_factory=dict)
    after_tokens: int = 12
    stall_s: float = 30.0
    retry_after_s: float = 1.0


class FaultPlan(msgspec.Struct, frozen=True, kw_only=True):
    kind: str | None
    after_tokens: int
    stall_s: float
    retry_after_s: float


def check_rates(rates: Mapping[str, float]) -> None:
    """Refuse unknown kinds and rates that cannot be probabilities."""
    for kind, rate in rates.items():
        _check_kind(kind, "fault_rates")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault_rates[{kind!r}] is {rate}; use a probability in 0..1")
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError("fault_rates add up to more than 1; lower some of them")


def plan_fault(
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    defaults: FaultDefaults,
    attempts: dict[str, int],
    rng: random.Random,
) -> FaultPlan:
    """Decide this request's fault from its headers, the query and the server's rates."""
    explicit = headers.get("x-sim-fault") or query.get("fault")
    if explicit is not None and explicit != "none":
        _check_kind(explicit, "X-Sim-Fault")
    fail_first = headers.get("x-sim-fail-first")
    if fail_first is not None:
        key = headers.get("x-sim-key", "")
        attempts[key] = attempts.get(key, 0) + 1
        limit = _number(fail_first, "X-Sim-Fail-First", int)
        kind = (explicit or "429") if attempts[key] <= limit else None
    elif explicit is not None:
        kind = explicit
    else:
        kind = _draw(defaults.rates, rng)
    return FaultPlan(
        kind=None if kind == "none" else kind,
        after_tokens=int(_number(headers.get("x-sim-fault-after"), "X-Sim-Fault-After", int,
                                 defaults.after_tokens)),
        stall_s=_number(headers.get("x-sim-stall-s"), "X-Sim-Stall-S", float,
                        defaults.stall_s),
        retry_after_s=_number(headers.get("x-sim-retry-after"), "X-Sim-Retry-After", float,
                              defaults.retry_after_s),
    )


def upfront_error(plan: FaultPlan, model: str) -> tuple[int, dict[str, str], ErrorEnvelope]:
    """Status, headers and body for a fault answered before any streaming starts."""
    if plan.kind == "429":
        return 429, _retry_headers(plan.retry_after_s), ErrorEnvelope(ErrorBody(
            f"Rate limit reached for {model or 'the model'} (simulated): requests per "
            f"minute used up. Retry after {plan.retry_after_s:g}s.",
            "requests", None, "rate_limit_exceeded"))
    if plan.kind == "quota":
        return 429, {}, ErrorEnvelope(ErrorBody(
            "You exceeded your current quota (simulated); add credit before retrying.",
            "insufficient_quota", None, "insufficient_quota"))
    return 500, {}, midstream_error()


def midstream_error() -> ErrorEnvelope:
    return ErrorEnvelope(ErrorBody(
        "The simulated server had an error while processing your request. Retry it.",
        "server_error"))


def invalid_request(message: str, param: str | None = None) -> ErrorEnvelope:
    return ErrorEnvelope(ErrorBody(message, "invalid_request_error", param, None))


def _retry_headers(retry_after_s: float) -> dict[str, str]:
    headers = {"retry-after": str(max(0, math.ceil(retry_after_s))),
               "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": f"{retry_after_s:g}s"}
    if retry_after_s != int(retry_after_s):
        headers["retry-after-ms"] = str(round(retry_after_s * 1000))
    return headers


def _draw(rates: Mapping[str, float], rng: random.Random) -> str | None:
    if not rates:
        return None
    point = rng.random()
    for kind, rate in rates.items():
        if point < rate:
            return kind
        point -= rate
    return None


def _check_kind(kind: str, where: str) -> None:
    if kind not in FAULT_KINDS:
        raise FaultHeaderError(
            f"{where}: unknown fault {kind!r}; use one of {', '.join(FAULT_KINDS)} or none")


def _number(raw: str | None, name: str, kind: type[int] | type[float],
            default: float = 0) -> float:
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise FaultHeaderError(f"{name}: {raw!r} is not a number") from None
    if value < 0:
        raise FaultHeaderError(f"{name}: {raw!r} is negative; use 0 or more")
    return value

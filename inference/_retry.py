"""The retry policy for opening a stream: tenacity, with `Retry-After` honoured."""

from __future__ import annotations

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from config._settings import Retries
from inference._errors import LLMError


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, LLMError) and exc.retryable


class _WaitRetryAfter:
    """Wait what the server asked for; otherwise back off exponentially with jitter."""

    def __init__(self, policy: Retries) -> None:
        self._cap = policy.max_backoff_s
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial_backoff_s,
            max=policy.max_backoff_s,
            jitter=policy.initial_backoff_s,
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after_s", None)
        if asked is not None:
            return min(asked, self._cap)
        return self._backoff(state)


def retrying(policy: Retries) -> AsyncRetrying:
    """A fresh retry controller; only LLMErrors marked retryable are tried again."""
    return AsyncRetrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(policy.attempts),
        wait=_WaitRetryAfter(policy),
        reraise=True,
    )

"""Errors raised by the inference layer.

    LLMError                 base; `code` is a short, stable reason for storage and metrics
    ├── LLMTimeout           connect, idle (silence between chunks) or deadline
    ├── RateLimited          429 that may be retried after a wait
    ├── QuotaExceeded        429 `insufficient_quota`: waiting does not help
    ├── UpstreamError        5xx, a refused connection, or an error sent mid-stream
    ├── BadRequest           any other 4xx: the request itself is wrong (context too long…)
    └── StreamBroken         the stream stopped without a finish_reason, or mid-event

openai SDK exceptions are mapped into this tree at the boundary (`from_openai`), with
the original chained as the cause.
"""

from __future__ import annotations

import httpx
import openai


class LLMError(Exception):
    code = "llm_error"
    retryable = False

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LLMTimeout(LLMError):
    code = "timeout"
    retryable = True


class RateLimited(LLMError):
    code = "rate_limited"
    retryable = True


class QuotaExceeded(LLMError):
    code = "insufficient_quota"


class UpstreamError(LLMError):
    code = "upstream_error"
    retryable = True


class BadRequest(LLMError):
    code = "bad_request"


class StreamBroken(LLMError):
    code = "stream_broken"


def from_openai(exc: Exception) -> LLMError:
    """Map an openai SDK (or decoding) exception to our most specific error."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout(f"upstream timed out: {exc}")
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError(f"cannot reach the backend: {exc}")
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc)
    if isinstance(exc, openai.APIError):  # an error event inside a 200 stream
        return UpstreamError(f"backend failed mid-stream: {exc.message}")
    if isinstance(exc, UnicodeDecodeError):
        return StreamBroken("stream cut off inside a character")
    if isinstance(exc, httpx.TimeoutException):  # raised while iterating a stream
        return LLMTimeout(f"no chunk from the backend within the idle timeout ({exc!r})")
    if isinstance(exc, httpx.RemoteProtocolError):
        return StreamBroken(f"the backend closed the stream mid-response: {exc}")
    if isinstance(exc, httpx.HTTPError):
        return UpstreamError(f"the stream failed: {exc!r}")
    return LLMError(f"{type(exc).__name__}: {exc}")


def _from_status(exc: openai.APIStatusError) -> LLMError:
    status = exc.status_code
    message = f"HTTP {status}: {_error_message(exc)}"
    if status == 429:
        if _error_code(exc) == "insufficient_quota":
            return QuotaExceeded(message)
        return RateLimited(message, retry_after_s=retry_after_s(exc.response.headers))
    if status >= 500:
        return UpstreamError(message, retry_after_s=retry_after_s(exc.response.headers))
    if status in (408, 409):
        return UpstreamError(message)
    return BadRequest(message)


def _error_body(exc: openai.APIStatusError) -> dict:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return body if isinstance(body, dict) else {}


def _error_code(exc: openai.APIStatusError) -> str | None:
    error = _error_body(exc)
    return error.get("code") or error.get("type")


def _error_message(exc: openai.APIStatusError) -> str:
    return str(_error_body(exc).get("message") or exc.message)


def retry_after_s(headers: object) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds only), when present."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = get(name)
        if value is None:
            continue
        try:
            return max(float(value) * scale, 0.0)
        except ValueError:
            continue  # an HTTP date; the backoff policy takes over
    return None

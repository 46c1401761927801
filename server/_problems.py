"""Every 4xx and 5xx as RFC 9457 problem+json, naming the field at fault when there is one."""

from __future__ import annotations

import re
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from posting import Conflict, InvalidRequest, NotFound, TransitionNotAllowed, UnknownStock

log = structlog.get_logger("server.problems")

PROBLEM_JSON = "application/problem+json"
_MSGSPEC_PATH = re.compile(r"at `\$\.([^`\[]+)")
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
# Litestar's own wording for a query, header or path parameter left out.
_MISSING_PARAMETER = re.compile(r"Missing required \w+ parameter '([^']+)'")


class Problem(HTTPException):
    """An HTTP error we raise on purpose, with a stable `code` and an optional field."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(status_code=status, detail=detail)
        self.code = code
        self.field = field
        self.extra = extra or {}


def problem_response(status: int, code: str, detail: str, *, field: str | None = None,
                     extra: dict[str, Any] | None = None,
                     headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": f"urn:autoposter:problem:{code}", "title": _title(code),
                            "status": status, "detail": detail}
    if field is not None:
        body["field"] = field
    body.update(extra or {})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def on_invalid_request(_: Request, exc: InvalidRequest) -> Response:
    extra = {"suggestions": exc.suggestions} if isinstance(exc, UnknownStock) else None
    return problem_response(422, "invalid_request", str(exc), field=exc.field, extra=extra)


def on_not_found(_: Request, exc: NotFound) -> Response:
    return problem_response(404, "not_found", str(exc), field=exc.field)


def on_conflict(_: Request, exc: Conflict) -> Response:
    code = "transition_not_allowed" if isinstance(exc, TransitionNotAllowed) else "conflict"
    return problem_response(409, code, str(exc), field=exc.field)


def on_problem(_: Request, exc: Problem) -> Response:
    return problem_response(exc.status_code, exc.code, exc.detail, field=exc.field,
                            extra=exc.extra)


def on_validation(_: Request, exc: ValidationException) -> Response:
    """Malformed JSON or a wrongly typed, unknown or missing field, as msgspec reports it."""
    items = exc.extra if isinstance(exc.extra, list) else []
    first = items[0] if items and isinstance(items[0], dict) else {}
    detail = str(first.get("message") or exc.detail)
    field = _field_of(detail) or (first.get("key") if first.get("key") != "data" else None)
    return problem_response(400, "malformed_request", detail, field=field or "body")


def _field_of(message: str) -> str | None:
    if match := _MSGSPEC_PATH.search(message):
        return match.group(1)
    if match := _NAMED_FIELD.search(message):
        return match.group(1)
    if match := _MISSING_PARAMETER.search(message):
        return match.group(1)
    return None


def on_http(_: Request, exc: HTTPException) -> Response:
    code = {400: "malformed_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
    # A bare 400 from Litestar is a body it could not decode (truncated or not JSON).
    field = "body" if exc.status_code == 400 else None
    headers = exc.headers or None
    return problem_response(exc.status_code, code, str(exc.detail), field=field,
                            headers=headers)


def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("request.crashed", path=request.url.path, method=request.method)
    return problem_response(500, "internal_error", "the server failed; the error is logged")


HANDLERS = {
    InvalidRequest: on_invalid_request,
    NotFound: on_not_found,
    Conflict: on_conflict,
    Problem: on_problem,
    ValidationException: on_validation,
    HTTPException: on_http,
    Exception: on_unexpected,
}

__all__ = ["HANDLERS", "PROBLEM_JSON", "Problem", "problem_response"]

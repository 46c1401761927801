"""Builds OpenAI-style chat-completion SSE bodies for pytest-httpx callbacks.

The recorded fixtures in ../shared cover the wire quirks; this makes bodies with the
text a test needs (the right stock named, a chosen length), in the same format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx


def sse_body(
    texts: Sequence[str],
    *,
    finish: Sequence[str | None] | str | None = "stop",
    usage: bool = True,
    prompt_tokens: int = 120,
    chunk_chars: int = 4,
) -> bytes:
    """Interleave choices chunk by chunk; a None finish leaves that choice unfinished."""
    finishes = [finish] * len(texts) if isinstance(finish, str) or finish is None else finish
    pieces = [[t[i:i + chunk_chars] for i in range(0, len(t), chunk_chars)] for t in texts]
    events = []
    for step in range(max((len(p) for p in pieces), default=0)):
        for index, parts in enumerate(pieces):
            if step < len(parts):
                events.append(_chunk(index, {"content": parts[step]}, None))
    for index, reason in enumerate(finishes):
        if reason is not None:
            events.append(_chunk(index, {}, reason))
    if usage and all(f is not None for f in finishes):
        completion = sum(len(t) for t in texts)
        events.append({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1,
                       "model": "test", "choices": [],
                       "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                                 "total_tokens": prompt_tokens + completion}})
    lines = [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events]
    if all(f is not None for f in finishes):
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def _chunk(index: int, delta: dict, finish: str | None) -> dict:
    return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1,
            "model": "test",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def sse_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def request_n(request: httpx.Request) -> int:
    return json.loads(request.content).get("n", 1)

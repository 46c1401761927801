"""LLM backends behind one streaming interface (OpenAI, vLLM, the bundled llama.cpp)."""

from inference._backends import BackendUnavailable, Backends
from inference._client import LLMClient, VariantStream
from inference._errors import (
    BadRequest,
    LLMError,
    LLMTimeout,
    QuotaExceeded,
    RateLimited,
    StreamBroken,
    UpstreamError,
)
from inference._hedge import Release, SpareSlot, spare_capacity
from inference._local import LocalServer, bundled_gguf
from inference._tokens import estimate_tokens, max_tokens_for
from inference._types import (
    CallFinished,
    CallRecord,
    ChatRequest,
    Message,
    StreamEvent,
    TextDelta,
    Usage,
    VariantFailed,
    VariantFinished,
)

__all__ = [
    "BackendUnavailable",
    "Backends",
    "BadRequest",
    "CallFinished",
    "CallRecord",
    "ChatRequest",
    "LLMClient",
    "LLMError",
    "LLMTimeout",
    "LocalServer",
    "Message",
    "QuotaExceeded",
    "RateLimited",
    "Release",
    "SpareSlot",
    "StreamBroken",
    "StreamEvent",
    "TextDelta",
    "UpstreamError",
    "Usage",
    "VariantFailed",
    "VariantFinished",
    "VariantStream",
    "bundled_gguf",
    "estimate_tokens",
    "max_tokens_for",
    "spare_capacity",
]

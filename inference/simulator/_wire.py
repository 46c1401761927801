"""The OpenAI chat-completion shapes the simulator reads and writes, as msgspec Structs.

Request bodies ignore fields they do not know (clients send `stop`, `user`, `logprobs`
and more); only what the simulator acts on is declared. Chunks follow vLLM's layout:
one choice per chunk, `logprobs: null`, and a `usage` key only when the client asked
for usage (`null` on ordinary chunks unless `continuous_usage_stats` is on).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType


class ContentPart(msgspec.Struct):
    type: str = "text"
    text: str = ""


class ChatMessage(msgspec.Struct):
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(msgspec.Struct):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class ChatCompletionRequest(msgspec.Struct, kw_only=True):
    messages: list[ChatMessage]
    model: str = ""
    n: int = 1
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @property
    def token_cap(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None \
            else self.max_tokens

    def prompt_text(self) -> str:
        """The last user message: where the stock and the length limit are asked for."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return "\n".join(m.text() for m in self.messages)


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Delta(msgspec.Struct):
    role: str | UnsetType = UNSET
    content: str | UnsetType = UNSET


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    logprobs: None = None
    finish_reason: str | None = None


class Chunk(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None | UnsetType = UNSET


class AssistantMessage(msgspec.Struct):
    content: str
    role: str = "assistant"


class Choice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class Completion(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


class ModelCard(msgspec.Struct):
    id: str
    created: int
    object: str = "model"
    owned_by: str = "simulator"


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: str = "list"


ENCODER = msgspec.json.Encoder()
REQUEST_DECODER = msgspec.json.Decoder(ChatCompletionRequest)


def sse(payload: msgspec.Struct) -> bytes:
    """One server-sent event carrying `payload` as JSON."""
    return b"data: " + ENCODER.encode(payload) + b"\n\n"


DONE = b"data: [DONE]\n\n"

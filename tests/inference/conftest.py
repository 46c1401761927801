"""Fakes for the inference tests: fixture streams served at the httpx transport.

The SSE bodies live in ../shared/fixtures/llm-streams next to the repository root;
the llama.cpp ones were recorded, the rest were written to copy each wire format.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from config import Backend, model_catalog
from config._settings import Retries, Timeouts
from inference import (
    CallRecord,
    ChatRequest,
    LLMClient,
    LLMError,
    Message,
    StreamEvent,
    TextDelta,
    VariantFailed,
    VariantFinished,
)

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "llm-streams"
BASE_URL = "http://llm.test/v1"
COMPLETIONS_URL = BASE_URL + "/chat/completions"
QWEN = "Qwen/Qwen2.5-7B-Instruct"
FAST_RETRIES = Retries(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


@dataclass
class Streamed:
    """Everything one `client.stream(...)` produced, read to the end."""

    events: list[StreamEvent]
    records: list[CallRecord]

    def texts(self) -> dict[int, str]:
        joined: dict[int, str] = {}
        for event in self.events:
            if isinstance(event, TextDelta):
                joined[event.variant] = joined.get(event.variant, "") + event.text
        return joined

    def finish_reasons(self) -> dict[int, str]:
        return {e.variant: e.finish_reason for e in self.events
                if isinstance(e, VariantFinished)}

    def failures(self) -> dict[int, LLMError]:
        return {e.variant: e.error for e in self.events if isinstance(e, VariantFailed)}


def chat_request(n: int = 1, **overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {"n": n, "max_tokens": 64, "temperature": 0.9, "top_p": 0.95,
                              "seed": 7, **overrides}
    messages = (Message("system", "你是散戶投資人。"), Message("user", "聊聊台積電。"))
    return ChatRequest(messages=messages, **fields)


def sse_response(name: str) -> httpx.Response:
    body = (FIXTURES / name).read_bytes()
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def json_response(name: str) -> httpx.Response:
    """A `.json` fixture: a `{status, headers, body}` wrapper (the 429 and 500 files), or
    a recorded llama.cpp body whose status and headers sit in its `.meta.json`."""
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if "status" in data and "body" in data:
        body = json.dumps(data["body"]).encode()
        return httpx.Response(data["status"], headers=data["headers"], content=body)
    meta = json.loads((FIXTURES / f"{name.removesuffix('.json')}.meta.json").read_bytes())
    content_type = meta["response"]["headers"]["content-type"]
    return httpx.Response(meta["response"]["status"], headers={"content-type": content_type},
                          content=(FIXTURES / name).read_bytes())


@pytest.fixture
def meta() -> Callable[[str], dict[str, Any]]:
    """The `.meta.json` beside a fixture: the request it stands for and what it holds."""
    def read(name: str) -> dict[str, Any]:
        return json.loads((FIXTURES / f"{name}.meta.json").read_text(encoding="utf-8"))
    return read


@pytest.fixture
def serve(httpx_mock: HTTPXMock) -> Callable[..., None]:
    """Queue one fixture file as the answer to the next chat-completions request."""
    def add(name: str, **options: Any) -> None:
        response = sse_response(name) if name.endswith(".sse") else json_response(name)
        httpx_mock.add_response(url=COMPLETIONS_URL, method="POST",
                                status_code=response.status_code,
                                headers=dict(response.headers), content=response.content,
                                **options)
    return add


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., LLMClient]]:
    clients: list[LLMClient] = []

    def make(*, kind: str = "vllm", model: str = QWEN, base_url: str = BASE_URL,
             retries: Retries = FAST_RETRIES, **capabilities: Any) -> LLMClient:
        backend = Backend(kind=kind, base_url=base_url, model=model, **capabilities)
        client = LLMClient(name=kind, backend=backend, base_url=base_url, api_key=None,
                           card=model_catalog().card(model), timeouts=Timeouts(),
                           retries=retries)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def serve_by_seed(httpx_mock: HTTPXMock) -> Callable[[dict[int, str]], None]:
    """Answer concurrent requests by their `seed`, so each call gets its own stream."""
    def add(streams: dict[int, str]) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            return sse_response(streams[json.loads(request.content)["seed"]])
        httpx_mock.add_callback(answer, url=COMPLETIONS_URL, method="POST", is_reusable=True)
    return add


@pytest.fixture
def sent_bodies(httpx_mock: HTTPXMock) -> Callable[[], list[dict[str, Any]]]:
    """The JSON bodies of every request sent so far, oldest first."""
    return lambda: [json.loads(r.content) for r in httpx_mock.get_requests()]


@pytest.fixture
def chat() -> Callable[..., ChatRequest]:
    """A ChatRequest for `n` variants: seed 7 and explicit sampling unless overridden."""
    return chat_request


@pytest.fixture
def collect() -> Callable[..., Awaitable[Streamed]]:
    """Stream `n` variants from a client to the end and keep every event and record."""
    async def run(client: LLMClient, n: int = 1, **overrides: Any) -> Streamed:
        async with client.stream(chat_request(n, **overrides)) as stream:
            events = [event async for event in stream.events()]
        return Streamed(events, stream.records)
    return run


@dataclass
class HangingServer:
    base_url: str
    closed: asyncio.Event


@pytest.fixture
async def hanging_server() -> AsyncIterator[Callable[[bytes], Awaitable[HangingServer]]]:
    """A loopback HTTP server that sends some SSE bytes, then waits for the client to go."""
    servers: list[asyncio.Server] = []

    async def start(first_events: bytes) -> HangingServer:
        closed = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")
            writer.write(b"%x\r\n%s\r\n" % (len(first_events), first_events))
            await writer.drain()
            while await reader.read(65536):
                pass  # the rest of the request body; b"" means the client hung up
            closed.set()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return HangingServer(f"http://127.0.0.1:{port}/v1", closed)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@dataclass
class Script:
    """One answer of the scripted server: `head` at once, then `tail` when `gate` opens;
    with `silent`, not even the status line comes before the gate opens."""

    head: bytes = b""
    tail: bytes = b""
    gate: asyncio.Event | None = None
    silent: bool = False


@dataclass
class Received:
    body: dict[str, Any]
    arrived: float  # time.monotonic() when the request was read
    hung_up: asyncio.Event  # the client closed the connection before the answer ended


@dataclass
class ScriptedServer:
    """A loopback SSE server answering the n-th request with the n-th Script."""

    base_url: str
    received: list[Received]  # since the last `forget`

    def forget(self) -> None:
        """Drop what was received so far (a warm-up); scripts keep their order."""
        self.received.clear()

    async def requests(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        """Wait until `count` requests have arrived."""
        async with asyncio.timeout(timeout_s):
            while len(self.received) < count:
                await asyncio.sleep(0.005)
        return self.received


@pytest.fixture
async def scripted_server() -> AsyncIterator[Callable[[list[Script]], Awaitable[ScriptedServer]]]:
    servers: list[asyncio.Server] = []

    async def start(scripts: list[Script]) -> ScriptedServer:
        received: list[Received] = []
        served = iter(scripts)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            found = re.search(rb"(?i)content-length: *(\d+)", head)
            length = int(found.group(1)) if found else 0
            request = Received(json.loads(await reader.readexactly(length)),
                               time.monotonic(), asyncio.Event())
            script = next(served)
            received.append(request)
            status = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                      b"connection: close\r\ntransfer-encoding: chunked\r\n\r\n")
            if not script.silent:
                writer.write(status)
                _write_chunk(writer, script.head)
                await writer.drain()
            hang_up = asyncio.ensure_future(reader.read())  # b"": the client went away
            gate = asyncio.ensure_future(script.gate.wait() if script.gate else asyncio.sleep(0))
            await asyncio.wait({hang_up, gate}, return_when=asyncio.FIRST_COMPLETED)
            if hang_up.done():
                request.hung_up.set()
            else:
                if script.silent:
                    writer.write(status)
                _write_chunk(writer, script.tail)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            gate.cancel()
            hang_up.cancel()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return ScriptedServer(f"http://127.0.0.1:{port}/v1", received)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    if data:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))

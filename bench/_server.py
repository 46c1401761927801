"""Scenarios 3 and 4: what the server adds to a generation, and what 100 streams cost.

The server is `autoposter serve`, a process of its own, so its CPU time and memory are
read from /proc for it alone. Overhead uses the `instant` profile, where the backend
takes next to no time, so what remains is ours: the same prompt with five variants is
streamed straight through the inference client, then through `POST /v1/posts` as SSE,
alternately. Memory holds 100 streams open at once on the `gpt-4o-mini` profile, whose
posts take seconds, and samples the server's resident set meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import structlog

from bench._env import BIN, BenchEnv, BenchError, free_port, stop_process, wait_http
from bench._report import Table, Target, fmt, percentile
from inference import ChatRequest, LLMClient, TextDelta
from posting import PostRequest

log = structlog.get_logger("bench.server")

SERVER_ADDED_P50_MAX_MS = 5.0
STREAMS_RSS_MAX_MB = 300.0
MEMORY_PROFILE = "gpt-4o-mini"
BODY = {"stock": "2330", "kol": 208, "posting_type": "interaction", "max_words": 100,
        "variants": 5}
# Overhead: short posts on a backend with a real first-token delay, as vLLM would have.
OVERHEAD_PROFILE = "vllm-h200"
OVERHEAD_BODY = {**BODY, "max_words": 30}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Overhead(msgspec.Struct, kw_only=True):
    pairs: int
    direct_ttft_ms: list[float]
    server_ttft_ms: list[float]
    direct_done_ms: list[float]
    server_done_ms: list[float]
    added_ttft_ms: list[float]  # per post: client TTFT less the server's upstream TTFT
    events: int = 0
    events_wall_s: float = 0.0
    server_cpu_s: float = 0.0

    def added_ms(self, which: str, share: float) -> float | None:
        if which == "ttft":
            return percentile(self.added_ttft_ms, share)
        server = percentile(getattr(self, f"server_{which}_ms"), share)
        direct = percentile(getattr(self, f"direct_{which}_ms"), share)
        return None if server is None or direct is None else server - direct

    @property
    def events_per_cpu_s(self) -> float | None:
        return self.events / self.server_cpu_s if self.server_cpu_s > 0 else None


class Memory(msgspec.Struct, kw_only=True):
    streams: int
    completed: int
    open_at_once: int
    idle_rss_mb: float
    peak_rss_mb: float
    wall_s: float


class Server:
    def __init__(self, url: str, pid: int, key: str) -> None:
        self.url = url
        self.pid = pid
        self.headers = {"Authorization": f"Bearer {key}"}

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS:") / 1024

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


@asynccontextmanager
async def serving(env: BenchEnv, *, streams: int = 100) -> AsyncIterator[Server]:
    """`autoposter serve` on a free port with a fresh API key; stopped on exit.

    The memory scenario's backend may run `streams` requests at once, so that every
    stream is generating, not waiting for one of the default 16 slots."""
    port = free_port()
    key = secrets.token_urlsafe(24)
    log_path = env.workdir / "server.log"
    slots = f"AUTOPOSTER_BACKENDS__{env.backend_for(MEMORY_PROFILE).upper()}__MAX_CONCURRENCY"
    environ = {**env.environ, "AUTOPOSTER_SERVER__API_KEYS": f"bench:{key}",
               slots: str(max(streams, 16))}
    with log_path.open("wb") as sink:
        process = subprocess.Popen([str(BIN / "autoposter"), "serve", "--port", str(port)],
                                   env=environ, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{url}/healthz", process, log_path, timeout_s=60)
        yield Server(url, process.pid, key)
    finally:
        await asyncio.to_thread(stop_process, process)


class Streamed(msgspec.Struct, kw_only=True):
    """One post read over SSE, as the client saw it."""

    first_ms: float = 0.0  # to the first variant.delta
    done_ms: float = 0.0  # to post.done
    events: int = 0
    status: str = "no post.done"
    backend_first_token_ms: float | None = None  # the server's own upstream TTFT


async def sse_post(http: httpx.AsyncClient, body: dict[str, object], *,
                   on_open: Callable[[], None] | None = None) -> Streamed:
    """POST a post as SSE and read it to the end; `on_open` runs at the first event."""
    started = time.perf_counter()
    seen = Streamed()
    headers = {"Accept": "text/event-stream"}
    async with http.stream("POST", "/v1/posts", json=body, headers=headers) as reply:
        if reply.status_code not in (200, 201):
            await reply.aread()
            seen.status = f"HTTP {reply.status_code}: {reply.text[:200]}"
            return seen
        kind = ""
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                seen.events += 1
                if seen.events == 1 and on_open is not None:
                    on_open()
                if kind == "variant.delta" and not seen.first_ms:
                    seen.first_ms = (time.perf_counter() - started) * 1000
                elif kind == "post.done":
                    seen.done_ms = (time.perf_counter() - started) * 1000
                    post = msgspec.json.decode(line[5:].strip())["post"]
                    seen.status = post["status"]
                    seen.backend_first_token_ms = post["timings_ms"].get("first_token")
    return seen


async def run_overhead(env: BenchEnv, server: Server, *, pairs: int,
                       throughput_posts: int) -> Overhead:
    backend = env.backend_for(OVERHEAD_PROFILE)
    body = {**OVERHEAD_BODY, "backend": backend}
    client = await env.service.backends.client(backend)
    request = msgspec.convert({**body, "actor": "bench"}, PostRequest)
    prepared = await env.service.pipeline.prepare(request)
    result = Overhead(pairs=pairs, direct_ttft_ms=[], server_ttft_ms=[], direct_done_ms=[],
                      server_done_ms=[], added_ttft_ms=[])
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers,
                                 timeout=60) as http:
        for index in range(pairs + 3):  # three of each to warm connections up, not counted
            chat = msgspec.structs.replace(prepared.chat, seed=index)
            direct = await _direct(client, chat)
            seen = await sse_post(http, body)
            if seen.status != "draft" or seen.backend_first_token_ms is None:
                raise BenchError(f"a post through the server ended {seen.status}; see"
                                 f" {server.url} and the server log")
            if index >= 3:
                result.direct_ttft_ms.append(direct[0])
                result.direct_done_ms.append(direct[1])
                result.server_ttft_ms.append(seen.first_ms)
                result.server_done_ms.append(seen.done_ms)
                result.added_ttft_ms.append(seen.first_ms - seen.backend_first_token_ms)
        throughput_body = {**BODY, "backend": env.backend_for("instant")}
        await _throughput(http, server, throughput_body, throughput_posts, result)
    return result


async def _direct(client: LLMClient, chat: ChatRequest) -> tuple[float, float]:
    started = time.perf_counter()
    first_ms = 0.0
    async with client.stream(chat) as handle:
        async for event in handle.events():
            if isinstance(event, TextDelta) and not first_ms:
                first_ms = (time.perf_counter() - started) * 1000
    return first_ms, (time.perf_counter() - started) * 1000


async def _throughput(http: httpx.AsyncClient, server: Server, body: dict[str, object],
                      posts: int, result: Overhead, concurrency: int = 10) -> None:
    """Many posts, `concurrency` at a time: SSE events sent per second of server CPU."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with gate:
            return (await sse_post(http, body)).events

    cpu_before, started = server.cpu_s(), time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(posts)))
    result.events_wall_s = time.perf_counter() - started
    result.server_cpu_s = server.cpu_s() - cpu_before
    result.events = sum(counts)


async def run_memory(env: BenchEnv, server: Server, *, streams: int) -> Memory:
    body = {**BODY, "backend": env.backend_for(MEMORY_PROFILE)}
    idle = server.rss_mb()
    peak = idle
    open_now = [0]
    most_open = [0]
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)

    def opened() -> None:
        open_now[0] += 1
        most_open[0] = max(most_open[0], open_now[0])

    async def one(http: httpx.AsyncClient) -> str:
        try:
            return (await sse_post(http, body, on_open=opened)).status
        finally:
            open_now[0] -= 1

    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120,
                                 limits=limits) as http:
        started = time.perf_counter()
        batch = asyncio.gather(*(one(http) for _ in range(streams)))
        while not batch.done():
            peak = max(peak, server.rss_mb())
            await asyncio.sleep(0.05)
        statuses = await batch
        wall_s = time.perf_counter() - started
    peak = max(peak, _status_kb(server.pid, "VmHWM:") / 1024)
    return Memory(streams=streams, completed=statuses.count("draft"),
                  open_at_once=most_open[0], idle_rss_mb=idle, peak_rss_mb=peak, wall_s=wall_s)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def server_table(overhead: Overhead) -> Table:
    rows = [
        ["time to first token", fmt(percentile(overhead.direct_ttft_ms, 0.5), 1),
         fmt(percentile(overhead.server_ttft_ms, 0.5), 1), fmt(overhead.added_ms("ttft", 0.5), 1),
         fmt(overhead.added_ms("ttft", 0.95), 1)],
        ["time to stored post", fmt(percentile(overhead.direct_done_ms, 0.5), 1),
         fmt(percentile(overhead.server_done_ms, 0.5), 1), fmt(overhead.added_ms("done", 0.5), 1),
         fmt(overhead.added_ms("done", 0.95), 1)],
    ]
    rate = overhead.events / overhead.events_wall_s if overhead.events_wall_s else None
    notes = [
        f"{overhead.pairs} generations each way, alternating, on the `{OVERHEAD_PROFILE}`"
        " profile (interaction/30, 5 variants), after three of each to warm up. Direct is"
        " the inference client alone in this process: no database, no checks.",
        "Added time to first token is measured per post: the client's time to its first"
        " variant.delta less the server's own upstream time to first token for that post"
        " (timings_ms.first_token), so the backend's random delay cancels out. Added time"
        " to the stored post is server percentile less direct percentile; it includes"
        " storing the post, which the direct path does not do.",
        f"SSE: {overhead.events:,} events in {overhead.events_wall_s:.1f} s"
        f" ({fmt(rate, 0)} events/s wall) for {overhead.server_cpu_s:.2f} s of server CPU:"
        f" **{fmt(overhead.events_per_cpu_s, 0)} events/s on one core** (the server is one"
        " process, one event loop), on the `instant` profile, interaction/100, 10 posts at"
        " a time.",
    ]
    return Table(title="3. Server overhead: inference client vs POST /v1/posts (SSE)",
                 columns=["measure", "direct p50 ms", "server p50 ms", "added p50 ms",
                          "added p95 ms"], rows=rows, notes=notes)


def memory_table(memory: Memory) -> Table:
    rows = [[str(memory.streams), str(memory.open_at_once), f"{memory.completed}/{memory.streams}",
             fmt(memory.idle_rss_mb, 0), fmt(memory.peak_rss_mb, 0), fmt(memory.wall_s, 1)]]
    notes = ["One `autoposter serve` process; `gpt-4o-mini` profile, interaction/100 with 5"
             " variants per stream; the backend's max_concurrency is raised to the number of"
             " streams for this server, so all of them generate at once. Open at once: the"
             " most streams that had received their first event and not yet ended. Peak is"
             " the largest of VmRSS sampled every 50 ms and the process's VmHWM."]
    return Table(title="4. Memory: one server process holding concurrent streams",
                 columns=["streams", "open at once", "stored", "idle RSS MB", "peak RSS MB",
                          "wall s"], rows=rows, notes=notes)


def server_targets(overhead: Overhead | None, memory: Memory | None) -> list[Target]:
    return [
        Target(name="server: added time to first token, p50",
               measured=overhead.added_ms("ttft", 0.5) if overhead else None,
               comparison="<", limit=SERVER_ADDED_P50_MAX_MS, unit="ms"),
        Target(name=f"memory: {memory.streams if memory else 100} streams, peak RSS",
               measured=memory.peak_rss_mb if memory else None,
               comparison="<", limit=STREAMS_RSS_MAX_MB, unit="MB"),
    ]

"""Scenario 1: one post per posting type, the old flow against ours, and the floor.

For each profile and posting type a lane runs, in turn: our pipeline with five variants
to the stored post, the floor, and the old flow. The floor is one streamed call (n=1,
straight through the inference client, nothing stored) that writes exactly the text of
our longest variant: the simulator's text follows the seed, and variant i of a request
seeded S is the text of a single call seeded S+i. So the floor is one call's latency for
the length our post had to reach, and the old flow's base post starts from the same
seed. The lanes run side by side; each lane is strictly sequential, and the simulator
(a process of its own, with no shared throughput cap at this load) times every request
on its own.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import structlog

from bench._env import BenchEnv
from bench._oldflow import OldFlow
from bench._report import Table, Target, fmt, fmt_ratio, median, ratio
from inference import ChatRequest, LLMClient, TextDelta, VariantFailed
from posting import PostEvent, PostRequest, VariantDelta

log = structlog.get_logger("bench.single")

POSTING_TYPES = (("interaction", 100), ("analysis", 200), ("personalized", 250))
PROFILES = ("gpt-4o-mini", "vllm-h200")
STOCK = "2330"
KOL = 208
VARIANTS = 5
SINGLE_FLOOR_MAX = 1.15
SINGLE_SPEEDUP_MIN = 5.0


class Cell(msgspec.Struct, kw_only=True):
    """Every repetition of one profile × posting type."""

    profile: str
    posting_type: str
    max_words: int
    floor_s: list[float] = []
    ours_s: list[float] = []
    ours_ttft_s: list[float] = []
    old_s: list[float] = []
    old_first_text_s: list[float] = []
    failures: list[str] = []

    @property
    def old_over_ours(self) -> float | None:
        return ratio(median(self.old_s), median(self.ours_s))

    @property
    def ours_over_floor(self) -> float | None:
        return ratio(median(self.ours_s), median(self.floor_s))

    def old_per_post_s(self) -> float | None:
        return median(self.old_s)


async def run_single(env: BenchEnv, *, reps: int, old_reps: int,
                     profiles: tuple[str, ...] = PROFILES) -> list[Cell]:
    lanes = [_lane(env, profile, posting_type, max_words, reps=reps, old_reps=old_reps)
             for profile in profiles for posting_type, max_words in POSTING_TYPES]
    return list(await asyncio.gather(*lanes))


async def _lane(env: BenchEnv, profile: str, posting_type: str, max_words: int, *,
                reps: int, old_reps: int) -> Cell:
    cell = Cell(profile=profile, posting_type=posting_type, max_words=max_words)
    backend = env.backend_for(profile)
    client = await env.service.backends.client(backend)
    old = OldFlow(base_url=env.sim_url, model=client.model, backend=backend,
                  database_url=env.database_url)
    try:
        for rep in range(max(reps, old_reps)):
            seed = 1000 * (rep + 1) + max_words
            request = PostRequest(stock=STOCK, kol=KOL, posting_type=posting_type,
                                  max_words=max_words, variants=VARIANTS, backend=backend,
                                  actor="bench")
            if rep < reps:
                longest = await _ours(env, request, seed, cell)
                await _floor(env, request, seed + longest, cell)
            if rep < old_reps:
                await _old(env, old, request, seed, cell)
    finally:
        await old.aclose()
    log.info("bench.single_cell", profile=profile, posting_type=posting_type,
             floor_s=median(cell.floor_s), ours_s=median(cell.ours_s),
             old_s=median(cell.old_s), failures=len(cell.failures))
    return cell


async def _floor(env: BenchEnv, request: PostRequest, seed: int, cell: Cell) -> None:
    prepared = await env.service.pipeline.prepare(request)
    chat = msgspec.structs.replace(prepared.chat, n=1, seed=seed)
    elapsed, error = await one_call(prepared.client, chat)
    if error:
        cell.failures.append(f"floor: {error}")
    else:
        cell.floor_s.append(elapsed)


async def one_call(client: LLMClient, chat: ChatRequest) -> tuple[float, str | None]:
    """Stream `chat` to the end; seconds taken and the first error, if any."""
    started = time.perf_counter()
    error = None
    async with client.stream(chat) as handle:
        async for event in handle.events():
            if isinstance(event, VariantFailed) and error is None:
                error = f"{event.error.code}: {event.error}"
    return time.perf_counter() - started, error


async def _ours(env: BenchEnv, request: PostRequest, seed: int, cell: Cell) -> int:
    """Run our pipeline once; returns the index of the longest variant it wrote."""
    pipeline = env.service.pipeline
    started = time.perf_counter()
    first: list[float] = []

    def watch(event: PostEvent) -> None:
        if isinstance(event, VariantDelta) and not first:
            first.append(time.perf_counter() - started)

    prepared = await pipeline.prepare(request)
    prepared.chat = msgspec.structs.replace(prepared.chat, seed=seed)
    post = await pipeline.generate(prepared, emit=watch)
    elapsed = time.perf_counter() - started
    if post.status != "draft":
        cell.failures.append(f"ours: {post.status}: {post.failure_reason}")
        return 0
    cell.ours_s.append(elapsed)
    cell.ours_ttft_s.append(first[0] if first else elapsed)
    lengths = {v.variant: len(v.title) + len(v.body) for v in post.alternatives}
    if post.selected.variant is not None:
        lengths[post.selected.variant] = len(post.selected.title) + len(post.selected.body)
    return max(lengths, key=lambda index: lengths[index])


async def _old(env: BenchEnv, old: OldFlow, request: PostRequest, seed: int,
               cell: Cell) -> None:
    prepared = await env.service.pipeline.prepare(request)
    post = await old.run(kol=request.kol, stock=prepared.stock,
                         posting_type=request.posting_type, max_words=request.max_words,
                         messages=prepared.chat.messages,
                         title_max_chars=env.settings.generation.title_max_chars, seed=seed)
    cell.old_s.append(post.wall_s)
    cell.old_first_text_s.append(post.first_text_s)


def single_table(cells: list[Cell], *, reps: int, old_reps: int) -> Table:
    rows = []
    for c in cells:
        rows.append([
            c.profile, f"{c.posting_type} / {c.max_words}",
            fmt(median(c.old_s)), fmt(median(c.old_first_text_s)),
            fmt(median(c.ours_s)), fmt(median(c.ours_ttft_s)), fmt(median(c.floor_s)),
            fmt_ratio(c.old_over_ours), fmt_ratio(c.ours_over_floor),
        ])
    notes = [
        f"Medians of {reps} runs of ours and of the floor, and of {old_reps} of the old"
        " flow. Ours: 5 variants in one request, streamed, to the stored `draft`. Old: one"
        " unstreamed call (max_tokens 2000) for the base post, then 5 more in sequence for"
        " the versions, a new DB connection per request.",
        "Floor: one streamed call with n=1 through the inference client that writes the"
        " same text as our longest variant (same prompt, that variant's seed), nothing"
        " stored: one call's latency for the length our post had to reach.",
        "TTFT: time from the request to the first text a client could see. Ours streams,"
        " so it is the first token; the old flow streams nothing, so it is when its base"
        " post returned (its API answered only after all six calls).",
        "The six profile × type lanes ran side by side; each lane ran its steps one at a"
        " time.",
    ]
    notes += [f"{c.profile} {c.posting_type}: {f}" for c in cells for f in c.failures]
    return Table(
        title="1. Single post: old flow vs ours (5 variants)",
        columns=["profile", "type / max_words", "old wall s", "old TTFT s", "ours wall s",
                 "ours TTFT s", "floor s", "old/ours", "ours/floor"],
        rows=rows, notes=notes,
    )


def single_targets(cells: list[Cell]) -> list[Target]:
    targets = []
    for c in cells:
        label = f"single post, {c.profile}, {c.posting_type}/{c.max_words}"
        targets.append(Target(name=f"{label}: ours/floor", measured=c.ours_over_floor,
                              comparison="<=", limit=SINGLE_FLOOR_MAX))
        targets.append(Target(name=f"{label}: old/ours", measured=c.old_over_ours,
                              comparison=">=", limit=SINGLE_SPEEDUP_MIN))
    return targets


async def warm_up(env: BenchEnv, profiles: tuple[str, ...]) -> None:
    """One untimed post per backend: opens its connections and the database pool's."""
    async def one(profile: str) -> None:
        request = PostRequest(stock=STOCK, kol=KOL, posting_type="interaction",
                              max_words=100, variants=VARIANTS,
                              backend=env.backend_for(profile), actor="bench")
        await env.service.pipeline.run(request)

    await asyncio.gather(*(one(profile) for profile in profiles))

"""Scenario 5: the bundled SmolLM2 model in llama.cpp, one variant against five.

The model's server starts before anything is timed. Both runs go through our pipeline to
a stored post, so the wall time is what an operator waits; tokens are the completion
tokens llama.cpp reported, and tokens/s is their sum over that wall time.
"""

from __future__ import annotations

import time

import msgspec
import structlog

from bench._env import BenchEnv
from bench._report import Table, fmt, ratio
from posting import PostRequest

log = structlog.get_logger("bench.local")

BACKEND = "local"


class LocalRun(msgspec.Struct, kw_only=True):
    variants: int
    max_words: int
    wall_s: float
    first_token_s: float | None
    completion_tokens: int
    status: str

    @property
    def tokens_per_s(self) -> float | None:
        return ratio(self.completion_tokens, self.wall_s)


async def run_local(env: BenchEnv, *, max_words: int) -> list[LocalRun]:
    """Start the model, then one post with 1 variant and one with 5."""
    await env.service.backends.client(BACKEND)
    runs = []
    for variants in (1, 5):
        request = PostRequest(stock="2330", kol=208, posting_type="interaction",
                              max_words=max_words, variants=variants, backend=BACKEND,
                              actor="bench")
        started = time.perf_counter()
        post = await env.service.pipeline.run(request)
        wall_s = time.perf_counter() - started
        first_ms = post.timings_ms.get("first_token")
        runs.append(LocalRun(variants=variants, max_words=max_words, wall_s=wall_s,
                             first_token_s=first_ms / 1000 if first_ms is not None else None,
                             completion_tokens=post.usage.completion_tokens,
                             status=post.status))
        log.info("bench.local", variants=variants, wall_s=round(wall_s, 2),
                 tokens=post.usage.completion_tokens, status=post.status)
    return runs


def local_table(runs: list[LocalRun], *, threads: int) -> Table:
    rows = [[str(r.variants), str(r.max_words), fmt(r.wall_s), fmt(r.first_token_s),
             f"{r.completion_tokens:,}", fmt(r.tokens_per_s, 1), r.status] for r in runs]
    by_variants = {r.variants: r for r in runs}
    notes = []
    if 1 in by_variants and 5 in by_variants:
        one, five = by_variants[1], by_variants[5]
        notes.append(
            f"5 variants took {fmt(ratio(five.wall_s, one.wall_s))}× the wall time of 1, for"
            f" {fmt(ratio(five.tokens_per_s, one.tokens_per_s))}× the tokens/s: llama.cpp"
            " decodes the parallel slots in one batch.")
    notes.append(f"SmolLM2-135M-Instruct (Q4_1 GGUF) in xllamacpp's server, {threads} CPU"
                 " threads, interaction posts; status is the stored post's (the small model"
                 " often fails the zh-TW checks, which does not change its speed).")
    return Table(title="5. The bundled local model: 1 variant vs 5",
                 columns=["variants", "max_words", "wall s", "TTFT s", "completion tokens",
                          "tokens/s", "status"], rows=rows, notes=notes)

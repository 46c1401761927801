"""One benchmark run: plan the scenarios, run them in one environment, build the report.

`--quick` keeps every scenario and every ratio but repeats less and measures the old
flow only where scenario 1 needs it (its batch figures are then extrapolated from the
per-post medians, and say so).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence

import msgspec
import structlog

from bench._batches import batch_table, batch_targets, run_batches
from bench._env import BenchEnv, machine_lines
from bench._local import local_table, run_local
from bench._report import Report, Table, Target
from bench._server import (
    memory_table,
    run_memory,
    run_overhead,
    server_table,
    server_targets,
    serving,
)
from bench._single import PROFILES, run_single, single_table, single_targets, warm_up

log = structlog.get_logger("bench.runner")

SCENARIOS = ("single", "batches", "server", "memory", "local")
BATCH_PROFILES = ("vllm-h200", "gpt-4o-mini")
Progress = Callable[[str], None]


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    quick: bool
    scenarios: tuple[str, ...] = SCENARIOS
    reps: int = 5
    old_reps: int = 3
    batch_sizes: tuple[int, ...] = (10, 100)
    batch_profiles: tuple[str, ...] = BATCH_PROFILES
    old_batches_measured: tuple[tuple[str, int], ...] = (("vllm-h200", 10),)
    overhead_pairs: int = 100
    throughput_posts: int = 60
    streams: int = 100
    local_max_words: int = 100


def plan_for(*, quick: bool, scenarios: Sequence[str] = SCENARIOS,
             batch_profiles: Sequence[str] | None = None) -> Plan:
    """The full plan, or the quick one; `scenarios` must be names from SCENARIOS and
    `batch_profiles` (the batch scenario's, by default the mode's) from BATCH_PROFILES."""
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown or not scenarios:
        raise ValueError(f"unknown scenario {', '.join(unknown) or '(none)'}; choose from"
                         f" {', '.join(SCENARIOS)}")
    chosen = tuple(name for name in SCENARIOS if name in scenarios)
    plan = Plan(quick=False, scenarios=chosen)
    if quick:
        plan = Plan(quick=True, scenarios=chosen, reps=3, old_reps=1,
                    batch_profiles=("vllm-h200",), old_batches_measured=(), overhead_pairs=30,
                    throughput_posts=20, local_max_words=50)
    if batch_profiles is None:
        return plan
    strange = [name for name in batch_profiles if name not in BATCH_PROFILES]
    if strange or not batch_profiles:
        raise ValueError(f"unknown batch profile {', '.join(strange) or '(none)'}; choose"
                         f" from {', '.join(BATCH_PROFILES)}")
    profiles = tuple(name for name in BATCH_PROFILES if name in batch_profiles)
    old = tuple(pair for pair in plan.old_batches_measured if pair[0] in profiles)
    return msgspec.structs.replace(plan, batch_profiles=profiles, old_batches_measured=old)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed, with the variables that choose the services in front."""
    args = list(sys.argv[1:] if argv is None else argv)
    prefix = [f"{name}={_redact(os.environ[name])}" for name in ("DATABASE_URL", "REDIS_URL")
              if os.environ.get(name)]
    return shlex.join([*prefix, "autoposter", *args])


async def run(plan: Plan, *, command: str, progress: Progress) -> Report:
    started = time.perf_counter()
    tables: list[Table] = []
    targets: list[Target] = []
    async with BenchEnv.open() as env:
        report = Report(command=command, machine=[*machine_lines(), *await _services(env)],
                        setup=_setup_lines(env, plan))
        progress("warming up the simulated backends")
        await warm_up(env, (*PROFILES, "instant"))
        cells = []
        if "single" in plan.scenarios or "batches" in plan.scenarios:
            progress("1/5 single posts: old flow, ours and the floor")
            cells = await run_single(env, reps=plan.reps, old_reps=plan.old_reps)
            tables.append(single_table(cells, reps=plan.reps, old_reps=plan.old_reps))
            targets += single_targets(cells)
        if "batches" in plan.scenarios:
            progress("2/5 batches through arq workers")
            runs = await run_batches(env, cells, sizes=plan.batch_sizes,
                                     profiles=plan.batch_profiles,
                                     measure_old=plan.old_batches_measured)
            tables.append(batch_table(runs, settings=env.settings))
            targets += batch_targets(runs)
        await _server_scenarios(env, plan, tables, targets, progress)
        if "local" in plan.scenarios:
            progress("5/5 the bundled local model")
            local = await run_local(env, max_words=plan.local_max_words)
            threads = env.settings.local.threads or len(os.sched_getaffinity(0))
            tables.append(local_table(local, threads=threads))
    report.tables = tables
    report.targets = targets
    report.wall_s = time.perf_counter() - started
    return report


async def _server_scenarios(env: BenchEnv, plan: Plan, tables: list[Table],
                            targets: list[Target], progress: Progress) -> None:
    wanted = [name for name in ("server", "memory") if name in plan.scenarios]
    if not wanted:
        return
    overhead = memory = None
    async with serving(env, streams=plan.streams) as server:
        if "server" in wanted:
            progress("3/5 server overhead and SSE throughput")
            overhead = await run_overhead(env, server, pairs=plan.overhead_pairs,
                                          throughput_posts=plan.throughput_posts)
            tables.append(server_table(overhead))
        if "memory" in wanted:
            progress(f"4/5 memory with {plan.streams} streams")
            memory = await run_memory(env, server, streams=plan.streams)
            tables.append(memory_table(memory))
    for target in server_targets(overhead, memory):
        if target.measured is not None:
            targets.append(target)


async def _services(env: BenchEnv) -> list[str]:
    async with env.service.pool.connection() as conn:
        row = await (await conn.execute("SHOW server_version")).fetchone()
    lines = [f"PostgreSQL {row[0] if row else 'unknown'}"]
    if env.redis_url:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(env.redis_url)
        try:
            info = await client.info("server")
        finally:
            await client.aclose()
        lines.append(f"Redis {info.get('redis_version', 'unknown')}")
    return lines


def _setup_lines(env: BenchEnv, plan: Plan) -> list[str]:
    database = ("DATABASE_URL" if env.settings.database_url
                else f"the embedded PostgreSQL in {env.settings.data_path() / 'pgdata'}")
    redis = (f"Redis at {env.redis_url} (the bench's own database) for the arq workers"
             if env.redis_url else "no Redis answered: batches ran in process, not on arq"
             " workers")
    mode = "quick (fewer repetitions; see each table)" if plan.quick else "full"
    batches = (f"; batch profiles: {', '.join(plan.batch_profiles)}"
               if "batches" in plan.scenarios else "")
    return [
        f"Mode: {mode}; scenarios: {', '.join(plan.scenarios)}{batches}.",
        "Backend: the simulated OpenAI-compatible server (`inference.simulator`) in a"
        " process of its own, profiles `gpt-4o-mini` (TTFT ~0.5 s, 60 tokens/s per"
        " sequence, 5% slow tail), `vllm-h200` (TTFT ~0.05 s, 150 tokens/s per sequence,"
        " 6,000 tokens/s in all) and `instant`.",
        f"Database: {database}. {redis}.",
        "Stored posts are ordinary rows; the bench's have created_by `bench` or"
        " `bench:old-flow`.",
    ]


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)

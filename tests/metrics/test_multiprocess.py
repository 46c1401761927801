"""`autoposter serve --workers 3`: every scrape counts every process's generations once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from inference.simulator import Simulator
from tests.metrics.conftest import POST, metrics_env, serve_process, total
from tests.server.conftest import AUTH

N = 12


async def _post_on_fresh_connections(url: str, count: int) -> list[int]:
    """Each post on its own connection, so that the kernel spreads them over processes."""
    async def one() -> int:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as client:
            return (await client.post("/v1/posts", json=POST)).status_code

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _pids_that_posted(folder: Path) -> list[int]:
    """The processes whose counter files hold at least one post."""
    pids = []
    for path in folder.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            if family.name == "autoposter_posts" and any(s.value for s in family.samples):
                pids.append(int(path.stem.removeprefix("counter_")))
    return pids


def _children(pid: int) -> list[int]:
    """uvicorn's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(child))
    return found


def _live_files(folder: Path, pid: int | None = None) -> list[str]:
    pattern = f"gauge_live*_{pid}.db" if pid else "gauge_live*.db"
    return sorted(p.name for p in folder.glob(pattern))


async def _wait_for_children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 60
    while len(children := _children(pid)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return children


async def test_counters_add_up_over_processes_and_dead_ones_are_reaped(
    server_env: dict[str, str],
) -> None:
    async with Simulator(profile="instant", seed=5) as sim:
        env = metrics_env(server_env, sim)
        folder = Path(env["AUTOPOSTER_DATA_DIR"]) / "prometheus-multiproc"
        with serve_process(env, "--workers", "3") as (url, process):
            assert len(await _wait_for_children(process.pid, 3)) == 3
            assert await _post_on_fresh_connections(url, N) == [201] * N
            # Kill a process that generated: whichever answers now must read its files.
            victim = _pids_that_posted(folder)[0]
            os.kill(victim, signal.SIGKILL)
            assert _live_files(folder, victim)
            for _ in range(6):
                text = httpx.get(f"{url}/metrics", timeout=10).text
                assert total(text, "autoposter_posts_total") == N
                assert total(text, "autoposter_stage_duration_seconds_count", stage="total") == N
                assert total(text, "autoposter_llm_requests_total", status="ok") == N
                assert total(text, "autoposter_sse_active_streams") == 0
            assert not _live_files(folder, victim), "the dead process's live gauges are gone"
        assert not _live_files(folder), "every process marked itself dead on shutdown"

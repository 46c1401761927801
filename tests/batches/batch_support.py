"""Helpers for the batch tests: worker processes, database reads, API calls."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.server.conftest import AUTH

AUTOPOSTER = str(Path(sys.executable).with_name("autoposter"))
STOCKS = ["2330", "2454", "2317", "2303", "2412", "2882", "2881", "1301", "2002", "2308"]
KOLS = [201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212]


def item_list(count: int, *, max_words: int = 100, variants: int = 5) -> list[dict[str, Any]]:
    """Distinct stock and KOL pairs, all on the simulator (some KOLs default elsewhere)."""
    return [{"stock": STOCKS[n % len(STOCKS)], "kol": KOLS[n % len(KOLS)],
             "posting_type": "interaction", "max_words": max_words, "variants": variants,
             "backend": "sim"} for n in range(count)]


class Workers:
    """`autoposter worker` processes; each logs to its own file under tmp_path."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, env: dict[str, str], count: int = 1) -> list[subprocess.Popen[bytes]]:
        started = [self._spawn(env) for _ in range(count)]
        return started

    def _spawn(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self._folder / f"worker-{len(self.processes)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen([AUTOPOSTER, "worker"], env={**os.environ, **env},
                                       stdout=sink, stderr=sink)
        self.processes.append(process)
        self.logs.append(log)
        return process

    async def ready(self, timeout_s: float = 30.0) -> None:
        """Wait until every started worker has logged `worker.started`."""
        deadline = time.monotonic() + timeout_s
        for process, log in zip(self.processes, self.logs, strict=True):
            while "worker.started" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker did not start:\n{self.tail(log)}")
                await asyncio.sleep(0.1)

    def name(self, process: subprocess.Popen[bytes]) -> str:
        """The worker's name as stored in batch_items.worker (host:pid)."""
        return f"{socket.gethostname()}:{process.pid}"

    def tail(self, log: Path | None = None, chars: int = 3000) -> str:
        logs = [log] if log else self.logs
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in logs)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def rows(database_url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, args).fetchall()


def items(database_url: str, batch_id: str) -> list[tuple[Any, ...]]:
    """(item_no, state, attempts, worker, error) of every item, in order."""
    return rows(database_url, "SELECT item_no, state, attempts, worker, error FROM"
                " batch_items WHERE batch_id = %s ORDER BY item_no", batch_id)


def posts(database_url: str, batch_id: str) -> list[tuple[Any, ...]]:
    """(item_no, status, failure_reason) of every post of the batch, in order."""
    return rows(database_url, "SELECT item_no, status, failure_reason FROM posts"
                " WHERE batch_id = %s ORDER BY item_no", batch_id)


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    reply = await client.post("/v1/batches", json=body)
    assert reply.status_code == 202, reply.text
    return reply.json()


async def finished(client: httpx.AsyncClient, batch_id: str, *, timeout_s: float,
                   workers: Workers | None = None) -> dict[str, Any]:
    """Poll GET /v1/batches/{id} until it has finished; the view at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        view = (await client.get(f"/v1/batches/{batch_id}")).json()
        if view["finished_at"] is not None:
            return view
        if time.monotonic() > deadline:
            tail = workers.tail() if workers else ""
            raise AssertionError(f"batch not finished: {view['counts']}\n{tail}")
        await asyncio.sleep(0.2)


def plan(stocks: list[str], kols: list[int], **fields: Any) -> dict[str, Any]:
    return {"plan": {"stocks": stocks, "kols": kols, "posting_type": "interaction",
                     "max_words": 100, **fields}}


def api_client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30)

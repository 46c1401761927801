"""Batches for real: Redis, PostgreSQL, `autoposter worker` processes, the simulator.

Every test gets Redis database 11 emptied (arq's keys are global per database), the
session's PostgreSQL database, and workers that are killed at teardown. Tests must run
one at a time: they share that Redis database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from inference.simulator import Simulator
from tests.batches.batch_support import Workers
from tests.server.conftest import API_KEY, sim_env

REDIS_URL = os.environ.get("TEST_BATCHES_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The dedicated Redis database, empty before and after the test."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator(profile="gpt-4o-mini", seed=11) as sim:
        yield sim


@pytest.fixture
def batch_env(env: dict[str, str], simulator: Simulator, redis_url: str) -> dict[str, str]:
    """Server and worker settings: the `sim` backend, Redis, an API key, a quick
    heartbeat. Tests add to it (profile, faults) before starting anything."""
    return sim_env(env, simulator, profile="vllm-h200", REDIS_URL=redis_url,
                   AUTOPOSTER_SERVER__API_KEYS=f"tester:{API_KEY}",
                   AUTOPOSTER_BATCHES__HEARTBEAT_S="1",
                   AUTOPOSTER_BATCHES__SHUTDOWN_WAIT_S="2",
                   AUTOPOSTER_LOG_LEVEL="INFO")


@pytest.fixture
def workers(tmp_path: Path, redis_url: str) -> Iterator[Workers]:
    """Worker processes, stopped (SIGTERM, then SIGKILL) before Redis is emptied."""
    pool = Workers(tmp_path)
    yield pool
    pool.stop()

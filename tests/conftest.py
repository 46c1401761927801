"""Shared fixtures: a throwaway database on the real PostgreSQL, settings pointing at it.

Set TEST_DATABASE_URL to use another server; it must allow CREATE DATABASE.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from config import Settings, configure_logging, load_settings
from posting import PostingService

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "llm-streams"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    name = f"autoposter_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = ADMIN_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for settings and for CLI subprocesses: the test database, a fake LLM."""
    return {
        "DATABASE_URL": database_url,
        "AUTOPOSTER_DATA_DIR": str(tmp_path / "data"),
        "AUTOPOSTER_BACKENDS__FAKE__KIND": "vllm",
        "AUTOPOSTER_BACKENDS__FAKE__BASE_URL": "http://llm.test/v1",
        "AUTOPOSTER_BACKENDS__FAKE__MODEL": "Qwen/Qwen2.5-7B-Instruct",
        "AUTOPOSTER_BACKEND": "fake",
        "AUTOPOSTER_RETRIES__INITIAL_BACKOFF_S": "0.01",
        "AUTOPOSTER_RETRIES__MAX_BACKOFF_S": "0.05",
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[PostingService]:
    async with PostingService.open(settings) as opened:
        yield opened


def pytest_configure(config: pytest.Config) -> None:
    configure_logging("INFO")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TEST_SKIP_LOCAL_MODEL") == "1":
        skip = pytest.mark.skip(reason="TEST_SKIP_LOCAL_MODEL=1")
        for item in items:
            if "local_model" in item.keywords:
                item.add_marker(skip)

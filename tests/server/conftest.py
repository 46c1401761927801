"""A real HTTP server (uvicorn on a loopback port) running the app, and an API key."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from config import Settings, load_settings
from inference.simulator import Simulator
from server import create_app

API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def server_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "AUTOPOSTER_SERVER__API_KEYS": f"tester:{API_KEY}"}


@pytest.fixture
def server_settings(server_env: dict[str, str]) -> Settings:
    return load_settings(server_env)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """Run the app on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def base_url(server_settings: Settings) -> AsyncIterator[str]:
    async with serving(server_settings) as url:
        yield url


@pytest.fixture
async def api(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def only_mock_llm() -> Callable[[httpx.Request], bool]:
    return lambda request: request.url.host == "llm.test"


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    """The simulated backend on its own thread; `sim_env` points a server at it."""
    async with Simulator(profile="gpt-4o-mini", seed=7) as sim:
        yield sim


def sim_env(base: dict[str, str], sim: Simulator, *, profile: str = "gpt-4o-mini",
            **extra: str) -> dict[str, str]:
    """Settings environment: the `sim` backend (kind vllm) as the default."""
    return {**base,
            "AUTOPOSTER_BACKENDS__SIM__KIND": "vllm",
            "AUTOPOSTER_BACKENDS__SIM__BASE_URL": sim.base_url,
            "AUTOPOSTER_BACKENDS__SIM__MODEL": profile,
            "AUTOPOSTER_BACKEND": "sim",
            **extra}

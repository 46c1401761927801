"""/healthz: the process answers. /readyz: the database and each configured backend."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.di import NamedDependency
from litestar import Response, get

from posting import PostingService


@get("/healthz", summary="The process is up", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", summary="The database and the backends answer")
async def readyz(service: NamedDependency[PostingService]) -> Response[dict[str, Any]]:
    database = await _database(service)
    backends = dict(zip(service.backends.names(), await asyncio.gather(
        *(_backend(service, name) for name in service.backends.names())
    ), strict=True))
    default = backends.get(service.settings.backend, "down")
    ready = database == "ok" and default in ("ok", "idle")
    body = {"status": "ready" if ready else "not ready", "database": database,
            "backends": backends, "default_backend": service.settings.backend}
    return Response(body, status_code=200 if ready else 503)


async def _database(service: NamedDependency[PostingService]) -> str:
    try:
        async with asyncio.timeout(2), service.pool.connection() as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"down: {type(exc).__name__}"
    return "ok"


async def _backend(service: PostingService, name: str) -> str:
    """The probe's answer, with the circuit's state when it is not closed."""
    result = await service.backends.probe(name)
    circuit = service.backends.circuit(name)
    return result if circuit == "closed" else f"{result} (circuit {circuit})"

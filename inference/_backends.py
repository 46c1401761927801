"""The named backends of the settings, each behind the same LLMClient."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from config import Settings, model_catalog
from inference._client import LLMClient
from inference._errors import LLMError
from inference._health import BACKEND_FAULTS, Circuit
from inference._local import LocalServer


class BackendUnavailable(LLMError):
    code = "backend_unavailable"


class Backends:
    """One client per backend name, made on first use; the local model starts then too."""

    def __init__(
        self, settings: Settings, *, data_dir: Path, http_client: httpx.AsyncClient | None = None
    ) -> None:
        self._settings = settings
        self._data_dir = data_dir
        self._http_client = http_client
        self._clients: dict[str, LLMClient] = {}
        self._local: LocalServer | None = None
        self._lock = asyncio.Lock()
        self._circuits = {name: Circuit() for name in settings.backends}

    @property
    def default(self) -> str:
        return self._settings.backend

    def names(self) -> list[str]:
        return sorted(self._settings.backends)

    def allows(self, name: str) -> bool:
        """False while the backend's circuit is open."""
        return self._circuits[name].allows(self._settings.health)

    def circuit(self, name: str) -> str:
        return self._circuits[name].state(self._settings.health)

    def record(self, name: str, errors: list[str | None]) -> None:
        """Feed the breaker with the outcome of one generation's calls (error codes)."""
        failed = [e for e in errors if e in BACKEND_FAULTS]
        self._circuits[name].record(not failed, self._settings.health)

    async def probe(self, name: str) -> str:
        """GET /v1/models once; `ok`, `idle`, `not configured: …` or `down: …`."""
        status = self.status(name)
        if status != "ready":
            return status
        url = f"{self.base_url(name).rstrip('/')}/models"
        try:
            async with httpx.AsyncClient(timeout=self._settings.timeouts.connect_s) as http:
                reply = await http.get(url, headers=self.auth_headers(name))
            result = "ok" if reply.status_code < 500 else f"down: HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            result = f"down: {type(exc).__name__}"
        self._circuits[name].record(result == "ok", self._settings.health)
        self._circuits[name].last_probe = result
        return result

    async def probe_forever(self) -> None:
        """Probe every configured backend each `probe_interval_s`; run it as a task."""
        while True:
            await asyncio.gather(*(self.probe(name) for name in self.names()))
            await asyncio.sleep(self._settings.health.probe_interval_s)

    def status(self, name: str) -> str:
        """`ready` to probe, `idle` (local, not started yet) or `not configured`."""
        backend = self._settings.backends[name]
        if backend.kind == "local" and not backend.base_url and name not in self._clients:
            return "idle"
        if backend.kind == "openai" and not self._api_key(name):
            return f"not configured: set {backend.api_key_env}"
        return "ready"

    def require_configured(self, name: str) -> None:
        """Raise BackendUnavailable when `name` could not serve a request now for want of
        configuration (an OpenAI backend without its key); starts and calls nothing."""
        backend = self._settings.backends[name]
        if backend.kind == "openai" and not self._api_key(name):
            raise BackendUnavailable(
                f"backend {name!r} needs an API key: set {backend.api_key_env}"
            )

    def base_url(self, name: str) -> str:
        if name in self._clients:
            return self._clients[name].base_url
        return self._settings.backends[name].base_url

    def auth_headers(self, name: str) -> dict[str, str]:
        key = self._api_key(name)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _api_key(self, name: str) -> str | None:
        env = self._settings.backends[name].api_key_env
        return os.environ.get(env) if env else None

    async def client(self, name: str) -> LLMClient:
        if name not in self._settings.backends:
            raise BackendUnavailable(
                f"no backend named {name!r} (configured: {', '.join(self.names())})"
            )
        async with self._lock:
            if name not in self._clients:
                self._clients[name] = await self._make(name)
            return self._clients[name]

    async def _make(self, name: str) -> LLMClient:
        backend = self._settings.backends[name]
        base_url = backend.base_url
        if backend.kind == "local" and not base_url:
            base_url = await self._start_local()
        self.require_configured(name)
        api_key = self._api_key(name)
        return LLMClient(
            name=name,
            backend=backend,
            base_url=base_url,
            api_key=api_key,
            card=model_catalog().card(backend.model),
            timeouts=self._settings.timeouts,
            retries=self._settings.retries,
            http_client=self._http_client,
        )

    async def _start_local(self) -> str:
        self._local = LocalServer(self._settings.local, log_path=self._data_dir / "llama.log")
        return await self._local.start()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        if self._local is not None:
            await self._local.stop()

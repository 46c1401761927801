"""What every command shares: one-line errors, and running one coroutine on the service."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click

from config import Settings, SettingsError, load_settings
from posting import DatabaseUnavailable, InvalidRequest, PostingService, QueueUnavailable

T = TypeVar("T")


class CliError(click.ClickException):
    """One line on stderr, then exit with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(Exception):
    """SIGTERM stopped the command; its coroutine was cancelled and has cleaned up."""


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def run_service(make: Callable[[PostingService], Awaitable[T]]) -> T:
    """Open the service (database, backends), run one coroutine, close everything."""
    settings = settings_or_exit()

    async def main() -> T:
        async with PostingService.open(settings) as service:
            return await make(service)

    try:
        return run_cancellable(main())
    except InvalidRequest as exc:
        raise CliError(str(exc), exit_code=2) from None
    except (DatabaseUnavailable, QueueUnavailable) as exc:
        raise CliError(str(exc)) from None


def run_cancellable(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, with SIGTERM handled like Ctrl-C: the coroutine is cancelled, so its
    cleanup runs (a post in progress is stored as `cancelled`), then Terminated."""
    terminated = False

    async def guarded() -> T:
        nonlocal terminated
        task = asyncio.current_task()
        assert task is not None

        def on_sigterm() -> None:
            nonlocal terminated
            if not terminated:  # a second cancel would cut the shielded cleanup short
                terminated = True
                task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            return await coro
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if terminated:
            raise Terminated() from None
        raise

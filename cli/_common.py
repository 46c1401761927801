"""What every command shares: one-line errors, and running one coroutine on the service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from config import Settings, SettingsError, load_settings
from posting import DatabaseUnavailable, InvalidRequest, PostingService

T = TypeVar("T")


class CliError(click.ClickException):
    """One line on stderr, then exit with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
        return asyncio.run(main())
    except InvalidRequest as exc:
        raise CliError(str(exc), exit_code=2) from None
    except DatabaseUnavailable as exc:
        raise CliError(f"database: {exc}") from None

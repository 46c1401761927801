"""The review pages in headless Chromium (Debian's package), driven by Playwright's Python
client, against a real server on the simulated backend.

`scripts/services.sh` installs chromium. Set TEST_CHROMIUM to use another binary,
and TEST_UI_SCREENSHOTS to a folder to keep each page's screenshot there (the README's
are made with `TEST_UI_SCREENSHOTS=docs/screenshots scripts/test tests/ui`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from config import load_settings
from inference.simulator import Simulator
from tests.batches.conftest import redis_url, workers  # noqa: F401 (fixtures)
from tests.server.conftest import API_KEY, serving, sim_env

CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: run scripts/services.sh (it installs Debian's"
                    " chromium) or set TEST_CHROMIUM")
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@pytest.fixture
def server_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "AUTOPOSTER_SERVER__API_KEYS": f"tester:{API_KEY}"}


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator(profile="gpt-4o-mini", seed=7) as sim:
        yield sim


@pytest.fixture
def ui_env(server_env: dict[str, str], simulator: Simulator) -> dict[str, str]:
    return sim_env(server_env, simulator)


@pytest.fixture
async def ui_url(ui_env: dict[str, str]) -> AsyncIterator[str]:
    async with serving(load_settings(ui_env)) as url:
        yield url


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context; any script error on its pages fails the test."""
    context = await browser.new_context(viewport=VIEWPORT, locale="zh-TW")
    context.set_default_timeout(15_000)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == [], f"script errors on the page: {errors}"


async def log_in(page: Page, url: str, *, then: str = "/ui/generate") -> None:
    """Open `then`, which sends the browser to the login form, and log in with the key."""
    await page.goto(f"{url}{then}")
    await page.fill("#api-key", API_KEY)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(f"{url}{then}")


async def screenshot(page: Page, name: str, folder: Path) -> Path:
    """The whole page as PNG: into TEST_UI_SCREENSHOTS when set, else `folder`."""
    target = Path(os.environ.get("TEST_UI_SCREENSHOTS") or folder) / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(target), full_page=True)
    return target

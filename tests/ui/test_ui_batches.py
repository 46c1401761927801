"""Batches: a plan from the form, run by a real worker, followed live to the end."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

from config import load_settings
from inference.simulator import Simulator
from tests.batches.batch_support import Workers, rows
from tests.server.conftest import serving, sim_env
from tests.ui.conftest import log_in, screenshot


@pytest.mark.timeout(120)
async def test_batch_from_plan_is_followed_to_the_end(
    page: Page, server_env: dict[str, str], simulator: Simulator, redis_url: str,
    workers: Workers, database_url: str, tmp_path: Path,
) -> None:
    env = sim_env(server_env, simulator, profile="vllm-h200", REDIS_URL=redis_url,
                  AUTOPOSTER_BATCHES__HEARTBEAT_S="1", AUTOPOSTER_BATCHES__SHUTDOWN_WAIT_S="2")
    workers.start(env)
    await workers.ready()
    async with serving(load_settings(env)) as url:
        await log_in(page, url, then="/ui/batches")
        await page.fill("#stocks", "2330, 2454, 2317")
        await page.check("input[name=kols][value='208']")
        await page.check("input[name=kols][value='209']")
        await page.fill("#max-words", "100")
        await page.fill("#variants", "2")
        await page.click("#create-batch")
        await page.wait_for_url(f"{url}/ui/batches/*")
        await page.wait_for_selector("#batch[data-status=done]", timeout=60_000)
        await page.wait_for_selector("#batch-live:has-text('批次已結束')")
        batch_id = await page.get_attribute("#batch", "data-batch-id")
        states = await page.locator("#batch-items tbody tr").evaluate_all(
            "rows => rows.map(row => row.dataset.state)")
        assert states == ["done", "done", "done"], workers.tail()
        assert await page.locator("#batch-progress").evaluate("bar => bar.value") == 3
        assert await page.locator("#cancel-batch").is_hidden()
        await screenshot(page, "batch", tmp_path)
        await page.click("#batch-posts")
        await page.wait_for_selector("#posts tbody tr[data-post-id]")
        assert await page.locator("#posts tbody tr[data-post-id]").count() == 3
        await page.goto(f"{url}/ui/batches")
        await page.wait_for_selector(f"#recent-batches a[href='/ui/batches/{batch_id}']")
        await screenshot(page, "batches", tmp_path)
    assert rows(database_url, "SELECT status, created_by FROM batches WHERE id = %s",
                batch_id) == [("done", "tester")]

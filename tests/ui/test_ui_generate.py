"""Generate: the form, stock suggestions, and every variant streaming in side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.batches.batch_support import rows
from tests.ui.conftest import log_in, screenshot


@pytest.mark.timeout(120)
async def test_generate_streams_variants_side_by_side(
    page: Page, ui_url: str, database_url: str, tmp_path: Path
) -> None:
    await log_in(page, ui_url)
    await page.fill("#stock", "台積")
    await page.click("#stock-suggestions button[data-code='2330']")
    await page.select_option("#kol", "208")
    await page.select_option("#posting-type", "analysis")
    await page.fill("#max-words", "150")
    await page.fill("#variants", "3")
    await page.click("#generate")
    await page.wait_for_selector(".variant[data-state=writing]")  # text arriving, not done
    await page.wait_for_selector("#run[data-status]", timeout=60_000)
    cards = page.locator("#variant-columns .variant")
    assert await cards.count() == 3
    for card in await cards.all():
        assert await card.get_attribute("data-state") == "done"
        assert int(await card.get_attribute("data-deltas") or 0) > 1  # streamed in pieces
        assert await card.locator("ul.checks li").count() == 5
        assert (await card.locator(".score").text_content() or "").strip()
    assert await page.locator(".variant.selected .selected-badge").count() == 1
    post_id = await page.get_attribute("#run", "data-post-id")
    await screenshot(page, "generate", tmp_path)
    assert rows(database_url, "SELECT status FROM posts WHERE id = %s", post_id) == [("draft",)]
    assert await page.get_attribute("#open-post", "href") == f"/ui/posts/{post_id}"


@pytest.mark.timeout(60)
async def test_bad_stock_error_names_the_field_once(page: Page, ui_url: str) -> None:
    await log_in(page, ui_url)
    await page.fill("#stock", "99999")
    await page.select_option("#kol", "208")
    await page.click("#generate")
    error = page.locator("#generate-error")
    await error.wait_for(state="visible")
    text = await error.text_content() or ""
    assert text.startswith("stock: no TWSE or TPEx listing matches '99999'"), text
    assert text.count("stock:") == 1

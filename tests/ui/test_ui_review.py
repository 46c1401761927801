"""Posts: the filtered list, and one post reviewed: another variant, edited, approved."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page

from posting import text_length
from tests.batches.batch_support import rows
from tests.server.conftest import AUTH
from tests.ui.conftest import log_in, screenshot

REQUEST = {"stock": "2330", "kol": 208, "posting_type": "analysis", "max_words": 120,
           "variants": 3}


async def _post(url: str) -> dict:
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as client:
        reply = await client.post("/v1/posts", json=REQUEST)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def _check(page: Page, name: str) -> tuple[str, str]:
    item = page.locator(f"#live-checks li[data-check={name}]")
    return (await item.get_attribute("class") or ""), (await item.text_content() or "")


@pytest.mark.timeout(120)
async def test_select_second_variant_edit_and_approve(
    page: Page, ui_url: str, database_url: str, tmp_path: Path
) -> None:
    post = await _post(ui_url)
    second = 1 if post["selected"]["variant"] != 1 else 2  # the second one not yet chosen
    await log_in(page, ui_url, then="/ui/posts?status=draft")
    await screenshot(page, "posts", tmp_path)
    await page.click(f"tr[data-post-id='{post['post_id']}'] a.post-link")
    await page.click(f"button.select-variant[data-variant='{second}']")
    await page.wait_for_selector(f".variant.selected[data-variant='{second}']")

    await page.fill("#title", "台積電" * 10)  # 30 characters: over the title limit
    assert (await _check(page, "title_length"))[0] == "fail"
    title = "台積電 2330 的審核版標題"
    body = (await page.input_value("#body")) + "\n審核補充：Extra English words, 12.5% up."
    await page.fill("#title", title)
    await page.fill("#body", body)
    assert (await _check(page, "title_length"))[0] == "pass"
    status, text = await _check(page, "length")
    assert f"{text_length(body)} / 120" in text  # the browser counts as the server does
    await screenshot(page, "post", tmp_path)

    await page.click("#approve")
    await page.wait_for_selector("#post-status[data-status=approved]")
    stored = rows(database_url, "SELECT status, selected_variant, title, body FROM posts"
                  " WHERE id = %s", post["post_id"])
    assert stored == [("approved", second, title, body)]
    actions = rows(database_url, "SELECT actor, action FROM post_changes WHERE post_id = %s"
                   " ORDER BY id", post["post_id"])
    assert actions == [("tester", "select"), ("tester", "approve")]

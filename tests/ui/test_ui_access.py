"""Login sessions, the language switch and the message catalogs, without a browser."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import get_args

import httpx

from config import POSTING_TYPES
from posting import PostStatus
from posting._checks import _WEIGHTS as CHECK_NAMES
from posting._models import STAGES
from posting._review import _VERBS
from server.ui._batches import ASSIGNMENTS
from server.ui._messages import CATALOGS
from tests.server.conftest import API_KEY, AUTH

UI = Path(__file__).resolve().parents[2] / "server" / "ui"
POST_REQUEST = {"stock": "2330", "kol": 208, "posting_type": "analysis", "max_words": 100,
                "variants": 2}
_KEY_USE = re.compile(r"""\bt\(\s*["']([\w.]+)["']\s*\)""")


async def _log_in(client: httpx.AsyncClient) -> None:
    reply = await client.post("/ui/login", data={"api_key": API_KEY, "next": "/ui/posts"})
    assert reply.status_code == 303 and reply.headers["location"] == "/ui/posts"


async def test_pages_send_a_visitor_without_session_to_login(ui_url: str) -> None:
    async with httpx.AsyncClient(base_url=ui_url, follow_redirects=False) as client:
        reply = await client.get("/ui/posts", params={"status": "draft"})
    assert reply.status_code == 302
    assert reply.headers["location"] == "/ui/login?next=%2Fui%2Fposts%3Fstatus%3Ddraft"


async def test_unknown_key_is_refused_without_session(ui_url: str) -> None:
    async with httpx.AsyncClient(base_url=ui_url, follow_redirects=False) as client:
        reply = await client.post("/ui/login", data={"api_key": "not-a-key"})
    assert reply.status_code == 401
    assert "autoposter_session" not in reply.cookies


async def test_session_reads_the_api_and_changes_only_with_the_ui_header(ui_url: str) -> None:
    async with httpx.AsyncClient(base_url=ui_url, follow_redirects=False) as client:
        await _log_in(client)
        page = await client.get("/ui/posts")
        listing = await client.get("/v1/posts")
        missing = f"/v1/posts/{uuid.uuid4()}"
        without_header = await client.patch(missing, json={"status": "approved"})
        with_header = await client.patch(missing, json={"status": "approved"},
                                         headers={"X-Autoposter-UI": "1"})
        await client.post("/ui/logout")
        after_logout = await client.get("/v1/posts")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert listing.status_code == 200
    assert without_header.status_code == 403
    assert with_header.status_code == 404  # authenticated, and the post does not exist
    assert after_logout.status_code == 401


async def test_language_switch_keeps_to_the_site(ui_url: str) -> None:
    async with httpx.AsyncClient(base_url=ui_url, follow_redirects=False) as client:
        reply = await client.get("/ui/lang/en", params={"next": "https://example.com/"})
        login = await client.get("/ui/login")
    assert reply.headers["location"] == "/ui/generate"
    assert reply.cookies["autoposter_lang"] == "en"
    assert "<h1>Log in</h1>" in login.text


def test_every_message_key_is_in_both_catalogs() -> None:
    used = {key for path in [*UI.glob("templates/*.html"), *UI.glob("static/*.js")]
            for key in _KEY_USE.findall(path.read_text(encoding="utf-8"))}
    assert used, "no t(\"…\") calls found"
    for lang, messages in CATALOGS.items():
        assert set(messages) == set(CATALOGS["zh-TW"]), lang
        assert used <= set(messages), f"{lang} lacks {sorted(used - set(messages))}"


async def test_unknown_ui_paths_show_the_missing_page(ui_url: str) -> None:
    async with httpx.AsyncClient(base_url=ui_url, follow_redirects=False) as client:
        await _log_in(client)
        replies = [await client.get(path) for path in ("/ui/posts/not-a-uuid", "/ui/nonexistent")]
        static = await client.get("/ui/static/nonexistent.js")
    for reply in replies:
        assert reply.status_code == 404
        assert reply.headers["content-type"].startswith("text/html"), reply.text
        assert "這個頁面不存在。" in reply.text and '<a href="/ui/posts">' in reply.text
    assert static.status_code == 404 and "text/html" not in static.headers["content-type"]


async def test_post_page_names_stages_and_history_in_chinese(ui_url: str) -> None:
    async with httpx.AsyncClient(base_url=ui_url, headers=AUTH, timeout=60) as api:
        post = (await api.post("/v1/posts", json=POST_REQUEST)).json()
        await api.patch(f"/v1/posts/{post['post_id']}", json={"status": "approved"})
    async with httpx.AsyncClient(base_url=ui_url, follow_redirects=False) as client:
        await _log_in(client)
        page = (await client.get(f"/ui/posts/{post['post_id']}")).text
    timings = page.split('class="timings"', 1)[1].split("</dl>", 1)[0]
    history = page.split('id="history"', 1)[1].split("</ol>", 1)[0]
    assert "<dt>總計</dt>" in timings and "<dt>total</dt>" not in timings
    assert "tester · 核准" in history


def test_every_status_type_check_and_assignment_has_words() -> None:
    keys = ({f"status.{status}" for status in get_args(PostStatus)}
            | {f"stage.{stage}" for stage in (*STAGES, "queue_wait", "fallback")}
            | {f"history.{action}" for action in (*_VERBS.values(), "select", "edit")}
            | {f"type.{kind}" for kind in POSTING_TYPES}
            | {f"check.{name}" for name in CHECK_NAMES}
            | {f"assignment.{rule}" for rule in ASSIGNMENTS}
            | {f"batch_status.{status}" for status in ("running", "done", "cancelled")}
            | {f"state.{state}" for state in ("queued", "running", "done", "failed", "cancelled")})
    for lang, messages in CATALOGS.items():
        assert keys <= set(messages), f"{lang} lacks {sorted(keys - set(messages))}"

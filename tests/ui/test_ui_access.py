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
from server.ui._batches import ASSIGNMENTS
from server.ui._messages import CATALOGS
from tests.server.conftest import API_KEY

UI = Path(__file__).resolve().parents[2] / "server" / "ui"
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


def test_every_status_type_check_and_assignment_has_words() -> None:
    keys = ({f"status.{status}" for status in get_args(PostStatus)}
            | {f"type.{kind}" for kind in POSTING_TYPES}
            | {f"check.{name}" for name in CHECK_NAMES}
            | {f"assignment.{rule}" for rule in ASSIGNMENTS}
            | {f"batch_status.{status}" for status in ("running", "done", "cancelled")}
            | {f"state.{state}" for state in ("queued", "running", "done", "failed", "cancelled")})
    for lang, messages in CATALOGS.items():
        assert keys <= set(messages), f"{lang} lacks {sorted(keys - set(messages))}"

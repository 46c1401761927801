"""Rendering one review page: its template, its language, and the data its script reads."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from server.ui._messages import CATALOGS, DEFAULT_LANGUAGE, LANGUAGES

LANG_COOKIE = "autoposter_lang"


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in CATALOGS else DEFAULT_LANGUAGE


def here(request: Request) -> str:
    """This page's path and query, to come back to after a login or a language switch."""
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def page(request: Request, template: str, *, title: str, script: str | None = None,
         data: dict[str, Any] | None = None, status_code: int = 200,
         **context: Any) -> Template:
    """A page in the reviewer's language. `data` reaches the page's script as JSON, with
    the message catalog, so that scripts show the same words as the templates."""
    lang = language(request)
    messages = CATALOGS[lang]
    return Template(
        template_name=template,
        status_code=status_code,
        context={
            "t": messages.__getitem__,  # an unknown key fails loudly, not as blank text
            "lang": lang,
            "languages": LANGUAGES,
            "user": getattr(request.state, "actor", None),
            "here": here(request),
            "title": messages[title],
            "script": script,
            "ui_data": {"lang": lang, "messages": messages, **(data or {})},
            **context,
        },
    )

"""Logging in and out of the review pages, the language switch, and the login check.

The session keeps the digest of the key that logged in, never the key; every page
request looks that digest up again, so revoking the key ends its sessions within the
key store's cache time.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import msgspec
import structlog
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect

from server._auth import SESSION_DIGEST, session_digest
from server._keys import KeyStore, digest
from server.ui._messages import CATALOGS
from server.ui._render import LANG_COOKIE, here, page

log = structlog.get_logger("server.ui")

HOME = "/ui/generate"
_YEAR_S = 365 * 24 * 3600


class LoginForm(msgspec.Struct, kw_only=True):
    api_key: str = ""
    next: str = ""


def safe_next(target: str) -> str:
    """Only a path of the review pages: a crafted login link must not lead off the site."""
    if target.startswith("/ui/") and "\\" not in target and "//" not in target:
        return target
    return HOME


async def require_login(request: Request) -> Response | None:
    """The pages' before_request hook: the reviewer's name, or off to the login page."""
    hashed = session_digest(request)
    keys: KeyStore = request.app.state.api_keys
    owner = await keys.owner_of_digest(hashed) if hashed else None
    if owner is None:
        request.clear_session()
        return Redirect(f"/ui/login?{urlencode({'next': here(request)})}")
    request.state.actor = owner
    return None


@get(["/", "/ui"], include_in_schema=False)
async def home() -> Redirect:
    return Redirect(HOME)


@get("/login", include_in_schema=False)
async def login_page(request: Request, next_page: Annotated[str, QueryParameter(name="next")] = ""
                     ) -> Response:
    return page(request, "login.html", title="login.title", next_page=safe_next(next_page),
                error=None)


@post("/login", include_in_schema=False)
async def log_in(
    request: Request,
    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response:
    keys: KeyStore = request.app.state.api_keys
    key = data.api_key.strip()
    owner = await keys.owner(key) if key else None
    if owner is None:
        log.info("ui.login_refused")
        return page(request, "login.html", title="login.title", status_code=401,
                    next_page=safe_next(data.next), error="login.refused")
    request.set_session({SESSION_DIGEST: digest(key)})
    log.info("ui.login", actor=owner)
    return Redirect(safe_next(data.next), status_code=303)


@post("/logout", include_in_schema=False)
async def log_out(request: Request) -> Redirect:
    request.clear_session()
    return Redirect("/ui/login", status_code=303)


@get("/lang/{code:str}", include_in_schema=False)
async def choose_language(code: FromPath[str],
                          next_page: Annotated[str, QueryParameter(name="next")] = "") -> Redirect:
    response = Redirect(safe_next(next_page))
    if code in CATALOGS:
        response.set_cookie(LANG_COOKIE, code, max_age=_YEAR_S, samesite="lax", httponly=True)
    return response

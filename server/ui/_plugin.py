"""Mounting the review pages on the app: routes, templates, static files, the session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone
from pathlib import Path

import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, Router
from litestar.config.app import AppConfig
from litestar.datastructures import ResponseHeader
from litestar.exceptions import HTTPException, NotFoundException
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ExceptionHandler

from config import Settings
from posting import NotFound
from server.ui import _access, _batches, _posts
from server.ui._messages import CATALOGS
from server.ui._render import language, page

log = structlog.get_logger("server.ui")

_HERE = Path(__file__).parent
SESSION_COOKIE = "autoposter_session"
SESSION_MAX_AGE_S = 12 * 3600
# Scripts and styles come only from /ui/static; user and model text is never markup.
_HEADERS = [
    ResponseHeader(name="Content-Security-Policy",
                   value="default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]
# Excluded from the API-key middleware: these paths check the session themselves.
UI_PATHS = [r"^/$", r"^/ui(/|$)"]


class ReviewPages(InitPluginProtocol):
    """Adds the /ui pages, their templates and the session cookie to an app config."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([_access.home, _router(), _static_router()])
        app_config.template_config = TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(_environment()))
        # Outermost, so that the API-key middleware sees the session too.
        app_config.middleware.insert(0, session_config(self._settings).middleware)
        # A path under /ui that no route matches gets the pages' own not-found page.
        handlers = app_config.exception_handlers
        api_handler = handlers.get(NotFoundException) or handlers.get(HTTPException)
        app_config.exception_handlers = {**handlers,
                                         NotFoundException: _unrouted(api_handler)}
        return app_config


def session_config(settings: Settings) -> CookieBackendConfig:
    """AES-GCM encrypted cookies; the key is the setting's SHA-256, or random."""
    server = settings.server
    if server.session_secret:
        secret = hashlib.sha256(server.session_secret.encode()).digest()
    else:
        if server.workers > 1:
            log.warning("ui.session_secret_missing", workers=server.workers,
                        fix="set AUTOPOSTER_SERVER__SESSION_SECRET so every process"
                            " reads the same login")
        secret = secrets.token_bytes(32)
    return CookieBackendConfig(secret=secret, key=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S,
                               httponly=True, samesite="lax")


def _router() -> Router:
    pages = Router(path="/", route_handlers=[
        _posts.generate_page, _posts.posts_page, _posts.post_page,
        _batches.batches_page, _batches.batch_page,
    ], before_request=_access.require_login, exception_handlers={NotFound: _missing})
    return Router(path="/ui", route_handlers=[
        _access.login_page, _access.log_in, _access.log_out,
        _access.choose_language, pages,
    ], response_headers=_HEADERS, include_in_schema=False)


def _static_router() -> Router:
    return create_static_files_router(path="/ui/static", directories=[_HERE / "static"],
                                      name="ui-static", include_in_schema=False)


def _missing(request: Request, exc: NotFound) -> Template:
    return page(request, "missing.html", title="missing.title", detail=str(exc),
                status_code=404)


def _unrouted(api_handler: ExceptionHandler | None) -> ExceptionHandler:
    """404s for pages (not static files) as the missing page; others as before."""

    def handle(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/static/"):
            detail = CATALOGS[language(request)]["missing.page"]
            return page(request, "missing.html", title="missing.title", detail=detail,
                        status_code=404)
        if api_handler is None:
            raise exc
        return api_handler(request, exc)

    return handle


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["usd"] = lambda value: f"${value:,.6f}"
    env.filters["utc"] = _utc
    return env


def _utc(moment: datetime | None) -> str:
    """A fallback text for <time>; the page's script shows it in the reader's zone."""
    if moment is None:
        return ""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

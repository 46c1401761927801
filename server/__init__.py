"""The Litestar server: a thin HTTP and SSE shell over the posting domain."""

from server._app import create_app, serve_app
from server._keys import KeyStore

__all__ = ["KeyStore", "create_app", "serve_app"]

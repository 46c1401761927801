"""The review pages: Litestar serves them itself, from Jinja templates and plain scripts.

`ReviewPages` mounts them under /ui. A reviewer logs in with an API key; the session
cookie keeps only the key's digest, and the pages' scripts call the /v1 API with it.
"""

from server.ui._plugin import UI_PATHS, ReviewPages

__all__ = ["UI_PATHS", "ReviewPages"]

"""Errors of the posting domain.

    PostingError
    ├── InvalidRequest          bad input, named by field; nothing is stored
    │   ├── UnknownStock        with close matches as suggestions
    │   └── UnknownKol
    ├── NotFound                the post or KOL named by `field` does not exist
    └── Conflict                the stored state forbids the change; `field` names it
        └── TransitionNotAllowed    a review status change outside the allowed moves

A generation that fails after the post was accepted raises nothing: it ends as a stored
post with status `failed` and its reason.

Shells turn these into one CLI line or a problem+json body; `field` says which input
was at fault.
"""

from __future__ import annotations


class PostingError(Exception):
    """Base of every error the posting domain raises on purpose."""


class InvalidRequest(PostingError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownStock(InvalidRequest):
    def __init__(self, query: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__("stock", f"no TWSE or TPEx listing matches {query!r}{hint}")
        self.query = query
        self.suggestions = suggestions


class UnknownKol(InvalidRequest):
    def __init__(self, serial: object, known: list[int]) -> None:
        shown = ", ".join(str(s) for s in known[:12])
        super().__init__("kol", f"no KOL persona with serial {serial!r} (known: {shown})")
        self.serial = serial


class NotFound(PostingError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(PostingError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TransitionNotAllowed(Conflict):
    def __init__(self, current: str, target: str, allowed: list[str]) -> None:
        moves = ", ".join(allowed) if allowed else "none"
        article = "an" if current[:1] in ("a", "e", "i", "o", "u") else "a"
        super().__init__("status", f"{article} {current} post cannot become {target}"
                                   f" (allowed from {current}: {moves})")
        self.current = current
        self.target = target

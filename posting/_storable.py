"""Text that PostgreSQL can store: no NUL characters and no lone UTF-16 surrogates.

JSON allows both (`\\u0000`, `\\ud800`), PostgreSQL text refuses them, so input is
checked at the door and refused by field name instead of failing inside a write.
"""

from __future__ import annotations

from typing import Any

import msgspec

from posting._errors import InvalidRequest


def ensure_storable(value: Any, field: str) -> None:
    """Raise InvalidRequest naming the first field whose text cannot be stored."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidRequest(field, "text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(field, "text is not valid Unicode (lone surrogate)") from None
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            ensure_storable(getattr(value, name), f"{field}.{name}" if field else name)
    elif isinstance(value, dict):
        for key, item in value.items():
            ensure_storable(key, field)
            ensure_storable(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            ensure_storable(item, field)

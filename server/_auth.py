"""Bearer API keys on every /v1 route; the key's name is the actor of what it changes.

The review pages log in with a key too, and keep only its digest in an encrypted session
cookie; /v1 accepts that session in place of the header, so the pages' scripts call the
same API without ever holding the key. A session may read anything, but it may change
something only with the `X-Autoposter-UI` header, which another site's form cannot send.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from server._keys import KeyStore

SESSION_DIGEST = "key_sha256"  # the session field that holds the logged-in key's digest
UI_HEADER = "X-Autoposter-UI"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_digest(connection: ASGIConnection) -> str | None:
    """The digest of the key a review-page session logged in with, if any."""
    session = connection.scope.get("session")
    value = session.get(SESSION_DIGEST) if isinstance(session, dict) else None
    return value if isinstance(value, str) else None


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        keys: KeyStore = connection.app.state.api_keys
        header = connection.headers.get("authorization")
        hashed = session_digest(connection)
        if header is None and hashed is not None:
            return AuthenticationResult(user=await _session_owner(connection, keys, hashed),
                                        auth=None)
        scheme, _, key = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise NotAuthorizedException(
                "send an API key as `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        owner = await keys.owner(key.strip())
        if owner is None:
            raise NotAuthorizedException(
                "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
            )
        return AuthenticationResult(user=owner, auth=None)


async def _session_owner(connection: ASGIConnection, keys: KeyStore, hashed: str) -> str:
    if connection.scope["method"] not in _SAFE_METHODS and UI_HEADER not in connection.headers:
        raise PermissionDeniedException(
            f"a session changes posts only from the review pages; send the {UI_HEADER}"
            " header, or an API key as `Authorization: Bearer <key>`"
        )
    owner = await keys.owner_of_digest(hashed)
    if owner is None:
        raise NotAuthorizedException("the session's API key was revoked; log in again at /ui")
    return owner

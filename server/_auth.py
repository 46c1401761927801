"""Bearer API keys on every /v1 route; the key's name is the actor of what it changes."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from server._keys import KeyStore


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        scheme, _, key = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise NotAuthorizedException(
                "send an API key as `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        keys: KeyStore = connection.app.state.api_keys
        owner = await keys.owner(key.strip())
        if owner is None:
            raise NotAuthorizedException(
                "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
            )
        return AuthenticationResult(user=owner, auth=None)

"""Login, logout and who-am-I."""

import math
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.store import NotFound

from ..auth import (
    hash_password,
    new_session_token,
    token_hash,
    unauthorized,
    verify_password,
)
from ..context import audit, context, current_principal
from ..errors import ApiError, JSONResponse
from ..models import LoginRequest, LoginResponse, LogoutResponse, MeResponse
from ..openapi import operation
from ..validation import read_body

__all__ = ["ROUTES"]

# A hash to check unknown usernames against, so that a wrong username takes as long as a
# wrong password and does not reveal which accounts exist.
_decoy_hash: str | None = None


async def _decoy() -> str:
    global _decoy_hash
    if _decoy_hash is None:
        _decoy_hash = await hash_password("decoy password, matches nothing")
    return _decoy_hash


def user_out(user) -> dict:
    """A user as shown to clients."""
    return {"id": user.id, "username": user.username, "role": user.role}


@operation(summary="Log in with a username and password; returns a session token",
           tag="auth", body=LoginRequest, response=LoginResponse)
async def login(request: Request) -> Response:
    ctx = context(request)
    store = ctx.require_store()
    creds = await read_body(request, LoginRequest)
    wait = ctx.login_backoff.attempt(creds.username, time.monotonic())
    if wait:
        # Refused before the password is checked: a guess costs the attacker a request and
        # the server nothing, and the answer is the same for unknown accounts.
        ctx.metrics.rate_limited.labels("login_account").inc()
        raise ApiError(
            429, "rate_limited", "too many failed logins for this account; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    try:
        user = await store.users.get_by_username(creds.username)
    except NotFound:
        user = None
    encoded = user.password_hash if user is not None else await _decoy()
    if not await verify_password(encoded, creds.password) or user is None:
        ctx.metrics.auth_failures.inc()
        await audit(request, "anonymous", "auth.login_failed", target=creds.username)
        raise unauthorized("invalid username or password")
    ctx.login_backoff.succeeded(creds.username)
    token = new_session_token()
    expires_at = time.time() + ctx.settings.session_ttl
    async with store.transaction():
        await store.sessions.create(token_hash(token), user.id, expires_at)
        await audit(request, user.username, "auth.login", target=str(user.id))
    body = {
        "token": token,
        "token_type": "bearer",
        "expires_at": expires_at,
        "user": user_out(user),
    }
    return JSONResponse(body)


@operation(summary="End the current session", tag="auth", role="viewer",
           response=LogoutResponse, errors=(400,))
async def logout(request: Request) -> Response:
    principal = current_principal(request)
    if principal.kind != "session":
        raise ApiError(400, "not_a_session", "logout ends a session; revoke API keys instead")
    ctx = context(request)
    store = ctx.require_store()
    async with store.transaction():
        revoked = await store.sessions.revoke(principal.token_hash)
        await audit(request, principal.username, "auth.logout", target=str(principal.user_id))
    assert ctx.auth is not None
    ctx.auth.forget(principal.token_hash)
    return JSONResponse({"revoked": revoked})


@operation(summary="The authenticated caller", tag="auth", role="viewer", response=MeResponse)
async def me(request: Request) -> Response:
    principal = current_principal(request)
    body = {
        "user": {
            "id": principal.user_id,
            "username": principal.username,
            "role": principal.user_role,
        },
        "auth": {
            "kind": principal.kind,
            "role": principal.role,
            "expires_at": principal.expires_at,
            "key_id": principal.key_id,
        },
    }
    return JSONResponse(body)


ROUTES = [
    Route("/api/auth/login", login, methods=["POST"], name="auth_login"),
    Route("/api/auth/logout", logout, methods=["POST"], name="auth_logout"),
    Route("/api/auth/me", me, methods=["GET"], name="auth_me"),
]

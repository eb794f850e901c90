"""API keys: create, list, revoke (admin only)."""

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.store import ApiKey, NotFound

from ..auth import ROLE_RANK, new_api_key, token_hash
from ..context import audit, context, current_principal
from ..errors import ApiError, JSONResponse
from ..models import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut, ApiKeyQuery
from ..openapi import operation
from ..validation import invalid, read_body, read_query

__all__ = ["ROUTES", "key_out"]

_MAX_ID = 2**63 - 1


def key_out(key: ApiKey) -> dict:
    """An API key as shown to clients (never its hash)."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "role": key.role,
        "user_id": key.user_id,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


@operation(summary="Create an API key", tag="keys", role="admin", body=ApiKeyCreate,
           response=ApiKeyCreated, status=201)
async def create_key(request: Request) -> Response:
    principal = current_principal(request)
    spec = await read_body(request, ApiKeyCreate)
    store = context(request).require_store()
    if spec.username is None or spec.username == principal.username:
        owner_id, owner_role = principal.user_id, principal.user_role
    else:
        try:
            owner = await store.users.get_by_username(spec.username)
        except NotFound:
            raise invalid("username", "no such user") from None
        owner_id, owner_role = owner.id, owner.role
    if ROLE_RANK[spec.role] > ROLE_RANK[owner_role]:
        raise invalid("role", f"a key cannot have more power than its owner ({owner_role})")
    secret, prefix = new_api_key()
    expires_at = None if spec.expires_in is None else time.time() + spec.expires_in
    async with store.transaction():
        key = await store.api_keys.create(
            token_hash(secret), spec.name, owner_id, spec.role,
            prefix=prefix, expires_at=expires_at,
        )
        await audit(request, principal.username, "api_key.create", target=str(key.id),
                    detail={"name": key.name, "role": key.role, "user_id": owner_id})
    return JSONResponse({"key": secret, "api_key": key_out(key)}, status_code=201)


@operation(summary="List API keys", tag="keys", role="admin", query=ApiKeyQuery,
           response=ApiKeyList)
async def list_keys(request: Request) -> Response:
    query = read_query(request, ApiKeyQuery)
    store = context(request).require_store()
    keys = await store.api_keys.list(include_inactive=query.include_inactive)
    return JSONResponse({"keys": [key_out(k) for k in keys]})


@operation(summary="Revoke an API key", tag="keys", role="admin", response=ApiKeyOut,
           errors=(404, 409),
           path_params={"key_id": {"type": "integer", "minimum": 0, "maximum": _MAX_ID}})
async def revoke_key(request: Request) -> Response:
    principal = current_principal(request)
    key_id = request.path_params["key_id"]
    if key_id > _MAX_ID:
        raise ApiError(404, "not_found", "no such API key")
    if principal.key_id == key_id:
        # Revoking the key that makes the request would lock the caller out mid-call.
        raise ApiError(409, "conflict", "a key cannot revoke itself; use another credential")
    ctx = context(request)
    store = ctx.require_store()
    try:
        async with store.transaction():
            key = await store.api_keys.revoke(key_id)
            await audit(request, principal.username, "api_key.revoke", target=str(key_id))
    except NotFound:
        raise ApiError(404, "not_found", "no such API key") from None
    assert ctx.auth is not None
    ctx.auth.forget_key(key_id)
    return JSONResponse(key_out(key))


ROUTES = [
    Route("/api/keys", create_key, methods=["POST"], name="keys_create"),
    Route("/api/keys", list_keys, methods=["GET"], name="keys_list"),
    Route("/api/keys/{key_id:int}", revoke_key, methods=["DELETE"], name="keys_revoke"),
]

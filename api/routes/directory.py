"""The node directory: list (public), register/refresh signed descriptors and take signed
leave announcements (operator)."""

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.mixnet.control import ControlError, verify_leave
from fogcore.mixnet.descriptor import (
    LAYERS,
    DescriptorError,
    FutureDescriptor,
    InvalidKey,
    InvalidSignature,
    StaleDescriptor,
    verify_descriptor,
)
from fogcore.store import LISTED_NODE_STATES, Conflict, NodeDescriptor, NotFound

from ..context import audit, context, current_principal, principal_of
from ..errors import ApiError, JSONResponse
from ..models import NodeLeave, NodeList, NodeOut, NodeQuery, NodeRegister
from ..openapi import operation
from ..validation import from_hex, read_body, read_query

__all__ = ["ROUTES", "node_out"]

NODE_ID_SCHEMA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
#: how far a leave announcement's time may be from the directory's clock
LEAVE_SKEW_S = 300


def node_out(node: NodeDescriptor) -> dict:
    """A directory entry as shown to clients."""
    return {
        "node_id": node.node_id,
        "identity_key": node.identity_key.hex(),
        "routing_key": node.routing_key.hex(),
        "layer": node.layer,
        "layer_name": LAYERS.get(node.layer, "mix"),
        "format": node.format,
        "address": node.address,
        "published_at": node.published_at,
        "refreshed_at": node.refreshed_at,
        "expires_at": node.expires_at,
        "state": node.state,
        "state_since": node.state_since,
        "descriptor": node.descriptor.hex(),
        "signature": node.signature.hex(),
    }


@operation(summary="List the nodes of the directory, filtered by layer, packet format and "
                   "state (by default the unknown and up ones)",
           tag="directory", query=NodeQuery, response=NodeList)
async def list_nodes(request: Request) -> Response:
    await principal_of(request)  # a token, when sent, must be valid
    query = read_query(request, NodeQuery)
    ctx = context(request)
    store = ctx.require_store()
    if query.state == "listed":
        states = LISTED_NODE_STATES
    elif query.state == "all":
        states = None
    else:
        states = (query.state,)

    async def page() -> bytes:
        nodes = await store.directory.list(
            layer=query.layer, format=query.format, states=states, limit=query.limit,
            offset=query.offset,
        )
        full = len(nodes) == query.limit
        return orjson.dumps(
            {
                "nodes": [node_out(n) for n in nodes],
                "limit": query.limit,
                "offset": query.offset,
                "next_offset": query.offset + query.limit if full else None,
            }
        )

    key = ("nodes", query.layer, query.format, query.state, query.limit, query.offset)
    return Response(await ctx.read_cache.get(key, page), media_type="application/json")


@operation(summary="One node of the directory", tag="directory", response=NodeOut,
           errors=(404,), path_params={"node_id": NODE_ID_SCHEMA})
async def get_node(request: Request) -> Response:
    await principal_of(request)
    store = context(request).require_store()
    try:
        node = await store.directory.get(request.path_params["node_id"].lower())
    except NotFound:
        raise ApiError(404, "not_found", "no such node") from None
    return JSONResponse(node_out(node))


def _refusal(exc: DescriptorError) -> ApiError:
    if isinstance(exc, InvalidSignature):
        code, field = "bad_signature", "signature"
    elif isinstance(exc, StaleDescriptor):
        code, field = "stale_descriptor", "descriptor"
    elif isinstance(exc, FutureDescriptor):
        code, field = "future_descriptor", "descriptor"
    elif isinstance(exc, InvalidKey):
        code, field = "invalid_key", "descriptor"
    else:
        code, field = "malformed_descriptor", "descriptor"
    return ApiError(
        422, code, "the descriptor was refused", fields=[{"field": field, "message": str(exc)}]
    )


@operation(summary="Register or refresh a node with its signed descriptor", tag="directory",
           role="operator", body=NodeRegister, response=NodeOut, errors=(409,))
async def register_node(request: Request) -> Response:
    principal = current_principal(request)
    body = await read_body(request, NodeRegister)
    encoded = from_hex(body.descriptor, "descriptor")
    signature = from_hex(body.signature, "signature")
    try:
        descriptor = verify_descriptor(encoded, signature)
    except DescriptorError as exc:
        raise _refusal(exc) from None
    ctx = context(request)
    store = ctx.require_store()
    try:
        async with store.transaction():
            node = await store.directory.upsert(
                node_id=descriptor.node_id,
                identity_key=descriptor.identity_key,
                routing_key=descriptor.routing_key,
                layer=descriptor.layer,
                format=descriptor.format,
                address=descriptor.address,
                descriptor=descriptor.encoded,
                signature=descriptor.signature,
                info=descriptor.info(),
                published_at=float(descriptor.published_at),
                expires_at=float(descriptor.expires_at),
            )
            await audit(request, principal.username, "directory.register",
                        target=node.node_id, detail={"layer": node.layer,
                                                     "address": node.address})
    except Conflict:
        raise ApiError(
            409, "conflict", "the directory holds a newer descriptor for this node"
        ) from None
    ctx.read_cache.clear()
    return JSONResponse(node_out(node))


@operation(summary="Take a node's signed leave announcement: it is listed as draining until "
                   "it registers a newer descriptor", tag="directory", role="operator",
           body=NodeLeave, response=NodeOut, errors=(404, 409),
           path_params={"node_id": NODE_ID_SCHEMA})
async def leave_node(request: Request) -> Response:
    principal = current_principal(request)
    body = await read_body(request, NodeLeave)
    node_id = request.path_params["node_id"].lower()
    signature = from_hex(body.signature, "signature")
    ctx = context(request)
    store = ctx.require_store()
    try:
        node = await store.directory.get(node_id)
    except NotFound:
        raise ApiError(404, "not_found", "no such node") from None
    now = time.time()
    if abs(now - body.at) > LEAVE_SKEW_S:
        code = "stale_leave" if body.at < now else "future_leave"
        raise ApiError(422, code, "the leave announcement was refused", fields=[
            {"field": "at", "message": f"more than {LEAVE_SKEW_S} s from the directory's "
                                       "clock"}])
    try:
        verify_leave(node.identity_key, body.at, signature, now, max_skew_s=LEAVE_SKEW_S)
    except ControlError as exc:
        raise ApiError(422, "bad_signature", "the leave announcement was refused",
                       fields=[{"field": "signature", "message": str(exc)}]) from None
    try:
        async with store.transaction():
            node = await store.directory.leave(node_id, float(body.at), now=now)
            await audit(request, principal.username, "directory.leave", target=node_id,
                        detail={"at": body.at})
    except NotFound:
        raise ApiError(404, "not_found", "no such node") from None
    except Conflict:
        raise ApiError(409, "conflict", "the node registered a descriptor newer than this "
                                        "announcement") from None
    ctx.read_cache.clear()
    return JSONResponse(node_out(node))


ROUTES = [
    Route("/api/directory/nodes", list_nodes, methods=["GET"], name="directory_list"),
    Route("/api/directory/nodes", register_node, methods=["POST"], name="directory_register"),
    Route("/api/directory/nodes/{node_id}", get_node, methods=["GET"], name="directory_get"),
    Route("/api/directory/nodes/{node_id}/leave", leave_node, methods=["POST"],
          name="directory_leave"),
]

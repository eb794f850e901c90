"""The node directory: list (public) and register/refresh signed descriptors (operator)."""

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.mixnet.descriptor import (
    LAYERS,
    DescriptorError,
    FutureDescriptor,
    InvalidKey,
    InvalidSignature,
    StaleDescriptor,
    verify_descriptor,
)
from fogcore.store import Conflict, NodeDescriptor, NotFound

from ..context import audit, context, principal_of, require_role
from ..errors import ApiError, JSONResponse
from ..models import NodeList, NodeOut, NodeQuery, NodeRegister
from ..openapi import operation
from ..validation import from_hex, read_body, read_query

__all__ = ["ROUTES", "node_out"]

NODE_ID_SCHEMA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


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
        "descriptor": node.descriptor.hex(),
        "signature": node.signature.hex(),
    }


@operation(summary="List the nodes of the directory, filtered by layer and packet format",
           tag="directory", query=NodeQuery, response=NodeList)
async def list_nodes(request: Request) -> Response:
    await principal_of(request)  # a token, when sent, must be valid
    query = read_query(request, NodeQuery)
    ctx = context(request)
    store = ctx.require_store()

    async def page() -> bytes:
        nodes = await store.directory.list(
            layer=query.layer, format=query.format, limit=query.limit, offset=query.offset
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

    key = ("nodes", query.layer, query.format, query.limit, query.offset)
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
    principal = await require_role(request, "operator")
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


ROUTES = [
    Route("/api/directory/nodes", list_nodes, methods=["GET"], name="directory_list"),
    Route("/api/directory/nodes", register_node, methods=["POST"], name="directory_register"),
    Route("/api/directory/nodes/{node_id}", get_node, methods=["GET"], name="directory_get"),
]

"""Betanet VRF delay proofs: read a node's published epoch proof, publish one (operator),
and audit the delay a node gave a packet. Proofs verify under the VRF key of the node's
signed descriptor (docs/directory.md, version 2), never under its identity key."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore import delays, vrf
from fogcore.mixnet.descriptor import DescriptorError, decode_descriptor
from fogcore.store import Conflict, NodeDescriptor, NotFound, VrfEpochProof

from ..context import audit, context, current_principal, principal_of
from ..errors import ApiError, JSONResponse
from ..models import VrfAuditRequest, VrfAuditResponse, VrfProofOut, VrfPublish
from ..openapi import operation
from ..validation import from_hex, invalid, read_body
from .directory import NODE_ID_SCHEMA

__all__ = ["ROUTES"]

_MAX_EPOCH = 2**63 - 1
_PATH = {
    "node_id": NODE_ID_SCHEMA,
    "epoch": {"type": "integer", "minimum": 0, "maximum": _MAX_EPOCH},
}


def proof_out(proof: VrfEpochProof) -> dict:
    """A stored epoch proof as shown to clients."""
    return {
        "node_id": proof.node_id,
        "epoch": proof.epoch,
        "proof": proof.proof.hex(),
        "beta": proof.beta.hex(),
        "published_at": proof.published_at,
    }


def _vrf_key(node: NodeDescriptor) -> bytes:
    """The VRF public key in the node's stored descriptor (verified when it was registered);
    409 when the stored bytes carry none."""
    try:
        return decode_descriptor(node.descriptor).vrf_key
    except DescriptorError:
        raise ApiError(409, "conflict", "the node's stored descriptor carries no usable "
                                        "VRF key; it must register again") from None


def _path(request: Request) -> tuple[str, int]:
    epoch = request.path_params["epoch"]
    if epoch > _MAX_EPOCH:
        raise invalid("epoch", f"epoch must be at most {_MAX_EPOCH}")
    return request.path_params["node_id"].lower(), epoch


@operation(summary="A node's published VRF proof for one delay epoch", tag="betanet",
           response=VrfProofOut, errors=(404,), path_params=_PATH)
async def get_proof(request: Request) -> Response:
    await principal_of(request)
    node_id, epoch = _path(request)
    store = context(request).require_store()
    try:
        proof = await store.vrf.get(node_id, epoch)
    except NotFound:
        raise ApiError(404, "not_found", "no proof published for this node and epoch") from None
    return JSONResponse(proof_out(proof))


@operation(summary="Publish a node's VRF proof for a finished delay epoch", tag="betanet",
           role="operator", body=VrfPublish, response=VrfProofOut, status=201,
           errors=(404, 409), path_params=_PATH)
async def publish_proof(request: Request) -> Response:
    principal = current_principal(request)
    node_id, epoch = _path(request)
    body = await read_body(request, VrfPublish)
    proof = from_hex(body.proof, "proof", vrf.PROOF_BYTES)
    store = context(request).require_store()
    try:
        node = await store.directory.get(node_id)
    except NotFound:
        raise ApiError(404, "not_found", "no such node") from None
    try:
        beta = vrf.verify(_vrf_key(node), proof, delays.epoch_alpha(epoch))
    except vrf.InvalidProof:
        raise invalid("proof", "the proof does not verify for this node and epoch") from None
    try:
        async with store.transaction():
            stored = await store.vrf.put(node_id, epoch, proof, beta)
            await audit(request, principal.username, "vrf.publish",
                        target=f"{node_id}/{epoch}")
    except Conflict:
        raise ApiError(409, "conflict", "another proof is published for this epoch") from None
    return JSONResponse(proof_out(stored), status_code=201)


@operation(summary="Check the delay a node applied to a packet against its VRF proof",
           tag="betanet", body=VrfAuditRequest, response=VrfAuditResponse, errors=(404, 409))
async def audit_delay(request: Request) -> Response:
    await principal_of(request)
    req = await read_body(request, VrfAuditRequest)
    node_id = req.node_id.lower()
    tag = from_hex(req.tag, "tag", delays.TAG_BYTES)
    store = context(request).require_store()
    try:
        node = await store.directory.get(node_id)
        published = await store.vrf.get(node_id, req.epoch)
    except NotFound:
        raise ApiError(404, "not_found", "no proof published for this node and epoch") from None
    try:
        valid = delays.audit(_vrf_key(node), req.epoch, published.proof, tag,
                             req.claimed_delay_us, req.mean_us, req.max_us)
    except vrf.InvalidProof:
        # Proofs are verified before they are stored; this one no longer matches the node.
        raise ApiError(409, "conflict", "the stored proof does not verify") from None
    except (ValueError, OverflowError) as exc:
        raise invalid("mean_us", "delay parameters out of range") from exc
    return JSONResponse({"valid": valid, "node_id": node_id, "epoch": req.epoch})


ROUTES = [
    Route("/api/betanet/vrf/audit", audit_delay, methods=["POST"], name="vrf_audit"),
    Route("/api/betanet/vrf/{node_id}/{epoch:int}", get_proof, methods=["GET"],
          name="vrf_get"),
    Route("/api/betanet/vrf/{node_id}/{epoch:int}", publish_proof, methods=["POST"],
          name="vrf_publish"),
]

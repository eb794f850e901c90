"""The live Betanet testnet: status of every node, one node's history and VRF proofs, and
(operators) deploying or stopping nodes.

These routes reach the testnet supervisor only through the `TestnetControl` interface
that `fogcore up` attaches as `app.state.betanet`; under a plain `fogcore serve` there is
none and they answer 404 saying how to start one.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.store import NotFound

from ..context import audit, context, current_principal
from ..errors import ApiError, JSONResponse
from ..openapi import operation
from ..validation import read_body
from .dashboard import throughput_history
from .directory import NODE_ID_SCHEMA

__all__ = ["ROUTES", "BetanetStatus", "DeployRequest", "NodeDetail", "NodeRefusals",
           "NodeStatus"]

Layer = Literal["entry", "mix", "exit", "gateway"]
Rate = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]


class NodeStatus(Struct, kw_only=True):
    """One node of the testnet with its live figures over the last reporting interval.
    `state` is the directory's (what its probes learn: `unknown` before the first probe,
    `up`, `unreachable`, `draining`), or `down` once the node's process exited;
    `state_since` is when the directory's state last changed."""

    node_id: str
    layer: Layer
    format: Literal["sphinx", "kem"]
    address: str
    state: Literal["unknown", "up", "unreachable", "draining", "down"]
    state_since: float
    packets_in_per_s: Rate
    packets_out_per_s: Rate
    drops_per_s: Rate
    queue_depth: Annotated[int, Meta(ge=0)]
    mean_delay_ms: Rate
    latency_p50_ms: Rate
    latency_p99_ms: Rate
    connections: Annotated[int, Meta(ge=0)]


class LinkStatus(Struct, kw_only=True):
    """Packets per second from one node to another."""

    from_: str = msgspec.field(name="from")
    to: str
    packets_per_s: Rate


class Totals(Struct, kw_only=True):
    """Sums over the nodes that are up (`mean_delay_ms` is their average)."""

    packets_in_per_s: Rate
    packets_out_per_s: Rate
    drops_per_s: Rate
    drops_by_reason: dict[str, int]
    queue_depth: int
    mean_delay_ms: Rate


class BetanetStatus(Struct, kw_only=True):
    """Every node, the count per layer, the links carrying traffic, and totals."""

    time: float
    nodes: list[NodeStatus]
    layers: dict[str, int]
    links: list[LinkStatus]
    totals: Totals


class HistoryPoint(Struct, kw_only=True):
    """One reporting interval of a node."""

    t: float
    packets_in_per_s: Rate
    packets_out_per_s: Rate
    drops_per_s: Rate
    latency_p50_ms: Rate
    latency_p99_ms: Rate
    queue_depth: int


class VrfEntry(Struct, kw_only=True):
    """A published VRF epoch proof (hex)."""

    epoch: int
    proof: str
    beta: str
    published_at: float


class NodeRefusals(Struct, kw_only=True):
    """Incoming connections the node refused or closed early, by reason (cumulative)."""

    total_cap: Count = 0
    source_cap: Count = 0
    no_first_frame: Count = 0
    idle: Count = 0
    draining: Count = 0


class NodeDetail(NodeStatus, kw_only=True):
    """A node with a few minutes of history, its latest published VRF proofs and the delay
    parameters (µs) its delays are drawn with: what an audit of one of its delays needs.
    `refusals` and `link_states` (next hop id → state of the node's link to it) are there
    when the node reports them."""

    history: list[HistoryPoint]
    vrf: list[VrfEntry]
    delay_mean_us: Annotated[int, Meta(ge=0)]
    delay_max_us: Annotated[int, Meta(ge=0)]
    refusals: NodeRefusals | None = None
    link_states: dict[str, str] | None = None


class DeployRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """The layer and packet format of the node to start."""

    layer: Layer
    format: Literal["sphinx", "kem"] = "sphinx"


def _control(request: Request):
    control = getattr(request.app.state, "betanet", None)
    if control is None:
        raise ApiError(404, "no_testnet", "no testnet supervisor is attached to this API: "
                                          "start a local testnet with `fogcore up`")
    return control


def _node_id(request: Request) -> str:
    return request.path_params["node_id"].lower()


@operation(summary="Live status of every testnet node, the links and totals", tag="betanet",
           role="viewer", response=BetanetStatus, errors=(404,))
async def status(request: Request) -> Response:
    control = _control(request)
    # The dashboard's hour of totals is sampled from the first look at the testnet on.
    throughput_history(request)
    return JSONResponse(control.status())


@operation(summary="One testnet node with its history and VRF proofs", tag="betanet",
           role="viewer", response=NodeDetail, errors=(404,),
           path_params={"node_id": NODE_ID_SCHEMA})
async def node_detail(request: Request) -> Response:
    control = _control(request)
    node_id = _node_id(request)
    view = control.node_view(node_id)
    if view is None:
        raise ApiError(404, "not_found", "no such node in the running testnet")
    proofs = await context(request).require_store().vrf.list(node_id, limit=30)
    view["vrf"] = [{"epoch": p.epoch, "proof": p.proof.hex(), "beta": p.beta.hex(),
                    "published_at": p.published_at} for p in proofs]
    return JSONResponse(view)


@operation(summary="Start one more testnet node and register it (of the testnet's own "
                   "packet format: another is refused with 422)", tag="betanet",
           role="operator", body=DeployRequest, response=NodeStatus, status=201,
           errors=(404, 409, 422))
async def deploy(request: Request) -> Response:
    principal = current_principal(request)
    control = _control(request)
    body = await read_body(request, DeployRequest)
    from fogcore.mixnet.testnet import FormatMismatch, TestnetError

    try:
        node = await control.deploy(body.layer, body.format)
    except FormatMismatch as exc:
        raise ApiError(422, "format_mismatch", f"the node was not started: {exc}",
                       fields=[{"field": "format", "message": str(exc)}]) from None
    except TestnetError as exc:
        raise ApiError(409, "conflict", f"the node could not be started: {exc}") from None
    await audit(request, principal.username, "betanet.deploy", target=node["node_id"],
                detail={"layer": body.layer, "format": body.format})
    return JSONResponse(node, status_code=201)


@operation(summary="Stop a testnet node (it drains) and remove it from the directory",
           tag="betanet", role="operator", status=204, errors=(404,),
           path_params={"node_id": NODE_ID_SCHEMA})
async def remove(request: Request) -> Response:
    principal = current_principal(request)
    control = _control(request)
    node_id = _node_id(request)
    try:
        removed = await control.remove(node_id)
    except NotFound:
        removed = False
    if not removed:
        raise ApiError(404, "not_found", "no such node in the running testnet")
    context(request).read_cache.clear()
    await audit(request, principal.username, "betanet.remove", target=node_id)
    return Response(status_code=204)


ROUTES = [
    Route("/api/betanet/status", status, methods=["GET"], name="betanet_status"),
    Route("/api/betanet/deploy", deploy, methods=["POST"], name="betanet_deploy"),
    Route("/api/betanet/nodes/{node_id}", node_detail, methods=["GET"], name="betanet_node"),
    Route("/api/betanet/nodes/{node_id}", remove, methods=["DELETE"], name="betanet_remove"),
]

"""Request and response shapes as msgspec Structs: they validate input and they are the
schemas of the OpenAPI document, so the two cannot disagree."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "Role",
    "Username",
    "Hex",
    "ErrorField",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "ReadyResponse",
    "LoginRequest",
    "UserOut",
    "LoginResponse",
    "AuthInfo",
    "MeResponse",
    "LogoutResponse",
    "ApiKeyCreate",
    "ApiKeyQuery",
    "ApiKeyOut",
    "ApiKeyCreated",
    "ApiKeyList",
    "NodeQuery",
    "NodeRegister",
    "NodeOut",
    "NodeList",
    "NodeLeave",
    "NodeState",
    "VrfProofOut",
    "VrfPublish",
    "VrfAuditRequest",
    "VrfAuditResponse",
    "BenchStart",
    "BenchQuery",
    "BenchRunOut",
    "BenchRunList",
    "BenchResult",
    "NodeCounts",
    "DashboardStats",
]

Role = Literal["admin", "operator", "viewer"]
Username = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Hex = Annotated[str, Meta(pattern=r"^(?:[0-9a-fA-F]{2})*$")]
Hex32 = Annotated[str, Meta(min_length=64, max_length=64, pattern=r"^[0-9a-fA-F]{64}$")]
Limit = Annotated[int, Meta(ge=1, le=1000)]
Offset = Annotated[int, Meta(ge=0, le=1_000_000_000)]
Time = float
U32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
Positive32 = Annotated[int, Meta(ge=1, le=2**32 - 1)]
Epoch = Annotated[int, Meta(ge=0, le=2**63 - 1)]

# Requests reject unknown fields: a misspelt field is an error, not silently ignored.
_REQUEST = {"forbid_unknown_fields": True, "kw_only": True}


# --------------------------------------------------------------------------- errors


class ErrorField(Struct, kw_only=True):
    """What is wrong with one field."""

    field: str
    message: str


class ErrorDetail(Struct, kw_only=True, omit_defaults=True):
    """A stable `code`, a sentence for people, the request id, per-field messages (422)."""

    code: str
    message: str
    request_id: str | None
    fields: list[ErrorField] | None = None


class ErrorResponse(Struct, kw_only=True):
    """Every error response."""

    error: ErrorDetail


# --------------------------------------------------------------------------- health


class HealthResponse(Struct, kw_only=True):
    """Liveness."""

    status: Literal["ok"]


class ReadyResponse(Struct, kw_only=True):
    """Readiness: the store answers and its schema is current."""

    status: Literal["ready", "not_ready"]
    database: str
    reachable: bool
    migrations_current: bool


# --------------------------------------------------------------------------- auth


class LoginRequest(Struct, **_REQUEST):
    """Credentials."""

    username: Username
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class UserOut(Struct, kw_only=True):
    """A user as shown to clients (never the password hash)."""

    id: int
    username: str
    role: Role


class LoginResponse(Struct, kw_only=True):
    """A new session: send `token` as `Authorization: Bearer <token>`."""

    token: str
    token_type: Literal["bearer"]
    expires_at: Time
    user: UserOut


class AuthInfo(Struct, kw_only=True):
    """How the current request is authenticated."""

    kind: Literal["session", "api_key"]
    role: Role
    expires_at: Time | None
    key_id: int | None


class MeResponse(Struct, kw_only=True):
    """The caller."""

    user: UserOut
    auth: AuthInfo


class LogoutResponse(Struct, kw_only=True):
    """Whether the session was active until now."""

    revoked: bool


# --------------------------------------------------------------------------- API keys


class ApiKeyCreate(Struct, **_REQUEST):
    """A new API key for `username` (default: the caller) with `role` (at most the owner's
    role), expiring after `expires_in` seconds (default: never)."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]
    role: Role = "viewer"
    expires_in: Annotated[int, Meta(ge=60, le=366 * 24 * 3600)] | None = None
    username: Username | None = None


class ApiKeyQuery(Struct, kw_only=True):
    """Listing options."""

    include_inactive: bool = False


class ApiKeyOut(Struct, kw_only=True):
    """An API key without its secret."""

    id: int
    name: str
    prefix: str
    role: Role
    user_id: int
    created_at: Time
    expires_at: Time | None
    revoked_at: Time | None
    last_used_at: Time | None


class ApiKeyCreated(Struct, kw_only=True):
    """A new API key; `key` is shown this once and never stored."""

    key: str
    api_key: ApiKeyOut


class ApiKeyList(Struct, kw_only=True):
    """API keys ordered by id."""

    keys: list[ApiKeyOut]


# --------------------------------------------------------------------------- directory


NodeState = Literal["unknown", "up", "unreachable", "draining"]


class NodeQuery(Struct, kw_only=True):
    """Directory filters and page. `state`: `listed` (default: `unknown` and `up`, the
    nodes to route through), `all`, or one state."""

    layer: Annotated[int, Meta(ge=0, le=3)] | None = None
    format: Literal["sphinx", "kem"] | None = None
    state: Literal["listed", "all", "unknown", "up", "unreachable", "draining"] = "listed"
    limit: Limit = 100
    offset: Offset = 0


class NodeRegister(Struct, **_REQUEST):
    """A signed descriptor (docs/directory.md), both fields in hex."""

    descriptor: Annotated[str, Meta(max_length=2048, pattern=r"^(?:[0-9a-fA-F]{2})*$")]
    signature: Annotated[str, Meta(max_length=256, pattern=r"^(?:[0-9a-fA-F]{2})*$")]


class NodeOut(Struct, kw_only=True):
    """A listed node. Keys, descriptor and signature in lowercase hex."""

    node_id: str
    identity_key: str
    routing_key: str
    layer: int
    layer_name: Literal["entry", "mix", "exit", "gateway"]
    format: Literal["sphinx", "kem"]
    address: str
    published_at: Time
    refreshed_at: Time
    expires_at: Time
    state: NodeState
    state_since: Time
    descriptor: str
    signature: str


class NodeLeave(Struct, **_REQUEST):
    """A node's signed leave announcement: its Unix time in seconds and the Ed25519
    signature (hex) over `b"fogcore leave v1" + node_id + at` (8 bytes, big-endian)."""

    at: Annotated[int, Meta(ge=0, le=2**63 - 1)]
    signature: Annotated[str, Meta(max_length=256, pattern=r"^(?:[0-9a-fA-F]{2})*$")]


class NodeList(Struct, kw_only=True):
    """One page of nodes ordered by (layer, node_id); `next_offset` is null on the last."""

    nodes: list[NodeOut]
    limit: int
    offset: int
    next_offset: int | None


# --------------------------------------------------------------------------- VRF


class VrfProofOut(Struct, kw_only=True):
    """A node's published VRF proof for one delay epoch (hex)."""

    node_id: str
    epoch: int
    proof: str
    beta: str
    published_at: Time


class VrfPublish(Struct, **_REQUEST):
    """A VRF proof (80 bytes, hex) over the epoch, by the node's identity key."""

    proof: Annotated[str, Meta(min_length=160, max_length=160, pattern=r"^[0-9a-fA-F]{160}$")]


class VrfAuditRequest(Struct, **_REQUEST):
    """A delay to check: the packet's replay tag at that node, the delay the node applied
    and the delay parameters the node announced."""

    node_id: Hex32
    epoch: Epoch
    tag: Hex32
    claimed_delay_us: U32
    mean_us: Positive32
    max_us: Positive32


class VrfAuditResponse(Struct, kw_only=True):
    """`valid` is true when the claimed delay is the one the node's VRF output fixes."""

    valid: bool
    node_id: str
    epoch: int


# --------------------------------------------------------------------------- benchmarks


class BenchStart(Struct, **_REQUEST):
    """Start `fogcore bench SUITE` (with `--quick` when `quick`)."""

    suite: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
    quick: bool = True


class BenchQuery(Struct, kw_only=True):
    """Run listing filters and page."""

    status: Literal["queued", "running", "done", "failed", "stopped"] | None = None
    suite: Annotated[str, Meta(max_length=32)] | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    offset: Offset = 0


class BenchRunOut(Struct, kw_only=True):
    """A run: `progress` is the finished fraction (0..1), `step` the last step reported."""

    id: str
    suite: str
    status: Literal["queued", "running", "done", "failed", "stopped"]
    progress: Annotated[float, Meta(ge=0, le=1)]
    step: str | None
    params: dict[str, Any]
    error: str | None
    has_result: bool
    created_at: Time
    started_at: Time | None
    finished_at: Time | None


class BenchRunList(Struct, kw_only=True):
    """Runs, newest first."""

    runs: list[BenchRunOut]


class BenchResult(Struct, kw_only=True):
    """A finished run's result document (as written by `fogcore bench --json`)."""

    suite: str
    machine: dict[str, Any]
    started: float
    finished: float
    results: dict[str, Any]


# --------------------------------------------------------------------------- dashboard


class NodeCounts(Struct, kw_only=True):
    """Listed nodes."""

    total: int
    by_layer: dict[str, int]


class DashboardStats(Struct, kw_only=True):
    """Aggregates of what exists."""

    nodes: NodeCounts
    bench_runs: dict[str, int]
    users: int
    audit_entries: int
    database: str
    uptime_s: float
    generated_at: Time


def schema_of(*types: Any) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """JSON Schemas of `types` with shared components under #/components/schemas."""
    return msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")

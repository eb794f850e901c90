"""The store interface: typed errors, records and one abstract repository per area.

Everything a caller needs is here and re-exported by `fogcore.store`. Two backends
(SQLite and PostgreSQL) implement it with the same schema and pass the same contract tests.

Conventions:
- Times are UTC seconds since the Unix epoch as `float` (`time.time()`); `None` means
  "never" (not expired, not revoked, not finished).
- Hashes, keys, proofs and signatures are `bytes`; any bytes-like value is accepted.
- JSON columns hold a `dict` (encoded with orjson); callers pass and receive plain dicts.
- Every method that can find nothing raises `NotFound`, except the `find_*` methods meant
  for the hot path, which return `None`.
- Statements issued inside `async with store.transaction():` commit together or not at all.
  Operations inside one transaction must run one after another (no `gather` inside it).
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ROLES",
    "BENCH_STATUSES",
    "NODE_STATES",
    "LISTED_NODE_STATES",
    "BENCH_TERMINAL",
    "NODE_FORMATS",
    "StoreError",
    "NotFound",
    "Conflict",
    "InvalidReference",
    "ConstraintViolation",
    "StoreUnavailable",
    "MigrationError",
    "User",
    "Session",
    "SessionGrant",
    "ApiKey",
    "ApiKeyGrant",
    "NodeDescriptor",
    "VrfEpochProof",
    "BenchRun",
    "AuditEntry",
    "UserRepository",
    "SessionRepository",
    "ApiKeyRepository",
    "DirectoryRepository",
    "VrfRepository",
    "BenchRepository",
    "AuditRepository",
    "Store",
]

#: Roles in decreasing order of power.
ROLES: Final = ("admin", "operator", "viewer")
#: Life cycle of a benchmark run: queued -> running -> done | failed | stopped.
BENCH_STATUSES: Final = ("queued", "running", "done", "failed", "stopped")
#: reachability states of a directory node (docs/directory.md §5)
NODE_STATES: Final = ("unknown", "up", "unreachable", "draining")
#: the states a default directory listing shows (clients build routes from it)
LISTED_NODE_STATES: Final = ("unknown", "up")
#: Statuses a run never leaves.
BENCH_TERMINAL: Final = frozenset({"done", "failed", "stopped"})
#: Packet formats a node may announce.
NODE_FORMATS: Final = ("sphinx", "kem")


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """Base of every error the store raises. The message is short and never holds SQL;
    the driver's exception, when there was one, is chained as `__cause__` for logs only."""


class NotFound(StoreError):
    """The requested row does not exist (or is not in a state the call accepts as existing)."""


class Conflict(StoreError):
    """A uniqueness rule was broken or the row is in a state that forbids the change
    (already exists, stale descriptor, run already finished...).

    `target` names what collided when known, e.g. ``"users.username"``."""

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class InvalidReference(StoreError):
    """A foreign key points at a row that does not exist (e.g. a session for no user)."""


class ConstraintViolation(StoreError):
    """A value broke a check or not-null rule (e.g. an unknown role or status)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or the connection broke."""


class MigrationError(StoreError):
    """The schema could not be brought up to date (or is newer than this code)."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class User:
    """An account that can log in. `password_hash` is the encoded Argon2id string."""

    id: int
    username: str
    password_hash: str
    role: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Session:
    """A login session, identified by the hash of its bearer token (the token itself is
    never stored)."""

    token_hash: bytes
    user_id: int
    created_at: float
    expires_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """An active session with its user, as returned by `SessionRepository.find_active`."""

    session: Session
    user: User


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key, identified by `id`; looked up by the hash of the secret. `prefix` is a
    short public part of the key shown in listings so people can tell keys apart. `role`
    is the key's own role; it may be lower than its user's."""

    id: int
    key_hash: bytes
    prefix: str
    name: str
    user_id: int
    role: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class ApiKeyGrant:
    """An active API key with its user, as returned by `ApiKeyRepository.find_active`."""

    key: ApiKey
    user: User


@dataclass(frozen=True, slots=True)
class NodeDescriptor:
    """A mix node's signed descriptor as held by the directory.

    `descriptor` is the exact signed byte string, `signature` the Ed25519 signature over it
    by `identity_key`; `info` is the decoded descriptor for listings. `published_at` is the
    node's own time in the descriptor, `refreshed_at` when the directory last accepted it,
    `expires_at` when it stops being listed.

    `state` (one of `NODE_STATES`) is the node's reachability as the directory last learnt
    it, `state_since` when it changed; `last_ack_at` the directory's time of the last valid
    probe acknowledgement recorded with a change; `leave_at` the node's own time in its
    latest accepted leave announcement (None: none)."""

    node_id: str
    identity_key: bytes
    routing_key: bytes
    layer: int
    format: str
    address: str
    descriptor: bytes
    signature: bytes
    info: dict[str, Any]
    published_at: float
    refreshed_at: float
    expires_at: float
    state: str = "unknown"
    state_since: float = 0.0
    last_ack_at: float | None = None
    leave_at: float | None = None


@dataclass(frozen=True, slots=True)
class VrfEpochProof:
    """The VRF proof a node published for one delay epoch (`beta` is the VRF output)."""

    node_id: str
    epoch: int
    proof: bytes
    beta: bytes
    published_at: float


@dataclass(frozen=True, slots=True)
class BenchRun:
    """One benchmark run. `progress` counts finished steps out of `total` (0 while the
    total is unknown)."""

    id: str
    suite: str
    status: str
    progress: int
    total: int
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One state-changing action: who (`actor`) did what (`action`) to what (`target`)."""

    id: int
    at: float
    actor: str
    action: str
    target: str | None
    request_id: str | None
    detail: dict[str, Any]


# --------------------------------------------------------------------------- repositories


class UserRepository(abc.ABC):
    """Accounts."""

    @abc.abstractmethod
    async def create(self, username: str, password_hash: str, role: str) -> User:
        """Add a user. `Conflict` if the username is taken, `ConstraintViolation` for an
        unknown role."""

    @abc.abstractmethod
    async def get(self, user_id: int) -> User:
        """The user with this id, else `NotFound`."""

    @abc.abstractmethod
    async def get_by_username(self, username: str) -> User:
        """The user with this username, else `NotFound`."""

    @abc.abstractmethod
    async def list(self, *, limit: int = 100, offset: int = 0) -> builtins.list[User]:
        """Users ordered by id."""

    @abc.abstractmethod
    async def count(self, *, role: str | None = None) -> int:
        """How many users (with this role, if given)."""

    @abc.abstractmethod
    async def update(
        self, user_id: int, *, password_hash: str | None = None, role: str | None = None
    ) -> User:
        """Change the password hash and/or role; returns the new row. `NotFound` if absent."""

    @abc.abstractmethod
    async def delete(self, user_id: int) -> None:
        """Remove the user and, with it, their sessions and API keys. `NotFound` if absent."""


class SessionRepository(abc.ABC):
    """Login sessions, keyed by token hash."""

    @abc.abstractmethod
    async def create(self, token_hash: bytes, user_id: int, expires_at: float) -> Session:
        """Open a session. `InvalidReference` if the user does not exist, `Conflict` if the
        token hash is already in use."""

    @abc.abstractmethod
    async def get(self, token_hash: bytes) -> Session:
        """The session (active or not), else `NotFound`."""

    @abc.abstractmethod
    async def find_active(self, token_hash: bytes, now: float | None = None) -> SessionGrant | None:
        """The session and its user if it exists, is not revoked and has not expired at
        `now` (default: the current time); else None. One query."""

    @abc.abstractmethod
    async def list_for_user(
        self, user_id: int, *, include_inactive: bool = False, now: float | None = None
    ) -> builtins.list[Session]:
        """A user's sessions, newest first; only active ones (at `now`) unless
        `include_inactive`."""

    @abc.abstractmethod
    async def revoke(self, token_hash: bytes, now: float | None = None) -> bool:
        """Revoke the session; True if it was active until now."""

    @abc.abstractmethod
    async def revoke_all_for_user(self, user_id: int, now: float | None = None) -> int:
        """Revoke every active session of the user; returns how many."""

    @abc.abstractmethod
    async def delete_expired(self, now: float | None = None) -> int:
        """Delete sessions that expired or were revoked before `now`; returns how many."""


class ApiKeyRepository(abc.ABC):
    """API keys, looked up by key hash."""

    @abc.abstractmethod
    async def create(
        self,
        key_hash: bytes,
        name: str,
        user_id: int,
        role: str,
        *,
        prefix: str = "",
        expires_at: float | None = None,
    ) -> ApiKey:
        """Add a key. `InvalidReference` for an unknown user, `Conflict` for a duplicate
        hash, `ConstraintViolation` for an unknown role."""

    @abc.abstractmethod
    async def get(self, key_id: int) -> ApiKey:
        """The key (active or not), else `NotFound`."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        user_id: int | None = None,
        include_inactive: bool = False,
        now: float | None = None,
    ) -> builtins.list[ApiKey]:
        """Keys ordered by id, optionally of one user; expired and revoked ones only when
        `include_inactive`."""

    @abc.abstractmethod
    async def find_active(self, key_hash: bytes, now: float | None = None) -> ApiKeyGrant | None:
        """The key and its user if not revoked and not expired at `now`; else None. Also
        records `last_used_at` (at most once a minute per key, to keep reads cheap)."""

    @abc.abstractmethod
    async def revoke(self, key_id: int, now: float | None = None) -> ApiKey:
        """Revoke the key (idempotent: an already revoked key keeps its first revocation
        time) and return it. `NotFound` if absent."""


class DirectoryRepository(abc.ABC):
    """Signed node descriptors. Signature and freshness checks belong to the caller; the
    store guarantees that a node's identity key never changes and that a descriptor is
    never replaced by an older one."""

    @abc.abstractmethod
    async def upsert(
        self,
        *,
        node_id: str,
        identity_key: bytes,
        routing_key: bytes,
        layer: int,
        format: str,
        address: str,
        descriptor: bytes,
        signature: bytes,
        info: dict[str, Any],
        published_at: float,
        expires_at: float,
        now: float | None = None,
    ) -> NodeDescriptor:
        """Register or refresh a node. `Conflict` if the node exists with another identity
        key or a newer `published_at`; `ConstraintViolation` for an unknown format."""

    @abc.abstractmethod
    async def get(self, node_id: str) -> NodeDescriptor:
        """The descriptor (expired or not), else `NotFound`."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        layer: int | None = None,
        format: str | None = None,
        include_expired: bool = False,
        states: Sequence[str] | None = None,
        now: float | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> builtins.list[NodeDescriptor]:
        """Descriptors ordered by (layer, node_id), filtered by layer, format and (when
        `states` is given) state."""

    @abc.abstractmethod
    async def count(
        self, *, include_expired: bool = False, now: float | None = None
    ) -> dict[int, int]:
        """Number of listed nodes per layer."""

    @abc.abstractmethod
    async def delete(self, node_id: str) -> None:
        """Remove the node and its VRF proofs. `NotFound` if absent."""

    @abc.abstractmethod
    async def delete_expired(self, now: float | None = None) -> int:
        """Remove nodes whose descriptor expired before `now`; returns how many."""

    @abc.abstractmethod
    async def set_state(
        self, node_id: str, state: str, *, ack_at: float | None = None,
        now: float | None = None,
    ) -> NodeDescriptor | None:
        """Record a state the prober observed (`up`, `unreachable` or `draining`) with
        `state_since = now` and, when given, `last_ack_at = ack_at`. Nothing changes (None
        is returned) when the node is absent, already in `state`, or leaving by a signed
        announcement (only a newer descriptor ends that). `ConstraintViolation` for an
        unknown state."""

    @abc.abstractmethod
    async def leave(self, node_id: str, at: float, now: float | None = None) -> NodeDescriptor:
        """Mark the node `draining` after its signed leave announcement of time `at`
        (checked by the caller). Idempotent: an announcement repeated, or an older one while
        draining, changes nothing. `NotFound` if absent; `Conflict` when `at` is older than
        the stored descriptor's `published_at` (a newer registration superseded it)."""


class VrfRepository(abc.ABC):
    """Published VRF epoch proofs, one per (node, epoch)."""

    @abc.abstractmethod
    async def put(
        self, node_id: str, epoch: int, proof: bytes, beta: bytes, now: float | None = None
    ) -> VrfEpochProof:
        """Store the proof. Publishing the same proof again returns the stored row; a
        different proof for the same epoch is a `Conflict`. `InvalidReference` if the node
        is not in the directory."""

    @abc.abstractmethod
    async def get(self, node_id: str, epoch: int) -> VrfEpochProof:
        """The proof, else `NotFound`."""

    @abc.abstractmethod
    async def list(
        self, node_id: str, *, since_epoch: int | None = None, limit: int = 100
    ) -> builtins.list[VrfEpochProof]:
        """A node's proofs, newest epoch first, from `since_epoch` on."""

    @abc.abstractmethod
    async def delete_before(self, epoch: int) -> int:
        """Remove proofs of epochs older than `epoch`; returns how many."""


class BenchRepository(abc.ABC):
    """Benchmark runs and their progress."""

    @abc.abstractmethod
    async def create(
        self,
        suite: str,
        params: dict[str, Any],
        *,
        total: int = 0,
        run_id: str | None = None,
        now: float | None = None,
    ) -> BenchRun:
        """Queue a run (id: a random hex string unless given). `Conflict` on a taken id."""

    @abc.abstractmethod
    async def get(self, run_id: str) -> BenchRun:
        """The run, else `NotFound`."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        status: str | None = None,
        suite: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[BenchRun]:
        """Runs, newest first."""

    @abc.abstractmethod
    async def count(self) -> dict[str, int]:
        """Number of runs per status."""

    @abc.abstractmethod
    async def start(self, run_id: str, now: float | None = None) -> BenchRun:
        """queued -> running. `NotFound` if absent, `Conflict` if not queued."""

    @abc.abstractmethod
    async def advance(self, run_id: str, steps: int = 1, *, total: int | None = None) -> int:
        """Atomically add `steps` to the progress of a run that is not finished (and set
        `total` when given); returns the new progress. `NotFound` if absent, `Conflict` if
        finished. Safe under any number of concurrent callers."""

    @abc.abstractmethod
    async def finish(
        self,
        run_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> BenchRun:
        """Move a queued or running run to done, failed or stopped. `NotFound` if absent,
        `Conflict` if already finished, `ConstraintViolation` for a non-final status."""


class AuditRepository(abc.ABC):
    """The append-only log of state-changing requests."""

    @abc.abstractmethod
    async def record(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> AuditEntry:
        """Append one entry."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """Entries newest first; page with `before_id` (the last id of the previous page)."""

    @abc.abstractmethod
    async def count(self) -> int:
        """Number of entries."""


# --------------------------------------------------------------------------- the store


class Store(abc.ABC):
    """A database with one repository per area. Open it with `fogcore.store.open_store`;
    it is also an async context manager that closes itself."""

    #: "sqlite" or "postgresql".
    backend: str
    users: UserRepository
    sessions: SessionRepository
    api_keys: ApiKeyRepository
    directory: DirectoryRepository
    vrf: VrfRepository
    bench: BenchRepository
    audit: AuditRepository

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """`async with store.transaction():` — every store call made inside the block by
        this task commits together, or rolls back if the block raises. Nests (inner blocks
        are savepoints)."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True if the database answers a trivial query; never raises."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The highest migration version applied to the database."""

    @abc.abstractmethod
    async def migrations_current(self) -> bool:
        """True if every migration shipped with this code is applied; never raises."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

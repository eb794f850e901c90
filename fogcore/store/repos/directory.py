"""The node directory: `node_descriptors`."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from ..base import (
    NODE_STATES,
    Conflict,
    ConstraintViolation,
    DirectoryRepository,
    NodeDescriptor,
    NotFound,
)
from ._common import SQLRepository, as_bytes, dump_json, load_json, opt_float

__all__ = ["SQLDirectoryRepository"]

_FIELDS = (
    "node_id", "identity_key", "routing_key", "layer", "format", "address", "descriptor",
    "signature", "info", "published_at", "refreshed_at", "expires_at",
)  # fmt: skip
_STATE_FIELDS = ("state", "state_since", "last_ack_at", "leave_at")
_COLUMNS = ", ".join(_FIELDS + _STATE_FIELDS)
_INSERT_COLUMNS = ", ".join(_FIELDS) + ", state_since"
_PARAMS = ", ".join(f"${i}" for i in range(1, len(_FIELDS) + 1)) + f", ${len(_FIELDS) - 1}"
_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _FIELDS if name != "node_id")
# A descriptor published after the node's leave announcement means it is back: its state
# starts again from 'unknown' (the prober settles it) and the announcement is forgotten.
_BACK = ("node_descriptors.leave_at IS NOT NULL"
         " AND excluded.published_at > node_descriptors.leave_at")
_CLEAR_LEAVE = (
    f", state = CASE WHEN {_BACK} THEN 'unknown' ELSE node_descriptors.state END"
    f", state_since = CASE WHEN {_BACK} THEN excluded.refreshed_at"
    " ELSE node_descriptors.state_since END"
    f", leave_at = CASE WHEN {_BACK} THEN NULL ELSE node_descriptors.leave_at END"
)

# Refresh only when the identity key is unchanged and the descriptor is not older than the
# stored one; otherwise nothing is returned and the caller learns why below.
_UPSERT = (
    f"INSERT INTO node_descriptors ({_INSERT_COLUMNS}) VALUES ({_PARAMS})"
    f" ON CONFLICT (node_id) DO UPDATE SET {_UPDATES}{_CLEAR_LEAVE}"
    " WHERE node_descriptors.identity_key = excluded.identity_key"
    " AND node_descriptors.published_at <= excluded.published_at"
    f" RETURNING {_COLUMNS}"
)

# The prober's observations never override a signed leave announcement.
_SET_STATE = (
    "UPDATE node_descriptors SET state = $2, state_since = $3,"
    " last_ack_at = COALESCE($4, last_ack_at)"
    " WHERE node_id = $1 AND state <> $2 AND leave_at IS NULL"
    f" RETURNING {_COLUMNS}"
)

# Only an announcement not older than the descriptor counts; a repeated one keeps the
# first `state_since` and the latest `leave_at`.
_LEAVE = (
    "UPDATE node_descriptors SET"
    " state_since = CASE WHEN state = 'draining' THEN state_since ELSE $3 END,"
    " state = 'draining',"
    " leave_at = CASE WHEN leave_at IS NULL OR leave_at < $2 THEN $2 ELSE leave_at END"
    " WHERE node_id = $1 AND published_at <= $2"
    f" RETURNING {_COLUMNS}"
)


def _node(row: Sequence[Any]) -> NodeDescriptor:
    return NodeDescriptor(
        node_id=row[0],
        identity_key=bytes(row[1]),
        routing_key=bytes(row[2]),
        layer=row[3],
        format=row[4],
        address=row[5],
        descriptor=bytes(row[6]),
        signature=bytes(row[7]),
        info=load_json(row[8]),
        published_at=float(row[9]),
        refreshed_at=float(row[10]),
        expires_at=float(row[11]),
        state=row[12],
        state_since=float(row[13]),
        last_ack_at=opt_float(row[14]),
        leave_at=opt_float(row[15]),
    )


class SQLDirectoryRepository(SQLRepository, DirectoryRepository):
    """`DirectoryRepository` over SQL."""

    __slots__ = ()

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
        identity_key = as_bytes(identity_key)
        row = await self._db.fetchrow(
            _UPSERT,
            node_id,
            identity_key,
            as_bytes(routing_key),
            int(layer),
            format,
            address,
            as_bytes(descriptor),
            as_bytes(signature),
            dump_json(info),
            float(published_at),
            self._now(now),
            float(expires_at),
        )
        if row is not None:
            return _node(row)
        current = await self._db.fetchrow(
            "SELECT identity_key FROM node_descriptors WHERE node_id = $1", node_id
        )
        if current is not None and bytes(current["identity_key"]) != identity_key:
            raise Conflict(
                "node is registered with another identity key", "node_descriptors.identity_key"
            )
        raise Conflict("a newer descriptor is already published", "node_descriptors.published_at")

    async def get(self, node_id: str) -> NodeDescriptor:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM node_descriptors WHERE node_id = $1", node_id
        )
        if row is None:
            raise NotFound("node not found")
        return _node(row)

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
        where: list[str] = []
        args: list[Any] = []
        if states is not None:
            marks = []
            for state in dict.fromkeys(states):
                args.append(_state(state))
                marks.append(f"${len(args)}")
            where.append(f"state IN ({', '.join(marks)})" if marks else "1 = 0")
        if layer is not None:
            args.append(int(layer))
            where.append(f"layer = ${len(args)}")
        if format is not None:
            args.append(format)
            where.append(f"format = ${len(args)}")
        if not include_expired:
            args.append(self._now(now))
            where.append(f"expires_at > ${len(args)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        args += [limit, offset]
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM node_descriptors{clause}"
            f" ORDER BY layer, node_id LIMIT ${len(args) - 1} OFFSET ${len(args)}",
            *args,
        )
        return [_node(row) for row in rows]

    async def count(
        self, *, include_expired: bool = False, now: float | None = None
    ) -> dict[int, int]:
        if include_expired:
            rows = await self._db.fetch(
                "SELECT layer, COUNT(*) AS n FROM node_descriptors GROUP BY layer ORDER BY layer"
            )
        else:
            rows = await self._db.fetch(
                "SELECT layer, COUNT(*) AS n FROM node_descriptors WHERE expires_at > $1"
                " GROUP BY layer ORDER BY layer",
                self._now(now),
            )
        return {row["layer"]: row["n"] for row in rows}

    async def delete(self, node_id: str) -> None:
        if not await self._db.execute("DELETE FROM node_descriptors WHERE node_id = $1", node_id):
            raise NotFound("node not found")

    async def delete_expired(self, now: float | None = None) -> int:
        return await self._db.execute(
            "DELETE FROM node_descriptors WHERE expires_at <= $1", self._now(now)
        )

    async def set_state(
        self, node_id: str, state: str, *, ack_at: float | None = None,
        now: float | None = None,
    ) -> NodeDescriptor | None:
        if _state(state) == "unknown":
            raise ConstraintViolation("the prober records up, unreachable or draining")
        row = await self._db.fetchrow(
            _SET_STATE, node_id, state, self._now(now),
            None if ack_at is None else float(ack_at),
        )
        return None if row is None else _node(row)

    async def leave(self, node_id: str, at: float, now: float | None = None) -> NodeDescriptor:
        row = await self._db.fetchrow(_LEAVE, node_id, float(at), self._now(now))
        if row is not None:
            return _node(row)
        await self.get(node_id)  # NotFound when absent
        raise Conflict("a newer descriptor supersedes this leave", "node_descriptors.leave_at")


def _state(state: str) -> str:
    if state not in NODE_STATES:
        raise ConstraintViolation("unknown node state")
    return state

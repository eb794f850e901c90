"""The node directory: `node_descriptors`."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from ..base import Conflict, DirectoryRepository, NodeDescriptor, NotFound
from ._common import SQLRepository, as_bytes, dump_json, load_json

__all__ = ["SQLDirectoryRepository"]

_FIELDS = (
    "node_id", "identity_key", "routing_key", "layer", "format", "address", "descriptor",
    "signature", "info", "published_at", "refreshed_at", "expires_at",
)  # fmt: skip
_COLUMNS = ", ".join(_FIELDS)
_PARAMS = ", ".join(f"${i}" for i in range(1, len(_FIELDS) + 1))
_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _FIELDS if name != "node_id")

# Refresh only when the identity key is unchanged and the descriptor is not older than the
# stored one; otherwise nothing is returned and the caller learns why below.
_UPSERT = (
    f"INSERT INTO node_descriptors ({_COLUMNS}) VALUES ({_PARAMS})"
    f" ON CONFLICT (node_id) DO UPDATE SET {_UPDATES}"
    " WHERE node_descriptors.identity_key = excluded.identity_key"
    " AND node_descriptors.published_at <= excluded.published_at"
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
        now: float | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> builtins.list[NodeDescriptor]:
        where: list[str] = []
        args: list[Any] = []
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

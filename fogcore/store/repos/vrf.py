"""Published VRF epoch proofs: `vrf_epoch_proofs`."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from ..base import Conflict, InvalidReference, NotFound, VrfEpochProof, VrfRepository
from ._common import SQLRepository, as_bytes

__all__ = ["SQLVrfRepository"]

_COLUMNS = "node_id, epoch, proof, beta, published_at"


def _proof(row: Sequence[Any]) -> VrfEpochProof:
    return VrfEpochProof(
        node_id=row[0],
        epoch=row[1],
        proof=bytes(row[2]),
        beta=bytes(row[3]),
        published_at=float(row[4]),
    )


class SQLVrfRepository(SQLRepository, VrfRepository):
    """`VrfRepository` over SQL."""

    __slots__ = ()

    async def put(
        self, node_id: str, epoch: int, proof: bytes, beta: bytes, now: float | None = None
    ) -> VrfEpochProof:
        proof, beta = as_bytes(proof), as_bytes(beta)
        row = await self._db.fetchrow(
            f"INSERT INTO vrf_epoch_proofs ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
            f" ON CONFLICT (node_id, epoch) DO NOTHING RETURNING {_COLUMNS}",
            node_id,
            int(epoch),
            proof,
            beta,
            self._now(now),
        )
        if row is not None:
            return _proof(row)
        # Already published: the same proof again is harmless, a different one is not.
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM vrf_epoch_proofs WHERE node_id = $1 AND epoch = $2",
            node_id,
            int(epoch),
        )
        if row is None:  # the node was removed in between
            raise InvalidReference("node not found")
        stored = _proof(row)
        if stored.proof != proof or stored.beta != beta:
            raise Conflict("another proof is published for this epoch", "vrf_epoch_proofs.epoch")
        return stored

    async def get(self, node_id: str, epoch: int) -> VrfEpochProof:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM vrf_epoch_proofs WHERE node_id = $1 AND epoch = $2",
            node_id,
            int(epoch),
        )
        if row is None:
            raise NotFound("proof not found")
        return _proof(row)

    async def list(
        self, node_id: str, *, since_epoch: int | None = None, limit: int = 100
    ) -> builtins.list[VrfEpochProof]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM vrf_epoch_proofs WHERE node_id = $1 AND epoch >= $2"
            " ORDER BY epoch DESC LIMIT $3",
            node_id,
            0 if since_epoch is None else int(since_epoch),
            limit,
        )
        return [_proof(row) for row in rows]

    async def delete_before(self, epoch: int) -> int:
        return await self._db.execute("DELETE FROM vrf_epoch_proofs WHERE epoch < $1", int(epoch))

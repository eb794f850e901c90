"""Reading the directory over HTTP: node descriptors and published VRF epoch proofs.

The directory API (`GET /api/directory/nodes`, `GET /api/betanet/vrf/{node_id}/{epoch}`)
is only a transport: every descriptor is verified again by `Topology.refresh` and every
proof by `fogcore.delays` before use, so a lying directory can hide nodes but not forge
them.
"""

from __future__ import annotations

import httpx

from fogcore.mixnet.topology import RefreshResult, Topology

__all__ = ["DirectoryClient", "DirectoryError"]

_PROOF_BYTES = 80


class DirectoryError(Exception):
    """The directory could not be reached or answered something unusable."""


class DirectoryClient:
    """A client of one directory at `base_url`; pass `client` to share an
    `httpx.AsyncClient` (it is then not closed by `aclose`)."""

    def __init__(self, base_url: str = "", *, client: httpx.AsyncClient | None = None,
                 timeout: float = 10.0, page_size: int = 100) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be in 1..1000")
        self._own = client is None
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._page_size = page_size

    async def __aenter__(self) -> DirectoryClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client when this object made it."""
        if self._own:
            await self._client.aclose()

    async def _get(self, path: str, params: dict | None = None) -> httpx.Response:
        try:
            return await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise DirectoryError(f"directory unreachable: {exc}") from exc

    async def list_nodes(self, *, layer: int | None = None, format: str | None = None,
                         state: str | None = None) -> list[dict]:
        """Every listed node (the JSON entries), following the pages to the end. `state`
        as the listing takes it: None (the directory's default, nodes to route through:
        `unknown` and `up`), `all`, or one state name."""
        nodes: list[dict] = []
        offset: int | None = 0
        while offset is not None:
            params: dict = {"limit": self._page_size, "offset": offset}
            if state is not None:
                params["state"] = state
            if layer is not None:
                params["layer"] = layer
            if format is not None:
                params["format"] = format
            response = await self._get("/api/directory/nodes", params)
            if response.status_code != 200:
                raise DirectoryError(f"directory listing failed: HTTP {response.status_code}")
            try:
                page = response.json()
                nodes.extend(page["nodes"])
                next_offset = page["next_offset"]
            except (ValueError, KeyError, TypeError) as exc:
                raise DirectoryError("directory listing is not the documented JSON") from exc
            if next_offset is not None and (not isinstance(next_offset, int)
                                            or next_offset <= offset):
                raise DirectoryError("directory listing pages do not advance")
            offset = next_offset
        return nodes

    async def descriptors(self, format: str | None = None) -> list[tuple[bytes, bytes]]:
        """The signed descriptors of every listed node as (encoded, signature) pairs.
        Entries whose hex does not decode are left out (verification would refuse them)."""
        out = []
        for node in await self.list_nodes(format=format):
            try:
                out.append((bytes.fromhex(node["descriptor"]), bytes.fromhex(node["signature"])))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    async def refresh(self, topology: Topology) -> RefreshResult:
        """Refresh `topology` from the directory's current listing."""
        return topology.refresh(await self.descriptors(format=topology.format))

    async def epoch_proof(self, node_id: bytes, epoch: int) -> bytes | None:
        """The VRF proof a node published for a delay epoch, None when it has published
        none (yet). The caller verifies it (`fogcore.delays.expected_delay_us`)."""
        response = await self._get(f"/api/betanet/vrf/{bytes(node_id).hex()}/{int(epoch)}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DirectoryError(f"proof lookup failed: HTTP {response.status_code}")
        try:
            proof = bytes.fromhex(response.json()["proof"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DirectoryError("proof answer is not the documented JSON") from exc
        if len(proof) != _PROOF_BYTES:
            raise DirectoryError("proof has the wrong length")
        return proof

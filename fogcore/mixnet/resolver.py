"""A directory-backed `Resolver`: node id → (host, port) from the signed descriptors the
directory lists, refreshed periodically and on a miss (rate-limited).

Every descriptor is verified again before its address is believed, so a lying directory
can hide a node but cannot point its id somewhere else.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fogcore.mixnet.descriptor import DescriptorError, verify_descriptor
from fogcore.mixnet.directory_client import DirectoryClient, DirectoryError
from fogcore.mixnet.links import Resolver

__all__ = ["DirectoryResolver", "split_address"]

log = logging.getLogger("fogcore.resolver")


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of a descriptor address "host:port" (IPv6 in brackets)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class DirectoryResolver(Resolver):
    """Resolves node ids through the directory at `base_url`.

    The table is refreshed every `refresh_s` seconds when used, and at once on a miss, but
    never more often than every `min_gap_s` seconds; a listing that takes longer than
    `timeout_s` counts as a failed refresh. `fallback` (e.g. a static table) is asked for
    ids the directory does not know."""

    def __init__(self, base_url: str = "", *, client: DirectoryClient | None = None,
                 refresh_s: float = 10.0, min_gap_s: float = 0.5,
                 fallback: Resolver | None = None, clock=time.monotonic,
                 timeout_s: float = 10.0):
        self._client = client or DirectoryClient(base_url, timeout=5.0)
        self.timeout_s = timeout_s
        self._own = client is None
        self.refresh_s = refresh_s
        self.min_gap_s = min_gap_s
        self.fallback = fallback
        self._clock = clock
        self._table: dict[bytes, tuple[str, int]] = {}
        self._layers: dict[bytes, int] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.refreshes = 0
        self.errors = 0

    async def aclose(self) -> None:
        """Close the directory client when this resolver made it."""
        if self._own:
            await self._client.aclose()

    def addresses(self) -> dict[bytes, tuple[str, int]]:
        """The current table."""
        return dict(self._table)

    def layer_of(self, node_id: bytes) -> int | None:
        """The layer number of a known node."""
        return self._layers.get(bytes(node_id))

    async def refresh(self, force: bool = False) -> bool:
        """Reload the table (unless reloaded within `min_gap_s`); False when the directory
        could not be read (the old table stays)."""
        async with self._lock:
            now = self._clock()
            if not force and now - self._fetched_at < self.min_gap_s:
                return True
            self._fetched_at = now
            try:
                # httpx bounds each read; this bounds the whole paged listing.
                async with asyncio.timeout(self.timeout_s):
                    # Every state: a packet already routed through a draining or
                    # briefly unreachable hop still goes there; routes avoid them anyway.
                    entries = await self._client.list_nodes(state="all")
            except (DirectoryError, TimeoutError) as exc:
                self.errors += 1
                log.warning("directory refresh failed: %s", str(exc))
                return False
            table, layers = {}, {}
            wall = time.time()
            for entry in entries:
                try:
                    d = verify_descriptor(bytes.fromhex(entry["descriptor"]),
                                          bytes.fromhex(entry["signature"]), now=wall)
                    table[d.identity_key] = split_address(d.address)
                    layers[d.identity_key] = d.layer
                except (KeyError, TypeError, ValueError, DescriptorError):
                    continue
            self._table, self._layers = table, layers
            self.refreshes += 1
            return True

    async def resolve(self, node_id: bytes) -> tuple[str, int] | None:
        """The address of `node_id`, or None."""
        node_id = bytes(node_id)
        if self._clock() - self._fetched_at > self.refresh_s or node_id not in self._table:
            await self.refresh()
        address = self._table.get(node_id)
        if address is None and self.fallback is not None:
            address = await self.fallback.resolve(node_id)
        return address

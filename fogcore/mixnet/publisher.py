"""Node side of the directory: register (and keep fresh) the node's signed descriptor and
publish its VRF epoch proofs once each delay epoch is over.

Runs when the node has `directory_url` and `directory_key` (an operator API key). The
descriptor is signed again whenever the routing key rotates and well before it expires;
proofs are taken from `MixNode.published_proofs` (which only ever holds finished epochs)
and posted to `POST /api/betanet/vrf/{node_id}/{epoch}`. Failures are retried with backoff
and counted; they never stop the node.

When the node starts to leave (`MixNode.leave()`), the publisher stops refreshing the
descriptor and announces the leave: `POST /api/directory/nodes/{node_id}/leave` with
`{"at": <unix seconds>, "signature": <hex>}`, the signature by the identity key over
`b"fogcore leave v1" + node_id + at (8 bytes, big-endian)` (docs/node.md §16).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import httpx

from fogcore.mixnet.descriptor import sign_descriptor

__all__ = ["Publisher"]

log = logging.getLogger("fogcore.publisher")


class Publisher:
    """Keeps one node's directory entry and VRF proofs published."""

    def __init__(self, node, base_url: str, api_key: str, *, address: str,
                 lifetime: int = 3600, interval_s: float = 0.5,
                 round_timeout_s: float = 15.0, client: httpx.AsyncClient | None = None):
        self.node = node
        self.round_timeout_s = round_timeout_s
        self.address = address
        self.lifetime = lifetime
        self.interval_s = interval_s
        self._client = client or httpx.AsyncClient(
            base_url=base_url, timeout=5.0,
            headers={"Authorization": f"Bearer {api_key}"})
        self._own = client is None
        self._task: asyncio.Task | None = None
        self._registered_key: bytes | None = None
        self._registered_at = float("-inf")
        self._published: set[int] = set()
        self._backoff = 0.0
        self._leave_task: asyncio.Task | None = None
        self._stopped = False
        self.stats: Counter[str] = Counter()
        #: set once the descriptor has been accepted by the directory
        self.registered = asyncio.Event()

    async def start(self) -> None:
        """Register now (best effort: an unreachable directory is retried in the
        background) and keep publishing."""
        try:
            await self._bounded_step()
        except (httpx.HTTPError, TimeoutError) as exc:
            self.stats["errors"] += 1
            self._backoff = 0.5
            log.warning("directory unreachable at start: %s", repr(exc))  # a string: no traceback kept
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.node.add_leave_listener(self._on_leave)

    def _on_leave(self) -> None:
        if self._leave_task is None and not self._stopped:
            self._leave_task = asyncio.get_running_loop().create_task(self.announce_leave())

    async def announce_leave(self) -> bool:
        """Tell the directory that the node is leaving (signed, timestamped); True when
        it accepted. Bounded by `round_timeout_s`; failures are counted, never raised."""
        at = int(time.time())
        signature = self.node.control_signer.leave(at)
        try:
            async with asyncio.timeout(self.round_timeout_s):
                r = await self._client.post(
                    f"/api/directory/nodes/{self.node.node_id.hex()}/leave",
                    json={"at": at, "signature": signature.hex()})
        except (httpx.HTTPError, TimeoutError) as exc:
            self.stats["leave_errors"] += 1
            log.warning("leave announcement failed: %s", repr(exc))
            return False
        if r.status_code not in (200, 201, 204):
            self.stats["leave_refused"] += 1
            log.warning("directory refused the leave: HTTP %d %s", r.status_code, r.text[:200])
            return False
        self.stats["left"] += 1
        return True

    async def _bounded_step(self) -> None:
        # httpx bounds each read and write; this bounds the whole round.
        async with asyncio.timeout(self.round_timeout_s):
            await self.step()

    async def stop(self) -> None:
        """Publish the proofs still pending (the last epoch's, at shutdown), then stop."""
        self._stopped = True  # a leave starting after this is not announced
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # stop() itself was cancelled
        if self._leave_task is not None:
            await self._leave_task  # bounded by round_timeout_s, never raises
        try:
            async with asyncio.timeout(3.0):
                await self._publish_proofs()
        except (TimeoutError, httpx.HTTPError):
            pass
        if self._own:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s + self._backoff)
            try:
                await self._bounded_step()
                self._backoff = 0.0
            except (httpx.HTTPError, TimeoutError) as exc:
                self.stats["errors"] += 1
                self._backoff = min(30.0, max(0.5, self._backoff * 2))
                log.warning("directory unreachable: %s", repr(exc))

    async def step(self) -> None:
        """One round: register when needed, publish new proofs."""
        keys = self.node.keys
        routing = keys.routing_public
        stale = time.monotonic() - self._registered_at > self.lifetime / 3
        leaving = getattr(self.node, "state", "up") != "up"
        if (routing != self._registered_key or stale) and not leaving:
            await self._register(routing)
        await self._publish_proofs()

    async def _register(self, routing: bytes) -> None:
        node = self.node
        d = sign_descriptor(node.keystore.identity_seed, vrf_key=node.keystore.vrf_public_key, routing_key=routing,
                            layer=node.config.layer, format=node.config.format,
                            address=self.address, lifetime=self.lifetime)
        r = await self._client.post("/api/directory/nodes", json={
            "descriptor": d.encoded.hex(), "signature": d.signature.hex()})
        if r.status_code != 200:
            self.stats["register_refused"] += 1
            log.warning("directory refused the descriptor: HTTP %d %s", r.status_code,
                        r.text[:200])
            return
        self._registered_key = routing
        self._registered_at = time.monotonic()
        self.stats["registered"] += 1
        self.registered.set()

    async def _publish_proofs(self) -> None:
        if not self.registered.is_set():
            return
        node_id = self.node.node_id.hex()
        for epoch, proof in list(self.node.published_proofs):
            if epoch in self._published:
                continue
            r = await self._client.post(f"/api/betanet/vrf/{node_id}/{epoch}",
                                        json={"proof": proof.hex()})
            # 409: this exact epoch already holds a proof (ours, published before a restart).
            if r.status_code in (201, 409):
                self._published.add(epoch)
                self.stats["proofs"] += 1
            else:
                self.stats["proof_refused"] += 1
                log.warning("proof for epoch %d refused: HTTP %d", epoch, r.status_code)
                self._published.add(epoch)  # a refused proof would be refused again
        if len(self._published) > 4096:
            # Keep the set bounded: forget epochs no longer in the node's window.
            window = {e for e, _ in self.node.published_proofs}
            self._published &= window

"""Outgoing links of a mix node: one TCP connection per next hop.

A `RELAY` names the next hop by node id; a `Resolver` turns that into host and port.
Each `Link` keeps a bounded queue of arena slots holding processed frames and writes them
as views of the arena memory with one `writelines` per loop iteration (write coalescing).
Slots arrive and leave in lists (`send_many`, `Arena.frame_views`), so the Python code here
runs per batch of packets, not per packet.
A slot goes back to the arena only once the transport has flushed it: the link sets the
transport's write-buffer limits to zero, so `pause_writing` fires as soon as anything is
buffered and `resume_writing` exactly when the buffer is empty again. A lost connection is
re-established with exponential backoff; packets that cannot be sent are dropped and
counted by reason, never held without bound.
"""

import asyncio
import random
import socket
from collections import Counter
from collections.abc import Callable

__all__ = ["Link", "Links", "Resolver", "StaticResolver"]


class Resolver:
    """Maps a next hop's node id (32 bytes) to (host, port), or None when unknown."""

    async def resolve(self, node_id: bytes) -> tuple[str, int] | None:
        """The address of `node_id`, or None."""
        raise NotImplementedError


class StaticResolver(Resolver):
    """A resolver over a fixed table {node id: (host, port)}; entries can be changed."""

    def __init__(self, table: dict[bytes, tuple[str, int]] | None = None):
        self._table = {bytes(k): (str(h), int(p)) for k, (h, p) in (table or {}).items()}

    def add(self, node_id: bytes, host: str, port: int) -> None:
        """Add or replace the address of `node_id`."""
        self._table[bytes(node_id)] = (host, int(port))

    def remove(self, node_id: bytes) -> None:
        """Forget `node_id`."""
        self._table.pop(bytes(node_id), None)

    async def resolve(self, node_id: bytes) -> tuple[str, int] | None:
        """The address of `node_id`, or None."""
        return self._table.get(bytes(node_id))


class Link(asyncio.Protocol):
    """The connection to one next hop, and its bounded queue of slots to send."""

    def __init__(self, links: "Links", node_id: bytes):
        self._links = links
        self.node_id = node_id
        self.queue: list[int] = []  # slots, oldest first
        self.pending: list[int] = []  # written, not yet flushed by the transport
        self.transport = None
        self.connected = False
        self.sent = 0
        self.connects = 0
        self._write_paused = False
        self._flush_scheduled = False
        self._closing = False
        self._task: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- sending -------------------------------------------------------------------------

    def send(self, slot: int) -> None:
        """Queue the processed frame in `slot`; the link owns the slot from now on."""
        self.send_many([slot])

    def send_many(self, slots: list[int]) -> None:
        """Queue the processed frames in `slots` (in order); the link owns them from now
        on. What does not fit under the queue bound is dropped (`queue_full`)."""
        links = self._links
        room = links.queue_limit - len(self.queue)
        if room < len(slots):
            for slot in slots[max(room, 0):]:
                links.drop(slot, "queue_full")
            slots = slots[:max(room, 0)]
            if not slots:
                return
        self.queue.extend(slots)
        self._idle.clear()
        if self.connected:
            if not self._write_paused and not self._flush_scheduled:
                self._flush_scheduled = True
                links.loop.call_soon(self._flush)
        elif self._task is None and not self._closing:
            self._task = links.loop.create_task(self._connect())

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self.connected or self._write_paused or not self.queue:
            self._check_idle()
            return
        queue = self.queue
        n = min(len(queue), self._links.max_write)
        slots = queue[:n]
        del queue[:n]
        # Views of each slot's outgoing frame (record offset and length), made in C.
        views = self._links.arena.frame_views(slots)
        self.pending.extend(slots)
        self.sent += n
        self._links.packets_out += n
        # With zero write-buffer limits this calls pause_writing when anything is left
        # buffered; otherwise every byte is already with the kernel.
        self.transport.writelines(views)
        if not self._write_paused:
            self._release_pending()
            if self.queue:
                self._flush_scheduled = True
                self._links.loop.call_soon(self._flush)
        self._check_idle()

    def _release_pending(self) -> None:
        if self.pending:
            self._links.arena.release_many(self.pending)
            self.pending.clear()

    def _check_idle(self) -> None:
        if not self.queue and not self.pending:
            self._idle.set()

    # -- asyncio protocol ----------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=0, low=0)
        if self._links.sndbuf:
            # A bounded kernel buffer keeps backpressure visible to the node's own queues.
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._links.sndbuf)
        self.connected = True
        self.connects += 1
        self._links.reconnect_delay.pop(self.node_id, None)
        if self.queue and not self._flush_scheduled:
            self._flush_scheduled = True
            self._links.loop.call_soon(self._flush)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        # The transport's buffer is empty: every slot written so far has been flushed.
        self._write_paused = False
        self._release_pending()
        if self.queue and not self._flush_scheduled:
            self._flush_scheduled = True
            self._links.loop.call_soon(self._flush)
        self._check_idle()

    def data_received(self, data) -> None:
        pass  # next hops never answer on a link

    def connection_lost(self, exc) -> None:
        links = self._links
        self.connected = False
        self.transport = None
        self._write_paused = False
        # Bytes still in the transport's buffer are lost with it.
        for slot in self.pending:
            links.drop(slot, "link_lost")
        self.pending.clear()
        if self._closing:
            self._drop_queue("shutdown")
        elif self.queue and self._task is None:
            self._task = links.loop.create_task(self._connect())
        self._check_idle()

    # -- connecting ----------------------------------------------------------------------

    async def _connect(self) -> None:
        links = self._links
        try:
            while not self._closing and not self.connected:
                address = await links.resolver.resolve(self.node_id)
                if address is None:
                    self._drop_queue("unknown_hop")
                    return
                try:
                    await asyncio.wait_for(
                        links.loop.create_connection(lambda: self, address[0], address[1]),
                        links.connect_timeout)
                    return
                except (TimeoutError, OSError):
                    links.connect_failures += 1
                # Down: what waits would only grow stale and hold arena slots.
                self._drop_queue("link_down")
                delay = links.next_backoff(self.node_id)
                await asyncio.sleep(delay)
                if not self.queue:
                    return
        finally:
            self._task = None

    def _drop_queue(self, reason: str) -> None:
        queue, self.queue = self.queue, []
        for slot in queue:
            self._links.drop(slot, reason)
        self._check_idle()

    async def wait_idle(self) -> None:
        """Return once nothing is queued or waiting to be flushed."""
        await self._idle.wait()

    def close(self) -> None:
        """Drop what is queued and close the connection (after flushing what was written)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        self._drop_queue("shutdown")
        if self.transport is not None:
            self.transport.close()


class Links:
    """Every outgoing link of a node, created on first use of a next hop.

    `drops` counts dropped packets by reason: `queue_full` (the next hop's queue was at
    its bound), `link_down` (the next hop could not be reached), `link_lost` (written but
    not flushed when the connection broke), `unknown_hop` (the resolver does not know it),
    `shutdown`.
    """

    def __init__(self, loop, arena, resolver: Resolver, *, queue_limit: int = 1024,
                 max_write: int = 256, connect_timeout: float = 2.0,
                 backoff_base: float = 0.05, backoff_max: float = 5.0, sndbuf: int = 0,
                 on_drop: Callable[[str], None] | None = None):
        self.loop = loop
        self.arena = arena
        self.memory = arena.memory
        self.stride = len(self.memory) // arena.nslots
        self.resolver = resolver
        self.queue_limit = queue_limit
        self.max_write = max_write
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sndbuf = sndbuf
        self.links: dict[bytes, Link] = {}
        self.drops: Counter[str] = Counter()
        self.packets_out = 0
        self.connect_failures = 0
        self.reconnect_delay: dict[bytes, float] = {}
        self._on_drop = on_drop

    def send(self, node_id: bytes, slot: int) -> None:
        """Send the processed frame in `slot` to the node `node_id`; the slot is released
        once flushed or dropped."""
        self.send_many(node_id, [slot])

    def send_many(self, node_id: bytes, slots: list[int]) -> None:
        """`send` for a list of slots bound for the same next hop, in order."""
        link = self.links.get(node_id)
        if link is None:
            link = self.links[node_id] = Link(self, node_id)
        link.send_many(slots)

    def drop(self, slot: int, reason: str) -> None:
        """Count a dropped packet and give its slot back."""
        self.drops[reason] += 1
        self.arena.release(slot)
        if self._on_drop is not None:
            self._on_drop(reason)

    def next_backoff(self, node_id: bytes) -> float:
        """The next reconnect delay for `node_id`: doubling from `backoff_base` up to
        `backoff_max`, with ±20 % jitter so links to a restarted node do not reconnect in
        lockstep."""
        delay = self.reconnect_delay.get(node_id, self.backoff_base / 2) * 2
        delay = min(delay, self.backoff_max)
        self.reconnect_delay[node_id] = delay
        return delay * random.uniform(0.8, 1.2)

    def queued(self) -> int:
        """Packets queued or awaiting a flush on all links."""
        return sum(len(link.queue) + len(link.pending) for link in self.links.values())

    def connected(self) -> int:
        """Links with a live connection."""
        return sum(1 for link in self.links.values() if link.connected)

    async def drain(self) -> None:
        """Return once every link has flushed everything it was given."""
        for link in list(self.links.values()):
            await link.wait_idle()

    def close(self) -> None:
        """Close every link."""
        for link in self.links.values():
            link.close()

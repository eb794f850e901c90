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

A next hop that stops answering is noticed in seconds, not minutes (docs/node.md §7):
short TCP keepalive and TCP_USER_TIMEOUT on every link socket, a send timeout (a transport
that flushes nothing for `send_timeout`), and signed liveness probes (control frames,
fogcore/mixnet/control.py): every `probe_interval` a PROBE goes out, and a probe left
without a valid PROBE_ACK for `probe_timeout` makes the next hop unreachable. Because TCP
is in order, an ack for probe N proves that the next hop read every byte written before
probe N; packets written after the last acknowledged probe are counted `unconfirmed` when
the link is declared dead.
"""

import asyncio
import os
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Callable

from fogcore.mixnet.control import (
    DRAINING,
    PROBE_ACK,
    ControlError,
    ControlReader,
    encode_probe,
    verify_control,
)

__all__ = ["LINK_STATES", "Link", "Links", "Resolver", "StaticResolver"]

#: what `Link.state` reports
LINK_STATES = ("up", "unreachable", "draining")
#: a link unreachable and offered no packet for this long stops reconnecting (the next
#: packet for it starts again)
_FORGET_S = 60.0


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
        self.sent = 0  # packets handed to the transport, ever
        self.connects = 0
        #: False from a failure until a reconnect's first probe is acknowledged: packets
        #: offered meanwhile are dropped at once (`link_down`)
        self.reachable = True
        #: the next hop said (signed) that it is leaving; it still takes what is in flight
        self.draining = False
        self._acked_written = 0     # of those, the ones a PROBE_ACK vouches for
        self._probes: deque = deque()  # (nonce, sent at, `sent` then), oldest first
        self._next_probe = 0.0
        self._paused_since = 0.0
        self._reader = ControlReader()
        self._last_offer = 0.0
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
        on. What does not fit under the queue bound is dropped (`queue_full`); while
        the next hop is unreachable everything is dropped at once (`link_down`)."""
        links = self._links
        self._last_offer = time.monotonic()
        if not self.reachable:
            for slot in slots:
                links.drop(slot, "link_down")
            if self._task is None and not self._closing and not self.connected:
                self._task = links.loop.create_task(self._connect())
            return
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

    @property
    def state(self) -> str:
        """"up", "unreachable" or "draining" (LINK_STATES)."""
        if not self.reachable:
            return "unreachable"
        return "draining" if self.draining else "up"

    # -- liveness ------------------------------------------------------------------------

    def check(self, now: float) -> None:
        """Probe when due, and declare the next hop unreachable when a probe went
        unanswered for `probe_timeout` or nothing was flushed for `send_timeout` (called
        by `Links` a few times per probe interval)."""
        if not self.connected or self._closing:
            return
        links = self._links
        if links.probe_interval:
            if self._probes and now - self._probes[0][1] > links.probe_timeout:
                self.declare_unreachable("probe_timeout")
                return
            if now >= self._next_probe:
                self._probe(now)
        if (links.send_timeout and self._write_paused
                and now - self._paused_since > links.send_timeout):
            self.declare_unreachable("send_timeout")

    def _probe(self, now: float) -> None:
        nonce = os.urandom(16)
        self._probes.append((nonce, now, self.sent))
        self._next_probe = now + self._links.probe_interval
        self._links.probes_sent += 1
        self.transport.write(encode_probe(nonce))

    def declare_unreachable(self, cause: str) -> None:
        """The next hop is gone: abort the connection, count what it cannot vouch for
        (written after the last acknowledged probe: `unconfirmed`; still queued:
        `link_down`; written but unflushed: `link_lost`) and refuse new packets until a
        reconnect's first probe is acknowledged."""
        links = self._links
        links.unreachable[cause] += 1
        self.reachable = False
        self._count_unconfirmed()
        self._drop_queue("link_down")
        if self.transport is not None:
            self.transport.abort()

    def _count_unconfirmed(self) -> None:
        # Flushed to the kernel, never acknowledged: the slots are gone, the count stays.
        # (Slots still pending are counted `link_lost` when the connection goes.)
        n = self.sent - self._acked_written - len(self.pending)
        self._acked_written = self.sent
        if n > 0:
            self._links.count_drops("unconfirmed", n)

    # -- asyncio protocol ----------------------------------------------------------------

    def connection_made(self, transport) -> None:
        links = self._links
        self.transport = transport
        transport.set_write_buffer_limits(high=0, low=0)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            links.tune_socket(sock)
        self.connected = True
        self.connects += 1
        links.reconnect_delay.pop(self.node_id, None)
        self._reader = ControlReader()
        self._probes.clear()
        self._acked_written = self.sent
        self.draining = False
        if links.probe_interval:
            self._probe(time.monotonic())   # a reconnect is trusted once this is acked
        else:
            self.reachable = True
        if self.queue and not self._flush_scheduled:
            self._flush_scheduled = True
            self._links.loop.call_soon(self._flush)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._paused_since = time.monotonic()

    def resume_writing(self) -> None:
        # The transport's buffer is empty: every slot written so far has been flushed.
        self._write_paused = False
        self._release_pending()
        if self.queue and not self._flush_scheduled:
            self._flush_scheduled = True
            self._links.loop.call_soon(self._flush)
        self._check_idle()

    def data_received(self, data) -> None:
        # A next hop writes only control frames back: PROBE_ACKs and DRAINING.
        links = self._links
        try:
            messages = self._reader.feed(data)
        except ControlError:
            links.control_errors += 1
            self.declare_unreachable("protocol_error")
            return
        for message in messages:
            try:
                if message.kind not in (PROBE_ACK, DRAINING):
                    raise ControlError("a next hop sends only acks and DRAINING")
                verify_control(message, self.node_id)
            except ControlError:
                links.control_errors += 1
                continue  # an unverifiable frame proves nothing
            if message.kind == DRAINING:
                self.draining = True
                continue
            self._acked(message)

    def _acked(self, message) -> None:
        probes = self._probes
        for i, (nonce, _sent, written) in enumerate(probes):
            if nonce == message.nonce:
                for _ in range(i + 1):
                    probes.popleft()
                self._acked_written = max(self._acked_written, written)
                self.draining = message.draining
                self.reachable = True
                self._links.probes_acked += 1
                return
        self._links.control_errors += 1  # an ack for no probe of this connection

    def connection_lost(self, exc) -> None:
        links = self._links
        if exc is not None and not self._closing and self.reachable:
            # Reset or timed out (keepalive, TCP_USER_TIMEOUT): the next hop is gone.
            links.unreachable["connection_error"] += 1
            self.reachable = False
            self._count_unconfirmed()
        self.connected = False
        self.transport = None
        self._write_paused = False
        self._probes.clear()
        # Bytes still in the transport's buffer are lost with it.
        for slot in self.pending:
            links.drop(slot, "link_lost")
        self.pending.clear()
        if self._closing:
            self._drop_queue("shutdown")
        else:
            if not self.reachable:
                self._drop_queue("link_down")
            if (self.queue or not self.reachable) and self._task is None:
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
                # Down: what waits would only grow stale and hold arena slots, and what
                # comes is dropped at once until a reconnect is confirmed by a probe.
                self.reachable = False
                self._drop_queue("link_down")
                delay = links.next_backoff(self.node_id)
                await asyncio.sleep(delay)
                if time.monotonic() - self._last_offer > _FORGET_S:
                    return  # nobody needs this next hop now
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
    its bound), `link_down` (the next hop could not be reached, or is unreachable),
    `link_lost` (written but not flushed when the connection broke), `unconfirmed`
    (flushed after the last acknowledged probe of a link that then died), `unknown_hop`
    (the resolver does not know it), `shutdown`. `unreachable` counts links declared
    dead by cause: `probe_timeout`, `send_timeout`, `connection_error`, `protocol_error`.
    """

    def __init__(self, loop, arena, resolver: Resolver, *, queue_limit: int = 1024,
                 max_write: int = 256, connect_timeout: float = 2.0,
                 backoff_base: float = 0.05, backoff_max: float = 5.0, sndbuf: int = 0,
                 tcp_timeout: float = 3.0, send_timeout: float = 3.0,
                 probe_interval: float = 1.0, probe_timeout: float = 3.0,
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
        self.tcp_timeout = tcp_timeout
        self.send_timeout = send_timeout
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.links: dict[bytes, Link] = {}
        self.drops: Counter[str] = Counter()
        self.unreachable: Counter[str] = Counter()
        self.packets_out = 0
        self.connect_failures = 0
        self.probes_sent = 0
        self.probes_acked = 0
        self.control_errors = 0
        self.reconnect_delay: dict[bytes, float] = {}
        self._on_drop = on_drop
        self._tick_handle = None
        checks = [t for t in (probe_interval, probe_timeout, send_timeout) if t]
        self._tick_s = max(0.02, min(checks) / 4) if checks else 0.0

    def send(self, node_id: bytes, slot: int) -> None:
        """Send the processed frame in `slot` to the node `node_id`; the slot is released
        once flushed or dropped."""
        self.send_many(node_id, [slot])

    def send_many(self, node_id: bytes, slots: list[int]) -> None:
        """`send` for a list of slots bound for the same next hop, in order."""
        link = self.links.get(node_id)
        if link is None:
            link = self.links[node_id] = Link(self, node_id)
            if self._tick_handle is None and self._tick_s:
                self._tick_handle = self.loop.call_later(self._tick_s, self._tick)
        link.send_many(slots)

    def _tick(self) -> None:
        # One loop timer for every link's probes and deadlines.
        now = time.monotonic()
        for link in list(self.links.values()):
            link.check(now)
        self._tick_handle = self.loop.call_later(self._tick_s, self._tick)

    def tune_socket(self, sock) -> None:
        """Options of a new link socket: SO_SNDBUF when set, and (Linux) keepalive and
        TCP_USER_TIMEOUT so that the kernel gives up on a silent next hop within
        `tcp_timeout` instead of retransmitting for many minutes."""
        try:
            if self.sndbuf:
                # A bounded kernel buffer keeps backpressure visible to the node's queues.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            if not self.tcp_timeout:
                return
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            step = max(1, int(self.tcp_timeout / 3))
            for name, value in (("TCP_KEEPIDLE", step), ("TCP_KEEPINTVL", step),
                                ("TCP_KEEPCNT", 2),
                                ("TCP_USER_TIMEOUT", int(self.tcp_timeout * 1000))):
                if hasattr(socket, name):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        except OSError:
            pass  # an option the platform refuses: the probes still notice a dead hop

    def count_drops(self, reason: str, count: int) -> None:
        """Count `count` packets lost for `reason` whose slots are already released."""
        self.drops[reason] += count
        if self._on_drop is not None:
            for _ in range(count):
                self._on_drop(reason)

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

    def states(self) -> dict[str, str]:
        """{next hop id hex: "up" | "unreachable" | "draining"}."""
        return {node_id.hex(): link.state for node_id, link in self.links.items()}

    async def drain(self) -> None:
        """Return once every link has flushed everything it was given."""
        for link in list(self.links.values()):
            await link.wait_idle()

    def close(self) -> None:
        """Close every link."""
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        for link in self.links.values():
            link.close()

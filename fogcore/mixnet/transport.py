"""The TCP `Transport` of `MixClient`: frames to entry nodes, mailbox fetches from gateways.

Addresses come from a `Resolver` (normally `DirectoryResolver`). One connection per node is
kept and reused; a connection the node has closed (or that fails) is dropped and the call
raises `TransportError`, so the client routes around the node. A gateway's fetch service
listens on its packet port + `fetch_port_offset` unless `fetch_ports` names another.

Every wait on the network is bounded: resolving and connecting by `connect_timeout`, a
write by `send_timeout`, a whole fetch (waiting for the connection, request and response)
by `fetch_timeout`; running out of time is a `TransportError` like any other failure.
Bounds use `asyncio.timeout`, which (unlike `wait_for` on Python 3.11) never swallows a
cancellation of the caller.

A write into a connection whose host was cut off succeeds silently, so packet connections
are probed (docs/client.md §4.1): when frames were written since the last PROBE_ACK and
no probe is outstanding, a PROBE follows, at most one every `probe_interval`; an ack
signed by the node, arriving in order after those frames, confirms them. No ack within
`probe_timeout`, the node closing the connection with frames unconfirmed, or a DRAINING
notice drops the connection and tells the failure listeners (`add_failure_listener`).
TCP keepalive and TCP_USER_TIMEOUT (Linux) bound what the kernel waits for too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

from fogcore.mixnet.client import MailboxItem, TransportError
from fogcore.mixnet.control import (
    DRAINING,
    NONCE_SIZE,
    PROBE_ACK,
    ControlError,
    ControlReader,
    encode_probe,
    verify_control,
)
from fogcore.mixnet.gateway import MAX_ITEMS, GatewayProtocolError, decode_items, encode_request
from fogcore.mixnet.links import Resolver
from fogcore.packet import Kind

__all__ = ["FailureListener", "TcpTransport"]

log = logging.getLogger("fogcore.transport")

#: (entry node id, reason, frames written since the last ack, monotonic time of the
#: write that ack confirmed up to: frames after it are unconfirmed)
FailureListener = Callable[[bytes, str, int, float], None]


def tune_socket(sock, user_timeout: float) -> None:
    """Keepalive (probe an idle connection after 5 s, every 2 s, give up after 3) and,
    where the platform has it, TCP_USER_TIMEOUT: data unacknowledged by the peer for
    `user_timeout` seconds fails the connection. Options a platform lacks are skipped."""
    if sock is None:
        return
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3),
                        ("TCP_USER_TIMEOUT", max(1, int(user_timeout * 1000)))):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError:
            continue


class _Conn:
    __slots__ = ("reader", "writer", "lock", "node_id", "written", "confirmed",
                 "confirmed_at", "probe_nonce", "probe_frames", "probe_sent_at",
                 "probe_timer", "last_probe", "watcher", "dead")

    def __init__(self, reader, writer, node_id: bytes = b""):
        self.reader = reader
        self.writer = writer
        self.lock = asyncio.Lock()
        self.node_id = node_id
        self.written = 0  # frames written
        self.confirmed = 0  # frames known to have reached the node
        self.confirmed_at = time.monotonic()  # when the last confirmed write happened
        self.probe_nonce: bytes | None = None  # the outstanding probe's
        self.probe_frames = 0  # frames written before the outstanding probe
        self.probe_sent_at = 0.0
        self.probe_timer: asyncio.TimerHandle | None = None
        self.last_probe = float("-inf")
        self.watcher: asyncio.Task | None = None
        self.dead = False

    def alive(self) -> bool:
        return not self.dead and not self.writer.is_closing() and not self.reader.at_eof()
class TcpTransport:
    """A `Transport` over TCP. `close()` when done.

    `probe_interval` and `probe_timeout` (seconds) drive the liveness probes of packet
    connections; `probe_timeout=None` turns probing off. `counters` counts connections,
    probes, acks and the ways connections were lost."""

    def __init__(self, resolver: Resolver, *, connect_timeout: float = 2.0,
                 send_timeout: float = 2.0, fetch_timeout: float = 5.0,
                 fetch_port_offset: int = 1, fetch_ports: dict[bytes, int] | None = None,
                 probe_interval: float = 0.5, probe_timeout: float | None = 1.0,
                 user_timeout: float = 5.0):
        self.resolver = resolver
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.fetch_timeout = fetch_timeout
        self.fetch_port_offset = fetch_port_offset
        self.fetch_ports = dict(fetch_ports or {})
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.user_timeout = user_timeout
        self._packets: dict[bytes, _Conn] = {}
        self._fetch: dict[bytes, _Conn] = {}
        self._connecting: dict[tuple[str, bytes], asyncio.Lock] = {}
        self._listeners: list[FailureListener] = []
        self.frames_sent = 0
        self.fetches = 0
        self.counters: dict[str, int] = {}

    def _count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def add_failure_listener(self, listener: FailureListener) -> None:
        """Call `listener(node_id, reason, unconfirmed, since)` whenever a packet
        connection is found dead after frames were written into it: reason
        "probe_timeout", "closed" or "draining"."""
        self._listeners.append(listener)

    async def _address(self, node_id: bytes, fetch: bool) -> tuple[str, int]:
        address = await self.resolver.resolve(node_id)
        if address is None:
            raise TransportError(f"node {node_id.hex()[:16]} is not in the directory",
                                 "unknown")
        host, port = address
        if fetch:
            port = self.fetch_ports.get(node_id, port + self.fetch_port_offset)
        return host, port

    async def _conn(self, table: dict[bytes, _Conn], node_id: bytes, fetch: bool) -> _Conn:
        conn = table.get(node_id)
        if conn is not None and conn.alive():
            return conn
        lock = self._connecting.setdefault(("f" if fetch else "p", node_id), asyncio.Lock())
        try:
            # One bound for waiting behind another connect, resolving and connecting.
            async with asyncio.timeout(self.connect_timeout), lock:
                conn = table.get(node_id)
                if conn is not None and conn.alive():
                    return conn
                if conn is not None:
                    self._drop(table, node_id, conn)
                host, port = await self._address(node_id, fetch)
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError as exc:
                    raise TransportError(f"cannot reach {host}:{port}: {exc!r}",
                                         "refused") from None
                tune_socket(writer.get_extra_info("socket"), self.user_timeout)
                conn = table[node_id] = _Conn(reader, writer, node_id)
                self._count("connections")
                if not fetch:
                    conn.watcher = asyncio.get_running_loop().create_task(self._watch(conn))
                return conn
        except TimeoutError:
            raise TransportError(f"no connection to {node_id.hex()[:16]} within "
                                 f"{self.connect_timeout} s", "connect_timeout") from None

    def _drop(self, table: dict[bytes, _Conn], node_id: bytes, conn: _Conn) -> None:
        if table.get(node_id) is conn:
            del table[node_id]
        conn.dead = True
        if conn.probe_timer is not None:
            conn.probe_timer.cancel()
            conn.probe_timer = None
        if conn.watcher is not None and conn.watcher is not asyncio.current_task():
            conn.watcher.cancel()
        conn.writer.close()

    def _lost(self, conn: _Conn, reason: str) -> None:
        """Drop a packet connection found dead and tell the listeners what it may have
        lost (nothing to tell when every frame was confirmed)."""
        if conn.dead:
            return
        self._drop(self._packets, conn.node_id, conn)
        unconfirmed = conn.written - conn.confirmed
        self._count(f"lost_{reason}")
        if unconfirmed <= 0 and reason != "draining":
            return
        self._count("frames_unconfirmed", unconfirmed)
        for listener in list(self._listeners):
            listener(conn.node_id, reason, unconfirmed, conn.confirmed_at)

    async def _watch(self, conn: _Conn) -> None:
        """Read what the node writes back on a packet connection: control frames only."""
        control = ControlReader()
        try:
            while True:
                data = await conn.reader.read(4096)
                if not data:
                    break
                for message in control.feed(data):
                    verify_control(message, conn.node_id)
                    if message.kind == PROBE_ACK:
                        self._acked(conn, message.nonce)
                    if message.kind == DRAINING or message.draining:
                        # Leaving: what it has read it will still forward, the rest not.
                        self._lost(conn, "draining")
                        return
        except asyncio.CancelledError:
            return
        except ControlError as exc:
            log.debug("bad control frame from %s: %s", conn.node_id.hex()[:16], exc)
            self._count("control_errors")
            self._lost(conn, "bad_control")
            return
        except OSError:
            pass
        self._lost(conn, "closed")

    def _acked(self, conn: _Conn, nonce: bytes) -> None:
        if nonce != conn.probe_nonce:
            self._count("stale_acks")
            return
        self._count("probe_acks")
        # TCP keeps order: the ack proves every frame written before the probe arrived.
        conn.confirmed = max(conn.confirmed, conn.probe_frames)
        conn.confirmed_at = conn.probe_sent_at
        conn.probe_nonce = None
        if conn.probe_timer is not None:
            conn.probe_timer.cancel()
            conn.probe_timer = None
        self._schedule_probe(conn)

    def _schedule_probe(self, conn: _Conn) -> None:
        """Probe soon when frames are unconfirmed and no probe is outstanding or due."""
        if (self.probe_timeout is None or conn.dead or conn.probe_nonce is not None
                or conn.probe_timer is not None or conn.written == conn.confirmed):
            return
        wait = conn.last_probe + self.probe_interval - time.monotonic()
        loop = asyncio.get_running_loop()
        if wait <= 0:
            self._probe(conn)
        else:
            conn.probe_timer = loop.call_later(wait, self._probe, conn)

    def _probe(self, conn: _Conn) -> None:
        conn.probe_timer = None
        if conn.dead or conn.probe_nonce is not None:
            return
        nonce = os.urandom(NONCE_SIZE)
        try:
            conn.writer.write(encode_probe(nonce))
        except (OSError, RuntimeError):
            self._lost(conn, "closed")
            return
        now = time.monotonic()
        conn.probe_nonce, conn.probe_frames, conn.probe_sent_at = nonce, conn.written, now
        conn.last_probe = now
        self._count("probes")
        conn.probe_timer = asyncio.get_running_loop().call_later(
            self.probe_timeout, self._probe_expired, conn, nonce)

    def _probe_expired(self, conn: _Conn, nonce: bytes) -> None:
        conn.probe_timer = None
        if conn.probe_nonce == nonce:
            self._lost(conn, "probe_timeout")

    async def send_frame(self, first_hop: bytes, frame: bytes) -> None:
        """Write one frame to the node `first_hop`."""
        first_hop = bytes(first_hop)
        conn = await self._conn(self._packets, first_hop, False)
        try:
            async with asyncio.timeout(self.send_timeout):
                conn.writer.write(frame)
                conn.written += 1
                await conn.writer.drain()
        except TimeoutError:
            self._drop(self._packets, first_hop, conn)
            raise TransportError(f"sending to {first_hop.hex()[:16]} timed out",
                                 "send_timeout") from None
        except (OSError, RuntimeError) as exc:
            # RuntimeError: uvloop refuses a write on a transport closed meanwhile.
            self._drop(self._packets, first_hop, conn)
            raise TransportError(f"sending to {first_hop.hex()[:16]} failed: {exc!r}",
                                 "unreachable") from None
        self.frames_sent += 1
        self._schedule_probe(conn)

    async def fetch_mailbox(self, gateway: bytes, mailbox: bytes) -> list[MailboxItem]:
        """Take every item waiting in `mailbox` at `gateway`."""
        gateway = bytes(gateway)
        out: list[MailboxItem] = []
        while True:
            conn = await self._conn(self._fetch, gateway, True)
            try:
                # The bound covers waiting for the connection's lock too: the fetch ahead
                # of us is bounded the same way, so nobody waits forever behind it.
                async with asyncio.timeout(self.fetch_timeout), conn.lock:
                    if not conn.alive():
                        raise ConnectionResetError("closed by an earlier failed fetch")
                    conn.writer.write(encode_request(bytes(mailbox)))
                    items = await decode_items(conn.reader)
            except (OSError, RuntimeError, TimeoutError, asyncio.IncompleteReadError,
                    GatewayProtocolError) as exc:
                self._drop(self._fetch, gateway, conn)
                raise TransportError(f"fetch from {gateway.hex()[:16]} failed: {exc!r}") \
                    from None
            self.fetches += 1
            now = time.time()
            out += [MailboxItem(Kind(i.kind), i.payload, i.surb_id, now) for i in items
                    if i.kind in (Kind.DELIVER, Kind.REPLY)]
            if len(items) < MAX_ITEMS:
                return out

    async def close(self) -> None:
        """Close every connection."""
        for table in (self._packets, self._fetch):
            for node_id, conn in list(table.items()):
                self._drop(table, node_id, conn)
            table.clear()

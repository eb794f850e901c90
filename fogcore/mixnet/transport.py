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
"""

from __future__ import annotations

import asyncio
import time

from fogcore.mixnet.client import MailboxItem, TransportError
from fogcore.mixnet.gateway import MAX_ITEMS, GatewayProtocolError, decode_items, encode_request
from fogcore.mixnet.links import Resolver
from fogcore.packet import Kind

__all__ = ["TcpTransport"]


class _Conn:
    __slots__ = ("reader", "writer", "lock")

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.lock = asyncio.Lock()

    def alive(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()


class TcpTransport:
    """A `Transport` over TCP. `close()` when done."""

    def __init__(self, resolver: Resolver, *, connect_timeout: float = 2.0,
                 send_timeout: float = 2.0, fetch_timeout: float = 5.0,
                 fetch_port_offset: int = 1, fetch_ports: dict[bytes, int] | None = None):
        self.resolver = resolver
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.fetch_timeout = fetch_timeout
        self.fetch_port_offset = fetch_port_offset
        self.fetch_ports = dict(fetch_ports or {})
        self._packets: dict[bytes, _Conn] = {}
        self._fetch: dict[bytes, _Conn] = {}
        self._connecting: dict[tuple[str, bytes], asyncio.Lock] = {}
        self.frames_sent = 0
        self.fetches = 0

    async def _address(self, node_id: bytes, fetch: bool) -> tuple[str, int]:
        address = await self.resolver.resolve(node_id)
        if address is None:
            raise TransportError(f"node {node_id.hex()[:16]} is not in the directory")
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
                    conn.writer.close()
                    table.pop(node_id, None)
                host, port = await self._address(node_id, fetch)
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError as exc:
                    raise TransportError(f"cannot reach {host}:{port}: {exc!r}") from None
                conn = table[node_id] = _Conn(reader, writer)
                return conn
        except TimeoutError:
            raise TransportError(f"no connection to {node_id.hex()[:16]} within "
                                 f"{self.connect_timeout} s") from None

    def _drop(self, table: dict[bytes, _Conn], node_id: bytes, conn: _Conn) -> None:
        if table.get(node_id) is conn:
            del table[node_id]
        conn.writer.close()

    async def send_frame(self, first_hop: bytes, frame: bytes) -> None:
        """Write one frame to the node `first_hop`."""
        first_hop = bytes(first_hop)
        conn = await self._conn(self._packets, first_hop, False)
        try:
            async with asyncio.timeout(self.send_timeout):
                conn.writer.write(frame)
                await conn.writer.drain()
        except (OSError, RuntimeError, TimeoutError) as exc:
            # RuntimeError: uvloop refuses a write on a transport closed meanwhile.
            self._drop(self._packets, first_hop, conn)
            raise TransportError(f"sending to {first_hop.hex()[:16]} failed: {exc!r}") from None
        self.frames_sent += 1

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
            for conn in table.values():
                conn.writer.close()
            table.clear()

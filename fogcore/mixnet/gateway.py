"""The mailbox fetch service of a gateway node (docs/testnet.md §3).

A client takes what its gateway holds for it over a small request/response protocol on a
TCP port of its own (by default the packet port + 1). The 32-byte random mailbox id is the
capability: whoever knows it may empty the mailbox, nobody can list mailboxes.

    request  = "FOGM" || version (1) || op (1) || limit (u16) || mailbox id (32)
    response = "FOGM" || version (1) || status (1) || count (u16) || count × item
    item     = kind (1) || surb id (16, zero for DELIVER) || length (u16) || payload

Integers are big-endian. A malformed request closes the connection (counted); a connection
may carry any number of requests, one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import Counter

from fogcore.mixnet.mailbox import Delivery, MailboxStore

__all__ = [
    "MAGIC",
    "MAX_ITEMS",
    "OP_FETCH",
    "REQUEST_SIZE",
    "STATUS_OK",
    "GatewayProtocolError",
    "GatewayService",
    "decode_items",
    "encode_request",
    "encode_response",
]

log = logging.getLogger("fogcore.gateway")

MAGIC = b"FOGM"
VERSION = 1
OP_FETCH = 1
STATUS_OK = 0
#: Most items one response carries; a client asks again for the rest.
MAX_ITEMS = 256
SURB_ID_SIZE = 16
_REQUEST = struct.Struct(">4sBBH32s")
_RESPONSE = struct.Struct(">4sBBH")
_ITEM = struct.Struct(">B16sH")
REQUEST_SIZE = _REQUEST.size


class GatewayProtocolError(ValueError):
    """A request or response that does not follow the fetch protocol."""


def encode_request(mailbox: bytes, limit: int = MAX_ITEMS) -> bytes:
    """A FETCH request for up to `limit` items of `mailbox`."""
    if len(mailbox) != 32 or not 1 <= limit <= 0xFFFF:
        raise ValueError("a mailbox id is 32 bytes and 1 <= limit <= 65535")
    return _REQUEST.pack(MAGIC, VERSION, OP_FETCH, limit, bytes(mailbox))


def encode_response(items: list[Delivery]) -> bytes:
    """The response carrying `items`."""
    parts = [_RESPONSE.pack(MAGIC, VERSION, STATUS_OK, len(items))]
    for item in items:
        surb_id = item.surb_id or bytes(SURB_ID_SIZE)
        parts.append(_ITEM.pack(item.kind, surb_id, len(item.payload)))
        parts.append(item.payload)
    return b"".join(parts)


async def decode_items(reader: asyncio.StreamReader) -> list[Delivery]:
    """Read one response from `reader`; `GatewayProtocolError` when malformed,
    `asyncio.IncompleteReadError` when the connection ends inside it."""
    head = await reader.readexactly(_RESPONSE.size)
    magic, version, status, count = _RESPONSE.unpack(head)
    if magic != MAGIC or version != VERSION:
        raise GatewayProtocolError("not a fetch response")
    if status != STATUS_OK:
        raise GatewayProtocolError(f"gateway answered status {status}")
    items = []
    for _ in range(count):
        kind, surb_id, length = _ITEM.unpack(await reader.readexactly(_ITEM.size))
        payload = await reader.readexactly(length)
        items.append(Delivery(kind, payload, surb_id if kind == 3 else None))
    return items


class GatewayService:
    """Serves the mailboxes of one node (`MailboxStore`) on `host`:`port`."""

    def __init__(self, mailboxes: MailboxStore, host: str = "127.0.0.1", port: int = 0, *,
                 idle_timeout: float = 120.0, send_timeout: float = 10.0,
                 max_connections: int = 1024):
        self.mailboxes = mailboxes
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.send_timeout = send_timeout
        self.max_connections = max_connections
        self.address: tuple[str, int] | None = None
        self.stats: Counter[str] = Counter()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  reuse_address=True)
        self.address = self._server.sockets[0].getsockname()[:2]
        log.info("mailbox fetch service on %s:%d", *self.address)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= self.max_connections:
            self.stats["refused"] += 1
            writer.close()
            return
        self._writers.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        raw = await reader.readexactly(REQUEST_SIZE)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                magic, version, op, limit, mailbox = _REQUEST.unpack(raw)
                if magic != MAGIC or version != VERSION or op != OP_FETCH or limit == 0:
                    # Framing cannot be trusted after a bad request: end the connection.
                    self.stats["bad_requests"] += 1
                    return
                items = self.mailboxes.fetch(mailbox, min(limit, MAX_ITEMS))
                self.stats["fetches"] += 1
                self.stats["items"] += len(items)
                writer.write(encode_response(items))
                try:
                    async with asyncio.timeout(self.send_timeout):
                        await writer.drain()
                except TimeoutError:
                    # A client that does not read its answer holds memory: drop it.
                    self.stats["slow_clients"] += 1
                    return
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

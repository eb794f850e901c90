"""The HTTP/1.1 protocol the API is served with: uvicorn's httptools protocol with bounds on
the request head, which uvicorn leaves unbounded.

- At most `max_header_fields` header fields and `max_head_bytes` bytes of head: 431.
- The head must arrive within `head_timeout` seconds, counted from the connection (its first
  request) or from the first byte of a later request on it: 408 and close (a connection
  that sent nothing is closed without an answer).
- At most `max_incomplete_heads` connections may be waiting for their head at once, server
  wide: admitting one more closes the one that has waited longest, so that slow or idle
  sockets cannot grow memory without bound, while a fresh client still gets through.

httptools buffers a header field until its end before reporting it, so the bytes of a head
are counted as they are received: a head still unfinished after more than `max_head_bytes`
bytes is refused without waiting for the field to end. A complete head is measured (target,
and per field name, value and 4 bytes of separators) only when the bytes received since it
began do not already prove it small, and its fields are counted once, at its end: the
parser callbacks of an ordinary request run uvicorn's code alone. A refused request
gets its answer, then the connection is half-closed and what the client still sends is read
and dropped for a moment (`LINGER_SECONDS`) so that it can read the answer before the close.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .metrics import HeadStats
from .settings import Settings

__all__ = ["HeadLimits", "HeadGuard", "HeadLimitedProtocol", "head_limited_protocol"]

#: Seconds a refused connection keeps reading (and dropping) before it closes.
LINGER_SECONDS = 2.0

# Bytes of separators around one header field ("name: value\r\n") counted with it.
_FIELD_OVERHEAD = 4


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """The bounds on request heads (see the module docstring)."""

    max_header_fields: int = 100
    max_head_bytes: int = 16 * 1024
    head_timeout: float = 10.0
    max_incomplete_heads: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        """The limits an app's settings ask for."""
        return cls(
            max_header_fields=settings.max_header_fields,
            max_head_bytes=settings.max_head_bytes,
            head_timeout=settings.head_timeout,
            max_incomplete_heads=settings.max_incomplete_heads,
        )


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head that broke a limit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HeadGuard:
    """What one server's connections share: the connections whose head is arriving with
    their deadlines, oldest first (a dict keeps insertion order, and a head's deadline is
    fixed when it opens), one timer that closes the overdue, and the counters. One timer per
    server instead of one per request keeps the cost of a request to two dict operations."""

    def __init__(self, limits: HeadLimits, stats: HeadStats | None = None) -> None:
        self.limits = limits
        self.stats = stats if stats is not None else HeadStats()
        self.waiting: dict[HeadLimitedProtocol, float] = {}
        #: Seconds between checks for overdue heads (a head times out this much late at most).
        self.interval = min(1.0, limits.head_timeout / 4)
        self._sweeper: asyncio.TimerHandle | None = None

    def admit(self, protocol: HeadLimitedProtocol) -> None:
        """Start waiting for `protocol`'s head; close the longest-waiting one when full."""
        waiting = self.waiting
        while len(waiting) >= self.limits.max_incomplete_heads:
            next(iter(waiting)).refuse("incomplete_heads", answer=False)
        loop = protocol.loop
        waiting[protocol] = loop.time() + self.limits.head_timeout
        self.stats.incomplete = len(waiting)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.interval, self._sweep, loop)

    def release(self, protocol: HeadLimitedProtocol) -> None:
        """`protocol`'s head is complete, refused, or its connection is gone."""
        self.waiting.pop(protocol, None)
        self.stats.incomplete = len(self.waiting)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        now = loop.time()
        overdue = []
        for protocol, deadline in self.waiting.items():
            if deadline > now:
                break  # the rest opened later
            overdue.append(protocol)
        for protocol in overdue:
            protocol.head_timed_out()
        if self.waiting:
            self._sweeper = loop.call_later(self.interval, self._sweep, loop)


def _refusal(status: int, code: str, message: str) -> bytes:
    """A complete response in the API's error shape that closes the connection."""
    body = orjson.dumps({"error": {"code": code, "message": message, "request_id": None}})
    return b"".join((
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
        body,
    ))


_ANSWERS = {
    "header_fields": _refusal(431, "headers_too_large", "too many header fields"),
    "header_bytes": _refusal(431, "headers_too_large", "the request head is too large"),
    "head_timeout": _refusal(408, "request_timeout", "the request head did not arrive in time"),
}


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head bounds of `guard`. Use a subclass bound
    to one guard per server (`head_limited_protocol`): uvicorn creates the protocol from
    its class with uvicorn's own arguments only."""

    guard: HeadGuard

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = False  # waiting in the guard for this head's end
        self._head_received = 0  # bytes of chunks that belong to the unfinished head alone
        self._head_fed = 0  # bytes of every chunk fed while the head was unfinished
        self._chunk_size = 0  # the chunk being parsed
        self._head_begun = False
        self._boundary_in_chunk = False
        self._lingering = False

    # -- the head's life: open from the connection or a request's first byte until its end

    def _open_head(self) -> None:
        if not self._head_open:
            self._head_open = True
            self._head_received = self._head_fed = 0
            self.guard.admit(self)

    def _close_head(self) -> None:
        if self._head_open:
            self._head_open = False
            self.guard.release(self)
        self._head_begun = False

    def head_timed_out(self) -> None:
        """The head did not arrive in time: 408, or a silent close for a connection that
        never began a request (it may be a client's spare connection, and a stray 408
        would confuse its next request)."""
        self.refuse("head_timeout", answer=self._head_begun or self._head_received > 0)

    def refuse(self, reason: str, *, answer: bool = True) -> None:
        """Count a refusal for `reason`, answer it (431 or 408) when `answer`, and close
        the connection."""
        self._close_head()
        stats = self.guard.stats
        stats.refused[reason] = stats.refused.get(reason, 0) + 1
        transport = self.transport
        if transport.is_closing():
            return
        busy = self.cycle is not None and not self.cycle.response_complete
        if not answer or busy:  # an answer would interleave with the one being sent
            transport.close()
            return
        transport.write(_ANSWERS[reason])
        self._lingering = True
        try:
            transport.write_eof()
        except (NotImplementedError, OSError, RuntimeError):
            transport.close()
            return
        self.loop.call_later(LINGER_SECONDS, transport.close)

    # -- asyncio protocol

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._open_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._close_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # read and dropped until the close
        self._boundary_in_chunk = False
        self._chunk_size = len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, _HeadRefused):
                self.refuse(refused.reason)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        # Count the chunk when all of it belongs to the head still arriving: nothing ended
        # in it. A chunk where a head or a body ended is left out (part of it belongs to the
        # message before), which lets at most one chunk more into the parser's buffer.
        if self._head_open:
            self._head_fed += len(data)
            if not self._boundary_in_chunk:
                self._head_received += len(data)
                if self._head_received > self.guard.limits.max_head_bytes:
                    self.refuse("header_bytes")

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        self._open_head()

    def on_headers_complete(self) -> None:
        limits = self.guard.limits
        if len(self.headers) > limits.max_header_fields:
            raise _HeadRefused("header_fields")
        # Measured only when the bytes fed since the head opened do not prove it small.
        if (self._head_fed + self._chunk_size > limits.max_head_bytes
                and self._head_size() > limits.max_head_bytes):
            raise _HeadRefused("header_bytes")
        self._boundary_in_chunk = True
        self._close_head()
        super().on_headers_complete()

    def _head_size(self) -> int:
        """The size of the complete head: target, and per field name, value and separators."""
        fields = sum(len(name) + len(value) for name, value in self.headers)
        return len(self.url) + fields + _FIELD_OVERHEAD * len(self.headers)

    def on_message_complete(self) -> None:
        self._boundary_in_chunk = True
        super().on_message_complete()


def head_limited_protocol(limits: HeadLimits, stats: HeadStats | None = None) -> type:
    """A `HeadLimitedProtocol` class for one server (pass it as uvicorn's `http=`): its
    connections share one `HeadGuard` with `limits`, counting into `stats`."""
    guard = HeadGuard(limits, stats)
    return type("HeadLimitedProtocol", (HeadLimitedProtocol,), {"guard": guard})

"""Request-head limits of the production server: header fields and bytes (431), head time
(408 or a close), and the bound on connections whose head is still arriving. A real uvicorn
server on 127.0.0.1, started with `server_options` as `fogcore serve` starts it, on both
event loops, spoken to in raw HTTP over sockets."""

from __future__ import annotations

import contextlib
import re
import select
import socket

import pytest

from fogcore.api import Settings, create_app
from fogcore.api.protocol import HeadLimitedProtocol
from fogcore.api.server import server_options

from .conftest import DEADLINE


def _connect(address) -> socket.socket:
    sock = socket.create_connection(address, timeout=DEADLINE)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or the deadline)."""
    chunks = []
    sock.settimeout(DEADLINE)
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(response: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    assert match, response[:200]
    return int(match.group(1))


def _get(address, path: str, headers: bytes = b"") -> bytes:
    with _connect(address) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nhost: t\r\n" + headers +
                     b"connection: close\r\n\r\n")
        return _read_response(sock)


def _health_ok(address) -> bool:
    return _status(_get(address, "/health")) == 200


def test_server_uses_the_head_limited_protocol(serve):
    # The options every server of the API is started with.
    options = server_options(create_app(Settings(bench_suites=())))
    assert issubclass(options["http"], HeadLimitedProtocol)
    assert options["proxy_headers"] is False
    address = serve()
    assert _health_ok(address)


def test_header_field_count(serve):
    address = serve(max_header_fields=10)
    fields = b"".join(b"x-f%d: v\r\n" % i for i in range(8))  # 8 + host + connection
    assert _status(_get(address, "/health", fields)) == 200
    fields = b"".join(b"x-f%d: v\r\n" % i for i in range(9))
    response = _get(address, "/health", fields)
    assert _status(response) == 431 and b"too many header fields" in response


def test_header_bytes_in_one_piece(serve):
    address = serve()
    assert _status(_get(address, "/health", b"x-pad: " + b"a" * 15_000 + b"\r\n")) == 200
    response = _get(address, "/health", b"x-pad: " + b"a" * 17_000 + b"\r\n")
    assert _status(response) == 431 and b"head is too large" in response
    assert _status(_get(address, "/health?" + "q" * 17_000)) == 431


def test_huge_header_refused_while_health_answers(serve):
    """64 MB of one header value: refused with 431 long before its end; /health answers
    meanwhile, and the client can read the answer."""
    address = serve()
    response = b""
    with _connect(address) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-big: ")
        chunk = b"a" * 65536
        sent = 0
        try:
            while sent < 64 << 20:
                sock.sendall(chunk)
                sent += len(chunk)
                if sent == 1 << 20:
                    assert _health_ok(address)
                if select.select([sock], [], [], 0)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        with contextlib.suppress(ConnectionResetError):
            response = _read_response(sock)
        assert sent < 64 << 20  # refused before the end
    assert _status(response) == 431
    assert _health_ok(address)
    metrics = _get(address, "/metrics").decode()
    assert re.search(r'fogcore_http_heads_refused_total\{reason="header_bytes"\} [1-9]', metrics)


def test_slow_head_gets_408_and_silent_socket_is_closed(serve):
    address = serve(head_timeout=0.5)
    with _connect(address) as slow, _connect(address) as silent:
        slow.sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-slow: ")
        response = _read_response(slow)
        assert _status(response) == 408 and b"did not arrive in time" in response
        assert _read_response(silent) == b""  # nothing was asked, nothing is answered
    metrics = _get(address, "/metrics").decode()
    assert re.search(r'fogcore_http_heads_refused_total\{reason="head_timeout"\} 2\.0', metrics)


def test_keep_alive_and_pipelining_still_work(serve):
    address = serve(head_timeout=0.5)
    request = b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n"
    with _connect(address) as sock:
        sock.sendall(request)
        sock.sendall(request + request + b"GET /health HTTP/1.1\r\nhost: t\r\n"
                     b"connection: close\r\n\r\n")
        response = _read_response(sock)
    assert response.count(b"HTTP/1.1 200 ") == 4


def test_large_body_after_small_head_is_not_a_large_head(serve):
    address = serve()
    body = b'{"username": "a", "password": "' + b"p" * 200_000 + b'"}'
    with _connect(address) as sock:
        sock.sendall(b"POST /api/auth/login HTTP/1.1\r\nhost: t\r\ncontent-type: "
                     b"application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                     % len(body) + body)
        assert _status(_read_response(sock)) == 422


def test_many_unfinished_heads(serve):
    """200 sockets holding unfinished heads: /health still answers; at the timeout each
    gets 408."""
    address = serve(head_timeout=1.0)
    holders = []
    try:
        for i in range(200):
            sock = _connect(address)
            holders.append(sock)
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-hold-%d: " % i + b"a" * 1000)
        assert _health_ok(address)
        for sock in holders:
            assert _status(_read_response(sock)) == 408
    finally:
        for sock in holders:
            sock.close()


def test_incomplete_heads_are_bounded(serve):
    """With the bound reached, a new connection closes the one that has waited longest."""
    address = serve(max_incomplete_heads=8)
    holders = []
    try:
        for _ in range(8):
            holders.append(_connect(address))
            holders[-1].sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-hold: ")
        assert _health_ok(address)  # a ninth connection: the oldest holder goes
        assert _read_response(holders[0]) == b""
        holders.append(_connect(address))  # the bound is reached again
        holders[-1].sendall(b"GET /health HTTP/1.1\r\nhost: t\r\nx-hold: ")
        assert _health_ok(address)
        assert _read_response(holders[1]) == b""
        for sock in holders[2:]:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)  # still waiting for its head
        metrics = _get(address, "/metrics").decode()
        assert 'fogcore_http_heads_refused_total{reason="incomplete_heads"}' in metrics
        assert "fogcore_http_incomplete_heads" in metrics
    finally:
        for sock in holders:
            sock.close()

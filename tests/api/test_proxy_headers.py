"""X-Forwarded-For counts only with `FOG_API_TRUST_PROXY=1`, wherever the API runs: every
place that starts uvicorn uses `server_options` (no rewriting by uvicorn), and the app alone
reads the header. Checked on a real server on 127.0.0.1, where uvicorn's own default would
trust the header from loopback."""

from __future__ import annotations

import ast
import json
import socket
from pathlib import Path

import pytest

from fogcore.api import RateLimit, Settings
from fogcore.api.protocol import HeadLimitedProtocol

from .conftest import DEADLINE

ROOT = Path(__file__).resolve().parents[2]


def _login(address, forwarded_for: str) -> int:
    body = json.dumps({"username": "nobody", "password": "wrong password"}).encode()
    with socket.create_connection(address, timeout=DEADLINE) as sock:
        sock.sendall(b"POST /api/auth/login HTTP/1.1\r\nhost: t\r\ncontent-type: "
                     b"application/json\r\nx-forwarded-for: %s\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (forwarded_for.encode(), len(body), body))
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return int(response.split(b" ", 2)[1])


def test_forged_forwarded_for_is_ignored_by_default(serve):
    address = serve(login_rate_limit=RateLimit(0.001, 2))
    codes = [_login(address, f"203.0.113.{i}") for i in range(4)]
    assert codes == [401, 401, 429, 429]  # one client: the socket's address


def test_forwarded_for_counts_when_trusted(serve):
    address = serve(login_rate_limit=RateLimit(0.001, 2), trust_proxy_headers=True)
    codes = [_login(address, f"127.0.0.1, 203.0.113.{i}") for i in range(4)]
    assert codes == [401, 401, 401, 401]  # four clients, as the proxy says


def test_trust_proxy_is_off_unless_set():
    assert Settings.from_env({}).trust_proxy_headers is False
    assert Settings.from_env({"FOG_API_TRUST_PROXY": "1"}).trust_proxy_headers is True


def test_testnet_serves_the_api_with_the_same_options(tmp_path):
    from fogcore.api import create_app
    from fogcore.mixnet.testnet import _Server

    app = create_app(Settings(bench_suites=(), database_url=f"sqlite://{tmp_path / 'a.db'}"))
    with socket.socket() as sock:
        config = _Server(app, sock).server.config
    assert config.proxy_headers is False
    assert issubclass(config.http, HeadLimitedProtocol)


def _uvicorn_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run", "Config")
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "uvicorn"):
            yield node


def _uses_server_options(call: ast.Call) -> bool:
    for keyword in call.keywords:
        value = keyword.value
        if keyword.arg is None and isinstance(value, ast.Call):
            func = value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "server_options":
                return True
    return False


@pytest.mark.parametrize("folder", ["api", "bench", "fogcore", "tests"])
def test_every_uvicorn_start_uses_server_options(folder):
    found = 0
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for call in _uvicorn_calls(tree):
            found += 1
            assert _uses_server_options(call), f"{path.relative_to(ROOT)}:{call.lineno}"
    assert found, f"no uvicorn start found under {folder}/: the scan has gone stale"

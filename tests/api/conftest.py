"""Fixtures for the API tests: the app on SQLite (a fresh file) and on PostgreSQL (a fresh
schema, dropped afterwards), driven in-process through httpx's ASGI transport with the
app's lifespan running, on both event loops.

PostgreSQL comes from FOG_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test;
an unreachable server fails the PostgreSQL tests with a message saying so."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from fogcore.api import RateLimit, Settings, create_app
from fogcore.api.auth import _hash_password_sync, new_session_token, token_hash
from fogcore.api.server import server_options
from fogcore.store import Store

#: Seconds any one wait on a real server may take before the test fails.
DEADLINE = 10.0

PASSWORD = "correct horse battery staple"
# Hashing is deliberately slow; the tests hash this one password once.
_PASSWORD_HASH = _hash_password_sync(PASSWORD)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A database of each backend that no other test uses."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("pg_schema_url")
    return f"sqlite://{tmp_path / 'api.db'}"


def test_settings(store_url: str, tmp_path, **overrides) -> Settings:
    """Settings for a test app: generous rate limits unless a test sets them, no caches
    (tests check revocation and writes at once), no admin from the environment."""
    values = dict(
        database_url=store_url,
        bench_dir=str(tmp_path / "bench"),
        bench_suites=(),
        bootstrap_admin=False,
        access_log=False,
        auth_cache_ttl=0.0,
        read_cache_ttl=0.0,
        rate_limit=RateLimit(10_000, 10_000),
        login_rate_limit=RateLimit(10_000, 10_000),
        # The prober is off unless a test turns it on, and never probes made-up addresses.
        directory_probe_loopback_only=True,
    )
    values.update(overrides)
    return Settings(**values)


test_settings.__test__ = False  # a helper, not a test


@dataclass
class Api:
    """A running app, a client for it, and helpers to make accounts."""

    app: Starlette
    client: httpx.AsyncClient

    @property
    def store(self) -> Store:
        return self.app.state.fog.store

    async def user(self, username: str, role: str) -> int:
        user = await self.store.users.create(username, _PASSWORD_HASH, role)
        return user.id

    async def token(self, role: str = "admin", username: str | None = None) -> str:
        """A session token of a new user with `role` (made directly in the store)."""
        user_id = await self.user(username or f"{role}-{secrets.token_hex(3)}", role)
        token = new_session_token()
        await self.store.sessions.create(token_hash(token), user_id, time.time() + 3600)
        return token

    async def headers(self, role: str = "admin") -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token(role)}"}


@pytest.fixture
def api(run, store_url, tmp_path):
    """`api(body, **settings)`: run `await body(Api)` against a fresh app and store."""

    def runner(body, **overrides):
        async def main():
            app = create_app(test_settings(store_url, tmp_path, **overrides))
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
                async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
                    return await body(Api(app, c))

        return run(main())

    return runner


@pytest.fixture(params=["uvloop", "asyncio"])
def serve(request, store_url, tmp_path):
    """`serve(**settings)`: the app in a real uvicorn server on 127.0.0.1, started with
    the production `server_options`, on each event loop; returns its (host, port)."""
    started = []

    def start(**overrides):
        app = create_app(test_settings(store_url, tmp_path, **overrides))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, loop=request.param, lifespan="on", log_level="error",
                                **server_options(app))
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread, sock))
        deadline = time.monotonic() + DEADLINE
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.01)
        return sock.getsockname()

    yield start
    for server, thread, sock in started:
        server.should_exit = True
        thread.join(DEADLINE)
        sock.close()

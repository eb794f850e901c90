"""Property-based fuzz of the whole API from its own OpenAPI document (schemathesis): no
5xx, every status documented, every response matching its schema and content type. The
app runs in a real uvicorn server (one lifespan for the whole fuzz) on each backend; the
fuzzer authenticates as an admin so that it reaches the protected routes too."""

import asyncio
import secrets
import socket
import threading
import time
import urllib.request

import hypothesis
import pytest
import schemathesis
import uvicorn
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fogcore.api import create_app
from fogcore.api.auth import _hash_password_sync, new_api_key, token_hash
from fogcore.api.server import server_options
from fogcore.store import open_store

from .conftest import test_settings

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25


async def _admin_key(url: str) -> str:
    store = await open_store(url)
    try:
        user = await store.users.create("fuzzer", _hash_password_sync(secrets.token_hex()), "admin")
        secret, prefix = new_api_key()
        await store.api_keys.create(token_hash(secret), "fuzz", user.id, "admin", prefix=prefix)
        return secret
    finally:
        await store.close()


def _serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="asyncio",
                                           log_level="warning", lifespan="on",
                                           **server_options(app)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def test_fuzz_whole_api(store_url, tmp_path):
    key = asyncio.run(_admin_key(store_url))
    app = create_app(test_settings(store_url, tmp_path))
    server, thread, base = _serve(app)
    failures = []
    try:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        headers = {"Authorization": f"Bearer {key}"}
        for operation in operations:

            @hypothesis.settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            @hypothesis.given(case=operation.as_strategy())
            def check(case):
                case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

            try:
                check()
            except Exception as exc:  # collect every failing operation, then report
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
        with urllib.request.urlopen(f"{base}/metrics") as r:
            metrics = r.read().decode()
        served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("fogcore_http_requests_total{"))
        assert served >= 10 * len(operations)  # the fuzz really exercised the server
        assert 'status="5' not in metrics
    finally:
        server.should_exit = True
        thread.join(20)
    assert not failures, "\n\n".join(failures)

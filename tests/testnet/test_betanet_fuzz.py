"""Property-based fuzz (schemathesis) of the `/api/betanet` routes of a live testnet: a
real `fogcore up` with its supervisor attached, so the routes answer from running nodes
(tests/api/test_fuzz.py covers the same routes under `fogcore serve`, where they answer
404). No 5xx, every status documented, every answer matching its schema; nodes deployed
by the fuzzer really start and are stopped again through the API."""

from __future__ import annotations

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import start_up, stop_up
from .test_testnet import login

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Examples per operation; a valid deploy starts a node process, so fewer of those.
EXAMPLES = {"POST": 6}
DEFAULT_EXAMPLES = 25


def test_fuzz_betanet_routes_of_a_live_testnet(tmp_path):
    up = start_up(tmp_path / "data", "sphinx", nodes=3, gateways=1)
    failures = []
    try:
        headers = login(up.api)
        schema = schemathesis.openapi.from_url(f"{up.api}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        operations = [op for op in operations if op.path.startswith("/api/betanet/")
                      and not op.path.startswith("/api/betanet/vrf")]
        assert {(op.method.upper(), op.path) for op in operations} == {
            ("GET", "/api/betanet/status"), ("POST", "/api/betanet/deploy"),
            ("GET", "/api/betanet/nodes/{node_id}"), ("DELETE", "/api/betanet/nodes/{node_id}")}
        for operation in operations:

            @hypothesis.settings(
                max_examples=EXAMPLES.get(operation.method.upper(), DEFAULT_EXAMPLES),
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            @hypothesis.given(case=operation.as_strategy())
            def check(case):
                case.call_and_validate(base_url=up.api, headers=headers, checks=CHECKS,
                                       timeout=60)

            try:
                check()
            except Exception as exc:  # collect every failing operation, then report
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
        # Whatever the fuzzer deployed runs: the status lists it, and it stops on request.
        status = httpx.get(f"{up.api}/api/betanet/status", headers=headers).json()
        assert all(n["state"] == "up" for n in status["nodes"])
        started = [n["node_id"] for n in status["nodes"]][4:]
        print(f"the fuzzer deployed {len(started)} nodes")
        assert started, "no deploy request of the fuzzer was valid"
        for node_id in started:
            r = httpx.delete(f"{up.api}/api/betanet/nodes/{node_id}", headers=headers,
                             timeout=40)
            assert r.status_code == 204, r.text
        status = httpx.get(f"{up.api}/api/betanet/status", headers=headers).json()
        assert len(status["nodes"]) == 4
    finally:
        code = stop_up(up)
    assert not failures, "\n\n".join(failures)
    assert code == 0, up.log.read_text()[-4000:]

"""Security headers, rate limits, body limit, validation errors, error hygiene, metrics."""

from starlette.routing import Route

from fogcore.api import RateLimit
from fogcore.store import StoreUnavailable


async def _boom(request):
    raise RuntimeError("secret detail: SELECT password_hash FROM users /srv/private/path")


async def _store_down(request):
    raise StoreUnavailable("connection to 10.0.0.9 refused")


def test_security_headers_everywhere(api):
    async def body(a):
        a.app.router.routes.append(Route("/boom", _boom))
        for path in ("/health", "/api/directory/nodes", "/nope", "/boom", "/api/auth/me"):
            r = await a.client.get(path)
            csp = r.headers["content-security-policy"]
            # API answers are data: a CSP that allows nothing; documents: same-origin only.
            default = "'none'" if path.startswith("/api/") else "'self'"
            assert "frame-ancestors 'none'" in csp and f"default-src {default}" in csp, path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["cross-origin-resource-policy"] == "same-origin"
            assert len(r.headers["x-request-id"]) == 16
        r = await a.client.get("/health")
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cross-origin-opener-policy"] == "same-origin"
        r = await a.client.get("/api/directory/nodes")
        assert r.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in r.headers

    api(body)


def test_request_id_echoed_when_well_formed(api):
    async def body(a):
        r = await a.client.get("/health", headers={"x-request-id": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        r = await a.client.get("/health", headers={"x-request-id": "bad id\twith spaces"})
        assert r.headers["x-request-id"] != "bad id\twith spaces"

    api(body)


def test_500_leaks_nothing(api):
    async def body(a):
        a.app.router.routes.append(Route("/boom", _boom))
        a.app.router.routes.append(Route("/down", _store_down))
        r = await a.client.get("/boom")
        assert r.status_code == 500
        assert r.json() == {"error": {"code": "internal", "message": "internal error",
                                      "request_id": r.headers["x-request-id"]}}
        for word in ("secret", "SELECT", "Traceback", "/srv", "RuntimeError"):
            assert word not in r.text
        r = await a.client.get("/down")
        assert r.status_code == 503 and "10.0.0.9" not in r.text

    api(body)


def test_rate_limit_answers_429_with_retry_after(api):
    async def body(a):
        codes = [(await a.client.get("/api/directory/nodes")).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = await a.client.get("/api/directory/nodes")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"
        # Probes are never limited.
        assert (await a.client.get("/health")).status_code == 200
        metrics = (await a.client.get("/metrics")).text
        assert 'fogcore_http_rate_limited_total{limit="general"}' in metrics

    api(body, rate_limit=RateLimit(0.01, 3))


def test_login_is_limited_more_tightly_than_reads(api):
    async def body(a):
        creds = {"username": "nobody", "password": "wrong password"}
        codes = [(await a.client.post("/api/auth/login", json=creds)).status_code
                 for _ in range(4)]
        assert codes == [401, 401, 429, 429]
        # Reads from the same client still pass.
        assert (await a.client.get("/api/directory/nodes")).status_code == 200

    api(body, login_rate_limit=RateLimit(0.001, 2))


def test_body_limit(api):
    async def body(a):
        admin = await a.headers("admin")
        big = b'{"name": "' + b"x" * 5000 + b'"}'
        r = await a.client.post("/api/keys", content=big,
                                headers={**admin, "content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

        async def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(10):
                yield b"x" * 1000

        r = await a.client.post("/api/keys", content=chunks(),
                                headers={**admin, "content-type": "application/json"})
        assert r.status_code == 413
        assert await a.store.api_keys.list(include_inactive=True) == []

    api(body, max_body_bytes=4096)


def test_validation_errors_name_the_field(api):
    async def body(a):
        admin = await a.headers("admin")
        cases = [
            ({"username": "x"}, "password", "missing required field"),
            ({"username": 5, "password": "p"}, "username", "Expected `str`"),
            ({"username": "a b", "password": "p"}, "username", "matching regex"),
            ({"username": "a", "password": "p", "extra": 1}, "extra", "unknown field"),
        ]
        for payload, field, text in cases:
            r = await a.client.post("/api/auth/login", json=payload)
            assert r.status_code == 422, payload
            error = r.json()["error"]
            assert error["code"] == "validation_failed"
            assert error["fields"][0]["field"] == field and text in error["fields"][0]["message"]
        r = await a.client.post("/api/keys", json={"name": "k", "role": "root"}, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "role"
        r = await a.client.get("/api/directory/nodes?layer=9")
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "layer"
        r = await a.client.post("/api/auth/login", content=b"{not json",
                                headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = await a.client.post("/api/auth/login", content=b"username=a",
                                headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415

    api(body)


def test_metrics_by_route_template(api):
    async def body(a):
        for node in ("ab" * 32, "cd" * 32):
            assert (await a.client.get(f"/api/directory/nodes/{node}")).status_code == 404
        await a.client.get("/no/such/path/123")
        text = (await a.client.get("/metrics")).text
        line = ('fogcore_http_requests_total{method="GET",route="/api/directory/nodes/{node_id}",'
                'status="404"} 2.0')
        assert line in text
        assert "ab" * 32 not in text and "/no/such/path" not in text
        assert 'route="unmatched"' in text
        assert "fogcore_http_request_duration_seconds_bucket" in text

    api(body)


def test_cors_off_unless_configured(api):
    async def body(a):
        r = await a.client.get("/health", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers

    api(body)

    async def configured(a):
        r = await a.client.get("/health", headers={"origin": "https://panel.example"})
        assert r.headers["access-control-allow-origin"] == "https://panel.example"
        r = await a.client.get("/health", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers

    api(configured, cors_origins=("https://panel.example",))


def test_health_ready_and_openapi(api):
    async def body(a):
        r = await a.client.get("/health/ready")
        assert r.status_code == 200 and r.json()["migrations_current"] is True
        doc = (await a.client.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.1")
        for path, methods in {
            "/api/auth/login": {"post"},
            "/api/keys": {"get", "post"},
            "/api/directory/nodes": {"get", "post"},
            "/api/betanet/vrf/{node_id}/{epoch}": {"get", "post"},
            "/api/betanet/vrf/audit": {"post"},
            "/api/bench/runs": {"get", "post"},
            "/api/dashboard/stats": {"get"},
        }.items():
            assert set(doc["paths"][path]) == methods
        login = doc["paths"]["/api/auth/login"]["post"]
        assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert {"200", "401", "422", "429"} <= set(login["responses"])
        await a.store.close()  # the database goes away: not ready, no crash
        r = await a.client.get("/health/ready")
        assert r.status_code == 503 and r.json()["reachable"] is False

    api(body)

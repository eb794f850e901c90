"""Per-account login backoff: refusals after N failures whatever the source address, an
exponentially growing window, reset on success, bounded memory; on both backends."""

import httpx
import pytest

from fogcore.api.lockout import LoginBackoff

from .conftest import PASSWORD


async def _login(app, address: str, username: str, password: str) -> httpx.Response:
    """A login from `address` (each call may come from a different client)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.post("/api/auth/login",
                                 json={"username": username, "password": password})


def test_account_refused_after_failures_from_any_address(api):
    async def body(a):
        await a.user("carol", "viewer")
        await a.user("dave", "viewer")
        for i in range(5):  # five addresses, one guess each
            r = await _login(a.app, f"198.51.100.{i}", "carol", "wrong password")
            assert r.status_code == 401
        # Refused from a sixth address, even with the right password, before any check.
        r = await _login(a.app, "198.51.100.99", "carol", PASSWORD)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 30
        failed = await a.store.audit.list(action="auth.login_failed")
        assert len(failed) == 5  # the refused attempt was not a password check
        # Another account is not affected.
        assert (await _login(a.app, "198.51.100.1", "dave", PASSWORD)).status_code == 200
        metrics = (await a.client.get("/metrics")).text
        assert 'fogcore_http_rate_limited_total{limit="login_account"} 1.0' in metrics

    api(body, login_backoff_failures=5, login_backoff_base=30.0)


def test_unknown_accounts_are_refused_alike(api):
    async def body(a):
        codes = [(await _login(a.app, f"203.0.113.{i}", "ghost", "wrong password")).status_code
                 for i in range(4)]
        assert codes == [401, 401, 401, 429]

    api(body, login_backoff_failures=3)


def test_success_resets_the_account(api):
    async def body(a):
        await a.user("erin", "viewer")
        for _ in range(2):
            for i in range(4):
                r = await _login(a.app, f"198.51.100.{i}", "erin", "wrong password")
                assert r.status_code == 401
            assert (await _login(a.app, "198.51.100.7", "erin", PASSWORD)).status_code == 200

    api(body, login_backoff_failures=5)


def test_window_doubles_and_is_capped():
    backoff = LoginBackoff(failures=3, base=10.0, longest=50.0)
    now = 1000.0
    assert [backoff.attempt("x", now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert backoff.attempt("x", now) == pytest.approx(10.0)
    windows = []
    for _ in range(4):  # wait out each window, then fail once more
        now += backoff.attempt("x", now)
        assert backoff.attempt("x", now) == 0.0
        windows.append(backoff.attempt("x", now))
    assert windows == pytest.approx([20.0, 40.0, 50.0, 50.0])
    backoff.succeeded("x")
    assert backoff.attempt("x", now) == 0.0


def test_memory_is_bounded_least_recently_tried_first():
    backoff = LoginBackoff(failures=2, base=10.0, max_accounts=100)
    backoff.attempt("target", 0.0)
    backoff.attempt("target", 0.0)
    for i in range(1000):
        backoff.attempt(f"probe-{i}", 1.0)
        if i % 10 == 0:
            backoff.attempt("target", 1.0)  # recently tried: kept, still refused
    assert len(backoff) == 100
    assert backoff.attempt("target", 2.0) > 0

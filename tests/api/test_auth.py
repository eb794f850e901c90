"""Login, sessions, API keys, roles, expiry and revocation, on both backends."""

import time

from fogcore.api.auth import bootstrap_admin, new_api_key, token_hash

from .conftest import PASSWORD


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_login_me_logout(api):
    async def body(a):
        await a.user("alice", "operator")
        r = await a.client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 200
        login = r.json()
        assert login["token"].startswith("fogs_") and login["user"]["role"] == "operator"
        # Only the hash of the token is stored.
        session = await a.store.sessions.get(token_hash(login["token"]))
        assert session.expires_at > time.time()
        me = await a.client.get("/api/auth/me", headers=bearer(login["token"]))
        assert me.status_code == 200
        assert me.json()["user"]["username"] == "alice"
        assert me.json()["auth"] == {"kind": "session", "role": "operator",
                                     "expires_at": login["expires_at"], "key_id": None}
        out = await a.client.post("/api/auth/logout", headers=bearer(login["token"]))
        assert out.status_code == 200 and out.json() == {"revoked": True}
        again = await a.client.get("/api/auth/me", headers=bearer(login["token"]))
        assert again.status_code == 401
        assert again.headers["www-authenticate"] == "Bearer"
        actions = [e.action for e in await a.store.audit.list()]
        assert "auth.login" in actions and "auth.logout" in actions

    api(body)


def test_login_failures_look_alike(api):
    async def body(a):
        await a.user("bob", "viewer")
        wrong = await a.client.post("/api/auth/login",
                                    json={"username": "bob", "password": "not the password"})
        unknown = await a.client.post("/api/auth/login",
                                      json={"username": "nobody", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
        failed = await a.store.audit.list(action="auth.login_failed")
        assert {e.target for e in failed} == {"bob", "nobody"}

    api(body)


def test_missing_and_malformed_credentials(api):
    async def body(a):
        assert (await a.client.get("/api/auth/me")).status_code == 401
        for value in ("Basic abc", "Bearer", "Bearer fogs_unknown", "Bearer fogk_x_y",
                      "Bearer " + "x" * 500):
            r = await a.client.get("/api/auth/me", headers={"authorization": value})
            assert r.status_code == 401, value
        # A bad token is refused even on a public route: the client must learn of it.
        r = await a.client.get("/api/directory/nodes", headers=bearer("fogs_nope"))
        assert r.status_code == 401

    api(body)


def test_roles(api):
    async def check(a):
        viewer = await a.headers("viewer")
        operator = await a.headers("operator")
        admin = await a.headers("admin")
        key = {"name": "k"}
        assert (await a.client.post("/api/keys", json=key)).status_code == 401
        assert (await a.client.post("/api/keys", json=key, headers=viewer)).status_code == 403
        assert (await a.client.post("/api/keys", json=key, headers=operator)).status_code == 403
        assert (await a.client.post("/api/keys", json=key, headers=admin)).status_code == 201
        assert (await a.client.get("/api/keys", headers=operator)).status_code == 403
        assert (await a.client.get("/api/dashboard/stats")).status_code == 401
        assert (await a.client.get("/api/dashboard/stats", headers=viewer)).status_code == 200
        bench = {"suite": "api"}
        r = await a.client.post("/api/bench/runs", json=bench, headers=operator)
        assert r.status_code == 403

    api(check)


def test_api_keys_create_use_list_revoke(api):
    async def body(a):
        admin = await a.headers("admin")
        await a.user("ops", "operator")
        r = await a.client.post("/api/keys", headers=admin,
                                json={"name": "deploy", "role": "operator", "username": "ops"})
        assert r.status_code == 201
        created = r.json()
        secret, key = created["key"], created["api_key"]
        assert secret.startswith(f"fogk_{key['prefix']}_")
        stored = await a.store.api_keys.get(key["id"])
        assert stored.key_hash == token_hash(secret)  # the secret itself is not stored
        me = await a.client.get("/api/auth/me", headers=bearer(secret))
        assert me.json()["auth"]["kind"] == "api_key"
        assert me.json()["user"]["username"] == "ops"
        listed = await a.client.get("/api/keys", headers=admin)
        assert [k["id"] for k in listed.json()["keys"]] == [key["id"]]
        assert "key" not in listed.json()["keys"][0]
        revoked = await a.client.delete(f"/api/keys/{key['id']}", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        assert (await a.client.get("/api/auth/me", headers=bearer(secret))).status_code == 401
        active = await a.client.get("/api/keys", headers=admin)
        assert active.json()["keys"] == []
        everything = await a.client.get("/api/keys?include_inactive=true", headers=admin)
        assert len(everything.json()["keys"]) == 1
        assert (await a.client.delete("/api/keys/999999", headers=admin)).status_code == 404
        # An API key cannot revoke itself (the caller would lock itself out mid-request).
        r = await a.client.post("/api/keys", headers=admin, json={"name": "self", "role": "admin"})
        own = r.json()
        r = await a.client.delete(f"/api/keys/{own['api_key']['id']}", headers=bearer(own["key"]))
        assert r.status_code == 409
        actions = [e.action for e in await a.store.audit.list()]
        assert actions.count("api_key.create") == 2 and "api_key.revoke" in actions

    api(body)


def test_key_role_bounded_by_owner(api):
    async def body(a):
        admin = await a.headers("admin")
        await a.user("watcher", "viewer")
        r = await a.client.post("/api/keys", headers=admin,
                                json={"name": "x", "role": "admin", "username": "watcher"})
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "role"
        # An owner demoted after the key was made: the key acts with the lower role.
        r = await a.client.post("/api/keys", headers=admin, json={"name": "mine", "role": "admin"})
        secret = r.json()["key"]
        me = (await a.client.get("/api/auth/me", headers=admin)).json()
        await a.store.users.update(me["user"]["id"], role="viewer")
        r = await a.client.get("/api/keys", headers=bearer(secret))
        assert r.status_code == 403

    api(body)


def test_expired_session_and_key(api):
    async def body(a):
        user_id = await a.user("late", "admin")
        session_token = "fogs_expired-session-token"
        await a.store.sessions.create(token_hash(session_token), user_id, time.time() - 1)
        assert (await a.client.get("/api/auth/me", headers=bearer(session_token))).status_code == 401
        secret, prefix = new_api_key()
        await a.store.api_keys.create(token_hash(secret), "old", user_id, "admin",
                                      prefix=prefix, expires_at=time.time() - 1)
        assert (await a.client.get("/api/auth/me", headers=bearer(secret))).status_code == 401
        # A key made with a lifetime carries its expiry.
        r = await a.client.post("/api/keys", headers=await a.headers("admin"),
                                json={"name": "short", "expires_in": 60})
        assert r.json()["api_key"]["expires_at"] > time.time() + 50

    api(body)


def test_logout_needs_a_session(api):
    async def body(a):
        admin = await a.headers("admin")
        r = await a.client.post("/api/keys", headers=admin, json={"name": "k"})
        r = await a.client.post("/api/auth/logout", headers=bearer(r.json()["key"]))
        assert r.status_code == 400

    api(body)


def test_bootstrap_admin_once(api):
    async def body(a):
        env = {"FOG_ADMIN_PASSWORD": "short"}
        try:
            await bootstrap_admin(a.store, env)
        except ValueError as exc:
            assert "at least" in str(exc)
        else:
            raise AssertionError("a short password must be refused")
        assert await bootstrap_admin(a.store, {}) is None  # no variable: nothing happens
        env = {"FOG_ADMIN_PASSWORD": PASSWORD, "FOG_ADMIN_USER": "root"}
        assert await bootstrap_admin(a.store, env) == "root"
        assert await bootstrap_admin(a.store, env) is None  # an admin exists now
        r = await a.client.post("/api/auth/login", json={"username": "root", "password": PASSWORD})
        assert r.status_code == 200

    api(body)

"""Contract of every repository, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from fogcore.store import (
    BENCH_STATUSES,
    Conflict,
    ConstraintViolation,
    InvalidReference,
    NotFound,
)

NOW = 1_700_000_000.0
HOUR = 3600.0


async def make_user(store, name="alice", role="admin"):
    return await store.users.create(name, "$argon2id$v=19$hash", role)


async def make_node(
    store,
    node_id="node-a",
    *,
    key=None,
    layer=1,
    fmt="sphinx",
    published=NOW,
    expires=NOW + HOUR,
    now=NOW,
    info=None,
):
    return await store.directory.upsert(
        node_id=node_id,
        identity_key=key or node_id.encode().ljust(32, b"\x01"),
        routing_key=b"\x02" * 32,
        layer=layer,
        format=fmt,
        address="127.0.0.1:9000",
        descriptor=b'{"node":"' + node_id.encode() + b'"}',
        signature=b"\x03" * 64,
        info=info if info is not None else {"node_id": node_id, "layer": layer},
        published_at=published,
        expires_at=expires,
        now=now,
    )


# --------------------------------------------------------------------------- users


def test_users_crud(with_store):
    async def body(store):
        alice = await make_user(store)
        assert alice.id > 0 and alice.username == "alice" and alice.role == "admin"
        assert isinstance(alice.created_at, float) and alice.created_at == alice.updated_at
        bob = await make_user(store, "bob", "viewer")
        assert await store.users.get(alice.id) == alice
        assert await store.users.get_by_username("bob") == bob
        assert [u.username for u in await store.users.list()] == ["alice", "bob"]
        assert [u.username for u in await store.users.list(limit=1, offset=1)] == ["bob"]
        assert await store.users.count() == 2
        assert await store.users.count(role="viewer") == 1

        changed = await store.users.update(bob.id, role="operator")
        assert changed.role == "operator" and changed.password_hash == bob.password_hash
        changed = await store.users.update(bob.id, password_hash="new")
        assert changed.role == "operator" and changed.password_hash == "new"
        assert changed.updated_at >= bob.updated_at

        await store.users.delete(bob.id)
        with pytest.raises(NotFound):
            await store.users.get(bob.id)
        with pytest.raises(NotFound):
            await store.users.get_by_username("bob")
        with pytest.raises(NotFound):
            await store.users.update(bob.id, role="admin")
        with pytest.raises(NotFound):
            await store.users.delete(bob.id)
        # Ids are never reused, so an old reference cannot point at a new account.
        carol = await make_user(store, "carol")
        assert carol.id > bob.id

    with_store(body)


def test_users_constraints(with_store):
    async def body(store):
        await make_user(store)
        with pytest.raises(Conflict) as info:
            await make_user(store)
        assert info.value.target == "users.username"
        with pytest.raises(ConstraintViolation):
            await make_user(store, "mallory", "root")
        with pytest.raises(ConstraintViolation):
            await make_user(store, "nul\x00name")
        alice = await store.users.get_by_username("alice")
        with pytest.raises(ConstraintViolation):
            await store.users.update(alice.id, role="superuser")
        assert await store.users.count() == 1

    with_store(body)


# --------------------------------------------------------------------------- sessions


def test_sessions(with_store):
    async def body(store):
        alice = await make_user(store)
        session = await store.sessions.create(b"\x10" * 32, alice.id, NOW + HOUR)
        assert session.revoked_at is None and session.expires_at == NOW + HOUR
        assert await store.sessions.get(b"\x10" * 32) == session

        grant = await store.sessions.find_active(b"\x10" * 32, now=NOW)
        assert grant is not None and grant.user == alice and grant.session == session
        assert await store.sessions.find_active(b"\x10" * 32, now=NOW + HOUR) is None
        assert await store.sessions.find_active(b"\x11" * 32, now=NOW) is None

        assert await store.sessions.revoke(b"\x10" * 32, now=NOW + 1) is True
        assert await store.sessions.revoke(b"\x10" * 32, now=NOW + 2) is False
        assert await store.sessions.find_active(b"\x10" * 32, now=NOW + 3) is None
        assert (await store.sessions.get(b"\x10" * 32)).revoked_at == NOW + 1
        with pytest.raises(NotFound):
            await store.sessions.get(b"\x99")

        for i in range(3):
            await store.sessions.create(bytes([i]) * 32, alice.id, NOW + HOUR)
        assert len(await store.sessions.list_for_user(alice.id, now=NOW)) == 3
        assert len(await store.sessions.list_for_user(alice.id, include_inactive=True)) == 4
        assert await store.sessions.revoke_all_for_user(alice.id, now=NOW + 5) == 3
        assert await store.sessions.list_for_user(alice.id, now=NOW + 6) == []
        assert await store.sessions.delete_expired(now=NOW + 10) == 4
        assert await store.sessions.list_for_user(alice.id, include_inactive=True) == []

    with_store(body)


def test_sessions_constraints_and_cascade(with_store):
    async def body(store):
        with pytest.raises(InvalidReference):
            await store.sessions.create(b"t" * 32, 12345, NOW + HOUR)
        alice = await make_user(store)
        await store.sessions.create(bytearray(b"t" * 32), alice.id, NOW + HOUR)
        with pytest.raises(Conflict):
            await store.sessions.create(memoryview(b"t" * 32), alice.id, NOW + HOUR)
        with pytest.raises(ConstraintViolation):
            await store.sessions.create("not bytes", alice.id, NOW + HOUR)
        await store.users.delete(alice.id)
        with pytest.raises(NotFound):
            await store.sessions.get(b"t" * 32)

    with_store(body)


# --------------------------------------------------------------------------- API keys


def test_api_keys(with_store):
    async def body(store):
        alice = await make_user(store)
        key = await store.api_keys.create(b"k" * 32, "ci", alice.id, "viewer", prefix="fk_ab12")
        assert key.role == "viewer" and key.prefix == "fk_ab12" and key.expires_at is None
        assert key.last_used_at is None
        assert await store.api_keys.get(key.id) == key

        grant = await store.api_keys.find_active(b"k" * 32, now=NOW)
        assert grant.user == alice and grant.key.last_used_at == NOW
        assert (await store.api_keys.get(key.id)).last_used_at == NOW
        # Within a minute the stored time is left alone (reads stay reads).
        grant = await store.api_keys.find_active(b"k" * 32, now=NOW + 30)
        assert grant.key.last_used_at == NOW
        grant = await store.api_keys.find_active(b"k" * 32, now=NOW + 61)
        assert grant.key.last_used_at == NOW + 61
        assert await store.api_keys.find_active(b"x" * 32, now=NOW) is None

        short = await store.api_keys.create(
            b"s" * 32, "short", alice.id, "operator", expires_at=NOW + 10
        )
        assert await store.api_keys.find_active(b"s" * 32, now=NOW + 9) is not None
        assert await store.api_keys.find_active(b"s" * 32, now=NOW + 10) is None
        assert [k.id for k in await store.api_keys.list(now=NOW)] == [key.id, short.id]
        assert [k.id for k in await store.api_keys.list(now=NOW + 20)] == [key.id]

        revoked = await store.api_keys.revoke(key.id, now=NOW + 100)
        assert revoked.revoked_at == NOW + 100
        again = await store.api_keys.revoke(key.id, now=NOW + 200)
        assert again.revoked_at == NOW + 100
        assert await store.api_keys.find_active(b"k" * 32, now=NOW + 101) is None
        assert await store.api_keys.list(now=NOW + 300) == []
        assert len(await store.api_keys.list(include_inactive=True)) == 2
        assert len(await store.api_keys.list(user_id=alice.id, include_inactive=True)) == 2
        assert await store.api_keys.list(user_id=alice.id + 1, include_inactive=True) == []
        with pytest.raises(NotFound):
            await store.api_keys.revoke(9999)
        with pytest.raises(NotFound):
            await store.api_keys.get(9999)

    with_store(body)


def test_api_keys_constraints(with_store):
    async def body(store):
        with pytest.raises(InvalidReference):
            await store.api_keys.create(b"k" * 32, "ci", 777, "viewer")
        alice = await make_user(store)
        await store.api_keys.create(b"k" * 32, "ci", alice.id, "viewer")
        with pytest.raises(Conflict) as info:
            await store.api_keys.create(b"k" * 32, "again", alice.id, "viewer")
        assert info.value.target == "api_keys.key_hash"
        with pytest.raises(ConstraintViolation):
            await store.api_keys.create(b"z" * 32, "ci", alice.id, "god")
        await store.users.delete(alice.id)
        assert await store.api_keys.list(include_inactive=True) == []

    with_store(body)


# --------------------------------------------------------------------------- directory


def test_directory_upsert_and_refresh(with_store):
    async def body(store):
        node = await make_node(store, info={"name": "a", "tags": ["x", 1, None, 2.5]})
        assert node.identity_key == b"node-a".ljust(32, b"\x01")
        assert node.info == {"name": "a", "tags": ["x", 1, None, 2.5]}
        assert node.published_at == NOW and node.refreshed_at == NOW
        assert await store.directory.get("node-a") == node

        same = await make_node(store, now=NOW + 5)  # the same descriptor, seen again
        assert same.refreshed_at == NOW + 5
        newer = await make_node(store, layer=2, published=NOW + 60, now=NOW + 60)
        assert newer.layer == 2 and newer.published_at == NOW + 60

        with pytest.raises(Conflict) as info:
            await make_node(store, published=NOW + 30)
        assert info.value.target == "node_descriptors.published_at"
        with pytest.raises(Conflict) as info:
            await make_node(store, key=b"\x09" * 32, published=NOW + 90)
        assert info.value.target == "node_descriptors.identity_key"
        with pytest.raises(Conflict):  # one identity key, one node
            await make_node(store, "node-b", key=b"node-a".ljust(32, b"\x01"))
        assert (await store.directory.get("node-a")).layer == 2
        with pytest.raises(NotFound):
            await store.directory.get("nope")

    with_store(body)


def test_directory_listing(with_store):
    async def body(store):
        await make_node(store, "c", layer=2, fmt="kem")
        await make_node(store, "a", layer=1)
        await make_node(store, "b", layer=1, fmt="kem")
        await make_node(store, "old", layer=0, expires=NOW + 10)
        listed = await store.directory.list(now=NOW)
        assert [n.node_id for n in listed] == ["old", "a", "b", "c"]
        assert [n.node_id for n in await store.directory.list(now=NOW + 20)] == ["a", "b", "c"]
        assert [n.node_id for n in await store.directory.list(layer=1, now=NOW)] == ["a", "b"]
        assert [n.node_id for n in await store.directory.list(format="kem", now=NOW)] == ["b", "c"]
        assert [n.node_id for n in await store.directory.list(layer=1, format="kem")] == []
        assert [n.node_id for n in await store.directory.list(layer=1, format="kem", now=NOW)] == [
            "b"
        ]
        assert [n.node_id for n in await store.directory.list(limit=2, offset=1, now=NOW)] == [
            "a",
            "b",
        ]
        assert await store.directory.count(now=NOW) == {0: 1, 1: 2, 2: 1}
        assert await store.directory.count(now=NOW + 20) == {1: 2, 2: 1}
        assert await store.directory.count(include_expired=True) == {0: 1, 1: 2, 2: 1}
        assert await store.directory.delete_expired(now=NOW + 20) == 1
        await store.directory.delete("a")
        with pytest.raises(NotFound):
            await store.directory.delete("a")
        assert [n.node_id for n in await store.directory.list(include_expired=True)] == ["b", "c"]

    with_store(body)


def test_directory_constraints(with_store):
    async def body(store):
        with pytest.raises(ConstraintViolation):
            await make_node(store, fmt="carrier-pigeon")
        with pytest.raises(ConstraintViolation):
            await make_node(store, layer=-1)
        with pytest.raises(ConstraintViolation):
            await make_node(store, layer=2**70)
        with pytest.raises(ConstraintViolation):
            await make_node(store, info={"bad": "nul\x00"})
        with pytest.raises(ConstraintViolation):
            await make_node(store, info={"huge": 2**70})
        with pytest.raises(ConstraintViolation):
            await make_node(store, info=["not", "an", "object"])
        # A literal backslash-u sequence in text is not a NUL.
        node = await make_node(store, info={"text": "\\u0000"})
        assert node.info == {"text": "\\u0000"}
        assert await store.directory.count(include_expired=True) == {1: 1}

    with_store(body)


def test_directory_states(with_store):
    async def body(store):
        node = await make_node(store)
        assert (node.state, node.state_since, node.last_ack_at, node.leave_at) == (
            "unknown", NOW, None, None)
        up = await store.directory.set_state("node-a", "up", ack_at=NOW + 1, now=NOW + 1)
        assert (up.state, up.state_since, up.last_ack_at) == ("up", NOW + 1, NOW + 1)
        # The same state again changes nothing, not even the time.
        assert await store.directory.set_state("node-a", "up", now=NOW + 2) is None
        gone = await store.directory.set_state("node-a", "unreachable", now=NOW + 7)
        assert (gone.state, gone.state_since, gone.last_ack_at) == ("unreachable", NOW + 7,
                                                                    NOW + 1)
        assert await store.directory.set_state("nope", "up") is None
        with pytest.raises(ConstraintViolation):
            await store.directory.set_state("node-a", "sleepy")
        with pytest.raises(ConstraintViolation):
            await store.directory.set_state("node-a", "unknown")
        # A refresh of the same descriptor keeps the observed state.
        assert (await make_node(store, now=NOW + 8)).state == "unreachable"

    with_store(body)


def test_directory_leave(with_store):
    async def body(store):
        await make_node(store)
        await store.directory.set_state("node-a", "up", now=NOW + 1)
        left = await store.directory.leave("node-a", NOW + 10, now=NOW + 11)
        assert (left.state, left.state_since, left.leave_at) == ("draining", NOW + 11, NOW + 10)
        again = await store.directory.leave("node-a", NOW + 10, now=NOW + 20)  # idempotent
        assert (again.state, again.state_since, again.leave_at) == ("draining", NOW + 11,
                                                                    NOW + 10)
        # Probes do not override a signed leave.
        assert await store.directory.set_state("node-a", "up", now=NOW + 21) is None
        assert await store.directory.set_state("node-a", "unreachable", now=NOW + 22) is None
        with pytest.raises(NotFound):
            await store.directory.leave("nope", NOW)
        # A refresh not newer than the leave keeps it; a newer descriptor clears it.
        assert (await make_node(store, published=NOW + 10, now=NOW + 30)).state == "draining"
        back = await make_node(store, published=NOW + 40, now=NOW + 41)
        assert (back.state, back.state_since, back.leave_at) == ("unknown", NOW + 41, None)
        # A leave older than the stored descriptor was superseded by it.
        with pytest.raises(Conflict) as info:
            await store.directory.leave("node-a", NOW + 39, now=NOW + 42)
        assert info.value.target == "node_descriptors.leave_at"
        assert (await store.directory.get("node-a")).state == "unknown"
        assert (await store.directory.set_state("node-a", "up", now=NOW + 43)).state == "up"

    with_store(body)


def test_directory_listing_by_state(with_store):
    async def body(store):
        for name in ("a", "b", "c", "d"):
            await make_node(store, name)
        await store.directory.set_state("b", "up", now=NOW)
        await store.directory.set_state("c", "unreachable", now=NOW)
        await store.directory.leave("d", NOW, now=NOW)

        async def ids(**kw):
            return [n.node_id for n in await store.directory.list(now=NOW, **kw)]

        assert await ids() == ["a", "b", "c", "d"]
        assert await ids(states=("unknown", "up")) == ["a", "b"]
        assert await ids(states=("draining",)) == ["d"]
        assert await ids(states=["unreachable", "unreachable"]) == ["c"]
        assert await ids(states=()) == []
        with pytest.raises(ConstraintViolation):
            await ids(states=("gone",))
        assert [n.state for n in await store.directory.list(now=NOW)] == [
            "unknown", "up", "unreachable", "draining"]

    with_store(body)


# --------------------------------------------------------------------------- VRF proofs


def test_vrf_proofs(with_store):
    async def body(store):
        await make_node(store)
        proof = await store.vrf.put("node-a", 7, b"p" * 80, b"b" * 64, now=NOW)
        assert proof.epoch == 7 and proof.published_at == NOW
        assert await store.vrf.get("node-a", 7) == proof
        # Publishing the same proof twice is harmless; a different one for the epoch is not.
        assert await store.vrf.put("node-a", 7, b"p" * 80, b"b" * 64, now=NOW + 1) == proof
        with pytest.raises(Conflict):
            await store.vrf.put("node-a", 7, b"q" * 80, b"b" * 64)
        with pytest.raises(InvalidReference):
            await store.vrf.put("ghost", 1, b"p" * 80, b"b" * 64)
        with pytest.raises(ConstraintViolation):
            await store.vrf.put("node-a", -1, b"p" * 80, b"b" * 64)
        with pytest.raises(NotFound):
            await store.vrf.get("node-a", 8)

        for epoch in (8, 9, 10):
            await store.vrf.put("node-a", epoch, bytes([epoch]) * 80, b"b" * 64)
        assert [p.epoch for p in await store.vrf.list("node-a")] == [10, 9, 8, 7]
        assert [p.epoch for p in await store.vrf.list("node-a", since_epoch=9)] == [10, 9]
        assert [p.epoch for p in await store.vrf.list("node-a", limit=1)] == [10]
        assert await store.vrf.delete_before(9) == 2
        assert [p.epoch for p in await store.vrf.list("node-a")] == [10, 9]
        await store.directory.delete("node-a")  # proofs go with their node
        with pytest.raises(NotFound):
            await store.vrf.get("node-a", 10)

    with_store(body)


# --------------------------------------------------------------------------- benchmarks


def test_bench_lifecycle(with_store):
    async def body(store):
        run = await store.bench.create("mixnet", {"hops": 3, "packets": 1000}, total=10, now=NOW)
        assert run.status == "queued" and run.progress == 0 and run.total == 10
        assert run.params == {"hops": 3, "packets": 1000} and run.result is None
        assert await store.bench.get(run.id) == run
        assert await store.bench.advance(run.id, 2) == 2  # progress while queued is allowed

        started = await store.bench.start(run.id, now=NOW + 1)
        assert started.status == "running" and started.started_at == NOW + 1
        with pytest.raises(Conflict):
            await store.bench.start(run.id)
        assert await store.bench.advance(run.id) == 3
        assert await store.bench.advance(run.id, 5, total=20) == 8
        assert (await store.bench.get(run.id)).total == 20

        with pytest.raises(ConstraintViolation):
            await store.bench.finish(run.id, "running")
        done = await store.bench.finish(run.id, "done", result={"rate": 1.5e4}, now=NOW + 9)
        assert done.status == "done" and done.result == {"rate": 1.5e4}
        assert done.finished_at == NOW + 9 and done.error is None
        with pytest.raises(Conflict):
            await store.bench.finish(run.id, "stopped")
        with pytest.raises(Conflict):
            await store.bench.advance(run.id)

        failed = await store.bench.create("api", {}, run_id="run-2", now=NOW + 10)
        assert failed.id == "run-2"
        failed = await store.bench.finish("run-2", "failed", error="peer crashed")
        assert failed.error == "peer crashed" and failed.result is None
        with pytest.raises(Conflict):
            await store.bench.create("api", {}, run_id="run-2")
        for missing in (
            store.bench.get("nope"),
            store.bench.start("nope"),
            store.bench.advance("nope"),
            store.bench.finish("nope", "stopped"),
        ):
            with pytest.raises(NotFound):
                await missing

    with_store(body)


def test_bench_listing(with_store):
    async def body(store):
        for i, suite in enumerate(["mixnet", "api", "mixnet"]):
            await store.bench.create(suite, {"i": i}, run_id=f"r{i}", now=NOW + i)
        await store.bench.start("r1")
        assert [r.id for r in await store.bench.list()] == ["r2", "r1", "r0"]
        assert [r.id for r in await store.bench.list(suite="mixnet")] == ["r2", "r0"]
        assert [r.id for r in await store.bench.list(status="running")] == ["r1"]
        assert [r.id for r in await store.bench.list(limit=1, offset=1)] == ["r1"]
        counts = await store.bench.count()
        assert set(counts) == set(BENCH_STATUSES)
        assert counts["queued"] == 2 and counts["running"] == 1 and counts["done"] == 0

    with_store(body)


# --------------------------------------------------------------------------- audit log


def test_audit_log(with_store):
    async def body(store):
        first = await store.audit.record(
            "alice", "user.create", target="user:2", request_id="req-1",
            detail={"role": "viewer"}, now=NOW,
        )  # fmt: skip
        assert first.detail == {"role": "viewer"} and first.at == NOW
        for i in range(5):
            await store.audit.record("bob", "node.register", target=f"n{i}", now=NOW + i + 1)
        plain = await store.audit.record("system", "startup", now=NOW + 10)
        assert plain.detail == {} and plain.target is None and plain.request_id is None
        assert await store.audit.count() == 7

        newest = await store.audit.list(limit=3)
        assert [e.action for e in newest] == ["startup", "node.register", "node.register"]
        page2 = await store.audit.list(limit=3, before_id=newest[-1].id)
        assert [e.target for e in page2] == ["n2", "n1", "n0"]
        assert [e.id for e in await store.audit.list(actor="alice")] == [first.id]
        assert len(await store.audit.list(action="node.register")) == 5
        assert len(await store.audit.list(since=NOW + 4)) == 3
        with pytest.raises(ConstraintViolation):
            await store.audit.record("x", "y", detail={"k": object()})

    with_store(body)


# --------------------------------------------------------------------------- health


def test_health(with_store):
    async def body(store):
        assert await store.ping() is True
        assert await store.migrations_current() is True
        assert await store.schema_version() >= 1
        assert store.backend in ("sqlite", "postgresql")

    with_store(body)

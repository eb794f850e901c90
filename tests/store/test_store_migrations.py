"""Versioned migrations: applied once, idempotent, safe from two processes at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from fogcore.store import MigrationError, open_store
from fogcore.store import migrate as migrate_module
from fogcore.store.migrate import Migration, latest_version, load_migrations, render

COUNT_VERSIONS = "SELECT COUNT(*) FROM schema_migrations"


def test_shipped_migrations_are_numbered_and_render():
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert latest_version() == migrations[-1].version
    for migration in migrations:
        for dialect in ("sqlite", "postgresql"):
            assert "@" not in render(migration.sql, dialect)


def test_reopen_applies_nothing(run, store_url):
    async def body():
        store = await open_store(store_url)
        try:
            assert await store.schema_version() == latest_version()
            assert await migrate_module.migrate(store.db) == []
            assert await store.db.fetchval(COUNT_VERSIONS) == len(load_migrations())
        finally:
            await store.close()
        store = await open_store(store_url)
        try:
            assert await store.migrations_current()
            assert await store.db.fetchval(COUNT_VERSIONS) == len(load_migrations())
        finally:
            await store.close()

    run(body())


def test_concurrent_opens_in_one_process(run, store_url):
    async def body():
        stores = await asyncio.gather(*(open_store(store_url) for _ in range(4)))
        try:
            assert await stores[0].db.fetchval(COUNT_VERSIONS) == len(load_migrations())
            assert all([await s.migrations_current() for s in stores])
        finally:
            for store in stores:
                await store.close()

    run(body())


OPEN_SCRIPT = """
import asyncio, sys
from fogcore.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    await store.users.count()
    await store.close()

asyncio.run(main())
"""


def test_concurrent_opens_from_processes(run, store_url):
    procs = [
        subprocess.Popen([sys.executable, "-P", "-c", OPEN_SCRIPT, store_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    async def body():
        store = await open_store(store_url, migrate=False)
        try:
            assert await store.db.fetchval(COUNT_VERSIONS) == len(load_migrations())
            assert await store.migrations_current()
        finally:
            await store.close()

    run(body())


def test_newer_database_is_refused(run, store_url):
    async def body():
        store = await open_store(store_url)
        try:
            await store.db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                latest_version() + 1000,
                "from_the_future",
                0.0,
            )
        finally:
            await store.close()
        with pytest.raises(MigrationError):
            await open_store(store_url)

    run(body())


def test_missing_version_is_not_current(run, store_url):
    async def body():
        store = await open_store(store_url)
        try:
            await store.db.execute("DELETE FROM schema_migrations WHERE version = $1", 1)
            assert await store.migrations_current() is False
        finally:
            await store.close()

    run(body())


def test_failing_migration_changes_nothing(run, store_url, monkeypatch):
    good = load_migrations()
    bad = Migration(
        latest_version() + 1,
        "broken",
        "CREATE TABLE half_done (a INTEGER);\nCREATE TABLE oops (;\n",
    )
    monkeypatch.setattr(migrate_module, "load_migrations", lambda: (*good, bad))
    monkeypatch.setattr(migrate_module, "latest_version", lambda: bad.version)

    async def body():
        with pytest.raises(MigrationError) as info:
            await open_store(store_url)
        assert "broken" in str(info.value) and "oops" not in str(info.value)
        store = await open_store(store_url, migrate=False)
        try:
            versions = await migrate_module.applied_versions(store.db)
            assert versions == {m.version for m in good}
            # Neither statement of the failed migration survived.
            with pytest.raises(Exception):  # noqa: B017 - the dialects name it differently
                await store.db.fetch("SELECT a FROM half_done")
        finally:
            await store.close()

    run(body())


def test_node_state_migration_keeps_nodes(run, store_url, monkeypatch):
    """0002 on a database holding nodes: each starts 'unknown' since its last refresh."""
    shipped = load_migrations()
    first = tuple(m for m in shipped if m.version == 1)

    async def body():
        monkeypatch.setattr(migrate_module, "load_migrations", lambda: first)
        monkeypatch.setattr(migrate_module, "latest_version", lambda: 1)
        store = await open_store(store_url)
        try:
            await store.db.execute(
                "INSERT INTO node_descriptors (node_id, identity_key, routing_key, layer,"
                " format, address, descriptor, signature, info, published_at, refreshed_at,"
                " expires_at) VALUES ($1, $2, $3, 1, 'sphinx', '127.0.0.1:9000', $4, $5,"
                " '{}', 100.0, 150.0, 9999999999.0)",
                "node-a", b"\x01" * 32, b"\x02" * 32, b"d", b"\x03" * 64,
            )
        finally:
            await store.close()
        monkeypatch.undo()
        store = await open_store(store_url)
        try:
            assert await store.schema_version() == latest_version() >= 2
            node = await store.directory.get("node-a")
            assert (node.state, node.state_since, node.last_ack_at, node.leave_at) == (
                "unknown", 150.0, None, None)
            assert (await store.directory.set_state("node-a", "up", now=200.0)).state == "up"
        finally:
            await store.close()

    run(body())

"""PostgreSQL specifics: connection failures, URL options, the advisory lock."""

from __future__ import annotations

import asyncio
import socket

import pytest

from fogcore.store import StoreError, StoreUnavailable, open_store
from fogcore.store.postgres import MIGRATION_LOCK_KEY

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_is_store_unavailable(run):
    async def body():
        with pytest.raises(StoreUnavailable):
            await open_store(f"postgresql://postgres@127.0.0.1:{_free_port()}/test")

    run(body())


def test_unknown_database_is_a_store_error(run, pg_available):
    async def body():
        url = pg_available.rsplit("/", 1)[0] + "/fogcore_no_such_database"
        with pytest.raises(StoreError):
            await open_store(url)

    run(body())


def test_pool_options_and_schema(run, pg_schema_url):
    async def body():
        store = await open_store(pg_schema_url + "&pool_min=1&pool_max=3")
        try:
            assert store.backend == "postgresql"
            schema = pg_schema_url.split("schema=")[1]
            assert await store.db.fetchval("SELECT current_schema()") == schema
            # More concurrent users than pooled connections simply queue.
            counts = await asyncio.gather(*(store.users.count() for _ in range(20)))
            assert counts == [0] * 20
        finally:
            await store.close()
        with pytest.raises(StoreError):
            await open_store(pg_schema_url + "&pool_max=many")

    run(body())


def test_migration_waits_for_advisory_lock(run, pg_schema_url):
    async def body():
        holder = await open_store(pg_schema_url)
        try:
            async with holder.db.exclusive():
                assert (
                    await holder.db.fetchval(
                        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND objid = ($1::bigint & 4294967295)::oid",
                        MIGRATION_LOCK_KEY,
                    )
                    >= 1
                )
                opening = asyncio.ensure_future(open_store(pg_schema_url))
                await asyncio.sleep(0.3)
                assert not opening.done()  # blocked on the lock, not failing
            second = await asyncio.wait_for(opening, timeout=30)
            await second.close()
        finally:
            await holder.close()

    run(body())

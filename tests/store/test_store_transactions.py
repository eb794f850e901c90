"""Transactions and concurrent writers, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from fogcore.store import Conflict, NotFound, open_store


class Boom(Exception):
    pass


def test_commit_and_rollback(with_store):
    async def body(store):
        async with store.transaction():
            alice = await store.users.create("alice", "h", "admin")
            await store.audit.record("alice", "user.create", target=str(alice.id))
        assert await store.users.count() == 1 and await store.audit.count() == 1

        with pytest.raises(Boom):
            async with store.transaction():
                await store.users.create("bob", "h", "viewer")
                await store.audit.record("alice", "user.create")
                await store.bench.create("mixnet", {})
                raise Boom
        assert await store.users.count() == 1
        assert await store.audit.count() == 1
        assert await store.bench.list() == []
        with pytest.raises(NotFound):
            await store.users.get_by_username("bob")

    with_store(body)


def test_store_error_rolls_back_whole_transaction(with_store):
    async def body(store):
        await store.users.create("alice", "h", "admin")
        with pytest.raises(Conflict):
            async with store.transaction():
                await store.users.create("bob", "h", "viewer")
                await store.users.create("alice", "h", "viewer")
        assert [u.username for u in await store.users.list()] == ["alice"]

    with_store(body)


def test_nested_transactions_are_savepoints(with_store):
    async def body(store):
        async with store.transaction():
            await store.users.create("alice", "h", "admin")
            # A failed inner block undoes only itself; the outer one carries on (on
            # PostgreSQL this needs the savepoint, or the whole transaction is aborted).
            with pytest.raises(Conflict):
                async with store.transaction():
                    await store.users.create("bob", "h", "viewer")
                    await store.users.create("alice", "h", "viewer")
            async with store.transaction():
                await store.users.create("carol", "h", "viewer")
            await store.users.create("dave", "h", "viewer")
        assert [u.username for u in await store.users.list()] == ["alice", "carol", "dave"]

        with pytest.raises(Boom):
            async with store.transaction():
                async with store.transaction():
                    await store.users.create("erin", "h", "viewer")
                raise Boom
        assert await store.users.count() == 3

    with_store(body)


def test_uncommitted_work_is_invisible_to_other_tasks(with_store):
    async def body(store):
        inserted = asyncio.Event()
        checked = asyncio.Event()

        async def writer():
            async with store.transaction():
                await store.users.create("alice", "h", "admin")
                inserted.set()
                await checked.wait()

        async def reader():
            await inserted.wait()
            try:
                with pytest.raises(NotFound):
                    await store.users.get_by_username("alice")
            finally:
                checked.set()

        await asyncio.gather(writer(), reader())
        assert (await store.users.get_by_username("alice")).role == "admin"

    with_store(body)


def test_concurrent_progress_increments_lose_nothing(with_store):
    async def body(store):
        run = await store.bench.create("mixnet", {})
        await store.bench.start(run.id)
        results = await asyncio.gather(*(store.bench.advance(run.id) for _ in range(50)))
        assert sorted(results) == list(range(1, 51))
        assert (await store.bench.get(run.id)).progress == 50

    with_store(body)


def test_concurrent_transactions_serialise(with_store):
    async def body(store):
        run = await store.bench.create("mixnet", {})

        async def step(i):
            async with store.transaction():
                await store.bench.advance(run.id)
                await asyncio.sleep(0)  # let other tasks try to interleave
                await store.audit.record("worker", "step", target=str(i))

        await asyncio.gather(*(step(i) for i in range(30)))
        assert (await store.bench.get(run.id)).progress == 30
        assert await store.audit.count() == 30

    with_store(body)


def test_concurrent_inserts(with_store):
    async def body(store):
        users = await asyncio.gather(
            *(store.users.create(f"user{i}", "h", "viewer") for i in range(50))
        )
        assert len({u.id for u in users}) == 50
        assert await store.users.count() == 50

        # Many tasks racing for one name: exactly one wins, the rest get Conflict.
        outcomes = await asyncio.gather(
            *(store.users.create("contested", "h", "viewer") for _ in range(20)),
            return_exceptions=True,
        )
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert all(isinstance(o, Conflict) for o in outcomes if isinstance(o, BaseException))

    with_store(body)


def test_two_stores_on_one_database_see_each_other(run, store_url):
    async def body():
        first, second = await asyncio.gather(open_store(store_url), open_store(store_url))
        try:
            run_ = await first.bench.create("mixnet", {})
            await asyncio.gather(
                *(s.bench.advance(run_.id) for s in (first, second) for _ in range(25))
            )
            assert (await second.bench.get(run_.id)).progress == 50
        finally:
            await first.close()
            await second.close()

    run(body())


INCREMENTER = """
import asyncio, sys
from fogcore.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    try:
        await asyncio.gather(*(store.bench.advance(sys.argv[2]) for _ in range(25)))
        for i in range(10):
            async with store.transaction():
                await store.bench.advance(sys.argv[2])
                await store.audit.record(sys.argv[3], "step", target=str(i))
    finally:
        await store.close()

asyncio.run(main())
"""


def test_writers_in_several_processes_lose_nothing(run, store_url):
    async def create():
        store = await open_store(store_url)
        try:
            return (await store.bench.create("mixnet", {})).id
        finally:
            await store.close()

    run_id = run(create())
    procs = [
        subprocess.Popen(
            [sys.executable, "-P", "-c", INCREMENTER, store_url, run_id, f"proc{i}"],
            stderr=subprocess.PIPE,
        )
        for i in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    async def check():
        store = await open_store(store_url)
        try:
            assert (await store.bench.get(run_id)).progress == 3 * 35
            assert await store.audit.count() == 30
        finally:
            await store.close()

    run(check())

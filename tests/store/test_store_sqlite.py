"""SQLite specifics: set-up, URLs and default location, and crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fogcore.store import (
    StoreError,
    StoreUnavailable,
    default_data_dir,
    default_database_url,
    open_store,
)


def test_file_settings(run, tmp_path):
    path = tmp_path / "fog.db"

    async def body():
        store = await open_store(f"sqlite://{path}")
        try:
            assert store.backend == "sqlite"
            assert (await store.db.fetchrow("PRAGMA foreign_keys"))[0] == 1
            assert (await store.db.fetchrow("PRAGMA busy_timeout"))[0] == 10000
            assert (await store.db.fetchrow("PRAGMA synchronous"))[0] == 1  # NORMAL
        finally:
            await store.close()

    run(body())
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_url_options(run, tmp_path):
    async def body():
        store = await open_store(f"sqlite://{tmp_path / 'a.db'}?synchronous=full&busy_timeout=2")
        try:
            assert (await store.db.fetchrow("PRAGMA synchronous"))[0] == 2
            assert (await store.db.fetchrow("PRAGMA busy_timeout"))[0] == 2000
        finally:
            await store.close()
        for bad in (
            f"sqlite://{tmp_path / 'b.db'}?colour=blue",
            f"sqlite://{tmp_path / 'b.db'}?synchronous=sometimes",
            f"sqlite://{tmp_path / 'b.db'}?busy_timeout=soon",
            "sqlite:relative.db",
            "mysql://localhost/db",
            "no-scheme-at-all",
        ):
            with pytest.raises(StoreError):
                await open_store(bad)

    run(body())


def test_memory_database(run):
    async def body():
        store = await open_store("sqlite://:memory:")
        try:
            user = await store.users.create("alice", "h", "admin")
            assert await store.users.get(user.id) == user
            assert await store.migrations_current()
        finally:
            await store.close()

    run(body())


def test_default_location(run, tmp_path, monkeypatch):
    monkeypatch.delenv("FOG_DATABASE_URL", raising=False)
    monkeypatch.delenv("FOG_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "fogcore"
    assert default_database_url() == f"sqlite://{tmp_path / 'xdg' / 'fogcore' / 'fogcore.db'}"

    async def body():
        store = await open_store()
        await store.close()

    run(body())
    assert (tmp_path / "xdg" / "fogcore" / "fogcore.db").is_file()

    monkeypatch.setenv("FOG_DATA_DIR", str(tmp_path / "data"))
    assert default_database_url() == f"sqlite://{tmp_path / 'data' / 'fogcore.db'}"
    monkeypatch.setenv("FOG_DATABASE_URL", "sqlite://:memory:")
    assert default_database_url() == "sqlite://:memory:"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.delenv("FOG_DATA_DIR")
    monkeypatch.delenv("FOG_DATABASE_URL")
    assert default_data_dir() == Path.home() / ".local" / "share" / "fogcore"


def test_closed_store(run, tmp_path):
    async def body():
        store = await open_store(f"sqlite://{tmp_path / 'c.db'}")
        await store.close()
        await store.close()  # idempotent
        assert await store.ping() is False
        assert await store.migrations_current() is False
        with pytest.raises(StoreUnavailable):
            await store.users.count()
        with pytest.raises(StoreUnavailable):
            async with store.transaction():
                pass

    run(body())


def test_not_a_database(run, tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an SQLite file" * 100)

    async def body():
        with pytest.raises(StoreError):
            await open_store(f"sqlite://{path}")

    run(body())


# A writer that commits numbered transactions from argv[2] on, printing each number after its
# commit, until it is killed. Every transaction inserts ROWS rows, so a torn one would show.
ROWS = 20
WRITER = f"""
import asyncio, sys
from fogcore.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    n = int(sys.argv[2])
    while True:
        async with store.transaction():
            for i in range({ROWS}):
                await store.audit.record("writer", "tick", target=f"{{n}}:{{i}}")
        sys.stdout.write(f"{{n}}\\n")
        sys.stdout.flush()
        n += 1

asyncio.run(main())
"""


async def _transactions_in(url: str) -> dict[int, int]:
    """Rows per transaction number found in the database."""
    store = await open_store(url)
    try:
        seen: dict[int, int] = {}
        for row in await store.db.fetch("SELECT target FROM audit_log"):
            n = int(row[0].split(":")[0])
            seen[n] = seen.get(n, 0) + 1
        return seen
    finally:
        await store.close()


@pytest.mark.slow
def test_killed_writer_loses_no_committed_row(run, tmp_path):
    url = f"sqlite://{tmp_path / 'crash.db'}"
    next_number = 1
    for life in range(3):  # kill a writer three times, each time mid-stream
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", WRITER, url, str(next_number)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        acknowledged = next_number - 1
        deadline = time.monotonic() + 60
        while acknowledged < next_number + 14 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged = int(line)
        time.sleep(0.002 * (life + 1))  # land the kill inside a later transaction
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        err = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL, err
        assert acknowledged >= next_number + 14, err

        with sqlite3.connect(tmp_path / "crash.db") as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seen = run(_transactions_in(url))
        # Every acknowledged transaction is there in full, and no transaction is torn.
        assert all(seen.get(n) == ROWS for n in range(1, acknowledged + 1))
        assert all(count == ROWS for count in seen.values())
        next_number = max(seen) + 1

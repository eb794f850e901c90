"""Fixtures for the store contract tests: every test runs on SQLite (a fresh file) and on
PostgreSQL (a fresh schema, dropped afterwards), on both event loops.

PostgreSQL comes from FOG_TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test.
An unreachable server fails the PostgreSQL tests with a message saying so: they are never
skipped silently."""

from __future__ import annotations

import pytest

from fogcore.store import open_store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """ "sqlite" or "postgresql"."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return request.param


@pytest.fixture
def store_url(backend, request, tmp_path) -> str:
    """A URL for a database of `backend` that no other test uses."""
    if backend == "sqlite":
        return f"sqlite://{tmp_path / 'fogcore.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def with_store(run, store_url):
    """Run `body(store)` on a freshly opened store (closed afterwards) on the test's loop."""

    def runner(body, **options):
        async def main():
            store = await open_store(store_url, **options)
            try:
                return await body(store)
            finally:
                await store.close()

        return run(main())

    return runner

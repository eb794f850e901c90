"""Shared fixtures: the two implementations (compiled `c`, pure-Python `py`) and the two
event loops (uvloop, asyncio), in the manner of yarl's and uvloop's paired test suites."""

import asyncio
import os
import secrets
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

from fogcore._impl import NO_EXTENSIONS, compiled_available, implementation

IMPL_MODES = ["py"] if NO_EXTENSIONS else ["c", "py"]


@pytest.fixture(params=IMPL_MODES)
def impl_mode(request) -> str:
    """"c" for the compiled extensions, "py" for the pure-Python reference. In pure mode
    (FOGCORE_NO_EXTENSIONS=1) only "py" runs."""
    return request.param


def load_impl(mode: str, compiled_name: str):
    """The implementation of `fogcore._ext.<compiled_name>` for `mode` ("c" or "py"), chosen
    as fogcore chooses (`fogcore._impl.implementation`): the compiled module or its `_x_py`
    twin. Compiled mode fails loudly when the extension is not built."""
    try:
        return implementation(compiled_name, mode)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _loop_factories():
    factories = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        return factories
    return [("uvloop", uvloop.new_event_loop)] + factories


@pytest.fixture(params=[name for name, _ in _loop_factories()])
def loop_factory(request):
    """An event loop factory for `asyncio.Runner(loop_factory=...)`: uvloop and asyncio."""
    return dict(_loop_factories())[request.param]


@pytest.fixture
def run(loop_factory):
    """Run a coroutine to completion on a fresh loop of the parametrized kind."""

    def runner(coro):
        with asyncio.Runner(loop_factory=loop_factory) as r:
            return r.run(coro)

    return runner


@pytest.fixture(autouse=True)
def _balanced_allocations(request):
    """In a FOGCORE_DEBUG=1 build every block the extensions allocate during a test must be
    freed by its end (objects it created are collected first)."""
    mem = None if NO_EXTENSIONS else compiled_available("_mem")
    if mem is None or not mem.debug_build():
        yield
        return
    import gc

    gc.collect()
    before = mem.live_allocations()
    yield
    # This fixture is set up first and torn down last: every other function-scoped fixture
    # is finished by now, but pytest still holds their values until the test item is done.
    # Drop those references so that what the test created can be collected.
    funcargs = getattr(request.node, "funcargs", None) or {}
    for name in list(funcargs):
        if name != "_balanced_allocations":
            funcargs[name] = None
    gc.collect()
    after = mem.live_allocations()
    assert after == before, f"extension allocations leaked: {after - before} blocks"


# ---- PostgreSQL for the store and API tests ------------------------------------------------

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    """FOG_TEST_DATABASE_URL, else the local server's `test` database."""
    return os.environ.get("FOG_TEST_DATABASE_URL") or DEFAULT_PG_URL


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added to its query string."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_base_url(), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_available() -> str:
    """The PostgreSQL base URL, after checking that the server answers. An unreachable
    server fails the PostgreSQL tests with a message saying so: never a silent skip."""
    url = pg_base_url()
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:  # any failure to reach the server ends the PostgreSQL tests
        pytest.fail(
            f"PostgreSQL for the tests is unreachable at {url!r} ({type(exc).__name__}: "
            f"{exc}). Start it or set FOG_TEST_DATABASE_URL.",
            pytrace=False,
        )
    return url


@pytest.fixture
def pg_schema_url(pg_available) -> str:
    """A URL whose search path is a new, empty schema, dropped when the test ends."""
    schema = f"fogtest_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE SCHEMA "{schema}"'))
    yield with_query(pg_available, schema=schema)
    asyncio.run(_pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

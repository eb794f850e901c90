"""Persistence: one async store interface, two backends (SQLite and PostgreSQL).

    store = await open_store()                  # FOG_DATABASE_URL, else the embedded SQLite
    store = await open_store("postgresql://user@host/db")
    async with store.transaction():
        user = await store.users.create("alice", password_hash, "admin")
        await store.audit.record("system", "user.create", target=str(user.id))

URLs:
- `sqlite:///absolute/path.db`, `sqlite://relative/path.db`, `sqlite://:memory:`;
  options as query parameters: `synchronous` (normal, full), `busy_timeout` (seconds).
- `postgresql://...` (or `postgres://`), passed to asyncpg; extra query parameters taken
  by fogcore: `schema` (search path), `pool_min`, `pool_max`.

Without a URL argument, `FOG_DATABASE_URL` is used; without that, an SQLite file in the
user's data directory (`$FOG_DATA_DIR`, else `$XDG_DATA_HOME/fogcore`, else
`~/.local/share/fogcore`, file `fogcore.db`). Migrations are applied at open.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .base import (
    BENCH_STATUSES,
    BENCH_TERMINAL,
    LISTED_NODE_STATES,
    NODE_FORMATS,
    NODE_STATES,
    ROLES,
    ApiKey,
    ApiKeyGrant,
    ApiKeyRepository,
    AuditEntry,
    AuditRepository,
    BenchRepository,
    BenchRun,
    Conflict,
    ConstraintViolation,
    DirectoryRepository,
    InvalidReference,
    MigrationError,
    NodeDescriptor,
    NotFound,
    Session,
    SessionGrant,
    SessionRepository,
    Store,
    StoreError,
    StoreUnavailable,
    User,
    UserRepository,
    VrfEpochProof,
    VrfRepository,
)
from .repos._common import Clock

__all__ = [
    "open_store",
    "default_database_url",
    "default_data_dir",
    "ROLES",
    "BENCH_STATUSES",
    "LISTED_NODE_STATES",
    "NODE_STATES",
    "BENCH_TERMINAL",
    "NODE_FORMATS",
    "StoreError",
    "NotFound",
    "Conflict",
    "InvalidReference",
    "ConstraintViolation",
    "StoreUnavailable",
    "MigrationError",
    "User",
    "Session",
    "SessionGrant",
    "ApiKey",
    "ApiKeyGrant",
    "NodeDescriptor",
    "VrfEpochProof",
    "BenchRun",
    "AuditEntry",
    "UserRepository",
    "SessionRepository",
    "ApiKeyRepository",
    "DirectoryRepository",
    "VrfRepository",
    "BenchRepository",
    "AuditRepository",
    "Store",
]

#: Environment variable holding the database URL.
URL_ENV = "FOG_DATABASE_URL"


def default_data_dir() -> Path:
    """Where fogcore keeps its data: `$FOG_DATA_DIR`, else the XDG data directory."""
    explicit = os.environ.get("FOG_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "fogcore"


def default_database_url() -> str:
    """`FOG_DATABASE_URL` if set, else the SQLite file in `default_data_dir()`."""
    url = os.environ.get(URL_ENV)
    if url:
        return url
    return "sqlite:///" + str((default_data_dir() / "fogcore.db").resolve()).lstrip("/")


async def open_store(
    url: str | None = None, *, migrate: bool = True, clock: Clock = time.time
) -> Store:
    """Open the store at `url` (default: `default_database_url()`), applying pending
    migrations unless `migrate` is false. `clock` supplies "now" (UTC seconds)."""
    from .migrate import migrate as apply_migrations
    from .sqlstore import SQLStore

    url = url or default_database_url()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        db = await _open_sqlite(url)
    elif scheme in ("postgresql", "postgres"):
        db = await _open_postgres(url)
    else:
        raise StoreError("unsupported database URL: expected sqlite:// or postgresql://")
    try:
        if migrate:
            await apply_migrations(db)
    except BaseException:
        await db.close()
        raise
    return SQLStore(db, clock)


async def _open_sqlite(url: str):
    from .sqlite import MEMORY, SQLiteDatabase

    rest = url[len("sqlite:") :]
    if not rest.startswith("//"):
        raise StoreError("SQLite URL must start with sqlite://")
    rest, _, query = rest[2:].partition("?")
    options = dict(parse_qsl(query))
    if rest in (MEMORY, ""):
        path = MEMORY
    else:
        # "sqlite:///abs/path" keeps its leading slash; "sqlite://rel/path" is relative.
        file = Path(rest).expanduser()
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = str(file)
    try:
        busy = float(options.pop("busy_timeout", "10"))
    except ValueError as exc:
        raise StoreError("busy_timeout must be a number of seconds") from exc
    synchronous = options.pop("synchronous", "normal")
    if options:
        raise StoreError(f"unknown SQLite URL option: {sorted(options)[0]}")
    return await SQLiteDatabase.open(path, busy_timeout=busy, synchronous=synchronous)


async def _open_postgres(url: str):
    from .postgres import PostgresDatabase

    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    ours = {k: v for k, v in query if k in ("schema", "pool_min", "pool_max")}
    rest = [(k, v) for k, v in query if k not in ours]
    dsn = urlunsplit(parts._replace(query=urlencode(rest)))
    try:
        min_size = int(ours.get("pool_min", 1))
        max_size = int(ours.get("pool_max", 10))
    except ValueError as exc:
        raise StoreError("pool_min and pool_max must be integers") from exc
    return await PostgresDatabase.open(
        dsn, schema=ours.get("schema"), min_size=min_size, max_size=max_size
    )

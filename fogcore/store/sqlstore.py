"""`Store` over a `Database`: the repositories wired to one connection layer."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager

from .base import Store, StoreError
from .db import Database
from .migrate import applied_versions, load_migrations
from .repos._common import Clock
from .repos.api_keys import SQLApiKeyRepository
from .repos.audit import SQLAuditRepository
from .repos.bench import SQLBenchRepository
from .repos.directory import SQLDirectoryRepository
from .repos.sessions import SQLSessionRepository
from .repos.users import SQLUserRepository
from .repos.vrf import SQLVrfRepository

__all__ = ["SQLStore"]


class SQLStore(Store):
    """The store for either backend; only `db` differs."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.backend = db.dialect
        self.users = SQLUserRepository(db, clock)
        self.sessions = SQLSessionRepository(db, clock)
        self.api_keys = SQLApiKeyRepository(db, clock)
        self.directory = SQLDirectoryRepository(db, clock)
        self.vrf = SQLVrfRepository(db, clock)
        self.bench = SQLBenchRepository(db, clock)
        self.audit = SQLAuditRepository(db, clock)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.db.transaction()

    async def ping(self) -> bool:
        try:
            await self.db.ping()
        except StoreError:
            return False
        return True

    async def schema_version(self) -> int:
        versions = await applied_versions(self.db)
        return max(versions, default=0)

    async def migrations_current(self) -> bool:
        try:
            applied = await applied_versions(self.db)
        except StoreError:
            return False
        return {m.version for m in load_migrations()} <= applied

    async def close(self) -> None:
        await self.db.close()

    def __repr__(self) -> str:
        return f"<SQLStore backend={self.backend}>"

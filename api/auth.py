"""Authentication and roles.

- Passwords: Argon2id (libsodium through PyNaCl), hashed off the event loop.
- Session tokens (`fogs_...`) and API keys (`fogk_<prefix>_...`) carry 256 random bits; the
  store keeps only their SHA-256, so a database leak reveals no usable credential. A fast
  hash is enough because the secrets are random, not chosen by people.
- Clients send either as `Authorization: Bearer <token>`.
- Roles: admin > operator > viewer. An API key has its own role, never above its owner's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import nacl.exceptions
import nacl.pwhash

from fogcore.store import Conflict, Store

from .errors import ApiError

__all__ = [
    "ROLE_RANK",
    "SESSION_PREFIX",
    "KEY_PREFIX",
    "MIN_PASSWORD_LENGTH",
    "Principal",
    "Authenticator",
    "hash_password",
    "verify_password",
    "new_session_token",
    "new_api_key",
    "token_hash",
    "check_password_policy",
    "bootstrap_admin",
    "require",
    "unauthorized",
]

ROLE_RANK: Final = {"viewer": 1, "operator": 2, "admin": 3}
SESSION_PREFIX: Final = "fogs_"
KEY_PREFIX: Final = "fogk_"
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024

# Argon2id cost: libsodium's "interactive" level (2 passes, 64 MiB), about 0.1 s here.
OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def _hash_password_sync(password: str) -> str:
    return nacl.pwhash.argon2id.str(
        password.encode("utf-8"), opslimit=OPSLIMIT, memlimit=MEMLIMIT
    ).decode("ascii")


def _verify_password_sync(encoded: str, password: str) -> bool:
    try:
        return nacl.pwhash.verify(encoded.encode("ascii"), password.encode("utf-8"))
    except (nacl.exceptions.InvalidkeyError, ValueError, UnicodeEncodeError):
        return False


async def hash_password(password: str) -> str:
    """The encoded Argon2id hash of `password` (computed in a worker thread)."""
    return await asyncio.to_thread(_hash_password_sync, password)


async def verify_password(encoded: str, password: str) -> bool:
    """True if `password` matches the encoded Argon2id hash."""
    return await asyncio.to_thread(_verify_password_sync, encoded, password)


def check_password_policy(password: str) -> str | None:
    """Why `password` is refused for a new account, or None if it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must have at most {MAX_PASSWORD_LENGTH} characters"
    if "\x00" in password:
        return "password must not contain NUL"
    return None


def _bearer_token(value: str) -> str | None:
    """The token of a `Bearer <token>` header value; None when the value is malformed."""
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_hash(token: str) -> bytes:
    """What the store keeps of a session token or API key."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_session_token() -> str:
    """A fresh session token."""
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def new_api_key() -> tuple[str, str]:
    """A fresh API key and its public prefix (shown in listings to tell keys apart)."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request and with what authority."""

    user_id: int
    username: str
    user_role: str
    #: The effective role: the session's user role, or the API key's own role.
    role: str
    kind: str  # "session" or "api_key"
    token_hash: bytes
    expires_at: float | None
    key_id: int | None = None

    def allows(self, role: str) -> bool:
        """True if this principal's role is `role` or stronger."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class Authenticator:
    """Resolves bearer tokens to principals, with a short cache so that reads do not ask the
    store on every request. Logout and revocation through this process drop the cached entry
    at once; another process's revocation is seen within `cache_ttl` seconds."""

    def __init__(self, store: Store, *, cache_ttl: float = 2.0, max_entries: int = 10_000):
        self.store = store
        self.cache_ttl = cache_ttl
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[Principal, float]] = {}

    async def authenticate(self, value: str | None) -> Principal | None:
        """The principal of a request's `Authorization` header value; None when absent.
        Raises a 401 `ApiError` for a header that is present but not valid."""
        if value is None:
            return None
        token = _bearer_token(value)
        if token is None:
            raise unauthorized("use Authorization: Bearer <token>")
        principal = await self.resolve(token)
        if principal is None:
            raise unauthorized("the token is invalid, expired or revoked")
        return principal

    def cached(self, value: str) -> Principal | None:
        """The principal of an `Authorization` header value when its token is in the cache
        and fresh, else None: the hot path of `authenticate` without a coroutine."""
        token = _bearer_token(value)
        if token is None or len(token) > 200 or not token.isascii():
            return None
        return self._fresh(token_hash(token), time.time())

    def _fresh(self, digest: bytes, now: float) -> Principal | None:
        """The cached principal of a token digest while fresh; an expired entry is dropped."""
        cached = self._cache.get(digest)
        if cached is None:
            return None
        principal, until = cached
        if now < until:
            return principal
        del self._cache[digest]
        return None

    async def resolve(self, token: str) -> Principal | None:
        """The principal for a token, or None if it is unknown, expired or revoked."""
        if len(token) > 200 or not token.isascii():
            return None
        digest = token_hash(token)
        now = time.time()
        principal = self._fresh(digest, now)
        if principal is not None:
            return principal
        principal = await self._lookup(token, digest, now)
        if principal is not None and self.cache_ttl > 0:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()  # rare; a full cache only costs a few store reads
            until = now + self.cache_ttl
            if principal.expires_at is not None:
                until = min(until, principal.expires_at)
            self._cache[digest] = (principal, until)
        return principal

    async def _lookup(self, token: str, digest: bytes, now: float) -> Principal | None:
        if token.startswith(SESSION_PREFIX):
            grant = await self.store.sessions.find_active(digest, now)
            if grant is None:
                return None
            user = grant.user
            return Principal(
                user_id=user.id,
                username=user.username,
                user_role=user.role,
                role=user.role,
                kind="session",
                token_hash=digest,
                expires_at=grant.session.expires_at,
            )
        if token.startswith(KEY_PREFIX):
            found = await self.store.api_keys.find_active(digest, now)
            if found is None:
                return None
            key, user = found.key, found.user
            # The key's authority never exceeds its owner's current role.
            role = min(key.role, user.role, key=ROLE_RANK.__getitem__)
            return Principal(
                user_id=user.id,
                username=user.username,
                user_role=user.role,
                role=role,
                kind="api_key",
                token_hash=digest,
                expires_at=key.expires_at,
                key_id=key.id,
            )
        return None

    def forget(self, digest: bytes) -> None:
        """Drop one cached token (after logout)."""
        self._cache.pop(digest, None)

    def forget_key(self, key_id: int) -> None:
        """Drop a cached API key by id (after revocation)."""
        for digest, (principal, _) in list(self._cache.items()):
            if principal.key_id == key_id:
                del self._cache[digest]


def unauthorized(message: str) -> ApiError:
    """A 401 that tells the client which scheme to use."""
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def require(principal: Principal | None, role: str) -> Principal:
    """`principal` if it holds `role` or a stronger one; else 401 (none) or 403."""
    if principal is None:
        raise unauthorized("authentication required")
    if not principal.allows(role):
        raise ApiError(403, "forbidden", f"this action needs the {role} role")
    return principal


async def bootstrap_admin(store: Store, environ: Mapping[str, str] | None = None) -> str | None:
    """Create the first admin from FOG_ADMIN_USER (default "admin") and FOG_ADMIN_PASSWORD
    when the store has no admin yet. Returns the username created, or None. Never invents
    a password: without the variable nothing happens."""
    env = os.environ if environ is None else environ
    password = env.get("FOG_ADMIN_PASSWORD")
    if not password:
        return None
    if await store.users.count(role="admin") > 0:
        return None
    problem = check_password_policy(password)
    if problem is not None:
        raise ValueError(f"FOG_ADMIN_PASSWORD refused: {problem}")
    username = env.get("FOG_ADMIN_USER") or "admin"
    encoded = await hash_password(password)
    try:
        async with store.transaction():
            user = await store.users.create(username, encoded, "admin")
            await store.audit.record(
                "system", "user.create", target=str(user.id), detail={"source": "environment"}
            )
    except Conflict:
        return None  # another process created it first
    return username

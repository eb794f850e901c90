"""API settings: defaults that are safe on a fresh machine, overridable from the environment."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RateLimit", "Settings"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `rate` requests per second on average, bursts of up to `burst`."""

    rate: float
    burst: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """"RATE/BURST" (e.g. "20/40"); RATE may be a fraction ("0.2/5")."""
        rate, _, burst = text.partition("/")
        limit = cls(float(rate), int(burst or max(1, int(float(rate)))))
        if limit.rate <= 0 or limit.burst < 1:
            raise ValueError("rate limit needs a positive rate and a burst of at least 1")
        return limit


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the API app needs to start. `Settings.from_env()` reads the `FOG_*`
    environment variables listed in docs/api.md."""

    #: Store URL; None means `FOG_DATABASE_URL` or the embedded SQLite file.
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    #: How long a login session lasts, in seconds.
    session_ttl: float = 12 * 3600
    #: Largest request body accepted, in bytes (413 beyond it).
    max_body_bytes: int = 1 << 20
    #: Per-client limit on every request.
    rate_limit: RateLimit = RateLimit(50.0, 100)
    #: Tighter per-client limit on login attempts (password guessing).
    login_rate_limit: RateLimit = RateLimit(5 / 60, 5)
    #: Most clients tracked by the rate limiter at once (bounded memory).
    rate_limit_clients: int = 100_000
    #: Take the client address from X-Forwarded-For (only behind a proxy you run).
    trust_proxy_headers: bool = False
    #: Origins allowed by CORS; empty means CORS is off.
    cors_origins: tuple[str, ...] = ()
    #: Seconds an authenticated token is remembered without asking the store again.
    #: Logout and revocation through this process take effect at once regardless.
    auth_cache_ttl: float = 2.0
    #: Seconds the dashboard aggregates and directory pages are reused.
    read_cache_ttl: float = 1.0
    #: Seconds between reachability probes of each directory node; 0: no prober. The
    #: field defaults to off (apps built in code, tests); `from_env` turns it on (1 s).
    directory_probe_interval_s: float = 0.0
    #: Seconds without a valid probe acknowledgement before a node is `unreachable`.
    directory_unreachable_after_s: float = 5.0
    #: Probe only loopback addresses (skip others, logged once).
    directory_probe_loopback_only: bool = False
    #: Where benchmark result files go; None: `<data dir>/bench`.
    bench_dir: str | None = None
    #: Suites the API may start; None: every installed suite.
    bench_suites: tuple[str, ...] | None = None
    #: Extra environment for benchmark subprocesses (suite-specific knobs).
    bench_env: Mapping[str, str] = field(default_factory=dict)
    #: Write one JSON log line per request.
    access_log: bool = True
    #: Create the first admin from FOG_ADMIN_USER / FOG_ADMIN_PASSWORD when none exists.
    bootstrap_admin: bool = True
    #: Add Strict-Transport-Security (only when served over HTTPS).
    hsts: bool = False
    #: Most header fields in one request head (431 beyond it).
    max_header_fields: int = 100
    #: Largest request head (request target and header fields), in bytes (431 beyond it).
    max_head_bytes: int = 16 * 1024
    #: Seconds a request head may take to arrive, from the connection or from the first
    #: byte of a later request on it (408 and close beyond it).
    head_timeout: float = 10.0
    #: Most connections whose request head is still arriving; beyond it the oldest is closed.
    max_incomplete_heads: int = 256
    #: Failed logins on one account before further attempts on it are refused.
    login_backoff_failures: int = 5
    #: First refusal window after `login_backoff_failures` failures, seconds; each further
    #: failure doubles it, up to `login_backoff_max`.
    login_backoff_base: float = 30.0
    #: Longest refusal window, seconds.
    login_backoff_max: float = 3600.0
    #: Most accounts (known or not) whose failures are remembered (least recently used go).
    login_backoff_accounts: int = 100_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from `FOG_*` variables (see docs/api.md), then `overrides`."""
        env = os.environ if environ is None else environ
        values: dict = {}
        if env.get("FOG_DATABASE_URL"):
            values["database_url"] = env["FOG_DATABASE_URL"]
        simple = {
            "FOG_API_HOST": ("host", str),
            "FOG_API_PORT": ("port", int),
            "FOG_API_SESSION_TTL": ("session_ttl", float),
            "FOG_API_MAX_BODY": ("max_body_bytes", int),
            "FOG_API_AUTH_CACHE_TTL": ("auth_cache_ttl", float),
            "FOG_API_READ_CACHE_TTL": ("read_cache_ttl", float),
            "FOG_BENCH_DIR": ("bench_dir", str),
            "FOG_API_MAX_HEADER_FIELDS": ("max_header_fields", int),
            "FOG_API_MAX_HEAD_BYTES": ("max_head_bytes", int),
            "FOG_API_HEAD_TIMEOUT": ("head_timeout", float),
            "FOG_API_MAX_INCOMPLETE_HEADS": ("max_incomplete_heads", int),
            "FOG_API_LOGIN_BACKOFF_FAILURES": ("login_backoff_failures", int),
            "FOG_API_LOGIN_BACKOFF_BASE": ("login_backoff_base", float),
            "FOG_API_LOGIN_BACKOFF_MAX": ("login_backoff_max", float),
            "FOG_API_LOGIN_BACKOFF_ACCOUNTS": ("login_backoff_accounts", int),
        }
        for name, (attr, convert) in simple.items():
            if env.get(name):
                values[attr] = convert(env[name])
        if env.get("FOG_API_RATE_LIMIT"):
            values["rate_limit"] = RateLimit.parse(env["FOG_API_RATE_LIMIT"])
        if env.get("FOG_API_LOGIN_RATE_LIMIT"):
            values["login_rate_limit"] = RateLimit.parse(env["FOG_API_LOGIN_RATE_LIMIT"])
        if env.get("FOG_API_CORS_ORIGINS"):
            origins = (o.strip() for o in env["FOG_API_CORS_ORIGINS"].split(","))
            values["cors_origins"] = tuple(o for o in origins if o)
        for name, attr in (
            ("FOG_API_TRUST_PROXY", "trust_proxy_headers"),
            ("FOG_API_ACCESS_LOG", "access_log"),
            ("FOG_API_HSTS", "hsts"),
        ):
            if env.get(name):
                values[attr] = env[name].strip().lower() in ("1", "true", "yes", "on")
        values["directory_probe_interval_s"] = float(
            env.get("FOG_DIRECTORY_PROBE_INTERVAL_S") or 1.0)
        if env.get("FOG_DIRECTORY_UNREACHABLE_AFTER_S"):
            values["directory_unreachable_after_s"] = float(
                env["FOG_DIRECTORY_UNREACHABLE_AFTER_S"])
        if env.get("FOG_DIRECTORY_PROBE_LOOPBACK_ONLY"):
            values["directory_probe_loopback_only"] = (
                env["FOG_DIRECTORY_PROBE_LOOPBACK_ONLY"].strip().lower()
                in ("1", "true", "yes", "on"))
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

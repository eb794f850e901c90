"""Pure ASGI middleware, outermost first:

1. `RequestMiddleware` — request id, security headers (`SecurityHeaders`: CSP with
   frame-ancestors, nosniff, no referrer...) on every response, errors included, one
   structured JSON log line per request, metrics by route template, and the last-resort
   500 that logs the trace and shows none.
2. `RateLimitMiddleware` — per-client token buckets (a tighter one for login), 429 with
   Retry-After.
3. `BodyLimitMiddleware` — 413 for a body over the limit, declared or streamed.
4. `ExceptionMapping` — the registered handler's answer to an exception a route raises.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.requests import Request

from .errors import ApiError, error_body
from .logs import AccessLog
from .metrics import ApiMetrics
from .settings import RateLimit

__all__ = [
    "SecurityHeaders",
    "RequestMiddleware",
    "RateLimitMiddleware",
    "BodyLimitMiddleware",
    "ExceptionMapping",
    "TokenBuckets",
    "CONTENT_SECURITY_POLICY",
    "API_CONTENT_SECURITY_POLICY",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("fogcore.api")

#: Same-origin everything (the panel's pages, scripts and API calls), no plugins, and no
#: framing by anyone (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: API answers are data: nothing may load from them or frame them.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


async def _send_json(send: Send, status: int, body: dict, headers=()) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class SecurityHeaders:
    """The security headers every HTTP response carries unless it sets them itself.

    Documents (the panel's pages, `/openapi.json`, anything outside `/api/`) get the full
    set: CSP (with frame-ancestors), nosniff, no framing, no referrer, same-origin
    isolation, a permissions policy. API answers under `/api/` are data, never rendered:
    they get a CSP that allows nothing (`default-src 'none'; frame-ancestors 'none'`),
    nosniff, no framing, `Cross-Origin-Resource-Policy: same-origin` (no other site may
    load them) and `Cache-Control: no-store` (they are per caller). The document-only
    headers (Referrer-Policy, COOP, Permissions-Policy) do nothing on such a response, and
    every header costs the server time on every request."""

    def __init__(self, *, hsts: bool = False) -> None:
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if hsts:
            common.append((b"strict-transport-security", b"max-age=31536000"))
        self.headers = [
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            *common,
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        self.api_headers = [
            (b"content-security-policy", API_CONTENT_SECURITY_POLICY.encode()),
            *common,
            (b"cache-control", b"no-store"),
        ]
        self.names = frozenset(name for name, _ in self.headers + self.api_headers)

    def apply(self, path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`headers` with the security headers for `path` added (in place) and returned;
        a header the response sets itself is kept."""
        own = self.api_headers if path.startswith("/api/") else self.headers
        names = {name.lower() for name, _ in headers}
        if names & self.names:
            headers += [h for h in own if h[0] not in names]
        else:
            headers += own
        return headers


class RequestMiddleware:
    """The outermost layer. Gives each request an id (a client's well-formed
    `X-Request-ID` is kept, otherwise a new one), echoes it and the security headers in
    every response, logs one JSON line per request, records metrics by route template
    (never the raw path, whose values would explode the label set) and turns an unhandled
    exception into a 500 that carries only the request id: the trace goes to the log.

    These share one layer because each ASGI layer costs a wrapped `send` per message."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ApiMetrics,
        security: SecurityHeaders,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.security = security
        self.access_log = access_log
        # Request ids need to be unique, not secret: a random per-process prefix and a
        # counter are cheaper than fresh random bytes per request.
        self._id_prefix = secrets.token_hex(4)
        self._counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _REQUEST_ID.match(value):
                    request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = f"{self._id_prefix}{next(self._counter) & 0xFFFFFFFF:08x}"
        scope["fog.request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("ascii"))
        path = scope["path"]
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = scope["fog.status"] = message["status"]
                headers = list(message.get("headers", ()))
                headers.append(id_header)
                message["headers"] = self.security.apply(path, headers)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.error(
                "unhandled error",
                exc_info=True,
                extra={"request_id": request_id, "path": path},
            )
            if status == 0:
                status = 500
                body = error_body("internal", "internal error", request_id)
                headers = self.security.apply(path, [id_header])
                await _send_json(send, 500, body, headers)
            # A response already under way cannot be replaced; the server closes it.
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, elapsed)
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.write(
                    {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": path,
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": client[0] if client else None,
                        "principal": scope.get("fog.actor"),
                    }
                )


class TokenBuckets:
    """One token bucket per client under a common `RateLimit`, with bounded memory: when
    `max_clients` are tracked, buckets that have refilled completely (idle clients, which
    lose nothing by being forgotten) are dropped; if that is not enough, all are."""

    __slots__ = ("rate", "burst", "max_clients", "buckets")

    def __init__(self, limit: RateLimit, max_clients: int = 100_000) -> None:
        self.rate = limit.rate
        self.burst = float(limit.burst)
        self.max_clients = max_clients
        self.buckets: dict[str, list[float]] = {}

    def take(self, client: str, now: float) -> float:
        """Spend one token of `client`'s bucket: 0.0 when allowed, else the seconds until
        a token will be there."""
        bucket = self.buckets.get(client)
        if bucket is None:
            if len(self.buckets) >= self.max_clients:
                self._sweep(now)
            self.buckets[client] = [self.burst - 1.0, now]
            return 0.0
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        full = [
            client
            for client, (tokens, last) in self.buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for client in full:
            del self.buckets[client]
        if len(self.buckets) >= self.max_clients:
            self.buckets.clear()


class RateLimitMiddleware:
    """Per-client rate limits. Every request spends a token of the general bucket; a login
    attempt also spends one of the login bucket. Health and metrics probes are exempt so
    monitoring never sees 429."""

    EXEMPT = frozenset({"/health", "/health/ready", "/metrics"})

    def __init__(
        self,
        app: ASGIApp,
        *,
        general: RateLimit,
        login: RateLimit,
        login_path: str = "/api/auth/login",
        max_clients: int = 100_000,
        trust_proxy_headers: bool = False,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self.app = app
        self.general = TokenBuckets(general, max_clients)
        self.login = TokenBuckets(login, max_clients)
        self.login_path = login_path
        self.trust_proxy_headers = trust_proxy_headers
        self.metrics = metrics

    def client_key(self, scope: Scope) -> str:
        """Who the client is: its address, or with a trusted proxy in front, the address the
        proxy appended last to X-Forwarded-For (earlier entries are the client's own word)."""
        if self.trust_proxy_headers:
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
                    if last:
                        return last
        client = scope.get("client")
        return client[0] if client else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        client = self.client_key(scope)
        now = time.monotonic()
        wait = self.general.take(client, now)
        limit = "general"
        if not wait and scope["method"] == "POST" and scope["path"] == self.login_path:
            wait = self.login.take(client, now)
            limit = "login"
        if wait:
            if self.metrics is not None:
                self.metrics.rate_limited.labels(limit).inc()
            retry = str(max(1, math.ceil(wait))).encode()
            body = error_body("rate_limited", "too many requests", scope.get("fog.request_id"))
            await _send_json(send, 429, body, ((b"retry-after", retry),))
            return
        await self.app(scope, receive, send)


class BodyTooLarge(ApiError):
    """The request body is larger than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"the body must be at most {limit} bytes")


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes`: at once when Content-Length says so, else as soon as
    the streamed body passes the limit (the route reading it gets a 413 error)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    if declared < 0:
                        body = error_body(
                            "bad_request", "invalid Content-Length", scope.get("fog.request_id")
                        )
                        await _send_json(send, 400, body)
                        return
                    error = BodyTooLarge(self.max_bytes)
                    body = error_body(error.code, error.message, scope.get("fog.request_id"))
                    await _send_json(send, 413, body, ((b"connection", b"close"),))
                    return
                break
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


class ExceptionMapping:
    """The innermost layer: answers an exception a route raises with the handler
    registered for its type (the nearest class in its MRO), as Starlette's
    `ExceptionMiddleware` does, but without building a `Request` and wrapping `send` on
    every request: whether the response has started is read from the scope, where
    `RequestMiddleware` records the status. Anything without a handler, or raised after
    the response started, goes on up to `RequestMiddleware`'s last-resort 500."""

    def __init__(self, app: ASGIApp, *, handlers: dict[type[Exception], Callable]) -> None:
        self.app = app
        self.handlers = dict(handlers)

    def handler_for(self, exc: Exception) -> Callable | None:
        """The handler of `exc`'s type or its nearest base that has one."""
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            handler = self.handler_for(exc)
            if handler is None or scope["type"] != "http" or "fog.status" in scope:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            exc.__traceback__ = None  # a reused exception must not grow its traceback

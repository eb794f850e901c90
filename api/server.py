"""How uvicorn serves the API, decided in one place for `fogcore serve`, `fogcore up`, the
API benchmark and the tests: `uvicorn.run(app, host=..., port=..., **server_options(app))`
or `uvicorn.Config(app, ..., **server_options(app))`.

uvicorn rewrites the client address from `X-Forwarded-For` for connections from loopback
unless told not to; here it never does. The app alone reads that header, and only with
`FOG_API_TRUST_PROXY=1` (`Settings.trust_proxy_headers`).
"""

from __future__ import annotations

from typing import Any

from .settings import Settings

__all__ = ["SERVER_OPTIONS", "server_options"]

#: uvicorn options for every server of the API; `server_options` adds the protocol.
SERVER_OPTIONS: dict[str, Any] = {
    "workers": 1,
    "http": "httptools",
    "access_log": False,  # the app writes its own structured line per request
    "log_config": None,  # keep the JSON logging configured by the caller
    "server_header": False,
    "proxy_headers": False,  # the client address is the socket's; see the module docstring
}


def server_options(app: Any, settings: Settings | None = None) -> dict[str, Any]:
    """uvicorn keyword arguments to serve `app` as production does: `SERVER_OPTIONS` with
    the head-limited HTTP protocol. Limits come from `settings`, else the settings of an
    app made by `create_app` (whose `/metrics` then counts the refusals), else from the
    environment. Call once per server: its connections share one guard."""
    from .protocol import HeadLimits, head_limited_protocol  # uvicorn, only when serving

    ctx = getattr(getattr(app, "state", None), "fog", None)
    if settings is None:
        settings = ctx.settings if ctx is not None else Settings.from_env()
    stats = ctx.metrics.heads if ctx is not None else None
    protocol = head_limited_protocol(HeadLimits.from_settings(settings), stats)
    return {**SERVER_OPTIONS, "http": protocol}

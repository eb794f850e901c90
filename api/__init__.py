"""The fogcore HTTP API (Starlette): `create_app(Settings.from_env())`, served by
`fogcore serve`. See docs/api.md."""

from .app import create_app
from .settings import RateLimit, Settings

__all__ = ["create_app", "Settings", "RateLimit"]

"""`fogcore serve` and `fogcore admin create USERNAME`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from .server import SERVER_OPTIONS  # re-exported: the one definition is in server.py

__all__ = ["COMMANDS", "SERVER_OPTIONS"]


def _add_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1, FOG_API_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8000, FOG_API_PORT)")
    parser.add_argument(
        "--database", metavar="URL", help="store URL (default FOG_DATABASE_URL or embedded SQLite)"
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    parser.add_argument(
        "--no-access-log", action="store_true", help="do not log one line per request"
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .logs import configure_logging
    from .server import server_options
    from .settings import Settings

    overrides = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.database:
        overrides["database_url"] = args.database
    if args.no_access_log:
        overrides["access_log"] = False
    settings = Settings.from_env(**overrides)
    configure_logging(args.log_level)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is a dependency where it exists
        loop = "asyncio"
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, loop=loop,
                **server_options(app))
    return 0


def _add_admin(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create an admin account")
    create.add_argument("username")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.add_argument("--database", metavar="URL", help="store URL")
    create.add_argument(
        "--role", choices=("admin", "operator", "viewer"), default="admin",
        help="role of the new account (default admin)",
    )


def _read_password(args: argparse.Namespace) -> str:
    """From stdin, FOG_ADMIN_PASSWORD, or an interactive prompt (asked twice)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if os.environ.get("FOG_ADMIN_PASSWORD"):
        return os.environ["FOG_ADMIN_PASSWORD"]
    if not sys.stdin.isatty():
        raise SystemExit("no password: use --password-stdin, FOG_ADMIN_PASSWORD or a terminal")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the passwords differ")
    return first


async def _create_user(url: str | None, username: str, password: str, role: str) -> int:
    from fogcore.store import Conflict, ConstraintViolation, open_store

    from .auth import hash_password

    store = await open_store(url)
    try:
        encoded = await hash_password(password)
        async with store.transaction():
            user = await store.users.create(username, encoded, role)
            await store.audit.record(
                "cli", "user.create", target=str(user.id), detail={"role": role}
            )
    except (Conflict, ConstraintViolation) as exc:
        print(f"cannot create {username!r}: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    print(f"created {role} {username!r} (id {user.id})")
    return 0


def _admin(args: argparse.Namespace) -> int:
    import msgspec

    from .auth import check_password_policy
    from .models import Username

    try:
        msgspec.convert(args.username, Username)
    except msgspec.ValidationError:
        print("username: 1-64 characters of letters, digits, _ . @ -", file=sys.stderr)
        return 2
    password = _read_password(args)
    problem = check_password_policy(password)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return asyncio.run(_create_user(args.database, args.username, password, args.role))


COMMANDS = {
    "serve": ("serve the HTTP API (uvicorn, one worker)", _add_serve, _serve),
    "admin": ("manage accounts: `admin create USERNAME`", _add_admin, _admin),
}

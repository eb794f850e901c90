"""`fogcore serve` and `fogcore admin create USERNAME`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from fogcore.cli import LOG_LEVELS, CommandError, display_url

from .server import SERVER_OPTIONS  # re-exported: the one definition is in server.py

__all__ = ["COMMANDS", "SERVER_OPTIONS", "check_store"]


async def check_store(url: str | None):
    """Open the store at `url` (default: `FOG_DATABASE_URL` or the embedded SQLite file)
    and return it; a bad URL (CommandError code 2) or an unreachable database (code 1) is
    one line naming the database."""
    from fogcore.store import StoreError, StoreUnavailable, default_database_url, open_store

    url = url or default_database_url()
    try:
        return await open_store(url)
    except StoreUnavailable as exc:
        raise CommandError(f"database {display_url(url)} unreachable: {exc}") from None
    except StoreError as exc:
        raise CommandError(f"database {display_url(url)}: {exc}", 2) from None
    except OSError as exc:
        raise CommandError(f"database {display_url(url)}: {exc.strerror or exc}") from None


async def _probe_store(url: str | None) -> None:
    store = await check_store(url)
    await store.close()


def _probe_listen(host: str, port: int) -> None:
    """CommandError unless `host:port` can be bound now (uvicorn would report it only
    after the application started, as a log line and exit status 3)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: "
                               f"{exc.strerror or exc}") from None


def _add_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1, FOG_API_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8000, FOG_API_PORT)")
    parser.add_argument(
        "--database", metavar="URL", help="store URL (default FOG_DATABASE_URL or embedded SQLite)"
    )
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS)
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
    # Before uvicorn starts: a wrong URL or a database that is down is one line, not a
    # failed lifespan with a traceback.
    _probe_listen(settings.host, settings.port)
    asyncio.run(_probe_store(settings.database_url))
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
    create.add_argument("--database", metavar="URL",
                        help="store URL (default FOG_DATABASE_URL; else the store of the "
                             "testnet running in the default data directory, if any; else "
                             "the embedded SQLite file)")
    create.add_argument("--testnet", metavar="DIR", type=Path,
                        help="create the account in the store of the testnet run with "
                             "`fogcore up --data DIR`")
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
        raise CommandError("no password: use --password-stdin, FOG_ADMIN_PASSWORD or a "
                           "terminal", 2)
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CommandError("the passwords differ", 2)
    return first


def _testnet_database(data_dir: Path | None) -> str | None:
    """The store URL of the testnet whose data directory is `data_dir` (default: the
    default testnet directory) when one runs there, else None (docs/testnet.md §1)."""
    # Imported here: the account command is the CLI layer, above the testnet supervisor.
    from fogcore.mixnet.testnet import running_database_url
    from fogcore.mixnet.testnet_commands import default_testnet_dir

    folder = data_dir or default_testnet_dir()
    url = running_database_url(folder)
    if url is None and data_dir is not None:
        raise CommandError(f"no testnet runs with the data directory {folder}", 2)
    return url


def _database_for(args: argparse.Namespace) -> str | None:
    if args.database:
        return args.database
    if args.testnet is None and os.environ.get("FOG_DATABASE_URL"):
        return None  # open_store's default
    return _testnet_database(args.testnet)


async def _create_user(store, username: str, password: str, role: str) -> int:
    from fogcore.store import Conflict, ConstraintViolation

    from .auth import hash_password

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
    print(f"created {role} {username!r} (id {user.id})")
    return 0


def _admin(args: argparse.Namespace) -> int:
    import msgspec

    from .models import Username

    try:
        msgspec.convert(args.username, Username)
    except msgspec.ValidationError:
        print("username: 1-64 characters of letters, digits, _ . @ -", file=sys.stderr)
        return 2
    url = _database_for(args)
    if url is not None and not args.database:
        print(f"using the running testnet's store {display_url(url)}", file=sys.stderr)
    return asyncio.run(_admin_create(args, url))


async def _admin_create(args: argparse.Namespace, url: str | None) -> int:
    from .auth import check_password_policy

    # The database is checked before the password is asked for.
    store = await check_store(url)
    try:
        password = _read_password(args)  # blocking is fine: nothing else runs on this loop
        problem = check_password_policy(password)
        if problem:
            print(problem, file=sys.stderr)
            return 2
        return await _create_user(store, args.username, password, args.role)
    finally:
        await store.close()


COMMANDS = {
    "serve": ("serve the HTTP API (uvicorn, one worker)", _add_serve, _serve),
    "admin": ("manage accounts: `admin create USERNAME`", _add_admin, _admin),
}

"""The `fogcore` command.

Subcommands register themselves in `COMMANDS`: each entry adds its arguments to a subparser
and names the function that runs it, so a new area adds one entry and one module.
"""

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import fogcore

__all__ = ["COMMANDS", "LOG_LEVELS", "CommandError", "check_writable", "collect_info",
           "display_url", "main"]

#: the values every `--log-level` option takes
LOG_LEVELS = ("debug", "info", "warning", "error")

#: exit statuses of the error boundary: as a shell reports a process ended by the signal
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


class CommandError(Exception):
    """A failure the user can act on: `main` prints `fogcore COMMAND: <message>` as one
    line on stderr, with no traceback, and exits with `code` (1: failed, 2: bad input)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def display_url(url: str) -> str:
    """`url` with any password replaced by `***`, fit for an error line or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def check_writable(path: str, what: str = "output") -> None:
    """Raise CommandError unless a file can be created at `path` (checked before long
    work starts, so a run is not lost for want of a writable directory)."""
    if os.path.isdir(path):
        raise CommandError(f"cannot write the {what} {path}: it is a directory")
    probe = f"{path}.tmp"
    try:
        with open(probe, "a"):
            pass
        os.unlink(probe)
    except OSError as exc:
        raise CommandError(f"cannot write the {what} {path}: {exc.strerror or exc}") \
            from None

def collect_info() -> dict:
    """What this installation is: compiled or pure mode, libsodium, event loop, platform."""
    from fogcore._impl import EXTENSION_MODULES, NO_EXTENSIONS, compiled_available

    built = {name: compiled_available(name) is not None for name in EXTENSION_MODULES}
    if NO_EXTENSIONS:
        mode, reason = "pure", "FOGCORE_NO_EXTENSIONS is set"
    elif all(built.values()):
        mode, reason = "compiled", "all extension modules are built"
    else:
        missing = ", ".join(name for name, ok in built.items() if not ok)
        mode, reason = "pure", f"extension modules not built: {missing}"

    if mode == "compiled":
        sodium_mod = compiled_available("_sodium")
        sodium = dict(sodium_mod.library_info(), called_from="C, without the GIL")
        debug = compiled_available("_mem").debug_build()
    else:
        import nacl

        sodium = {
            "source": "pynacl",
            "path": None,
            "version": None,
            "called_from": f"Python, through PyNaCl {nacl.__version__}",
        }
        debug = False

    try:
        uvloop_version = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uvloop_version = None

    return {
        "fogcore": fogcore.__version__,
        "mode": mode,
        "mode_reason": reason,
        "debug_build": debug,
        "extensions": built,
        "libsodium": sodium,
        "uvloop": {"available": uvloop_version is not None, "version": uvloop_version},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
        },
    }


def _cmd_info(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    sodium = info["libsodium"]
    uv = info["uvloop"]
    lines = [
        f"fogcore {info['fogcore']}",
        f"mode:      {info['mode']} ({info['mode_reason']})"
        + (" [debug build]" if info["debug_build"] else ""),
        f"libsodium: {sodium['version'] or 'version unknown'} from {sodium['source']}"
        + (f" ({sodium['path']})" if sodium["path"] else "")
        + f", called from {sodium['called_from']}",
        f"uvloop:    {uv['version'] if uv['available'] else 'not installed (asyncio loop)'}",
        f"python:    {info['python']['implementation']} {info['python']['version']}",
        f"platform:  {info['platform']['system']} {info['platform']['release']} "
        f"{info['platform']['machine']}",
    ]
    print("\n".join(lines))
    return 0


def _add_info(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


# name -> (help, add_arguments, run); `run` may be "module:function" to import lazily.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], object]] = {
    "info": ("show how this installation is built and what it runs on", _add_info, _cmd_info),
}


# Areas outside this module contribute their own `COMMANDS` dict of the same shape.
COMMAND_MODULES = ["fogcore.bench.commands", "fogcore.api.commands", "fogcore.mixnet.commands",
                   "fogcore.mixnet.testnet_commands"]


def _all_commands() -> dict:
    commands = dict(COMMANDS)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this area is not installed" is tolerated, never a broken import inside it.
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        commands.update(module.COMMANDS)
    return commands


def _build_parser(commands: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fogcore", description="fogcore: a privacy-preserving fog-compute node"
    )
    parser.add_argument("--version", action="version", version=f"fogcore {fogcore.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, _) in commands.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def _run(argv: list[str] | None) -> int:
    commands = _all_commands()
    parser = _build_parser(commands)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    run = commands[args.command][2]
    if isinstance(run, str):
        module_name, _, func_name = run.partition(":")
        run = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(run(args) or 0)
    except CommandError as exc:
        print(f"fogcore {args.command}: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except OSError as exc:
        # A path that cannot be read or written (a data directory, an output file) is the
        # user's to fix: name it in one line. Other OS errors keep their traceback.
        if exc.filename is None or isinstance(exc, BrokenPipeError):
            raise
        print(f"fogcore {args.command}: {exc.filename}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)
        return 1


def _silence_stdout() -> None:
    # The reader is gone: point stdout at /dev/null so the interpreter's final flush
    # does not report the broken pipe a second time.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fogcore` console script and its one error boundary: a
    `CommandError` is one line on stderr; Ctrl-C exits 130 and a closed stdout pipe 141,
    both without a traceback (docs/testnet.md, "Conventions")."""
    try:
        status = _run(argv)
        sys.stdout.flush()  # inside the boundary: a closed pipe shows here, not at exit
        return status
    except KeyboardInterrupt:
        print(file=sys.stderr, flush=True)  # end the terminal's "^C" line
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())

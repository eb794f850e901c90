"""`fogcore bench SUITE [--json FILE]`: run one benchmark suite, print its figures as a
table and, with `--json FILE`, write its result document (`-`: the document on stdout
instead of the table). What a run needs (the result file's directory, `wrk`, the
PostgreSQL server) is checked before it starts, each as one line naming what is missing."""

import argparse
import asyncio
import importlib
import importlib.util
import shutil
import time

from fogcore.bench.harness import Progress, write_result
from fogcore.cli import CommandError, check_writable, display_url

__all__ = ["COMMANDS", "SUITES", "available_suites", "format_table"]

# suite name -> module with `STEPS: int` and `run(args, progress) -> dict`
SUITES = {
    "core": "fogcore.bench.core",
    "api": "fogcore.bench.api",
    "node": "fogcore.bench.node",
}

#: external programs a suite runs, and where to get them
TOOLS = {"api": {"wrk": "Debian package `wrk`"}}

#: the figures the table shows, in this order, when a result has them
TABLE_COLUMNS = ("ops_per_s", "median_us", "p50_ms", "p99_ms", "delivered_pct", "ratio",
                 "rss_mb")


def available_suites() -> list[str]:
    """Suites whose module is installed."""
    found = []
    for name, module in SUITES.items():
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return found


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=available_suites(), help="which suite to run")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the result document here (`-`: print it instead "
                             "of the table)")
    parser.add_argument("--quick", action="store_true", help="short runs, for CI and checks")
    parser.add_argument(
        "--progress", action="store_true", help="print progress as JSON lines on stdout"
    )


def format_table(results: dict) -> str:
    """The headline figures of `results` (name -> figures) as an aligned text table: one
    row per result, one column per figure of TABLE_COLUMNS that some result has."""
    rows = {name: figures for name, figures in results.items() if isinstance(figures, dict)}
    columns = [c for c in TABLE_COLUMNS
               if any(isinstance(f.get(c), int | float) for f in rows.values())]
    table = [["result", *columns]]
    for name, figures in rows.items():
        cells = [figures.get(c) for c in columns]
        if all(cell is None for cell in cells):
            continue  # settings and other descriptions: in the JSON only
        table.append([name, *(_cell(c) for c in cells)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        lines.append("  ".join([first, *rest]).rstrip())
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # Six significant digits, never an exponent (a rate of 1.5 million stays readable).
        return f"{value:.0f}" if abs(value) >= 1e5 else f"{value:g}"
    return str(value)


async def _probe_postgres(url: str) -> None:
    import asyncpg

    try:
        connection = await asyncpg.connect(url, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise CommandError(f"database {display_url(url)} unreachable (FOG_TEST_DATABASE_URL; "
                           f"or leave postgresql out of FOG_BENCH_API_BACKENDS): "
                           f"{exc}") from None
    await connection.close()


def _preflight(args: argparse.Namespace) -> None:
    """Everything a run of `args.suite` needs, checked before its long work starts."""
    if args.json not in (None, "-"):
        check_writable(args.json, "result file")
    for tool, source in TOOLS.get(args.suite, {}).items():
        if shutil.which(tool) is None:
            raise CommandError(f"the {args.suite} suite needs `{tool}` on PATH ({source})")
    if args.suite == "api":
        from fogcore.bench import api

        if "postgresql" in api._backends():
            asyncio.run(_probe_postgres(api._pg_base()))


def _run(args: argparse.Namespace) -> int:
    _preflight(args)
    module = importlib.import_module(SUITES[args.suite])
    progress = Progress(module.steps(args), emit=args.progress)
    started = time.time()
    results = module.run(args, progress)
    if args.json or args.progress:
        # With --progress and no file, the document goes to stdout after the progress lines.
        write_result(args.suite, results, started, args.json)
    if not args.progress and args.json != "-":
        print(format_table(results))
        if args.json:
            print(f"result document: {args.json}")
    return 0


COMMANDS = {
    "bench": ("run a benchmark suite: a table of its figures, its JSON with --json",
              _add_arguments, _run),
}

"""`fogcore bench SUITE [--json FILE]`: run one benchmark suite and write its JSON."""

import argparse
import importlib
import importlib.util
import time

from fogcore.bench.harness import Progress, write_result

__all__ = ["COMMANDS", "SUITES"]

# suite name -> module with `STEPS: int` and `run(args, progress) -> dict`
SUITES = {
    "core": "fogcore.bench.core",
    "api": "fogcore.bench.api",
    "node": "fogcore.bench.node",
}


def available_suites() -> list[str]:
    """Suites whose module is installed."""
    found = []
    for name, module in SUITES.items():
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return found


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=available_suites(), help="which suite to run")
    parser.add_argument("--json", metavar="FILE", help="write the result document here")
    parser.add_argument("--quick", action="store_true", help="short runs, for CI and checks")
    parser.add_argument(
        "--progress", action="store_true", help="print progress as JSON lines on stdout"
    )


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(SUITES[args.suite])
    progress = Progress(module.steps(args), emit=args.progress)
    started = time.time()
    results = module.run(args, progress)
    document = write_result(args.suite, results, started, args.json)
    if args.json and not args.progress:
        for name, figures in document["results"].items():
            shown = ", ".join(f"{k}={v}" for k, v in figures.items()
                              if k in ("median_us", "ops_per_s", "p50_ms", "p99_ms"))
            print(f"{name:28s} {shown}")
    return 0


COMMANDS = {
    "bench": ("run a benchmark suite and write its JSON result", _add_arguments, _run),
}

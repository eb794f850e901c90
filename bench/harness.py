"""What every benchmark suite shares: the machine description, timing loops, progress
reporting and the JSON result file.

A suite is a module with `run(args, progress) -> dict[str, dict]` returning its results by
name; the harness wraps them as `{"suite", "machine", "started", "finished", "results"}`.
"""

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import psutil

import fogcore

__all__ = ["Progress", "machine_info", "time_interleaved", "time_per_op", "write_result"]


def machine_info() -> dict:
    """The machine and build a result was measured on."""
    from fogcore.cli import collect_info

    info = collect_info()
    freq = psutil.cpu_freq()
    return {
        "fogcore": fogcore.__version__,
        "mode": info["mode"],
        "debug_build": info["debug_build"],
        "libsodium": info["libsodium"]["version"],
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "processor": _cpu_model(),
        "cores": os.cpu_count(),
        "cpu_mhz": round(freq.current) if freq else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Calls of `fn` that take about `min_time` seconds."""
    number = 1
    while True:  # grow the inner loop until one round takes min_time / 4
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time / 4:
            break
        number *= 2
    return max(1, int(number * (min_time / max(elapsed, 1e-9))))


def time_interleaved(cases: dict[str, Callable[[], object]], *, min_time: float = 0.2,
                     repeats: int = 7, on_round: Callable[[int], None] | None = None
                     ) -> dict[str, dict]:
    """Median time of one call of each case over `repeats` rounds, each long enough (at
    least `min_time` seconds) that timer resolution does not matter. Round r of every case
    runs before round r + 1 of any: a slow spell of a shared machine then lands on all
    cases alike instead of on one, so ratios between cases stay fair. `on_round(r)` is
    called after each round."""
    numbers = {name: _calibrate(fn, min_time) for name, fn in cases.items()}
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats):
        for name, fn in cases.items():
            number = numbers[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            rounds[name].append((time.perf_counter() - t0) / number)
        if on_round is not None:
            on_round(r)
    out = {}
    for name, times in rounds.items():
        median = statistics.median(times)
        out[name] = {
            "median_us": round(median * 1e6, 3),
            "ops_per_s": round(1.0 / median, 1),
            "min_us": round(min(times) * 1e6, 3),
            "rounds": repeats,
            "calls_per_round": numbers[name],
        }
    return out


def time_per_op(fn: Callable[[], object], *, min_time: float = 0.2, repeats: int = 7) -> dict:
    """Median time of one call of `fn` (`time_interleaved` of one case)."""
    return time_interleaved({"op": fn}, min_time=min_time, repeats=repeats)["op"]


class Progress:
    """Reports how far a suite is: a JSON line per step on stdout when `emit` is set (the
    API reads these while a run goes on), and a human line on stderr otherwise."""

    def __init__(self, total: int, *, emit: bool = False, quiet: bool = False):
        self.total = max(1, total)
        self.done = 0
        self.emit = emit
        self.quiet = quiet

    def step(self, name: str) -> None:
        """Mark one more of `total` steps as done, named `name`."""
        self.done = min(self.total, self.done + 1)
        if self.emit:
            line = {"progress": round(self.done / self.total, 4), "step": name}
            print(json.dumps(line), flush=True)
        elif not self.quiet:
            print(f"[{self.done}/{self.total}] {name}", file=sys.stderr, flush=True)


def write_result(suite: str, results: dict, started: float, path: str | None) -> dict:
    """Wrap `results` with the suite name and machine, and write them to `path` (or stdout
    when `path` is None or "-")."""
    document = {
        "suite": suite,
        "machine": machine_info(),
        "started": started,
        "finished": time.time(),
        "results": results,
    }
    text = json.dumps(document, indent=2, sort_keys=True)
    if path in (None, "-"):
        print(text)
    else:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, path)  # a reader never sees a half-written result
    return document

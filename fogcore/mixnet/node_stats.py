"""Live node statistics for a supervisor (docs/testnet.md §4).

Node side: with `stats_interval_s` set, the node writes one JSON line of cumulative
counters to standard output every interval (`snapshot`, `StatsReporter`). The channel is
the pipe its supervisor already holds, so no port is opened for it.

Supervisor side: `NodeSeries` turns consecutive snapshots into rates (packets in/out and
drops per second, per-link packets per second), queue depth, mean delay and latency
percentiles over the last interval, and keeps a few minutes of history.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, deque

__all__ = ["NodeSeries", "StatsReporter", "histogram_percentile", "snapshot"]

#: reject codes that are not drops (0: not processed yet)
_NOT_DROPS = {"unprocessed"}


def snapshot(node) -> dict:
    """Cumulative counters of a running `MixNode`, JSON-ready."""
    from fogcore.mixnet.node_metrics import REASON_NAMES

    arena = node.arena
    drops: Counter[str] = Counter()
    for code, n in arena.rejects().items():
        name = REASON_NAMES.get(code, f"code_{code}")
        if name not in _NOT_DROPS:
            drops[name] += n
    drops.update(node.links.drops)
    drops.update(node.mailboxes.drops)
    counts, total_us = arena.delay_histogram()
    return {
        "event": "stats",
        "t": time.time(),
        "node_id": node.node_id.hex(),
        "in": arena.frames_in,
        "out": node.links.packets_out + node.mailboxes.stored,
        "drops": dict(drops),
        "queue": arena.ready_count + len(node.delay_queue) + node.links.queued(),
        "mailboxes": node.mailboxes.count(),
        "connections_in": node.connection_count,
        "connections_out": node.links.connected(),
        "delay_bounds_us": list(node.delay_bounds_us),
        "delay_counts": list(counts),
        "delay_sum_us": total_us,
        "processing_sum_s": node.processing_per_packet.total,
        "processing_batches": sum(node.processing_per_packet.counts),
        "links": {nid.hex(): link.sent for nid, link in node.links.links.items()},
        "state": node.state,
        "link_states": node.links.states(),
        "refusals": dict(node.refusals),
        "probe_limited": node.probe_limited,
    }


class StatsReporter:
    """Writes `snapshot(node)` as a JSON line to `stream` every `interval` seconds."""

    def __init__(self, node, interval: float, stream=None):
        self.node = node
        self.interval = interval
        self.stream = stream or sys.stdout
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start reporting."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.emit()
            await asyncio.sleep(self.interval)

    def emit(self) -> None:
        """Write one line now."""
        try:
            self.stream.write(json.dumps(snapshot(self.node), separators=(",", ":")) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the supervisor went away; the node keeps working

    async def stop(self) -> None:
        """Stop reporting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # stop() itself was cancelled


def histogram_percentile(bounds, counts, q: float) -> float:
    """The `q` quantile (0..1) of a bucket histogram, interpolated linearly inside its
    bucket (the overflow bucket reports its lower bound); 0 when empty."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    rank = q * total
    running = 0
    lower = 0.0
    for i, count in enumerate(counts):
        upper = bounds[i] if i < len(bounds) else lower
        if count and running + count >= rank:
            return lower + (upper - lower) * (rank - running) / count
        running += count
        lower = upper
    return lower


class NodeSeries:
    """Rates and history of one node from its successive snapshots."""

    def __init__(self, history_s: float = 300.0, interval: float = 1.0):
        self.history: deque[dict] = deque(maxlen=max(10, int(history_s / max(interval, 0.1))))
        self.last: dict | None = None
        self.current = self._zero()
        self.links: dict[str, float] = {}
        self.drops_total: dict[str, int] = {}
        self.connections = 0
        self.updated_at = 0.0

    @staticmethod
    def _zero() -> dict:
        return {"packets_in_per_s": 0.0, "packets_out_per_s": 0.0, "drops_per_s": 0.0,
                "queue_depth": 0, "mean_delay_ms": 0.0, "latency_p50_ms": 0.0,
                "latency_p99_ms": 0.0}

    def add(self, snap: dict) -> None:
        """Take one snapshot."""
        prev, self.last = self.last, snap
        self.updated_at = time.time()
        self.drops_total = dict(snap.get("drops", {}))
        self.connections = int(snap.get("connections_in", 0)) + int(snap.get("connections_out", 0))
        cur = self._zero()
        cur["queue_depth"] = int(snap.get("queue", 0))
        if prev is not None:
            dt = max(1e-3, snap["t"] - prev["t"])
            cur["packets_in_per_s"] = max(0, snap["in"] - prev["in"]) / dt
            cur["packets_out_per_s"] = max(0, snap["out"] - prev["out"]) / dt
            dropped = sum(snap["drops"].values()) - sum(prev["drops"].values())
            cur["drops_per_s"] = max(0, dropped) / dt
            counts = [a - b for a, b in zip(snap["delay_counts"], prev["delay_counts"],
                                            strict=False)]
            n = sum(counts)
            bounds_ms = [b / 1000 for b in snap["delay_bounds_us"]]
            batches = snap["processing_batches"] - prev["processing_batches"]
            proc_ms = ((snap["processing_sum_s"] - prev["processing_sum_s"]) / batches * 1000
                       if batches > 0 else 0.0)
            if n > 0:
                cur["mean_delay_ms"] = (snap["delay_sum_us"] - prev["delay_sum_us"]) / n / 1000
                # Time in the node: the mixing delay it gave plus the processing per packet.
                cur["latency_p50_ms"] = histogram_percentile(bounds_ms, counts, 0.5) + proc_ms
                cur["latency_p99_ms"] = histogram_percentile(bounds_ms, counts, 0.99) + proc_ms
            self.links = {
                peer: max(0, sent - prev["links"].get(peer, 0)) / dt
                for peer, sent in snap["links"].items()
            }
        self.current = cur
        self.history.append({"t": snap["t"], **{k: cur[k] for k in (
            "packets_in_per_s", "packets_out_per_s", "drops_per_s", "latency_p50_ms",
            "latency_p99_ms", "queue_depth")}})

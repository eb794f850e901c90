"""Prometheus metrics of a mix node.

Nothing is counted per packet in Python for the metrics' sake: the arena, the links and the
mailboxes keep plain counters, and `NodeCollector` reads them when Prometheus scrapes.
Per-batch figures (batch size, processing time) go into `BucketHistogram`s.
"""

import bisect
from collections import Counter

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from fogcore.mixnet.links import LINK_STATES

__all__ = ["BATCH_BUCKETS", "PROCESSING_BUCKETS_S", "BucketHistogram", "NodeCollector",
           "REASON_NAMES", "node_registry", "render"]

#: reject and drop reasons by arena reason code (packet format §1.10 plus the receive side)
REASON_NAMES = {
    0: "unprocessed",
    1: "wrong_size",
    2: "bad_version",
    3: "bad_format",
    4: "low_order",
    5: "bad_mac",
    6: "replay",
    7: "bad_command",
    8: "bad_payload",
    9: "truncated",
    10: "slow",
    11: "arena_full",
}
KIND_NAMES = {1: "forward", 2: "deliver", 3: "reply"}
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PROCESSING_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                        0.1, 0.25, 0.5, 1.0)


class BucketHistogram:
    """A histogram kept as plain counts (observed once per batch, not per packet)."""

    def __init__(self, bounds):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, doc: str, scale: float = 1.0) -> HistogramMetricFamily:
        """As a Prometheus histogram (bounds multiplied by `scale`)."""
        return _histogram(name, doc, [b * scale for b in self.bounds], self.counts,
                          self.total * scale)


def _histogram(name, doc, bounds, counts, total) -> HistogramMetricFamily:
    buckets = []
    running = 0
    for bound, count in zip(bounds, counts, strict=False):
        running += count
        buckets.append((repr(float(bound)), running))
    running += counts[-1]
    buckets.append(("+Inf", running))
    family = HistogramMetricFamily(name, doc, labels=[])
    family.add_metric([], buckets, total)
    return family


class NodeCollector:
    """Reads a `MixNode`'s counters at scrape time."""

    def __init__(self, node):
        self._node = node

    def collect(self):
        node = self._node
        arena = node.arena
        if arena is None:
            return
        p = "fogcore_node_"
        yield CounterMetricFamily(p + "packets_in", "Complete frames received",
                                  value=arena.frames_in)
        yield CounterMetricFamily(p + "bytes_in", "Bytes received on incoming connections",
                                  value=arena.bytes_in)
        processed = CounterMetricFamily(p + "packets_processed",
                                        "Packets accepted by the batch processor, by outcome",
                                        labels=["kind"])
        outcomes = arena.outcomes()
        for code, name in KIND_NAMES.items():
            processed.add_metric([name], outcomes.get(code, 0))
        yield processed
        out = CounterMetricFamily(p + "packets_out",
                                  "Packets sent to the next hop or stored in a mailbox",
                                  labels=["to"])
        out.add_metric(["next_hop"], node.links.packets_out)
        out.add_metric(["mailbox"], node.mailboxes.stored)
        yield out
        dropped = CounterMetricFamily(p + "packets_dropped", "Packets dropped, by reason",
                                      labels=["reason"])
        for code, count in sorted(arena.rejects().items()):
            dropped.add_metric([REASON_NAMES.get(code, f"code_{code}")], count)
        for reason, count in sorted(node.links.drops.items()):
            dropped.add_metric([reason], count)
        for reason, count in sorted(node.mailboxes.drops.items()):
            dropped.add_metric([reason], count)
        yield dropped
        depth = GaugeMetricFamily(p + "queue_depth", "Packets waiting, by queue",
                                  labels=["queue"])
        depth.add_metric(["ready"], arena.ready_count)
        depth.add_metric(["delay"], len(node.delay_queue) if node.delay_queue else 0)
        depth.add_metric(["links"], node.links.queued())
        depth.add_metric(["mailboxes"], node.mailboxes.count())
        yield depth
        yield GaugeMetricFamily(p + "arena_free_slots", "Free receive slots",
                                value=arena.nfree)
        conns = GaugeMetricFamily(p + "connections", "Open connections", labels=["direction"])
        conns.add_metric(["in"], arena.connections)
        conns.add_metric(["out"], node.links.connected())
        yield conns
        refused = CounterMetricFamily(p + "connections_refused",
                                      "Incoming connections refused or closed early, by "
                                      "reason", labels=["reason"])
        for reason, count in sorted(node.refusals.items()):
            refused.add_metric([reason], count)
        yield refused
        links = GaugeMetricFamily(p + "links", "Outgoing links by the state of their next hop",
                                  labels=["state"])
        states = Counter(node.links.states().values())
        for state in LINK_STATES:
            links.add_metric([state], states.get(state, 0))
        yield links
        unreachable = CounterMetricFamily(p + "links_unreachable",
                                          "Next hops declared unreachable, by cause",
                                          labels=["cause"])
        for cause, count in sorted(node.links.unreachable.items()):
            unreachable.add_metric([cause], count)
        yield unreachable
        probes = CounterMetricFamily(p + "probes", "Liveness probes, by outcome",
                                     labels=["result"])
        probes.add_metric(["sent"], node.links.probes_sent)
        probes.add_metric(["acked"], node.links.probes_acked)
        probes.add_metric(["answered"], node.probes_answered)
        probes.add_metric(["limited"], node.probe_limited)
        yield probes
        yield CounterMetricFamily(p + "control_errors",
                                  "Control frames refused (malformed, unexpected, badly "
                                  "signed)", value=node.control_errors
                                  + node.links.control_errors)
        yield GaugeMetricFamily(p + "draining", "1 while the node is leaving the network",
                                value=0 if node.state == "up" else 1)
        counts, total_us = arena.delay_histogram()
        yield _histogram(p + "delay_seconds", "Mixing delay given to accepted packets",
                         [b / 1e6 for b in node.delay_bounds_us], counts, total_us / 1e6)
        yield node.batch_sizes.family(p + "batch_size", "Frames per processed batch")
        yield node.processing.family(p + "processing_seconds",
                                     "Wall time to process one batch (thread hand-off included)")
        yield node.processing_per_packet.family(
            p + "processing_per_packet_seconds", "Batch processing time per packet")


def node_registry(node) -> CollectorRegistry:
    """A registry of its own for one node (several nodes may share a process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)

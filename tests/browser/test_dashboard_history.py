"""The dashboard's hour of testnet totals (`GET /api/dashboard/throughput`), without a
browser: seeded from the nodes' own histories, one point per sample, an hour at most."""

import time

from fogcore.api.routes.dashboard import HISTORY_INTERVAL_S, HISTORY_SPAN_S, ThroughputHistory


class FakeControl:
    """A testnet supervisor with two nodes, each with a few reported intervals."""

    def __init__(self, now: float) -> None:
        base = (now // HISTORY_INTERVAL_S - 3) * HISTORY_INTERVAL_S
        self.histories = {
            "a": [{"t": base + 1, "packets_in_per_s": 10.0, "packets_out_per_s": 8.0,
                   "drops_per_s": 0.0},
                  {"t": base + 2, "packets_in_per_s": 20.0, "packets_out_per_s": 12.0,
                   "drops_per_s": 1.0},
                  {"t": base + HISTORY_INTERVAL_S + 1, "packets_in_per_s": 5.0,
                   "packets_out_per_s": 5.0, "drops_per_s": 0.0},
                  {"t": now, "packets_in_per_s": 99.0, "packets_out_per_s": 99.0,
                   "drops_per_s": 0.0}],
            "b": [{"t": base + 3, "packets_in_per_s": 4.0, "packets_out_per_s": 4.0,
                   "drops_per_s": 0.5}],
        }
        self.base = base
        self.totals = {"packets_in_per_s": 7.0, "packets_out_per_s": 6.0, "drops_per_s": 0.25}

    def status(self) -> dict:
        return {"nodes": [{"node_id": node} for node in self.histories], "totals": self.totals}

    def node_view(self, node_id: str) -> dict | None:
        return {"history": self.histories[node_id]}


def test_seeded_from_node_histories_then_sampled():
    now = time.time()
    control = FakeControl(now)
    history = ThroughputHistory(control)
    history._seed()
    points = history.document()["points"]
    # Per bucket: each node's mean, summed over nodes; the bucket still filling is left out.
    first, second = points[0], points[1]
    assert first["t"] == control.base + HISTORY_INTERVAL_S
    assert (first["packets_in_per_s"], first["packets_out_per_s"], first["drops_per_s"]) == (
        15.0 + 4.0, 10.0 + 4.0, 0.5 + 0.5)
    assert second["packets_in_per_s"] == 5.0
    assert all(p["packets_in_per_s"] != 99.0 for p in points)
    history.sample()
    last = history.document()["points"][-1]
    assert (last["packets_in_per_s"], last["drops_per_s"]) == (7.0, 0.25)
    doc = history.document()
    assert doc["interval_s"] == HISTORY_INTERVAL_S and doc["span_s"] == HISTORY_SPAN_S


def test_keeps_one_hour():
    control = FakeControl(time.time())
    control.histories = {}
    history = ThroughputHistory(control)
    for _ in range(int(HISTORY_SPAN_S / HISTORY_INTERVAL_S) + 50):
        history.sample()
    assert len(history.points) == int(HISTORY_SPAN_S / HISTORY_INTERVAL_S) + 1
    old = {"t": time.time() - HISTORY_SPAN_S - 10, "packets_in_per_s": 1.0,
           "packets_out_per_s": 1.0, "drops_per_s": 0.0}
    history.points.appendleft(old)
    assert old not in history.document()["points"]

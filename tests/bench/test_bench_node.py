"""`fogcore bench node`: a pytest-benchmark case of the node's batch step with its worker
threads, and the whole suite run as a real command (quick mode, reduced scale)."""

import json
import os
import subprocess
import sys

import pytest

from fogcore import packet, replay
from fogcore.mixnet.workers import batch_threads

REQUIRED = ["inprocess.sphinx", "inprocess.kem", "e2e.sphinx.workers1", "e2e.sphinx.workers2",
            "e2e.kem.workers1", "e2e.kem.workers2"]


@pytest.mark.parametrize("workers", [1, 2])
def test_node_batch_step(benchmark, workers):
    keys = packet.NodeKeys.generate()
    sink = packet.NodeKeys.generate()
    n = 32
    frames = [packet.build_packet([keys.info(), sink.info()], b"M" * 32, b"x",
                                  format="kem").packet for _ in range(n)]
    S = packet.BATCH_STRIDE
    pristine = bytearray(n * S)
    for i, f in enumerate(frames):
        pristine[i * S:i * S + len(f)] = f
    work = bytearray(pristine)
    records = bytearray(n * packet.OUTCOME_RECORD_SIZE)
    filt = replay.ReplayFilter(1 << 12, 1e-9)

    def step():
        work[:] = pristine
        filt.reset()
        packet.process_batch(keys, work, n, filt, records,
                             threads=batch_threads(workers, n))

    benchmark(step)
    assert all(records[i * 96] == 1 for i in range(n))  # every frame forwarded


@pytest.mark.slow
def test_bench_node_quick_writes_every_name(tmp_path):
    out = tmp_path / "node.json"
    env = dict(os.environ, FOGCORE_BENCH_NODE_SCALE="0.15")
    proc = subprocess.run([sys.executable, "-P", "-m", "fogcore.cli", "bench", "node", "--quick",
                           "--json", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["suite"] == "node" and doc["machine"]["cores"]
    results = doc["results"]
    for name in REQUIRED:
        assert results[name]["ops_per_s"] > 0, name
    assert results["latency"]["p99_ms"] >= results["latency"]["p50_ms"] > 0
    assert results["rss"]["end_mb"] > 0 and results["rss"]["start_mb"] > 0
    # Readings through the soak, the last one at its end.
    readings = results["rss"]["readings_mb"]
    assert len(readings) >= 2 and all(mb > 0 for mb in readings.values())
    assert readings[max(readings, key=float)] == results["rss"]["end_mb"]
    assert {"delay.10", "delay.100", "delay.1000"} <= set(results)
    assert {"peers.1", "peers.10", "peers.100", "peers.1000"} <= set(results)
    assert results["loadgen.ceiling"]["ops_per_s"] > results["e2e.kem.workers1"]["ops_per_s"]
    # The faults phase: every transmission accounted for, and the figures present.
    for fmt in ("sphinx", "kem"):
        faults = results[f"faults.{fmt}"]
        assert faults["messages_sent"] > 0 and faults["unaccounted"] == 0, faults
        assert faults["no_route"] == 0, faults
        assert faults["delivered_pct"] >= 95, faults
        for fault in ("stop", "cut"):
            assert {"fragments_lost", "reroute_p50_s", "reroute_p99_s",
                    "chosen_until_s"} <= set(faults[fault])

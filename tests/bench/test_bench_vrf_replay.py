"""Micro-benchmarks of the compiled ECVRF, VRF delays and replay filter.

Run with `pytest tests/bench/test_bench_vrf_replay.py --benchmark-enable`."""

import os

import pytest

from fogcore._impl import NO_EXTENSIONS, compiled_available

pytestmark = pytest.mark.skipif(NO_EXTENSIONS, reason="benchmarks the compiled extensions")

SK = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ALPHA = b"fogcore/vrf-delay-epoch/v1" + (12345).to_bytes(8, "big")


@pytest.fixture(scope="module")
def vrf_c():
    return compiled_available("_vrf")


def test_bench_vrf_prove(benchmark, vrf_c):
    proof = benchmark(vrf_c.prove, SK, ALPHA)
    assert len(proof) == 80


def test_bench_vrf_verify(benchmark, vrf_c):
    proof = vrf_c.prove(SK, ALPHA)
    pk = vrf_c.public_key(SK)
    beta = benchmark(vrf_c.verify, pk, proof, ALPHA)
    assert beta == vrf_c.proof_to_hash(proof)


def test_bench_replay_check(benchmark):
    from fogcore.replay import ReplayFilter

    # a filter of production size: a million tags per key epoch at 1e-9
    replay_filter = ReplayFilter(1_000_000, 1e-9)
    tags = [os.urandom(32) for _ in range(4096)]
    state = {"i": 0}

    def check():
        i = state["i"] = (state["i"] + 1) & 4095
        return replay_filter.check_and_add(tags[i])

    benchmark(check)


def test_bench_replay_check_batch_per_1024(benchmark):
    from fogcore._ext import _replay
    from fogcore.replay import ReplayFilter

    replay_filter = ReplayFilter(1_000_000, 1e-9)
    batch = os.urandom(32 * 1024)
    assert benchmark(_replay.check_and_add_many, replay_filter, batch) >= 0


def test_bench_delay_us(benchmark):
    delays_c = compiled_available("_delays")
    beta, tag = os.urandom(64), os.urandom(32)
    assert benchmark(delays_c.delay_us, beta, tag, 50_000, 500_000) <= 500_000

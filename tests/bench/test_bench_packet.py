"""pytest-benchmark micro-benchmarks of the packet core (run with
`pytest tests/bench --benchmark-enable`; disabled, each case runs once as a smoke test)."""

import os

import nacl.bindings as nb
import pytest

from fogcore._impl import implementation
from fogcore.packet import BATCH_STRIDE, OUTCOME_RECORD_SIZE, _batch_py
from fogcore.packet.keys import NodeKeys
from fogcore.replay import ReplayFilter

BACKEND = implementation("_batch")
BATCH = 64


class NeverSeen:
    """A filter that has seen nothing, so one packet can be processed repeatedly."""

    @staticmethod
    def check_and_add(tag) -> bool:
        return False


@pytest.fixture(scope="module")
def net():
    nodes = [NodeKeys.generate() for _ in range(5)]
    return nodes, [k.info() for k in nodes]


def test_x25519_pynacl(benchmark):
    scalar, point = os.urandom(32), nb.crypto_scalarmult_base(os.urandom(32))
    benchmark(nb.crypto_scalarmult, scalar, point)


@pytest.mark.parametrize("fmt", [1, 2], ids=["sphinx", "kem"])
def test_process(benchmark, net, fmt):
    nodes, route = net
    frame, _ = BACKEND.build_packet(fmt, route, 2, bytes(32), b"", b"m" * 1000, os.urandom(32))
    out = benchmark(BACKEND.process_packet, nodes[0], frame, NeverSeen())
    assert out.packet is not None


@pytest.mark.parametrize("fmt", [1, 2], ids=["sphinx", "kem"])
def test_create5(benchmark, net, fmt):
    _, route = net
    seed = os.urandom(32)
    frame, tags = benchmark(BACKEND.build_packet, fmt, route, 2, bytes(32), b"", b"m", seed)
    assert len(tags) == 5


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", [1, 2], ids=["sphinx", "kem"])
def test_batch(benchmark, net, fmt, threads):
    if BACKEND is _batch_py:
        pytest.skip("worker threads need the compiled backend")
    nodes, route = net
    pristine = bytearray(BATCH * BATCH_STRIDE)
    for i in range(BATCH):
        frame, _ = BACKEND.build_packet(fmt, route, 2, bytes(32), b"", b"m", os.urandom(32))
        pristine[i * BATCH_STRIDE:i * BATCH_STRIDE + len(frame)] = frame
    work, records = bytearray(pristine), bytearray(BATCH * OUTCOME_RECORD_SIZE)
    replay = ReplayFilter(1 << 14, 1e-9)

    def once():
        work[:] = pristine
        replay.reset()
        BACKEND.process_batch(nodes[0], work, BATCH, replay, records, threads=threads)

    benchmark(once)
    assert records[0] == 1  # FORWARD

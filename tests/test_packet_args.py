"""Argument checks of the packet entry points, on both implementations: any size or count,
however large or negative, is a clean exception (never a wrapped product, never a crash),
the two implementations raise the same type, and a bad call changes nothing, in particular
it records no replay tag."""

import hashlib

import pytest
from conftest import IMPL_MODES, load_impl

import fogcore.packet as packet
from fogcore.packet import NodeKeys, _batch_py
from fogcore.packet import _hop_py as c
from fogcore.packet.outcome import OUTCOME_RECORD_SIZE, Kind
from fogcore.replay import ReplayFilter, ReplayFilterPy

STRIDE = c.BATCH_STRIDE
HUGE = [2**31, 2**32, 2**59, 2**63 - 1, 2**63, 2**64, 2**100, -1, -(2**63), -(2**70)]


@pytest.fixture(params=IMPL_MODES)
def batch(request):
    """The packet backend: compiled `_batch` or the reference `_batch_py`."""
    return load_impl(request.param, "_batch")


@pytest.fixture(params=IMPL_MODES)
def hop(request):
    """The shared hop primitives: compiled `_hop` or the reference `_hop_py`."""
    return load_impl(request.param, "_hop")


@pytest.fixture(scope="module")
def node():
    return NodeKeys.from_seed(hashlib.sha256(b"argument checks").digest())


@pytest.fixture(scope="module")
def frame(node):
    frame, _ = _batch_py.build_packet(c.FORMAT_SPHINX, [node.info()], c.CMD_DELIVER, b"M" * 32,
                                 b"", b"kept", bytes(32))
    return frame


def one_slot(frame: bytes) -> bytearray:
    buf = bytearray(STRIDE)
    buf[: len(frame)] = frame
    return buf


@pytest.mark.parametrize("count", HUGE)
def test_huge_or_negative_count_is_a_value_error(batch, node, count):
    buf, records = bytearray(2 * STRIDE), bytearray(2 * OUTCOME_RECORD_SIZE)
    with pytest.raises(ValueError):
        batch.process_batch(node, buf, count, ReplayFilter(64, 1e-6), records)
    # the records check divides too: a big enough buffer with too few records
    with pytest.raises(ValueError):
        batch.process_batch(node, buf, count, ReplayFilter(64, 1e-6), bytearray(0))


@pytest.mark.parametrize("value", HUGE + [0, 9])
def test_huge_or_negative_threads_is_a_value_error(batch, node, value):
    with pytest.raises(ValueError):
        batch.process_batch(node, bytearray(STRIDE), 1, ReplayFilter(64, 1e-6),
                            bytearray(OUTCOME_RECORD_SIZE), threads=value)


@pytest.mark.parametrize("count", HUGE)
def test_public_process_batch_never_allocates_for_a_huge_count(node, count):
    # records=None: the API sizes the records itself and must not try count * 96 bytes
    with pytest.raises(ValueError):
        packet.process_batch(node, bytearray(STRIDE), count, ReplayFilter(64, 1e-6))


@pytest.mark.parametrize("n", HUGE)
def test_huge_or_negative_key_stream_length_is_a_value_error(hop, n):
    with pytest.raises(ValueError):
        hop.kdf(b"label", b"data", n)
    with pytest.raises(ValueError):
        hop.stream(bytes(32), n)


def test_key_stream_bound_is_inclusive_and_identical(hop):
    assert hop.kdf(b"label", b"data", c.MAX_STREAM_BYTES) == c.kdf(b"label", b"data",
                                                                     c.MAX_STREAM_BYTES)
    assert hop.stream(bytes(32), 0) == b""
    with pytest.raises(ValueError):
        hop.kdf(b"label", b"data", c.MAX_STREAM_BYTES + 1)
    with pytest.raises(TypeError):
        hop.stream(bytes(32), 1.0)


def test_neg_ln_range_on_both_implementations():
    from fogcore.delays import neg_ln_q30

    impls = [neg_ln_q30]
    if "c" in IMPL_MODES:
        impls.append(load_impl("c", "_delays").neg_ln)
    for f in impls:
        for m in (0, -1, 2**53 + 1, 2**64, 2**64 + 1):
            with pytest.raises(ValueError):
                f(m)
    assert len({f(2**52) for f in impls}) == 1


BAD_ARGUMENTS = {
    "count_float": ({"count": 1.0}, TypeError),
    "threads_zero": ({"threads": 0}, ValueError),
    "threads_float": ({"threads": 1.5}, TypeError),
    "read_only_buffer": ({"buffer": "bytes"}, TypeError),
    "read_only_records": ({"records": bytes(OUTCOME_RECORD_SIZE)}, TypeError),
    "short_records": ({"records": bytearray(OUTCOME_RECORD_SIZE - 1)}, ValueError),
    "vrf_output_short": ({"vrf_output": bytes(63)}, ValueError),
    "vrf_output_long": ({"vrf_output": bytes(65)}, ValueError),
    "vrf_output_not_bytes": ({"vrf_output": 64}, TypeError),
    "mean_negative": ({"vrf_output": bytes(64), "mean_us": -1}, ValueError),
    "mean_huge": ({"vrf_output": bytes(64), "mean_us": 2**32}, ValueError),
    "max_huge": ({"vrf_output": bytes(64), "max_us": 2**64}, ValueError),
    "max_float": ({"vrf_output": bytes(64), "max_us": 1.5}, TypeError),
    "mean_without_vrf": ({"mean_us": -5}, ValueError),
    "filter_missing": ({"replay_filter": object()}, AttributeError),
}


@pytest.mark.parametrize("name", sorted(BAD_ARGUMENTS))
def test_bad_argument_raises_before_any_packet_is_processed(batch, node, frame, name):
    changes, error = BAD_ARGUMENTS[name]
    replay = ReplayFilterPy(64, 1e-9)
    buf = one_slot(frame)
    args = {"buffer": buf, "count": 1, "replay_filter": replay,
            "records": bytearray(OUTCOME_RECORD_SIZE)}
    kwargs = {}
    for key, value in changes.items():
        if key == "buffer":
            args["buffer"] = bytes(buf)
        elif key in args:
            args[key] = value
        else:
            kwargs[key] = value
    with pytest.raises(error):
        batch.process_batch(node, args["buffer"], args["count"], args["replay_filter"],
                            args["records"], **kwargs)
    # Nothing was consumed: the slot still holds the packet and its tag is not recorded,
    # so the same packet now processes normally.
    assert buf == one_slot(frame)
    records = bytearray(OUTCOME_RECORD_SIZE)
    batch.process_batch(node, buf, 1, replay, records)
    (out,) = packet.decode_records(records, 1, buf, STRIDE)
    assert out.kind == Kind.DELIVER and out.payload == b"kept"


def test_bad_node_keys_raise_the_same_type(batch, frame):
    class Keys:
        routing_secret = bytes(31)
        routing_public = bytes(32)

    buf = one_slot(frame)
    with pytest.raises(ValueError):
        batch.process_batch(Keys(), buf, 1, ReplayFilterPy(64, 1e-9),
                            bytearray(OUTCOME_RECORD_SIZE))
    Keys.routing_secret = None
    with pytest.raises(TypeError):
        batch.process_batch(Keys(), buf, 1, ReplayFilterPy(64, 1e-9),
                            bytearray(OUTCOME_RECORD_SIZE))
    assert buf == one_slot(frame)

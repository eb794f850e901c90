"""Property tests of both packet formats on every implementation: round trips through 1-5
hops, every single-bit header flip rejected at the hop that sees it, payload tampering
caught at the destination, replays rejected, one packet size at every hop, and no crash
on arbitrary bytes."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_packet_ref import IMPLEMENTATIONS, SetFilter, build, make_nodes

from fogcore.packet import (
    BATCH_STRIDE,
    FRAME_SIZES,
    Kind,
    Reason,
    ReplyError,
    _kem_py,
    _sphinx_py,
    build_reply,
    decode_records,
    make_surb,
    open_reply,
)
from fogcore.packet import _hop_py as c
from fogcore.packet.outcome import OUTCOME_RECORD_SIZE

HEADER_SIZES = {"sphinx": _sphinx_py.HEADER_SIZE, "kem": _kem_py.HEADER_SIZE}
NODES = make_nodes(5, salt="props")
PROPS = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])

formats = st.sampled_from(["sphinx", "kem"])
seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(max_size=c.MESSAGE_CAPACITY)


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def impl(request):
    return IMPLEMENTATIONS[request.param]


def forward_to(impl, frame, hop: int):
    """The frame as hop `hop` receives it."""
    for node in NODES[:hop]:
        out = impl.process_packet(node, frame, SetFilter())
        assert out.kind == Kind.FORWARD
        frame = out.packet
    return frame


@PROPS
@given(fmt=formats, n=st.integers(1, 5), message=messages, seed=seeds)
def test_round_trip_and_constant_size(impl, fmt, n, message, seed):
    nodes = NODES[:n]
    frame, tags = build(impl, fmt, nodes, message, seed)
    for i, node in enumerate(nodes):
        assert len(frame) == FRAME_SIZES[fmt]
        flt = SetFilter()
        out = impl.process_packet(node, frame, flt)
        assert out.tag == tags[i]
        # The same frame again at the same node is a replay.
        assert impl.process_packet(node, frame, flt).reason == Reason.REPLAY
        if i < n - 1:
            assert out.kind == Kind.FORWARD and out.address == nodes[i + 1].node_id
            frame = out.packet
    assert out.kind == Kind.DELIVER and out.payload == message


@PROPS
@given(fmt=formats, n=st.integers(1, 5), data=st.data(), seed=seeds)
def test_header_bit_flip_rejected_where_seen(impl, fmt, n, data, seed):
    frame, _ = build(impl, fmt, NODES[:n], b"m", seed)
    hop = data.draw(st.integers(0, n - 1), label="hop")
    frame = forward_to(impl, frame, hop)
    bit = data.draw(st.integers(0, 8 * (c.FRAME_HEADER_SIZE + HEADER_SIZES[fmt]) - 1),
                    label="bit")
    bad = bytearray(frame)
    bad[bit // 8] ^= 1 << (bit % 8)
    out = impl.process_packet(NODES[hop], bytes(bad), SetFilter())
    assert out.kind == Kind.REJECT
    assert out.reason in (Reason.WRONG_SIZE, Reason.BAD_VERSION, Reason.BAD_FORMAT,
                          Reason.LOW_ORDER, Reason.BAD_MAC)


@pytest.mark.parametrize("fmt", ["sphinx", "kem"])
def test_every_header_bit_flip_rejected_at_first_hop(impl, fmt):
    """Exhaustive over the whole frame header and packet header of one 2-hop packet."""
    frame, _ = build(impl, fmt, NODES[:2], b"m", bytes(32))
    flt = SetFilter()
    for bit in range(8 * (c.FRAME_HEADER_SIZE + HEADER_SIZES[fmt])):
        bad = bytearray(frame)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert impl.process_packet(NODES[0], bytes(bad), flt).kind == Kind.REJECT, bit
    assert not flt.seen  # nothing unauthenticated reached the filter


@PROPS
@given(fmt=formats, n=st.integers(1, 5), data=st.data(), seed=seeds)
def test_payload_tampering_caught_at_destination(impl, fmt, n, data, seed):
    frame, _ = build(impl, fmt, NODES[:n], b"payload", seed)
    hop = data.draw(st.integers(0, n - 1), label="hop")
    frame = forward_to(impl, frame, hop)
    start = c.FRAME_HEADER_SIZE + HEADER_SIZES[fmt]
    pos = data.draw(st.integers(start, len(frame) - 1), label="byte")
    mask = data.draw(st.integers(1, 255), label="mask")
    bad = bytearray(frame)
    bad[pos] ^= mask
    frame = bytes(bad)
    for node in NODES[hop : n - 1]:
        out = impl.process_packet(node, frame, SetFilter())
        assert out.kind == Kind.FORWARD
        frame = out.packet
    assert impl.process_packet(NODES[n - 1], frame, SetFilter()).reason == Reason.BAD_PAYLOAD


@PROPS
@given(fmt=formats, n=st.integers(1, 5), data=st.data(), seed=seeds)
def test_reply_tampering_caught_by_surb_owner(impl, fmt, n, data, seed):
    surb, key = make_surb([k.info() for k in NODES[:n]], b"O" * 32, fmt, rng=lambda k: seed)
    _, frame = build_reply(surb, b"reply")
    hop = data.draw(st.integers(0, n - 1), label="hop")
    frame = forward_to(impl, frame, hop)
    start = c.FRAME_HEADER_SIZE + HEADER_SIZES[fmt]
    pos = data.draw(st.integers(start, len(frame) - 1), label="byte")
    bad = bytearray(frame)
    bad[pos] ^= 0x01
    frame = bytes(bad)
    for node in NODES[hop:n]:
        out = impl.process_packet(node, frame, SetFilter())
        frame = out.packet
    assert out.kind == Kind.REPLY
    with pytest.raises(ReplyError):
        open_reply(key, out.payload)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=3000),
    st.tuples(st.sampled_from([b"\x01\x01\x09\x2a", b"\x01\x02\x09\xca"]),
              st.binary(min_size=2506, max_size=2506)).map(
        lambda t: t[0] + t[1][: 2346 if t[0][1] == 1 else 2506]),
))
def test_arbitrary_bytes_never_crash(impl, data):
    out = impl.process_packet(NODES[0], data, SetFilter())
    assert out.kind == Kind.REJECT and isinstance(out.reason, Reason)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slots=st.lists(st.binary(min_size=BATCH_STRIDE, max_size=BATCH_STRIDE), max_size=4))
def test_arbitrary_batches_never_crash(impl, slots):
    buf = bytearray(b"".join(slots))
    records = bytearray(OUTCOME_RECORD_SIZE * len(slots))
    impl.process_batch(NODES[0], buf, len(slots), SetFilter(), records)
    for out in decode_records(records, len(slots), buf, BATCH_STRIDE):
        assert out.kind == Kind.REJECT

"""Differential tests: the compiled packet core (`fogcore._ext._batch`, `_sphinx`, `_kem`,
`_hop`) against the pure-Python reference (`fogcore.packet._batch_py*`), byte for byte, on many
random routes and payloads, every reject reason, arbitrary bytes, the batch entry point
with one and two threads, VRF delays in the records, and no Python object per packet."""

import os
import random
import struct
import sys
import tracemalloc

import pytest
from conftest import load_impl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogcore._impl import NO_EXTENSIONS
from fogcore.delays import delay_us_reference
from fogcore.packet import _batch_py, _kem_py, _sphinx_py
from fogcore.packet import _hop_py as c
from fogcore.packet.keys import NodeKeys
from fogcore.packet.outcome import OUTCOME_RECORD_SIZE, Kind, Reason, decode_records
from fogcore.replay import ReplayFilter, ReplayFilterPy

if NO_EXTENSIONS:
    pytest.skip("compiled-vs-reference tests need the extensions", allow_module_level=True)

STRIDE = c.BATCH_STRIDE
FORMATS = [c.FORMAT_SPHINX, c.FORMAT_KEM]
REF_FORMATS = {c.FORMAT_SPHINX: _sphinx_py, c.FORMAT_KEM: _kem_py}


@pytest.fixture(scope="module")
def ext():
    return load_impl("c", "_batch")


@pytest.fixture(scope="module")
def hop():
    return load_impl("c", "_hop")


@pytest.fixture(scope="module")
def nodes():
    return [NodeKeys.from_seed(bytes([i]) * 32) for i in range(1, 8)]


def new_filter():
    return ReplayFilter(4096, 1e-9)


def rng_bytes(r: random.Random, n: int) -> bytes:
    return bytes(r.getrandbits(8) for _ in range(n))


def random_packet(r, nodes, fmt, command=c.CMD_DELIVER, extra=b""):
    n = r.randint(1, c.MAX_HOPS)
    path = r.sample(range(len(nodes)), n)
    route = [nodes[i].info() for i in path]
    message = rng_bytes(r, r.choice([0, 1, 17, 500, c.MESSAGE_CAPACITY]))
    args = (fmt, route, command, rng_bytes(r, 32), extra, message, rng_bytes(r, 32))
    return path, args, message


# ---- shared cryptography -------------------------------------------------------------------

def test_hop_primitives_match_reference(hop):
    r = random.Random(1)
    for _ in range(20):
        keys, block = rng_bytes(r, 128), rng_bytes(r, r.choice([33, 100, 2048]))
        assert hop.lioness_encrypt(keys, block) == c.lioness_encrypt(keys, block)
        assert hop.lioness_decrypt(keys, block) == c.lioness_decrypt(keys, block)
        assert hop.lioness_decrypt(keys, hop.lioness_encrypt(keys, block)) == block
        label, data, n = rng_bytes(r, 20), rng_bytes(r, r.randint(0, 200)), r.randint(1, 600)
        assert hop.kdf(label, data, n) == c.kdf(label, data, n)
        assert hop.stream(keys[:32], n) == c.stream(keys[:32], n)
        assert hop.mac(keys[:32], data) == c.mac(keys[:32], data)
        assert hop.mac_ok(keys[:32], data, c.mac(keys[:32], data))
        assert not hop.mac_ok(keys[:32], data, bytes(16))
        message = rng_bytes(r, r.randint(0, c.MESSAGE_CAPACITY))
        plain = hop.payload_plaintext(message)
        assert plain == c.payload_plaintext(message)
        assert hop.open_plaintext(plain) == c.open_plaintext(plain) == message
        bad = bytes([1]) + plain[1:]
        assert hop.open_plaintext(bad) is None and c.open_plaintext(bad) is None
    with pytest.raises(ValueError):
        hop.payload_plaintext(bytes(c.MESSAGE_CAPACITY + 1))


# ---- building --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_build_packet_identical(ext, nodes, fmt):
    r = random.Random(fmt)
    for trial in range(25):
        command = c.CMD_REPLY if trial % 3 == 0 else c.CMD_DELIVER
        extra = rng_bytes(r, 16) if command == c.CMD_REPLY else b""
        _, args, _ = random_packet(r, nodes, fmt, command, extra)
        expected = _batch_py.build_packet(*args)
        for method in ("sequential", "scalar", "reencoded"):
            assert ext.build_packet(*args, method=method) == expected


def test_sphinx_route_secrets_every_method(nodes):
    sphinx = load_impl("c", "_sphinx")
    r = random.Random(7)
    for n in range(1, c.MAX_HOPS + 1):
        route = [k.info() for k in nodes[:n]]
        final, seed = c.make_slot(50, c.CMD_DELIVER, 0, rng_bytes(r, 32)), rng_bytes(r, 32)
        header, keys = _sphinx_py.build_header(route, final, seed, "sequential")
        for method in ("sequential", "scalar", "reencoded"):
            got_header, got_keys = sphinx.build_header(route, final, seed, method)
            assert got_header == header and got_keys == [k.raw for k in keys]


def test_build_packet_bad_arguments(ext, nodes):
    route = [k.info() for k in nodes[:3]]
    good = (1, route, c.CMD_DELIVER, bytes(32), b"", b"hi", bytes(32))
    ext.build_packet(*good)
    for index, value in [(0, 9), (1, []), (1, route * 2), (3, bytes(31)), (4, bytes(17)),
                         (5, bytes(c.MESSAGE_CAPACITY + 1)), (6, bytes(31))]:
        args = list(good)
        args[index] = value
        with pytest.raises(ValueError):
            ext.build_packet(*args)
    with pytest.raises(ValueError):
        ext.build_packet(*good, method="fast")


# ---- processing one packet -------------------------------------------------------------------

def walk(impl, nodes, path, frame, replay_filters):
    """Outcomes of the frame along its path, each hop processing what the previous one
    forwarded."""
    outcomes = []
    for i in path:
        out = impl.process_packet(nodes[i], frame, replay_filters[i])
        outcomes.append(out)
        if out.kind != Kind.FORWARD:
            break
        frame = out.packet
    return outcomes


@pytest.mark.parametrize("fmt", FORMATS)
def test_route_outcomes_identical(ext, nodes, fmt):
    r = random.Random(100 + fmt)
    for trial in range(20):
        command = c.CMD_REPLY if trial % 4 == 0 else c.CMD_DELIVER
        extra = rng_bytes(r, 16) if command == c.CMD_REPLY else b""
        path, args, message = random_packet(r, nodes, fmt, command, extra)
        frame, tags = ext.build_packet(*args)
        mine = walk(ext, nodes, path, frame, [new_filter() for _ in nodes])
        theirs = walk(_batch_py, nodes, path, frame, [new_filter() for _ in nodes])
        assert mine == theirs
        assert [o.tag for o in mine] == list(tags)
        assert [o.kind for o in mine] == [Kind.FORWARD] * (len(path) - 1) + [Kind(command)]
        if command == c.CMD_DELIVER:
            assert mine[-1].payload == message
        else:
            assert mine[-1].surb_id == extra
        # every hop sees a frame of the same size
        assert {len(o.packet) for o in mine[:-1]} <= {len(frame)}


def reject_cases(ext, nodes, fmt):
    """(name, node index, frame, expected reason) for every reject reason of §1.10."""
    r = random.Random(fmt)
    route = [nodes[0].info(), nodes[1].info()]
    good, _ = ext.build_packet(fmt, route[:1], c.CMD_DELIVER, bytes(32), b"", b"m", bytes(32))
    other, _ = ext.build_packet(fmt, route[:1], c.CMD_DELIVER, bytes(32), b"", b"m",
                                bytes([1]) * 32)
    size = len(good)
    header = REF_FORMATS[fmt].HEADER_SIZE
    cases = [
        ("empty", 0, b"", Reason.WRONG_SIZE),
        ("three bytes", 0, good[:3], Reason.WRONG_SIZE),
        ("truncated", 0, good[:-1], Reason.WRONG_SIZE),
        ("trailing byte", 0, good + b"\0", Reason.WRONG_SIZE),
        ("length field", 0, good[:2] + struct.pack(">H", size - 5) + good[4:],
         Reason.WRONG_SIZE),
        ("huge", 0, good + bytes(5000), Reason.WRONG_SIZE),
        ("version", 0, b"\x02" + good[1:], Reason.BAD_VERSION),
        ("format", 0, good[:1] + b"\x07" + good[2:], Reason.BAD_FORMAT),
        ("zero element", 0, good[:4] + bytes(32) + good[36:], Reason.LOW_ORDER),
        ("order-8 element", 0, good[:4] + (1).to_bytes(32, "little") + good[36:],
         Reason.LOW_ORDER),
        ("wrong node", 1, good, Reason.BAD_MAC),
        ("flipped β", 0, good[:40] + bytes([good[40] ^ 1]) + good[41:], Reason.BAD_MAC),
        ("flipped γ", 0, good[:header + 3] + bytes([good[header + 3] ^ 0x80])
         + good[header + 4:], Reason.BAD_MAC),
        ("flipped payload", 0, other[:-7] + bytes([other[-7] ^ 4]) + other[-6:],
         Reason.BAD_PAYLOAD),
    ]
    # a final slot with an unknown command, and DELIVER with a non-zero `extra`
    for name, command, extra in [("command 9", 9, b""), ("deliver extra", c.CMD_DELIVER,
                                                          b"x" * 16)]:
        frame, _ = ext.build_packet(fmt, route[:1], command, bytes(32), extra, b"m",
                                    rng_bytes(r, 32))
        cases.append((name, 0, frame, Reason.BAD_COMMAND))
    cases.append(("replay", 0, good, Reason.REPLAY))  # `good` was seen by then (see below)
    return good, cases


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_reject_reason_identical(ext, nodes, fmt):
    good, cases = reject_cases(ext, nodes, fmt)
    filters = {"c": [new_filter() for _ in nodes], "py": [new_filter() for _ in nodes]}
    assert ext.process_packet(nodes[0], good, filters["c"][0]).kind == Kind.DELIVER
    assert _batch_py.process_packet(nodes[0], good, filters["py"][0]).kind == Kind.DELIVER
    seen = set()
    for name, node, frame, reason in cases:
        mine = ext.process_packet(nodes[node], frame, filters["c"][node])
        theirs = _batch_py.process_packet(nodes[node], frame, filters["py"][node])
        assert mine == theirs, name
        assert mine.kind == Kind.REJECT and mine.reason == reason, name
        seen.add(reason)
    assert seen == set(Reason) - {Reason.NONE}


def test_python_replay_filter_and_its_errors(ext, nodes):
    frame, _ = ext.build_packet(1, [nodes[0].info()], c.CMD_DELIVER, bytes(32), b"", b"m",
                                bytes(32))
    pyfilter = ReplayFilterPy(100, 1e-6)
    assert ext.process_packet(nodes[0], frame, pyfilter).kind == Kind.DELIVER
    assert ext.process_packet(nodes[0], frame, pyfilter).reason == Reason.REPLAY

    class Broken:
        def check_and_add(self, tag):
            raise RuntimeError("filter down")

    with pytest.raises(RuntimeError, match="filter down"):
        ext.process_packet(nodes[0], frame, Broken())
    buf, rec = bytearray(frame.ljust(STRIDE, b"\0")), bytearray(96)
    with pytest.raises(RuntimeError, match="filter down"):
        ext.process_batch(nodes[0], buf, 1, Broken(), rec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2600), fmt=st.sampled_from([1, 2, 7]),
       exact_length=st.booleans())
def test_arbitrary_bytes_never_crash(data, fmt, exact_length):
    ext = load_impl("c", "_batch")
    keys = NodeKeys.from_seed(bytes(32))
    if exact_length:  # get past the framing checks to the cryptography
        size = {1: 2346, 2: 2506}.get(fmt, 2346)
        data = bytes([1, fmt]) + struct.pack(">H", size) + data.ljust(size, b"\0")[:size]
    mine = ext.process_packet(keys, data, new_filter())
    assert mine == _batch_py.process_packet(keys, data, new_filter())
    buf = bytearray(data[:STRIDE].ljust(STRIDE, b"\0"))
    rec = bytearray(OUTCOME_RECORD_SIZE)
    ext.process_batch(keys, buf, 1, new_filter(), rec)
    assert decode_records(rec, 1, buf, STRIDE)[0].kind in set(Kind)


# ---- the batch entry point -------------------------------------------------------------------

def mixed_batch(ext, nodes, count, seed):
    """A batch buffer for nodes[0] mixing good packets of both formats, rejects of every
    kind and duplicates."""
    r = random.Random(seed)
    frames = []
    for i in range(count):
        fmt = FORMATS[i % 2]
        kind = r.random()
        n = r.randint(1, 3)
        route = [nodes[0].info()] + [nodes[j].info() for j in r.sample(range(1, 7), n - 1)]
        command = c.CMD_REPLY if kind < 0.2 else c.CMD_DELIVER
        extra = rng_bytes(r, 16) if command == c.CMD_REPLY else b""
        frame, _ = ext.build_packet(fmt, route, command, rng_bytes(r, 32), extra,
                                    rng_bytes(r, r.randint(0, 300)), rng_bytes(r, 32))
        if kind > 0.9:
            frame = frame[:r.randint(0, 40)] + bytes([r.getrandbits(8)]) + frame[41:]
        elif kind > 0.85 and frames:
            frame = frames[r.randrange(len(frames))]
        elif kind > 0.8:
            frame = rng_bytes(r, r.randint(0, 60))
        frames.append(frame)
    buf = bytearray(count * STRIDE)
    for i, f in enumerate(frames):
        buf[i * STRIDE:i * STRIDE + min(len(f), STRIDE)] = f[:STRIDE]
    return buf


def compare_batches(records_a, buf_a, records_b, buf_b, count):
    assert records_a == records_b
    outs_a = decode_records(records_a, count, buf_a, STRIDE)
    assert outs_a == decode_records(records_b, count, buf_b, STRIDE)
    for i, out in enumerate(outs_a):
        if out.kind != Kind.REJECT:  # a rejected slot's contents are unspecified (§5.2)
            assert buf_a[i * STRIDE:(i + 1) * STRIDE] == buf_b[i * STRIDE:(i + 1) * STRIDE]
    return outs_a


def test_batch_identical_to_reference(ext, nodes):
    count = 120
    buf = mixed_batch(ext, nodes, count, 5)
    mine, theirs = bytearray(buf), bytearray(buf)
    rec_c, rec_py = bytearray(count * 96), bytearray(count * 96)
    ext.process_batch(nodes[0], mine, count, new_filter(), rec_c)
    _batch_py.process_batch(nodes[0], theirs, count, new_filter(), rec_py)
    outs = compare_batches(rec_c, mine, rec_py, theirs, count)
    kinds = {o.kind for o in outs}
    assert {Kind.FORWARD, Kind.DELIVER, Kind.REPLY, Kind.REJECT} <= kinds
    # a single packet through process_packet gives the same outcome as its batch slot
    for i in range(0, count, 7):
        frame = bytes(buf[i * STRIDE:(i + 1) * STRIDE])
        size = struct.unpack_from(">H", frame, 2)[0] + 4 if len(frame) >= 4 else 0
        if outs[i].kind != Kind.REJECT:
            assert ext.process_packet(nodes[0], frame[:size], new_filter()) == outs[i]


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_batch_threads_same_result(ext, nodes, threads):
    count = 64
    r = random.Random(threads)
    frames = [ext.build_packet(FORMATS[i % 2], [nodes[0].info(), nodes[1].info()],
                               c.CMD_DELIVER, bytes(32), b"", b"x", rng_bytes(r, 32))[0]
              for i in range(count)]
    buf = bytearray(count * STRIDE)
    for i, f in enumerate(frames):
        buf[i * STRIDE:i * STRIDE + len(f)] = f
    one, many = bytearray(buf), bytearray(buf)
    rec_one, rec_many = bytearray(count * 96), bytearray(count * 96)
    ext.process_batch(nodes[0], one, count, new_filter(), rec_one, threads=1)
    ext.process_batch(nodes[0], many, count, new_filter(), rec_many, threads=threads)
    compare_batches(rec_one, one, rec_many, many, count)


def test_batch_duplicates_across_threads_accept_exactly_one(ext, nodes):
    frame, _ = ext.build_packet(1, [nodes[0].info()], c.CMD_DELIVER, bytes(32), b"", b"x",
                                bytes(32))
    count = 10
    buf = bytearray(count * STRIDE)
    for i in range(count):
        buf[i * STRIDE:i * STRIDE + len(frame)] = frame
    rec = bytearray(count * 96)
    ext.process_batch(nodes[0], buf, count, new_filter(), rec, threads=2)
    outs = decode_records(rec, count, buf, STRIDE)
    assert sum(o.kind == Kind.DELIVER for o in outs) == 1
    assert sum(o.reason == Reason.REPLAY for o in outs) == count - 1


def test_batch_vrf_delays_in_records(ext, nodes):
    count = 30
    buf = mixed_batch(ext, nodes, count, 9)
    rec = bytearray(count * 96)
    beta = bytes(range(64))
    ext.process_batch(nodes[0], buf, count, new_filter(), rec, vrf_output=beta,
                      mean_us=50_000, max_us=400_000)
    plain = bytearray(count * 96)
    ext.process_batch(nodes[0], mixed_batch(ext, nodes, count, 9), count, new_filter(), plain)
    for i, out in enumerate(decode_records(rec, count, buf, STRIDE)):
        delay = struct.unpack_from("<I", rec, i * 96 + 12)[0]
        if out.kind == Kind.REJECT:
            assert delay == 0
        else:
            assert delay == delay_us_reference(beta, out.tag, 50_000, 400_000)
        # apart from the delay, the records are those of a batch without delays
        masked = bytearray(rec[i * 96:(i + 1) * 96])
        masked[12:16] = bytes(4)
        assert masked == plain[i * 96:(i + 1) * 96]


def test_batch_vrf_delays_identical_in_reference(ext, nodes):
    count = 30
    beta = bytes(range(64))
    records = {}
    for name, impl in (("c", ext), ("py", _batch_py)):
        buf = mixed_batch(ext, nodes, count, 9)
        rec = bytearray(count * 96)
        impl.process_batch(nodes[0], buf, count, new_filter(), rec, vrf_output=beta,
                           mean_us=50_000, max_us=400_000)
        records[name] = (bytes(rec), bytes(buf))
    assert records["c"] == records["py"]


def test_batch_argument_errors(ext, nodes):
    f = new_filter()
    with pytest.raises(ValueError):
        ext.process_batch(nodes[0], bytearray(STRIDE), 2, f, bytearray(192))
    with pytest.raises(TypeError):
        ext.process_batch(nodes[0], bytes(STRIDE), 1, f, bytearray(96))
    with pytest.raises(ValueError):
        ext.process_batch(nodes[0], bytearray(STRIDE), 1, f, bytearray(95))
    with pytest.raises(ValueError):
        ext.process_batch(nodes[0], bytearray(STRIDE), 1, f, bytearray(96), threads=0)
    with pytest.raises(ValueError):
        ext.process_batch(nodes[0], bytearray(STRIDE), 1, f, bytearray(96), vrf_output=b"x")
    ext.process_batch(nodes[0], bytearray(0), 0, f, bytearray(0), threads=2)


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_allocates_no_python_object_per_packet(ext, nodes, threads):
    count = 400
    frame, _ = ext.build_packet(2, [nodes[0].info(), nodes[1].info()], c.CMD_DELIVER,
                                bytes(32), b"", b"x", bytes(32))
    buf = bytearray(count * STRIDE)
    for i in range(count):
        buf[i * STRIDE:i * STRIDE + len(frame)] = frame
    rec = bytearray(count * 96)
    f = new_filter()
    ext.process_batch(nodes[0], bytearray(buf), count, f, rec, threads=threads)  # warm up
    tracemalloc.start()
    try:
        blocks_before = sys.getallocatedblocks()
        snap_before = tracemalloc.take_snapshot()
        ext.process_batch(nodes[0], buf, count, new_filter(), rec, threads=threads)
        snap_after = tracemalloc.take_snapshot()
        blocks_after = sys.getallocatedblocks()
    finally:
        tracemalloc.stop()
    grown = sum(s.count_diff for s in snap_after.compare_to(snap_before, "filename")
                if s.count_diff > 0)
    # a handful of objects for the call itself (the filter, buffers' views), never ~count
    assert grown < 50
    assert blocks_after - blocks_before < 50


def test_seeds_from_os_urandom_round_trip(ext, nodes):
    for fmt in FORMATS:
        route = [k.info() for k in nodes[:5]]
        frame, tags = ext.build_packet(fmt, route, c.CMD_DELIVER, bytes(32), b"", b"hello",
                                       os.urandom(32))
        outs = walk(ext, nodes, range(5), frame, [new_filter() for _ in nodes])
        assert outs[-1].payload == b"hello" and tuple(o.tag for o in outs) == tags

"""Unit and behavioural tests of `fogcore.packet` (docs/packet-format.md).

Behavioural tests take an implementation from `IMPLEMENTATIONS`: the pure-Python reference
always, the compiled backend `fogcore._ext._batch` whenever it is built.
"""

import hashlib
import os
import struct

import nacl.bindings as nb
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import ChaCha20

import fogcore.packet as packet
from fogcore._impl import NO_EXTENSIONS, compiled_available
from fogcore.packet import (
    Kind,
    NodeInfo,
    NodeKeys,
    Reason,
    ReplyError,
    Surb,
    SurbKey,
    _batch_py,
    _kem_py,
    _sphinx_py,
    build_reply,
    decode_records,
    make_surb,
    open_reply,
)
from fogcore.packet import _hop_py as c
from fogcore.packet.outcome import OUTCOME_RECORD, OUTCOME_RECORD_SIZE

IMPLEMENTATIONS = {"py": _batch_py}
_compiled = None if NO_EXTENSIONS else compiled_available("_batch")
if _compiled is not None:
    IMPLEMENTATIONS["c"] = _compiled

FORMAT_NAMES = {"sphinx": c.FORMAT_SPHINX, "kem": c.FORMAT_KEM}
MODULES = {"sphinx": _sphinx_py, "kem": _kem_py}


class SetFilter:
    """Exact replay filter with the `check_and_add` contract of fogcore.replay."""

    def __init__(self):
        self.seen = set()

    def check_and_add(self, tag: bytes) -> bool:
        seen = tag in self.seen
        self.seen.add(tag)
        return seen


def make_nodes(n: int, salt: str = "") -> list[NodeKeys]:
    return [NodeKeys.from_seed(hashlib.sha256(f"node{salt}{i}".encode()).digest())
            for i in range(n)]


def build(impl, fmt: str, nodes, message: bytes, seed: bytes, mailbox: bytes = b"M" * 32):
    return impl.build_packet(FORMAT_NAMES[fmt], [k.info() for k in nodes], c.CMD_DELIVER,
                             mailbox, b"", message, seed)


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def impl(request):
    return IMPLEMENTATIONS[request.param]


@pytest.fixture(params=["sphinx", "kem"])
def fmt(request):
    return request.param


# ---- constants and primitives -------------------------------------------------------------


def test_sizes_match_the_document():
    assert (_sphinx_py.SLOT_SIZE, _sphinx_py.HEADER_SIZE, _sphinx_py.PACKET_SIZE) == (
        50, 298, 2346)
    assert (_kem_py.SLOT_SIZE, _kem_py.HEADER_SIZE, _kem_py.PACKET_SIZE) == (82, 458, 2506)
    assert packet.FRAME_SIZES == {"sphinx": 2350, "kem": 2510}
    assert packet.MESSAGE_CAPACITY == 2030 and packet.PAYLOAD_SIZE == 2048
    assert packet.BATCH_STRIDE >= max(packet.FRAME_SIZES.values())
    assert OUTCOME_RECORD_SIZE == 96


def test_kdf_is_blake2b_then_chacha20():
    label, data = b"fogcore/sphinx/v1/hop", bytes(range(64))
    key = hashlib.blake2b(data, key=label, digest_size=32).digest()
    enc = Cipher(ChaCha20(key, bytes(16)), None).encryptor()
    assert c.kdf(label, data, 256) == enc.update(bytes(256))
    assert c.kdf(label, data, 100) == c.kdf(label, data, 256)[:100]
    assert c.kdf(b"fogcore/kem/v2/hop", data, 32) != c.kdf(label, data, 32)


def test_hop_keys_layout():
    raw = c.kdf(b"x", b"y", 256)
    k = c.HopKeys(raw)
    assert (k.mac, k.stream, k.lioness, k.tag, k.blind) == (
        raw[:32], raw[32:64], raw[64:192], raw[192:224], raw[224:])


def test_mac_is_truncated_hmac_sha256():
    import hmac as std_hmac

    key, beta = os.urandom(32), os.urandom(250)
    assert c.mac(key, beta) == std_hmac.new(key, beta, "sha256").digest()[:16]
    assert c.mac_ok(key, beta, c.mac(key, beta))
    assert not c.mac_ok(key, beta, bytes(16))


def test_lioness_is_a_wide_block_permutation():
    keys, block = os.urandom(128), os.urandom(2048)
    ct = c.lioness_encrypt(keys, block)
    assert c.lioness_decrypt(keys, ct) == block
    assert c.lioness_encrypt(keys, c.lioness_decrypt(keys, block)) == block
    # One flipped ciphertext bit, anywhere, changes both halves of the decryption.
    for pos in (0, 31, 32, 2047):
        bad = bytearray(ct)
        bad[pos] ^= 1
        out = c.lioness_decrypt(keys, bytes(bad))
        assert out[:32] != block[:32] and out[32:] != block[32:]


def test_payload_plaintext_round_trip_and_bounds():
    for message in (b"", b"x", bytes(range(256)) * 7, b"z" * 2030):
        plain = c.payload_plaintext(message)
        assert len(plain) == 2048 and plain[:16] == bytes(16)
        assert c.open_plaintext(plain) == message
    with pytest.raises(ValueError):
        c.payload_plaintext(b"z" * 2031)
    bad = bytearray(c.payload_plaintext(b"hi"))
    bad[3] = 1
    assert c.open_plaintext(bytes(bad)) is None
    too_long = bytes(16) + struct.pack(">H", 2031) + bytes(2030)
    assert c.open_plaintext(too_long) is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", 1),
        (b"\x01\x01\x09", 1),
        (b"\x02\x01\x09\x2a" + bytes(2346), 2),
        (b"\x01\x03\x09\x2a" + bytes(2346), 3),
        (b"\x01\x00\x09\x2a" + bytes(2346), 3),
        (b"\x01\x01\x09\x2b" + bytes(2347), 1),
        (b"\x01\x01\x09\x2a" + bytes(2345), 1),
        (b"\x01\x02\x09\x2a" + bytes(2346), 1),
    ],
)
def test_frame_checks(frame, reason):
    with pytest.raises(c.FrameError) as err:
        c.parse_frame(frame, _batch_py.PACKET_SIZES)
    assert err.value.reason == reason


def test_frame_in_a_batch_slot_may_be_followed_by_other_bytes():
    frame = b"\x01\x02\x09\xca" + bytes(2506)
    assert c.parse_frame(frame + bytes(50), _batch_py.PACKET_SIZES, exact=False) == 2
    with pytest.raises(c.FrameError):
        c.parse_frame(frame + bytes(50), _batch_py.PACKET_SIZES, exact=True)


# ---- keys -------------------------------------------------------------------------------


def test_node_keys():
    seed = bytes(range(32))
    k = NodeKeys.from_seed(seed)
    assert NodeKeys.from_seed(seed).routing_secret == k.routing_secret
    assert NodeKeys.from_seed(seed, epoch=1).routing_secret != k.routing_secret
    assert k.node_id == nb.crypto_sign_seed_keypair(seed)[0]
    assert k.routing_public == nb.crypto_scalarmult_base(k.routing_secret)
    sig = k.sign(b"descriptor")
    assert nb.crypto_sign_open(sig + b"descriptor", k.node_id) == b"descriptor"
    r = k.rotate()
    assert r.node_id == k.node_id and r.routing_secret != k.routing_secret
    assert k.info() == NodeInfo(k.node_id, k.routing_public)
    with pytest.raises(ValueError):
        NodeKeys(b"short", bytes(32))


_P = 2**255 - 19
# u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519 (RFC 7748 context).
_SMALL_ORDER_U = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    _P - 1,
]


def test_node_info_rejects_unusable_routing_keys():
    honest = NodeKeys.from_seed(bytes(32))
    NodeInfo(honest.node_id, honest.routing_public)
    for u in _SMALL_ORDER_U + [_P, _P + 1, 2**255 - 1]:
        with pytest.raises(ValueError):
            NodeInfo(honest.node_id, (u % 2**256).to_bytes(32, "little"))
    # A key with a torsion component: the honest point plus a point of order 8 (on Edwards).
    ed = nb.crypto_scalarmult_ed25519_base_noclamp(bytes([9]) + bytes(31))
    torsion = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
    mixed = nb.crypto_core_ed25519_add(ed, torsion)
    u_mixed = _u_from_edwards(mixed)
    assert not nb.crypto_core_ed25519_is_valid_point(mixed)
    with pytest.raises(ValueError):
        NodeInfo(honest.node_id, u_mixed)
    with pytest.raises(ValueError):
        NodeInfo(b"short", honest.routing_public)


def _u_from_edwards(point: bytes) -> bytes:
    y = int.from_bytes(point, "little") & (2**255 - 1)
    u = (1 + y) * pow(1 - y, _P - 2, _P) % _P
    return u.to_bytes(32, "little")


def test_edwards_form_maps_back():
    k = NodeKeys.from_seed(b"\x07" * 32)
    ed = k.info().routing_key_edwards
    assert nb.crypto_sign_ed25519_pk_to_curve25519(ed) == k.routing_public


# ---- sphinx creation: the two correct ways give the same bytes ----------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_sphinx_scalar_creation_equals_sequential(n):
    route = [k.info() for k in make_nodes(n)]
    final = c.make_slot(_sphinx_py.SLOT_SIZE, c.CMD_DELIVER, 0, b"m" * 32)
    for seed in (bytes(32), b"\xff" * 32, os.urandom(32)):
        seq = _sphinx_py.build_header(route, final, seed, "sequential")
        for method in ("scalar", "reencoded"):
            other = _sphinx_py.build_header(route, final, seed, method)
            assert seq[0] == other[0]
            assert [k.raw for k in seq[1]] == [k.raw for k in other[1]]


def test_reencoded_scalar_multiplies_by_the_residue():
    L = 2**252 + 27742317777372353535851937790883648493
    y = NodeKeys.from_seed(b"\x05" * 32)
    hits = 0
    for _ in range(64):
        z = int.from_bytes(os.urandom(32), "little") % L
        k = _sphinx_py.clamped_scalar_for(z)
        zb = z.to_bytes(32, "little")
        want = nb.crypto_sign_ed25519_pk_to_curve25519(
            nb.crypto_scalarmult_ed25519_noclamp(zb, y.info().routing_key_edwards))
        if k is not None:
            hits += 1
            assert nb.crypto_scalarmult(k, y.routing_public) == want
            continue
        # §2.6: otherwise a precomputed multiple [t]Y almost always gives one.
        for t in range(2, 18):
            k = _sphinx_py.clamped_scalar_for(z * pow(t, -1, L) % L)
            if k is not None:
                ty = nb.crypto_sign_ed25519_pk_to_curve25519(nb.crypto_scalarmult_ed25519_noclamp(
                    t.to_bytes(32, "little"), y.info().routing_key_edwards))
                assert nb.crypto_scalarmult(k, ty) == want
                break
    assert 10 < hits < 54  # about half of all residues have a clamped representative


def test_naive_blinding_product_is_wrong():
    """X25519 by a product of blinding factors is not the sequential result (clamping)."""
    x, b = os.urandom(32), os.urandom(32)
    seq = nb.crypto_scalarmult(b, nb.crypto_scalarmult_base(x))
    L = 2**252 + 27742317777372353535851937790883648493
    naive = (int.from_bytes(x, "little") * int.from_bytes(b, "little") % L).to_bytes(32, "little")
    assert nb.crypto_scalarmult_base(naive) != seq


# ---- behaviour, on every implementation -----------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5])
def test_round_trip(impl, fmt, n):
    nodes = make_nodes(n)
    frame, tags = build(impl, fmt, nodes, b"hello", os.urandom(32))
    assert len(tags) == n
    for i, node in enumerate(nodes):
        assert len(frame) == packet.FRAME_SIZES[fmt]
        out = impl.process_packet(node, frame, SetFilter())
        assert out.tag == tags[i] and out.flags == 0 and out.fmt == FORMAT_NAMES[fmt]
        if i < n - 1:
            assert out.kind == Kind.FORWARD and out.address == nodes[i + 1].node_id
            assert out.packet[:4] == frame[:4]
            frame = out.packet
        else:
            assert out.kind == Kind.DELIVER and out.payload == b"hello"
            assert out.address == b"M" * 32


def test_public_api(fmt):
    nodes = make_nodes(3)
    seed = os.urandom(32)
    built = packet.build_packet([k.info() for k in nodes], b"D" * 32, b"msg", fmt,
                                rng=lambda n: seed[:n])
    assert built.first_hop == nodes[0].node_id
    again = packet.build_packet([k.info() for k in nodes], b"D" * 32, b"msg", fmt,
                                rng=lambda n: seed[:n])
    assert again == built
    frame = built.packet
    for node in nodes:
        out = packet.process_packet(node, frame, SetFilter())
        frame = out.packet
    assert out.kind == Kind.DELIVER and out.payload == b"msg"
    with pytest.raises(ValueError):
        packet.build_packet([k.info() for k in nodes], b"D" * 32, b"x", "onion")
    with pytest.raises(ValueError):
        packet.build_packet([k.info() for k in nodes], b"D" * 31, b"x", fmt)
    with pytest.raises(ValueError):
        packet.build_packet([k.info() for k in make_nodes(6)], b"D" * 32, b"x", fmt)
    with pytest.raises(ValueError):
        packet.build_packet([k.info() for k in nodes], b"D" * 32, b"x" * 2031, fmt)


def test_replay_rejected_and_tag_recorded_only_after_mac(impl, fmt):
    nodes = make_nodes(2)
    frame, tags = build(impl, fmt, nodes, b"x", os.urandom(32))
    flt = SetFilter()
    bad = bytearray(frame)
    bad[-2049] ^= 1  # last MAC byte
    assert impl.process_packet(nodes[0], bytes(bad), flt).reason == Reason.BAD_MAC
    assert flt.seen == set()
    assert impl.process_packet(nodes[0], frame, flt).kind == Kind.FORWARD
    out = impl.process_packet(nodes[0], frame, flt)
    assert (out.kind, out.reason, out.tag) == (Kind.REJECT, Reason.REPLAY, tags[0])


def test_wrong_node_rejects_with_bad_mac(impl, fmt):
    nodes = make_nodes(2)
    frame, _ = build(impl, fmt, nodes, b"x", os.urandom(32))
    out = impl.process_packet(nodes[1], frame, SetFilter())
    assert out.reason == Reason.BAD_MAC and out.tag is None


def test_low_order_elements_rejected(impl, fmt):
    nodes = make_nodes(1)
    frame, _ = build(impl, fmt, nodes, b"x", os.urandom(32))
    for u in _SMALL_ORDER_U:
        bad = frame[:4] + u.to_bytes(32, "little") + frame[36:]
        assert impl.process_packet(nodes[0], bad, SetFilter()).reason == Reason.LOW_ORDER


def test_kem_key_derivation_binds_the_node_public_key(impl):
    """A node whose routing secret is right but whose public key differs derives other
    keys: the KDF input contains pk."""
    nodes = make_nodes(1)
    frame, _ = build(impl, "kem", nodes, b"x", os.urandom(32))

    class Imposter:
        routing_secret = nodes[0].routing_secret
        routing_public = os.urandom(32)

    assert impl.process_packet(Imposter(), frame, SetFilter()).reason == Reason.BAD_MAC


def test_bad_command_and_must_be_zero_fields(impl, fmt):
    mod = MODULES[fmt]
    node = make_nodes(1)[0]
    route = [node.info()]
    slots = [
        c.make_slot(mod.SLOT_SIZE, 0x00, 0, b"m" * 32),
        c.make_slot(mod.SLOT_SIZE, 0x04, 0, b"m" * 32),
        c.make_slot(mod.SLOT_SIZE, c.CMD_DELIVER, 0, b"m" * 32, b"\x01"),
    ]
    if fmt == "kem":
        slots += [
            c.make_slot(mod.SLOT_SIZE, c.CMD_DELIVER, 0, b"m" * 32, b"", b"\x01"),
            c.make_slot(mod.SLOT_SIZE, c.CMD_REPLY, 0, b"m" * 32, b"s" * 16, b"\x01"),
        ]
    for slot in slots:
        header, keys = mod.build_header(route, slot, os.urandom(32))
        payload = c.lioness_encrypt(keys[0].lioness, c.payload_plaintext(b"x"))
        frame = c.pack_frame_header(mod.FORMAT, mod.PACKET_SIZE) + header + payload
        out = impl.process_packet(node, frame, SetFilter())
        assert (out.reason, out.tag) == (Reason.BAD_COMMAND, keys[0].tag)


def test_flags_are_reported_not_checked(impl, fmt):
    mod = MODULES[fmt]
    node = make_nodes(1)[0]
    slot = c.make_slot(mod.SLOT_SIZE, c.CMD_DELIVER, 0xA5, b"m" * 32)
    header, keys = mod.build_header([node.info()], slot, os.urandom(32))
    payload = c.lioness_encrypt(keys[0].lioness, c.payload_plaintext(b"flagged"))
    frame = c.pack_frame_header(mod.FORMAT, mod.PACKET_SIZE) + header + payload
    out = impl.process_packet(node, frame, SetFilter())
    assert (out.kind, out.flags, out.payload) == (Kind.DELIVER, 0xA5, b"flagged")


def test_payload_tampering_caught_at_destination(impl, fmt):
    nodes = make_nodes(3)
    frame, _ = build(impl, fmt, nodes, b"secret", os.urandom(32))
    bad = bytearray(frame)
    bad[-100] ^= 0x40
    frame = bytes(bad)
    for node in nodes[:-1]:
        out = impl.process_packet(node, frame, SetFilter())
        assert out.kind == Kind.FORWARD
        frame = out.packet
    assert impl.process_packet(nodes[-1], frame, SetFilter()).reason == Reason.BAD_PAYLOAD


def test_processing_accepts_any_buffer(impl, fmt):
    nodes = make_nodes(1)
    frame, _ = build(impl, fmt, nodes, b"buf", os.urandom(32))
    for view in (bytearray(frame), memoryview(frame)):
        out = impl.process_packet(nodes[0], view, SetFilter())
        assert out.kind == Kind.DELIVER and out.payload == b"buf"


# ---- SURBs ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 5])
def test_surb_round_trip(impl, fmt, n):
    nodes = make_nodes(n)
    surb, key = make_surb([k.info() for k in nodes], b"O" * 32, fmt)
    surb2 = Surb.from_bytes(surb.to_bytes())
    key2 = SurbKey.from_bytes(key.to_bytes())
    assert (surb2, key2) == (surb, key)
    assert len(surb.to_bytes()) == 65 + MODULES[fmt].HEADER_SIZE
    first, frame = build_reply(surb2, b"the answer")
    assert first == nodes[0].node_id
    for i, node in enumerate(nodes):
        out = impl.process_packet(node, frame, SetFilter())
        assert out.tag == key.tags[i]
        frame = out.packet
    assert out.kind == Kind.REPLY and out.surb_id == key.surb_id and out.address == b"O" * 32
    assert open_reply(key2, out.payload) == b"the answer"
    bad = bytearray(out.payload)
    bad[7] ^= 1
    with pytest.raises(ReplyError):
        open_reply(key, bytes(bad))
    with pytest.raises(ReplyError):
        open_reply(key, out.payload[:-1])


def test_surb_is_single_use(impl, fmt):
    nodes = make_nodes(2)
    surb, _ = make_surb([k.info() for k in nodes], b"O" * 32, fmt)
    flt = SetFilter()
    assert impl.process_packet(nodes[0], build_reply(surb, b"a")[1], flt).kind == Kind.FORWARD
    out = impl.process_packet(nodes[0], build_reply(surb, b"b")[1], flt)
    assert out.reason == Reason.REPLAY


def test_malformed_surbs():
    for data in (b"", b"\x09" + bytes(400), b"\x01" + bytes(10)):
        with pytest.raises(ReplyError):
            Surb.from_bytes(data)
    for data in (b"", b"\x01\x00" + bytes(48), b"\x01\x06" + bytes(48 + 960),
                 b"\x01\x01" + bytes(48 + 159)):
        with pytest.raises(ReplyError):
            SurbKey.from_bytes(data)
    with pytest.raises(ValueError):
        make_surb([], b"O" * 32)
    with pytest.raises(ValueError):
        make_surb([k.info() for k in make_nodes(1)], b"O" * 31)


# ---- batches ------------------------------------------------------------------------------


def _mixed_batch(impl):
    """A batch exercising every outcome, with what `process_packet` says of each frame."""
    nodes = make_nodes(2)
    node = nodes[0]
    frames = []
    for fmt in ("sphinx", "kem"):
        frames.append(build(impl, fmt, nodes, b"fwd", os.urandom(32))[0])
        frames.append(build(impl, fmt, nodes[:1], b"deliver " + fmt.encode(), os.urandom(32))[0])
        surb, _ = make_surb([node.info()], b"O" * 32, fmt)
        frames.append(build_reply(surb, b"reply")[1])
    frames.append(frames[0])  # replay inside the batch
    low_order = frames[1][:4] + bytes(32) + frames[1][36:]
    frames += [b"\x01\x01\x00\x05", b"\x07" * 9, os.urandom(2510), low_order]
    return node, frames


def test_batch_matches_single_packets(impl):
    node, frames = _mixed_batch(impl)
    stride = packet.BATCH_STRIDE
    buf = bytearray(stride * len(frames))
    for i, f in enumerate(frames):
        buf[i * stride : i * stride + len(f)] = f
    records = bytearray(OUTCOME_RECORD_SIZE * len(frames))
    impl.process_batch(node, buf, len(frames), SetFilter(), records)
    got = decode_records(records, len(frames), buf, stride)
    flt = SetFilter()
    want = [impl.process_packet(node, f, flt) for f in frames]
    assert got == want
    kinds = {o.kind for o in got}
    assert kinds == {Kind.FORWARD, Kind.DELIVER, Kind.REPLY, Kind.REJECT}
    for i, o in enumerate(got):
        fields = OUTCOME_RECORD.unpack_from(records, i * OUTCOME_RECORD_SIZE)
        if o.kind == Kind.FORWARD:
            assert fields[6] == 0 and fields[4] == len(frames[i])
        if o.kind == Kind.REJECT:
            assert fields[2] == 0 and fields[4] == fields[6] == 0


def test_batch_records_identical_across_implementations():
    if len(IMPLEMENTATIONS) < 2:
        pytest.skip("only the reference is available")
    node, frames = _mixed_batch(_batch_py)
    results = []
    for impl in IMPLEMENTATIONS.values():
        stride = packet.BATCH_STRIDE
        buf = bytearray(stride * len(frames))
        for i, f in enumerate(frames):
            buf[i * stride : i * stride + len(f)] = f
        records = bytearray(OUTCOME_RECORD_SIZE * len(frames))
        impl.process_batch(node, buf, len(frames), SetFilter(), records)
        results.append((bytes(records), decode_records(records, len(frames), buf, stride)))
    assert all(r == results[0] for r in results)


def test_batch_argument_errors(impl):
    node = make_nodes(1)[0]
    with pytest.raises((ValueError, TypeError, BufferError)):
        impl.process_batch(node, bytearray(100), 1, SetFilter(), bytearray(96))
    with pytest.raises((ValueError, TypeError, BufferError)):
        impl.process_batch(node, bytes(2560), 1, SetFilter(), bytearray(96))
    with pytest.raises((ValueError, TypeError, BufferError)):
        impl.process_batch(node, bytearray(2560), 1, SetFilter(), bytearray(95))


def test_public_batch_allocates_records():
    node = make_nodes(1)[0]
    built = packet.build_packet([node.info()], b"D" * 32, b"hi", "kem")
    buf = bytearray(packet.BATCH_STRIDE)
    buf[: len(built.packet)] = built.packet
    records = packet.process_batch(node, buf, 1, SetFilter())
    [out] = decode_records(records, 1, buf, packet.BATCH_STRIDE)
    assert out.kind == Kind.DELIVER and out.payload == b"hi" and out.tag == built.tags[0]


def test_with_the_node_replay_filter(impl, fmt):
    """The real per-epoch filter works as the `replay_filter` argument."""
    replay = pytest.importorskip("fogcore.replay")
    nodes = make_nodes(2)
    flt = replay.ReplayFilter(1000, 1e-6)
    frame, _ = build(impl, fmt, nodes, b"x", os.urandom(32))
    assert impl.process_packet(nodes[0], frame, flt).kind == Kind.FORWARD
    assert impl.process_packet(nodes[0], frame, flt).reason == Reason.REPLAY
    assert len(flt) == 1

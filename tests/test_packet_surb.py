"""SURBs on both implementations: `fogcore.packet.surb` runs on the compiled primitives when
they are built, and every byte it makes or opens equals what the reference makes."""

import hashlib

import pytest
from conftest import IMPL_MODES, load_impl

from fogcore._impl import NO_EXTENSIONS
from fogcore.packet import NodeKeys, _sphinx_py, surb
from fogcore.packet import _hop_py as c
from fogcore.packet.outcome import Kind
from fogcore.replay import ReplayFilterPy

FORMATS = ["sphinx", "kem"]


def use_implementation(monkeypatch, mode: str) -> None:
    """Point the SURB module at the compiled primitives ("c") or the reference ("py")."""
    monkeypatch.setattr(surb, "_hop", load_impl(mode, "_hop"))
    monkeypatch.setattr(surb, "_HEADER_BUILDERS", {
        c.FORMAT_SPHINX: load_impl(mode, "_sphinx"),
        c.FORMAT_KEM: load_impl(mode, "_kem"),
    })


def nodes(n: int) -> list[NodeKeys]:
    return [NodeKeys.from_seed(hashlib.sha256(b"surb node %d" % i).digest()) for i in range(n)]


def fixed(seed: bytes):
    return lambda n: hashlib.sha256(seed).digest()[:n]


def test_compiled_primitives_are_used_when_built():
    assert surb.IMPLEMENTATION == ("py" if NO_EXTENSIONS else "c")
    if not NO_EXTENSIONS:
        assert surb._hop is not c
        assert surb._HEADER_BUILDERS[c.FORMAT_SPHINX] is not _sphinx_py


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("hops", [1, 3, 5])
def test_make_build_open_identical_on_both(monkeypatch, fmt, hops):
    route = [k.info() for k in nodes(hops)]
    results = {}
    for mode in IMPL_MODES:
        use_implementation(monkeypatch, mode)
        made = [surb.make_surb(route, b"O" * 32, fmt, rng=fixed(b"seed"), method=method)
                for method in ("sequential", "reencoded")]
        assert made[0] == made[1]  # the method never changes a byte
        s, key = made[0]
        first, frame = surb.build_reply(s, b"the answer")
        results[mode] = (s.to_bytes(), key.to_bytes(), first, frame)
    assert len(set(results.values())) == 1


@pytest.mark.parametrize("mode", IMPL_MODES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_reply_round_trip_and_tampering(monkeypatch, mode, fmt):
    use_implementation(monkeypatch, mode)
    keys = nodes(3)
    s, key = surb.make_surb([k.info() for k in keys], b"O" * 32, fmt)
    _, frame = surb.build_reply(s, b"x" * c.MESSAGE_CAPACITY)
    for i, node in enumerate(keys):
        out = load_impl(mode, "_batch").process_packet(node, frame,
                                                             ReplayFilterPy(64, 1e-9))
        assert out.tag == key.tags[i]
        frame = out.packet
    assert out.kind == Kind.REPLY and out.surb_id == key.surb_id
    opened = {}
    for other in IMPL_MODES:  # a reply opens the same on either implementation
        use_implementation(monkeypatch, other)
        opened[other] = surb.open_reply(key, out.payload)
        bad = bytearray(out.payload)
        bad[100] ^= 1
        with pytest.raises(surb.ReplyError):
            surb.open_reply(key, bytes(bad))
        with pytest.raises(surb.ReplyError):
            surb.open_reply(key, out.payload[:-1])
        with pytest.raises(ValueError):
            surb.build_reply(s, b"x" * (c.MESSAGE_CAPACITY + 1))
    assert set(opened.values()) == {b"x" * c.MESSAGE_CAPACITY}


@pytest.mark.parametrize("mode", IMPL_MODES)
def test_bad_arguments_same_errors(monkeypatch, mode):
    use_implementation(monkeypatch, mode)
    route = [k.info() for k in nodes(2)]
    for bad_route in ([], route * 3):
        with pytest.raises(ValueError):
            surb.make_surb(bad_route, b"O" * 32)
    with pytest.raises(ValueError):
        surb.make_surb(route, b"O" * 31)
    with pytest.raises(ValueError):
        surb.make_surb(route, b"O" * 32, method="fastest")

"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03): the RFC's vectors, strict rejection
of malformed keys and proofs, and byte-identical results from the compiled module and the
pure-Python reference."""

import hashlib
import json
import pathlib
import random

import pytest
from conftest import load_impl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogcore import _vrf_py, vrf
from fogcore._impl import NO_EXTENSIONS
from fogcore._vrf_py import (
    BASE,
    IDENTITY,
    L,
    P,
    point_add,
    point_mul,
    point_to_string,
    string_to_point,
)

VECTORS_FILE = pathlib.Path(__file__).parent / "vectors" / "rfc9381_edwards25519.json"
TAI = json.loads(VECTORS_FILE.read_text())[
    "ECVRF-EDWARDS25519-SHA512-TAI (suite 0x03), RFC 9381 App. B.3"
]
h = bytes.fromhex

needs_compiled = pytest.mark.skipif(NO_EXTENSIONS, reason="compiled extensions disabled")


@pytest.fixture
def impl(impl_mode):
    return load_impl(impl_mode, "_vrf")


def _compiled():
    return load_impl("c", "_vrf")


# ---- known answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", TAI, ids=[f"B.3-{i + 1}" for i in range(len(TAI))])
def test_rfc9381_vectors(impl, vector):
    sk, pk, alpha = h(vector["sk"]), h(vector["pk"]), h(vector["alpha"])
    assert impl.public_key(sk) == pk
    proof = impl.prove(sk, alpha)
    assert proof.hex() == vector["pi"]
    assert impl.proof_to_hash(proof).hex() == vector["beta"]
    assert impl.verify(pk, proof, alpha).hex() == vector["beta"]


def test_vector_file_is_the_tai_suite():
    assert len(TAI) == 3
    # the first example's proof starts with Gamma = 8657..., not a copy with a wrong proof
    assert TAI[0]["pi"].startswith("8657106690b5526245a92b003bb079cc")


def test_public_key_is_the_ed25519_public_key(impl):
    import nacl.bindings

    for vector in TAI:
        pk, _ = nacl.bindings.crypto_sign_seed_keypair(h(vector["sk"]))
        assert impl.public_key(h(vector["sk"])) == pk


@pytest.mark.parametrize("vector", TAI[:1])
def test_public_api(vector):
    sk, pk, alpha = h(vector["sk"]), h(vector["pk"]), h(vector["alpha"])
    proof = vrf.prove(sk, alpha)
    assert vrf.public_key(sk) == pk
    assert vrf.verify(pk, proof, alpha) == vrf.proof_to_hash(proof) == h(vector["beta"])
    assert len(proof) == vrf.PROOF_BYTES and len(vrf.verify(pk, proof, alpha)) == 64
    with pytest.raises(vrf.InvalidProof):
        vrf.verify(pk, proof, alpha + b"x")
    with pytest.raises(vrf.InvalidProof):
        vrf.proof_to_hash(proof[:79])
    assert issubclass(vrf.InvalidProof, ValueError)
    assert vrf.IMPLEMENTATION == ("py" if NO_EXTENSIONS else "c")


def test_accepts_any_buffer(impl):
    vector = TAI[1]
    sk, pk, alpha = h(vector["sk"]), h(vector["pk"]), h(vector["alpha"])
    proof = impl.prove(bytearray(sk), memoryview(alpha))
    assert proof.hex() == vector["pi"]
    assert impl.verify(memoryview(pk), bytearray(proof), bytearray(alpha)) == h(vector["beta"])


# ---- rejection of malformed input ------------------------------------------------------------

SK, PK, ALPHA = h(TAI[2]["sk"]), h(TAI[2]["pk"]), h(TAI[2]["alpha"])
PI = h(TAI[2]["pi"])


def test_prove_rejects_wrong_key_length(impl):
    for bad in (b"", SK[:31], SK + b"\x00"):
        with pytest.raises(ValueError):
            impl.prove(bad, ALPHA)
        with pytest.raises(ValueError):
            impl.public_key(bad)


def test_wrong_lengths_are_invalid(impl):
    assert impl.verify(PK, PI[:79], ALPHA) is None
    assert impl.verify(PK, PI + b"\x00", ALPHA) is None
    assert impl.verify(PK[:31], PI, ALPHA) is None
    assert impl.verify(PK + b"\x00", PI, ALPHA) is None
    assert impl.proof_to_hash(PI[:79]) is None
    assert impl.proof_to_hash(b"") is None


def test_wrong_alpha_or_key_is_invalid(impl):
    assert impl.verify(PK, PI, ALPHA + b"\x00") is None
    assert impl.verify(PK, PI, b"") is None
    assert impl.verify(h(TAI[0]["pk"]), PI, ALPHA) is None


def test_every_byte_of_the_proof_matters(impl, impl_mode):
    # the pure reference is slow: sample positions there, all 80 in compiled mode
    positions = range(80) if impl_mode == "c" else random.Random(3).sample(range(80), 12)
    for pos in positions:
        tampered = bytearray(PI)
        tampered[pos] ^= 1 << (pos % 8)
        assert impl.verify(PK, bytes(tampered), ALPHA) is None, pos


def test_s_not_reduced_is_invalid(impl):
    s = int.from_bytes(PI[48:], "little")
    for bad_s in (s + L, L, 2**256 - 1):
        proof = PI[:48] + bad_s.to_bytes(32, "little")
        assert impl.verify(PK, proof, ALPHA) is None
        assert impl.proof_to_hash(proof) is None


def _small_order_points() -> list[bytes]:
    """The encodings of the eight points of order dividing 8."""
    rng = random.Random(8)
    while True:
        candidate = string_to_point(rng.randbytes(32))
        if candidate is None:
            continue
        torsion = point_mul(L, candidate)  # kills the prime-order part
        if not _vrf_py.is_identity(point_mul(4, torsion)):  # order exactly 8
            break
    points = {point_to_string(point_mul(i, torsion)) for i in range(8)}
    assert len(points) == 8
    return sorted(points)


SMALL_ORDER = _small_order_points()


def _noncanonical(point: bytes) -> bytes | None:
    """The same point with y + p in place of y, when that still fits in 255 bits."""
    y = int.from_bytes(point, "little") & (2**255 - 1)
    if y + P >= 2**255:
        return None
    return ((y + P) | (point[31] >> 7) << 255).to_bytes(32, "little")


def test_small_order_public_keys_are_invalid(impl):
    for pk in SMALL_ORDER:
        assert impl.verify(pk, PI, ALPHA) is None


def test_small_order_gamma_is_invalid(impl):
    for gamma in SMALL_ORDER:
        assert impl.verify(PK, gamma + PI[32:], ALPHA) is None
        assert impl.proof_to_hash(gamma + PI[32:]) is None


def test_non_canonical_encodings_are_invalid(impl):
    # x = 0 with the sign bit set: y = 1 and y = p - 1
    sign_on_zero_x = [b"\x01" + bytes(30) + b"\x80", b"\xec" + b"\xff" * 31]
    # y >= p: every value from p to 2^255 - 1, with both signs
    high = [(y | sign << 255).to_bytes(32, "little") for y in range(P, 2**255)
            for sign in (0, 1)]
    for encoding in sign_on_zero_x + high:
        assert string_to_point(encoding) is None
        assert impl.verify(encoding, PI, ALPHA) is None
        assert impl.verify(PK, encoding + PI[32:], ALPHA) is None
        assert impl.proof_to_hash(encoding + PI[32:]) is None


def test_points_off_the_curve_are_invalid(impl):
    rng = random.Random(5)
    found = 0
    while found < 4:
        encoding = rng.randbytes(32)
        if string_to_point(encoding) is not None:
            continue
        found += 1
        assert impl.verify(encoding, PI, ALPHA) is None
        assert impl.verify(PK, encoding + PI[32:], ALPHA) is None


# ---- keys and proofs with a small-order component (RFC 9381 accepts them) --------------------


def _ground_proof(x: int, y_point, alpha: bytes, gamma_offset=IDENTITY) -> bytes:
    """A proof for public key `y_point` made with secret scalar x, where y_point or Gamma
    may carry a torsion component: the nonce is ground until 8 divides c, so that c times
    the torsion vanishes and the RFC's verification equations hold."""
    y_string = point_to_string(y_point)
    hh = _vrf_py.encode_to_curve(y_string, alpha)
    gamma = point_add(point_mul(x, hh), gamma_offset)
    for attempt in range(400):
        k = int.from_bytes(hashlib.sha512(b"grind" + bytes([attempt % 256, attempt // 256]))
                           .digest(), "little") % L
        c = _vrf_py.challenge_generation(
            y_string, point_to_string(hh), point_to_string(gamma),
            point_to_string(point_mul(k, BASE)), point_to_string(point_mul(k, hh)))
        if c % 8 == 0:
            s = (k + c * x) % L
            return point_to_string(gamma) + c.to_bytes(16, "little") + s.to_bytes(32, "little")
    raise AssertionError("no nonce gave 8 | c")


@pytest.fixture(scope="module")
def mixed_order_cases():
    x = int.from_bytes(hashlib.sha512(b"mixed").digest(), "little") % L
    torsion = string_to_point(SMALL_ORDER[3])
    clean = point_mul(x, BASE)
    mixed_key = point_add(clean, torsion)
    alpha = b"mixed order"
    return {
        "mixed_key": (point_to_string(mixed_key), _ground_proof(x, mixed_key, alpha), alpha),
        "mixed_gamma": (point_to_string(clean), _ground_proof(x, clean, alpha, torsion), alpha),
        "clean": (point_to_string(clean), _ground_proof(x, clean, alpha), alpha),
    }


def test_mixed_order_public_key_verifies(impl, mixed_order_cases):
    pk, proof, alpha = mixed_order_cases["mixed_key"]
    assert impl.verify(pk, proof, alpha) == _vrf_py.verify(pk, proof, alpha) is not None
    # the same proof under the key's prime-order part fails (different salt and U)
    assert impl.verify(mixed_order_cases["clean"][0], proof, alpha) is None


def test_mixed_order_gamma_verifies_with_the_same_output(impl, mixed_order_cases):
    pk, proof, alpha = mixed_order_cases["mixed_gamma"]
    beta = impl.verify(pk, proof, alpha)
    assert beta is not None
    # the cofactor in proof_to_hash makes beta independent of Gamma's torsion part
    clean_pk, clean_proof, _ = mixed_order_cases["clean"]
    assert beta == impl.verify(clean_pk, clean_proof, alpha)
    assert proof[:32] != clean_proof[:32]


# ---- compiled and reference agree --------------------------------------------------------------


@needs_compiled
def test_compiled_matches_reference_on_random_inputs():
    compiled = _compiled()
    rng = random.Random(2024)
    for _ in range(12):
        sk = rng.randbytes(32)
        alpha = rng.randbytes(rng.choice([0, 1, 8, 33, 200]))
        proof = compiled.prove(sk, alpha)
        assert proof == _vrf_py.prove(sk, alpha)
        pk = compiled.public_key(sk)
        assert pk == _vrf_py.public_key(sk)
        assert compiled.verify(pk, proof, alpha) == _vrf_py.verify(pk, proof, alpha)
        assert compiled.verify(pk, proof, alpha) == compiled.proof_to_hash(proof)


@needs_compiled
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sk=st.binary(min_size=32, max_size=32), alpha=st.binary(max_size=64),
       flip=st.integers(min_value=0, max_value=80 * 8 - 1))
def test_property_prove_verify_and_tamper(sk, alpha, flip):
    compiled = _compiled()
    proof = compiled.prove(sk, alpha)
    pk = compiled.public_key(sk)
    beta = compiled.verify(pk, proof, alpha)
    assert beta is not None and beta == compiled.proof_to_hash(proof)
    tampered = bytearray(proof)
    tampered[flip // 8] ^= 1 << (flip % 8)
    assert compiled.verify(pk, bytes(tampered), alpha) is None


@needs_compiled
@settings(max_examples=40, deadline=None)
@given(pk=st.binary(min_size=32, max_size=32), proof=st.binary(min_size=80, max_size=80))
def test_property_garbage_agrees_and_never_crashes(pk, proof):
    compiled = _compiled()
    assert compiled.verify(pk, proof, b"a") == _vrf_py.verify(pk, proof, b"a")
    assert compiled.proof_to_hash(proof) == _vrf_py.proof_to_hash(proof)

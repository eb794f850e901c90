"""Known-answer tests for every libsodium primitive fogcore calls, on both implementations:
compiled (`fogcore._ext._sodium`, libsodium called from C without the GIL) and pure."""

import hashlib

import pytest
from conftest import load_impl


@pytest.fixture
def prim(impl_mode):
    return load_impl(impl_mode, "_sodium")


h = bytes.fromhex

# RFC 7748 §5.2
X25519_VECTORS = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]


@pytest.mark.parametrize("scalar,point,expected", X25519_VECTORS)
def test_x25519_rfc7748_5_2(prim, scalar, point, expected):
    assert prim.x25519(h(scalar), h(point)) == h(expected)


def test_x25519_rfc7748_6_1_diffie_hellman(prim):
    alice = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = prim.x25519_base(alice)
    bob_pub = prim.x25519_base(bob)
    assert alice_pub == h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert bob_pub == h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert prim.x25519(alice, bob_pub) == shared
    assert prim.x25519(bob, alice_pub) == shared


def test_x25519_rejects_low_order_point(prim):
    with pytest.raises(ValueError):
        prim.x25519(b"\x01" * 32, bytes(32))


@pytest.mark.parametrize("args", [(b"\x01" * 31, b"\x09" + bytes(31)), (b"\x01" * 32, b"x")])
def test_x25519_rejects_wrong_sizes(prim, args):
    with pytest.raises(ValueError):
        prim.x25519(*args)


# RFC 8439 §2.4.2
CHACHA_KEY = bytes(range(32))
CHACHA_NONCE = h("000000000000004a00000000")
SUNSCREEN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    b"future, sunscreen would be it."
)
SUNSCREEN_CT = h(
    "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
    "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
    "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
    "5af90bbf74a35be6b40b8eedf2785e42874d"
)


def test_chacha20_rfc8439_2_4_2(prim):
    assert prim.chacha20_xor(CHACHA_KEY, CHACHA_NONCE, SUNSCREEN, 1) == SUNSCREEN_CT
    assert prim.chacha20_xor(CHACHA_KEY, CHACHA_NONCE, SUNSCREEN_CT, 1) == SUNSCREEN


def test_chacha20_initial_counter_continues_the_stream(prim):
    # The `_ic` entry point: starting at block 2 gives the keystream from byte 64 on.
    tail = prim.chacha20_xor(CHACHA_KEY, CHACHA_NONCE, SUNSCREEN[64:], 2)
    assert tail == SUNSCREEN_CT[64:]


def test_chacha20_empty_and_bad_sizes(prim):
    assert prim.chacha20_xor(CHACHA_KEY, CHACHA_NONCE, b"") == b""
    with pytest.raises(ValueError):
        prim.chacha20_xor(CHACHA_KEY[:31], CHACHA_NONCE, b"x")
    with pytest.raises(ValueError):
        prim.chacha20_xor(CHACHA_KEY, CHACHA_NONCE[:8], b"x")


# RFC 4231 test cases 1, 2, 3, 4, 6, 7 (case 5 is a truncated MAC)
HMAC_VECTORS = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size "
     b"data. The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize("key,data,expected", HMAC_VECTORS)
def test_hmac_sha256_rfc4231(prim, key, data, expected):
    assert prim.hmac_sha256(key, data) == h(expected)


# FIPS 180-2 appendix C
def test_sha512_known_answers(prim):
    assert prim.sha512(b"abc") == h(
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    )
    assert prim.sha512(b"") == h(
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    )


# RFC 7693 appendix A (unkeyed) and the BLAKE2 reference KAT file (keyed, key 00..3f)
def test_blake2b_known_answers(prim):
    assert prim.blake2b(b"abc") == h(
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
        "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
    )
    key = bytes(range(64))
    assert prim.blake2b(b"", key=key) == h(
        "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
        "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568"
    )
    assert prim.blake2b(b"\x00", key=key) == h(
        "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4"
        "187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd"
    )


def test_blake2b_digest_sizes_match_hashlib(prim):
    for size in (1, 16, 32, 64):
        expected = hashlib.blake2b(b"fog", key=b"k" * 32, digest_size=size).digest()
        assert prim.blake2b(b"fog", key=b"k" * 32, digest_size=size) == expected
    with pytest.raises(ValueError):
        prim.blake2b(b"x", key=b"k" * 65)
    with pytest.raises(ValueError):
        prim.blake2b(b"x", digest_size=65)


# RFC 8032 §7.1 tests 1-3: public key = clamp(SHA-512(seed)[:32]) · B
ED25519_VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"),
]
ED25519_BASE = h("5866666666666666666666666666666666666666666666666666666666666666")


def _clamped_scalar(seed: bytes) -> bytes:
    a = bytearray(hashlib.sha512(seed).digest()[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    return bytes(a)


@pytest.mark.parametrize("seed,public", ED25519_VECTORS)
def test_edwards25519_scalarmult_rfc8032(prim, seed, public):
    scalar = _clamped_scalar(h(seed))
    assert prim.ed25519_scalarmult_base_noclamp(scalar) == h(public)
    assert prim.ed25519_scalarmult_noclamp(scalar, ED25519_BASE) == h(public)


def test_edwards25519_rejects_small_order_point(prim):
    identity = b"\x01" + bytes(31)
    with pytest.raises(ValueError):
        prim.ed25519_scalarmult_noclamp(b"\x05" + bytes(31), identity)


def test_compiled_module_reports_its_library():
    from fogcore._impl import NO_EXTENSIONS, compiled_available

    if NO_EXTENSIONS:
        pytest.skip("pure-Python mode: no compiled library")
    info = compiled_available("_sodium").library_info()
    assert info["source"] in {"pynacl", "system", "FOGCORE_LIBSODIUM"}
    assert info["version"]

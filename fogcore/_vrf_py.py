"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03): the pure-Python reference.

Written to follow the RFC step by step with plain big-integer edwards25519 arithmetic, so
that it can be read against the specification and serve as the test oracle for the compiled
module `fogcore._ext._vrf`. It is slow (milliseconds per scalar multiplication) and its
arithmetic is not constant-time: use it for verification, tests and portability, and the
compiled module wherever secret keys are handled in production.

Functions return None where the RFC outputs "INVALID"; `fogcore.vrf` turns that into the
`InvalidProof` exception.
"""

import hashlib

__all__ = [
    "PROOF_BYTES",
    "PUBLIC_KEY_BYTES",
    "SECRET_KEY_BYTES",
    "BETA_BYTES",
    "prove",
    "proof_to_hash",
    "public_key",
    "verify",
]

SECRET_KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32
PROOF_BYTES = 80
BETA_BYTES = 64

# ---- edwards25519 (RFC 8032 §5.1) ---------------------------------------------------------

P = 2**255 - 19  # the field prime
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the main subgroup
D = -121665 * pow(121666, -1, P) % P  # curve constant d of -x^2 + y^2 = 1 + d x^2 y^2
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1
COFACTOR = 8

# Points are extended homogeneous coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z.
IDENTITY = (0, 1, 1, 0)


def _recover_x(y: int, sign: int) -> int | None:
    """The x coordinate of the point with this y and x parity, or None (RFC 8032 §5.1.3)."""
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    if x2 == 0:
        # x = 0 has no negative twin, so a set sign bit is an invalid encoding
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x & 1 != sign:
        x = P - x
    return x


_BY = 4 * pow(5, -1, P) % P
_BX = _recover_x(_BY, 0)
BASE = (_BX, _BY, 1, _BX * _BY % P)


def point_add(p1, p2):
    """p1 + p2 (the unified formula of RFC 8032 §5.1.4; complete on edwards25519)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_neg(p):
    """-p."""
    x, y, z, t = p
    return (-x % P, y, z, -t % P)


def point_mul(k: int, p):
    """k · p by double-and-add (variable time; see the module docstring)."""
    result = IDENTITY
    while k > 0:
        if k & 1:
            result = point_add(result, p)
        p = point_add(p, p)
        k >>= 1
    return result


def point_equal(p1, p2) -> bool:
    """Projective equality: x1/z1 == x2/z2 and y1/z1 == y2/z2."""
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


def is_identity(p) -> bool:
    """True for the neutral element (0, 1)."""
    return point_equal(p, IDENTITY)


def point_to_string(p) -> bytes:
    """RFC 8032 §5.1.2 encoding: y little-endian with the parity of x in bit 255."""
    x, y, z, _ = p
    zi = pow(z, -1, P)
    x, y = x * zi % P, y * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def string_to_point(s: bytes):
    """RFC 8032 §5.1.3 decoding, strict: None for a wrong length, y >= p (non-canonical),
    a y with no x on the curve, or x = 0 with the sign bit set."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def has_small_order(p) -> bool:
    """True when cofactor · p is the identity (order 1, 2, 4 or 8)."""
    return is_identity(point_mul(COFACTOR, p))


# ---- ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381 §5, suite 0x03) -------------------------------

SUITE_STRING = b"\x03"
C_LEN = 16  # challenge length in bytes
Q_LEN = 32  # length of a scalar


def _hash(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def _expand_secret_key(secret_key: bytes) -> tuple[int, bytes]:
    """RFC 8032 §5.1.5: the secret scalar x (clamped) and the nonce prefix."""
    digest = _hash(secret_key)
    scalar = bytearray(digest[:32])
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return int.from_bytes(scalar, "little"), digest[32:]


def _check_secret_key(secret_key) -> bytes:
    secret_key = bytes(secret_key)
    if len(secret_key) != SECRET_KEY_BYTES:
        raise ValueError(f"ECVRF secret key must be {SECRET_KEY_BYTES} bytes")
    return secret_key


def public_key(secret_key) -> bytes:
    """The public key Y = x · B of a 32-byte RFC 8032 secret key (seed)."""
    x, _ = _expand_secret_key(_check_secret_key(secret_key))
    return point_to_string(point_mul(x, BASE))


def encode_to_curve(salt: bytes, alpha: bytes):
    """ECVRF_encode_to_curve_try_and_increment (RFC 9381 §5.4.1.1) with the public key
    string as the salt. Returns the point H (cofactor cleared, never the identity)."""
    for ctr in range(256):
        hash_string = _hash(SUITE_STRING + b"\x01" + salt + alpha + bytes([ctr]) + b"\x00")
        candidate = string_to_point(hash_string[:32])
        if candidate is None:
            continue
        h = point_mul(COFACTOR, candidate)
        if not is_identity(h):
            return h
    # Unreachable in practice: each try fails with probability about 1/2.
    raise ArithmeticError("ECVRF encode_to_curve found no point in 256 tries")


def nonce_generation(prefix: bytes, h_string: bytes) -> int:
    """ECVRF_nonce_generation_RFC8032 (RFC 9381 §5.4.2.2)."""
    return int.from_bytes(_hash(prefix + h_string), "little") % L


def challenge_generation(*points: bytes) -> int:
    """ECVRF_challenge_generation (RFC 9381 §5.4.3) over five encoded points."""
    digest = _hash(SUITE_STRING + b"\x02" + b"".join(points) + b"\x00")
    return int.from_bytes(digest[:C_LEN], "little")


def decode_proof(proof: bytes):
    """ECVRF_decode_proof (RFC 9381 §5.4.4): (Gamma, c, s) or None.

    Beyond the RFC's checks it also refuses a Gamma of small order: such a proof can never
    verify (the challenge would have to commit to a V that depends on the challenge
    itself), so rejecting it early changes no verdict and keeps a low-order point out of
    `proof_to_hash`."""
    if len(proof) != PROOF_BYTES:
        return None
    gamma = string_to_point(proof[:32])
    if gamma is None or has_small_order(gamma):
        return None
    c = int.from_bytes(proof[32 : 32 + C_LEN], "little")
    s = int.from_bytes(proof[32 + C_LEN :], "little")
    if s >= L:
        return None
    return gamma, c, s


def prove(secret_key, alpha) -> bytes:
    """ECVRF_prove (RFC 9381 §5.1): the 80-byte proof pi for `alpha`."""
    secret_key = _check_secret_key(secret_key)
    alpha = bytes(alpha)
    x, prefix = _expand_secret_key(secret_key)
    y_string = point_to_string(point_mul(x, BASE))
    h = encode_to_curve(y_string, alpha)
    h_string = point_to_string(h)
    gamma = point_mul(x, h)
    k = nonce_generation(prefix, h_string)
    c = challenge_generation(
        y_string,
        h_string,
        point_to_string(gamma),
        point_to_string(point_mul(k, BASE)),
        point_to_string(point_mul(k, h)),
    )
    s = (k + c * x) % L
    return point_to_string(gamma) + c.to_bytes(C_LEN, "little") + s.to_bytes(Q_LEN, "little")


def proof_to_hash(proof) -> bytes | None:
    """ECVRF_proof_to_hash (RFC 9381 §5.2): the 64-byte output beta, or None for a
    malformed proof. Meaningful only for a proof that `verify` accepted."""
    decoded = decode_proof(bytes(proof))
    if decoded is None:
        return None
    gamma = decoded[0]
    return _hash(SUITE_STRING + b"\x03" + point_to_string(point_mul(COFACTOR, gamma)) + b"\x00")


def verify(public_key, proof, alpha) -> bytes | None:
    """ECVRF_verify (RFC 9381 §5.3) with validate_key: beta for a valid proof, else None."""
    pk_string, proof, alpha = bytes(public_key), bytes(proof), bytes(alpha)
    y = string_to_point(pk_string)
    # ECVRF_validate_key (§5.4.5): refuse a public key of small order
    if y is None or has_small_order(y):
        return None
    decoded = decode_proof(proof)
    if decoded is None:
        return None
    gamma, c, s = decoded
    h = encode_to_curve(pk_string, alpha)
    u = point_add(point_mul(s, BASE), point_neg(point_mul(c, y)))
    v = point_add(point_mul(s, h), point_neg(point_mul(c, gamma)))
    expected = challenge_generation(
        pk_string, point_to_string(h), proof[:32], point_to_string(u), point_to_string(v)
    )
    if expected != c:
        return None
    return proof_to_hash(proof)

# cython: language_level=3, embedsignature=True
"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03) on libsodium's edwards25519 ops.

What libsodium gives and what this module adds (checked against libsodium's sources):

- `crypto_core_ed25519_add`/`_sub` decode both inputs with `ge25519_frombytes` and check
  only that they lie on the curve. That decoder reduces a y >= p modulo p and accepts
  x = 0 with the sign bit set, both of which RFC 8032 §5.1.3 (and so RFC 9381's
  string_to_point) rejects; `_encoding_ok` adds those two checks. Adding a point to itself is
  how points of any order (the try-and-increment candidate, a proof's Gamma) are doubled,
  so cofactor clearing is three doublings.
- `crypto_scalarmult_ed25519_noclamp` refuses non-canonical points, points of small order
  and points outside the prime-order subgroup, and fails on an identity result or a zero
  scalar; it drops bit 255 of the scalar (ours are all below 2^255). RFC 9381 verification
  must still handle a public key or Gamma with a small-order component, so `_mul_any`
  splits such a point into its prime-order part (recovered as (8^-1 mod L) · 8P) and its
  torsion part, which it multiplies by the scalar modulo 8 with additions.
- The identity is encoded as 01 00 .. 00 and is accepted by add/sub, so zero scalars and
  identity intermediate results are handled explicitly rather than treated as errors.

The Python functions return None where the RFC outputs "INVALID"; `fogcore.vrf` raises.
"""

from libc.string cimport memcmp, memcpy, memset

from fogcore._ext._sodium cimport SodiumAPI, fog_hash_state, sodium_api
from fogcore._ext.includes.fog_wipe cimport fog_wipe

cdef const SodiumAPI *S = sodium_api()

cdef unsigned char SUITE = 0x03
cdef unsigned char _IDENTITY[32]  # the neutral element (0, 1)
cdef unsigned char _ORDER[32]     # L, little-endian
cdef unsigned char _INV8[32]      # 8^-1 mod L, little-endian

_L = 2**252 + 27742317777372353535851937790883648493
memset(_IDENTITY, 0, 32)
_IDENTITY[0] = 1
for _i, _b in enumerate(_L.to_bytes(32, "little")):
    _ORDER[_i] = _b
for _i, _b in enumerate(pow(8, -1, _L).to_bytes(32, "little")):
    _INV8[_i] = _b


# ---- points and scalars ---------------------------------------------------------------------

cdef inline bint _is_identity(const unsigned char *p) noexcept nogil:
    return memcmp(p, _IDENTITY, 32) == 0


cdef bint _is_zero(const unsigned char *s, size_t n) noexcept nogil:
    cdef unsigned char acc = 0
    cdef size_t i
    for i in range(n):
        acc |= s[i]
    return acc == 0


cdef bint _scalar_below_order(const unsigned char *s) noexcept nogil:
    """s < L (s is public: a proof's second scalar)."""
    cdef int i
    for i in range(31, -1, -1):
        if s[i] != _ORDER[i]:
            return s[i] < _ORDER[i]
    return False


cdef bint _encoding_ok(const unsigned char *p) noexcept nogil:
    """The byte-level checks of RFC 8032 §5.1.3 that libsodium's decoder skips: y < p, and
    no sign bit on x = 0 (which happens for y = 1 and y = p - 1 only)."""
    cdef int i
    cdef bint all_ff = True, all_00 = True
    for i in range(1, 31):
        all_ff = all_ff and p[i] == 0xFF
        all_00 = all_00 and p[i] == 0x00
    if all_ff and (p[31] & 0x7F) == 0x7F and p[0] >= 0xED:
        return False
    if all_00 and p[0] == 0x01 and p[31] == 0x80:
        return False
    if all_ff and p[0] == 0xEC and p[31] == 0xFF:
        return False
    return True


cdef bint _decode(const unsigned char *p) noexcept nogil:
    """True when p is a valid RFC 8032 encoding of a curve point (any order)."""
    cdef unsigned char tmp[32]
    # add() fails unless both inputs decode to points on the curve
    return _encoding_ok(p) and S.crypto_core_ed25519_add(tmp, p, p) == 0


cdef int _mul8(unsigned char *out, const unsigned char *p) noexcept nogil:
    """out = 8 · p by three doublings (p of any order, already decoded)."""
    if S.crypto_core_ed25519_add(out, p, p) != 0:
        return -1
    S.crypto_core_ed25519_add(out, out, out)
    S.crypto_core_ed25519_add(out, out, out)
    return 0


cdef int _mul_small(unsigned char *out, unsigned int m, const unsigned char *p) noexcept nogil:
    """out = m · p for 0 <= m < 8, by double-and-add."""
    cdef unsigned char acc[32]
    cdef int bit
    memcpy(acc, _IDENTITY, 32)
    for bit in range(2, -1, -1):
        S.crypto_core_ed25519_add(acc, acc, acc)
        if (m >> bit) & 1:
            if S.crypto_core_ed25519_add(acc, acc, p) != 0:
                return -1
    memcpy(out, acc, 32)
    return 0


cdef void _mul_prime(unsigned char *out, const unsigned char *scalar,
                     const unsigned char *p) noexcept nogil:
    """out = scalar · p for p in the prime-order subgroup, identity result included."""
    if _is_zero(scalar, 32) or S.crypto_scalarmult_ed25519_noclamp(out, scalar, p) != 0:
        memcpy(out, _IDENTITY, 32)


cdef void _mul_base(unsigned char *out, const unsigned char *scalar) noexcept nogil:
    """out = scalar · B, identity result included."""
    if _is_zero(scalar, 32) or S.crypto_scalarmult_ed25519_base_noclamp(out, scalar) != 0:
        memcpy(out, _IDENTITY, 32)


cdef int _mul_any(unsigned char *out, const unsigned char *scalar, const unsigned char *p,
                  bint prime_order) noexcept nogil:
    """out = scalar · p for any decoded curve point p and scalar < 2^255; `prime_order`
    says that crypto_core_ed25519_is_valid_point(p) already held."""
    cdef unsigned char p8[32]
    cdef unsigned char prime_part[32]
    cdef unsigned char torsion[32]
    cdef unsigned char a[32]
    cdef unsigned char b[32]
    if prime_order:
        _mul_prime(out, scalar, p)
        return 0
    if _mul8(p8, p) != 0:
        return -1
    if _is_identity(p8):
        # p has small order, so scalar · p depends only on scalar mod 8
        return _mul_small(out, scalar[0] & 7, p)
    # p = prime_part + torsion with prime_part = 8^-1 · (8p), torsion of order dividing 8
    _mul_prime(prime_part, _INV8, p8)
    if S.crypto_core_ed25519_sub(torsion, p, prime_part) != 0:
        return -1
    _mul_prime(a, scalar, prime_part)
    if _mul_small(b, scalar[0] & 7, torsion) != 0:
        return -1
    return S.crypto_core_ed25519_add(out, a, b)


# ---- the ECVRF steps (RFC 9381 §5) ----------------------------------------------------------

cdef int _encode_to_curve(unsigned char *h, const unsigned char *pk,
                          const unsigned char *alpha, size_t alpha_len) noexcept nogil:
    """ECVRF_encode_to_curve_try_and_increment (§5.4.1.1), salt = the public key string."""
    cdef fog_hash_state st
    cdef unsigned char digest[64]
    cdef unsigned char front[2]
    cdef unsigned char back[2]
    cdef unsigned int ctr
    front[0] = SUITE
    front[1] = 0x01
    back[1] = 0x00
    for ctr in range(256):
        back[0] = <unsigned char>ctr
        S.crypto_hash_sha512_init(&st)
        S.crypto_hash_sha512_update(&st, front, 2)
        S.crypto_hash_sha512_update(&st, pk, 32)
        S.crypto_hash_sha512_update(&st, alpha, alpha_len)
        S.crypto_hash_sha512_update(&st, back, 2)
        S.crypto_hash_sha512_final(&st, digest)
        # _mul8 fails when the candidate is not on the curve
        if not _encoding_ok(digest) or _mul8(h, digest) != 0:
            continue
        if not _is_identity(h):
            return 0
    return -1


cdef void _challenge(unsigned char *c, const unsigned char *y, const unsigned char *h,
                     const unsigned char *gamma, const unsigned char *u,
                     const unsigned char *v) noexcept nogil:
    """ECVRF_challenge_generation (§5.4.3): c (16 bytes) from the five points."""
    cdef unsigned char buf[2 + 5 * 32 + 1]
    cdef unsigned char digest[64]
    buf[0] = SUITE
    buf[1] = 0x02
    memcpy(&buf[2], y, 32)
    memcpy(&buf[34], h, 32)
    memcpy(&buf[66], gamma, 32)
    memcpy(&buf[98], u, 32)
    memcpy(&buf[130], v, 32)
    buf[162] = 0x00
    S.crypto_hash_sha512(digest, buf, sizeof(buf))
    memcpy(c, digest, 16)


cdef void _expand_secret(unsigned char *x, unsigned char *prefix,
                         const unsigned char *sk) noexcept nogil:
    """RFC 8032 §5.1.5: the clamped secret scalar, reduced mod L, and the nonce prefix."""
    cdef unsigned char digest[64]
    cdef unsigned char wide[64]
    S.crypto_hash_sha512(digest, sk, 32)
    memcpy(prefix, &digest[32], 32)
    memset(wide, 0, 64)
    memcpy(wide, digest, 32)
    wide[0] &= 248
    wide[31] &= 127
    wide[31] |= 64
    S.crypto_core_ed25519_scalar_reduce(x, wide)
    fog_wipe(digest, 64)
    fog_wipe(wide, 64)


cdef int vrf_public_key(unsigned char *pk, const unsigned char *sk) noexcept nogil:
    cdef unsigned char x[32]
    cdef unsigned char prefix[32]
    _expand_secret(x, prefix, sk)
    _mul_base(pk, x)
    fog_wipe(x, 32)
    fog_wipe(prefix, 32)
    return 0


cdef int vrf_prove(unsigned char *proof, const unsigned char *sk, const unsigned char *alpha,
                   size_t alpha_len) noexcept nogil:
    cdef unsigned char x[32]
    cdef unsigned char prefix[32]
    cdef unsigned char pk[32]
    cdef unsigned char h[32]
    cdef unsigned char gamma[32]
    cdef unsigned char k[32]
    cdef unsigned char u[32]
    cdef unsigned char v[32]
    cdef unsigned char c[32]
    cdef unsigned char cx[32]
    cdef unsigned char wide[64]
    cdef fog_hash_state st
    cdef int rc = -1
    _expand_secret(x, prefix, sk)
    _mul_base(pk, x)
    if _encode_to_curve(h, pk, alpha, alpha_len) == 0:
        _mul_prime(gamma, x, h)
        # ECVRF_nonce_generation_RFC8032 (§5.4.2.2): k = SHA-512(prefix || H) mod L
        S.crypto_hash_sha512_init(&st)
        S.crypto_hash_sha512_update(&st, prefix, 32)
        S.crypto_hash_sha512_update(&st, h, 32)
        S.crypto_hash_sha512_final(&st, wide)
        S.crypto_core_ed25519_scalar_reduce(k, wide)
        _mul_base(u, k)
        _mul_prime(v, k, h)
        memset(c, 0, 32)
        _challenge(c, pk, h, gamma, u, v)
        # s = (k + c·x) mod L
        S.crypto_core_ed25519_scalar_mul(cx, c, x)
        memcpy(proof, gamma, 32)
        memcpy(&proof[32], c, 16)
        S.crypto_core_ed25519_scalar_add(&proof[48], k, cx)
        rc = 0
    fog_wipe(x, 32)
    fog_wipe(prefix, 32)
    fog_wipe(k, 32)
    fog_wipe(cx, 32)
    fog_wipe(wide, 64)
    fog_wipe(&st, sizeof(st))
    return rc


cdef int _decode_proof(unsigned char *gamma8, bint *gamma_prime,
                      const unsigned char *proof) noexcept nogil:
    """ECVRF_decode_proof (§5.4.4) plus 8 · Gamma; -1 for a malformed proof or a Gamma of
    small order (which can never verify). `gamma_prime` tells whether Gamma is a valid
    prime-order point, the case of every honest proof."""
    if not _scalar_below_order(&proof[48]):
        return -1
    # is_valid_point implies a strict RFC 8032 encoding (x = 0 only occurs at small order)
    gamma_prime[0] = S.crypto_core_ed25519_is_valid_point(proof)
    if not gamma_prime[0] and not _decode(proof):
        return -1
    if _mul8(gamma8, proof) != 0 or _is_identity(gamma8):
        return -1
    return 0


cdef void _beta(unsigned char *beta, const unsigned char *gamma8) noexcept nogil:
    cdef unsigned char buf[2 + 32 + 1]
    buf[0] = SUITE
    buf[1] = 0x03
    memcpy(&buf[2], gamma8, 32)
    buf[34] = 0x00
    S.crypto_hash_sha512(beta, buf, sizeof(buf))


cdef int vrf_proof_to_hash(unsigned char *beta, const unsigned char *proof) noexcept nogil:
    cdef unsigned char gamma8[32]
    cdef bint gamma_prime
    if _decode_proof(gamma8, &gamma_prime, proof) != 0:
        return -1
    _beta(beta, gamma8)
    return 0


cdef int vrf_verify(unsigned char *beta, const unsigned char *pk, const unsigned char *proof,
                    const unsigned char *alpha, size_t alpha_len) noexcept nogil:
    cdef unsigned char y8[32]
    cdef unsigned char gamma8[32]
    cdef unsigned char h[32]
    cdef unsigned char c[32]
    cdef unsigned char t1[32]
    cdef unsigned char t2[32]
    cdef unsigned char u[32]
    cdef unsigned char v[32]
    cdef unsigned char expected[16]
    cdef const unsigned char *s = &proof[48]
    cdef bint gamma_prime
    # string_to_point and ECVRF_validate_key (§5.4.5): no key of small order. A valid
    # prime-order point (every honest key) passes both at once.
    cdef bint y_prime = S.crypto_core_ed25519_is_valid_point(pk)
    if not y_prime and (not _decode(pk) or _mul8(y8, pk) != 0 or _is_identity(y8)):
        return -1
    if _decode_proof(gamma8, &gamma_prime, proof) != 0:
        return -1
    if _encode_to_curve(h, pk, alpha, alpha_len) != 0:
        return -1
    memset(c, 0, 32)
    memcpy(c, &proof[32], 16)
    # U = s·B - c·Y
    _mul_base(t1, s)
    if _mul_any(t2, c, pk, y_prime) != 0 or S.crypto_core_ed25519_sub(u, t1, t2) != 0:
        return -1
    # V = s·H - c·Gamma
    _mul_prime(t1, s, h)
    if _mul_any(t2, c, proof, gamma_prime) != 0 or S.crypto_core_ed25519_sub(v, t1, t2) != 0:
        return -1
    _challenge(expected, pk, h, proof, u, v)
    if S.crypto_verify_16(expected, &proof[32]) != 0:
        return -1
    _beta(beta, gamma8)
    return 0


# ---- Python-facing functions ---------------------------------------------------------------

cdef const unsigned char *_ptr(const unsigned char[::1] view) noexcept:
    # An empty memoryview has no element 0; a length of 0 never reads the pointer.
    return &view[0] if view.shape[0] else <const unsigned char *>b""


def public_key(const unsigned char[::1] secret_key not None):
    """The 32-byte public key Y = x·B of a 32-byte RFC 8032 secret key (seed)."""
    if secret_key.shape[0] != VRF_SECRET_KEY_BYTES:
        raise ValueError("ECVRF secret key must be 32 bytes")
    cdef unsigned char pk[32]
    with nogil:
        vrf_public_key(pk, &secret_key[0])
    return pk[:32]


def prove(const unsigned char[::1] secret_key not None, const unsigned char[::1] alpha not None):
    """ECVRF_prove: the 80-byte proof for `alpha` under a 32-byte secret key (seed)."""
    if secret_key.shape[0] != VRF_SECRET_KEY_BYTES:
        raise ValueError("ECVRF secret key must be 32 bytes")
    cdef unsigned char proof[80]
    cdef const unsigned char *a = _ptr(alpha)
    cdef size_t alen = alpha.shape[0]
    cdef int rc
    with nogil:
        rc = vrf_prove(proof, &secret_key[0], a, alen)
    if rc != 0:  # pragma: no cover - needs 256 failed hash-to-curve tries
        raise ArithmeticError("ECVRF encode_to_curve found no point in 256 tries")
    return proof[:80]


def verify(const unsigned char[::1] public_key not None, const unsigned char[::1] proof not None,
           const unsigned char[::1] alpha not None):
    """ECVRF_verify: the 64-byte output beta if `proof` is valid for `alpha` under
    `public_key`, else None (also for wrong lengths)."""
    if public_key.shape[0] != VRF_PUBLIC_KEY_BYTES or proof.shape[0] != VRF_PROOF_BYTES:
        return None
    cdef unsigned char beta[64]
    cdef const unsigned char *a = _ptr(alpha)
    cdef size_t alen = alpha.shape[0]
    cdef int rc
    with nogil:
        rc = vrf_verify(beta, &public_key[0], &proof[0], a, alen)
    return beta[:64] if rc == 0 else None


def proof_to_hash(const unsigned char[::1] proof not None):
    """ECVRF_proof_to_hash: the 64-byte beta of a proof, or None if it does not decode."""
    if proof.shape[0] != VRF_PROOF_BYTES:
        return None
    cdef unsigned char beta[64]
    cdef int rc
    with nogil:
        rc = vrf_proof_to_hash(beta, &proof[0])
    return beta[:64] if rc == 0 else None

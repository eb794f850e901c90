# cython: language_level=3, embedsignature=True
"""The `sphinx` (v1) packet format in C (docs/packet-format.md §2).

Node side: one X25519 for the shared secret, one for the blinded element. Sender side: the
hops' elements and shared secrets by one of two methods giving the same bytes (§2.6):

- "sequential": the definition, X25519 by x and then by every earlier blinding factor
  (n(n+1)/2 + n - 1 multiplications for n hops: 19 for five);
- "reencoded" (also accepted as "scalar"): the reduced scalar products
  z_i = clamp(x)·clamp(b_0)···clamp(b_{i-1}) mod ℓ.
  Instead of edwards25519 arithmetic and a conversion to Montgomery form, each z_i is
  turned into a 32-byte scalar k_i that X25519's clamping leaves unchanged and that is
  congruent to ±z_i modulo ℓ; then α_i = X25519(k_i, G) (a fixed-base multiplication) and
  s_i = X25519(k_i, Y_i). The u-coordinate does not change under negation, and on the
  prime-order subgroup only the scalar modulo ℓ matters, so the bytes are those of the
  definition at the cost of n fixed-base plus n variable-base multiplications.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy, memset

from fogcore._ext cimport _hop
from fogcore._ext._sodium cimport SodiumAPI, sodium_api
from fogcore._ext.includes.fog_wipe cimport fog_wipe

cdef const SodiumAPI *S = sodium_api()

FORMAT = _hop.FORMAT_SPHINX
NAME = "sphinx"
LABEL_HOP = b"fogcore/sphinx/v1/hop"
LABEL_BUILD = b"fogcore/sphinx/v1/build"
ELEMENT_SIZE = _hop.ELEMENT_SIZE
SLOT_SIZE = SPHINX_SLOT_SIZE
BETA_SIZE = SPHINX_BETA_SIZE
HEADER_SIZE = SPHINX_HEADER_SIZE
PACKET_SIZE = SPHINX_PACKET_SIZE
METHODS = ("sequential", "scalar", "reencoded")

cdef const unsigned char *C_LABEL_HOP = b"fogcore/sphinx/v1/hop"
cdef const unsigned char *C_LABEL_BUILD = b"fogcore/sphinx/v1/build"
cdef size_t LABEL_HOP_LEN = len(LABEL_HOP)
cdef size_t LABEL_BUILD_LEN = len(LABEL_BUILD)

cdef unsigned char BASE_U[32]        # the X25519 base point, u = 9
cdef unsigned char C254[32]          # 2^254 mod ℓ
cdef unsigned char INV8[32]          # 8^-1 mod ℓ

_ELL = 2**252 + 27742317777372353535851937790883648493
memset(BASE_U, 0, 32)
BASE_U[0] = 9
for _i, _b in enumerate((2**254 % _ELL).to_bytes(32, "little")):
    C254[_i] = _b
for _i, _b in enumerate(pow(8, -1, _ELL).to_bytes(32, "little")):
    INV8[_i] = _b


cdef int sphinx_node_keys(unsigned char *keys, const unsigned char *secret,
                          const unsigned char *alpha) noexcept nogil:
    cdef unsigned char data[64]
    memcpy(data, alpha, 32)
    if S.crypto_scalarmult(data + 32, secret, alpha) != 0:
        return -1
    _hop.hop_kdf(keys, _hop.HOP_KEYS_SIZE, C_LABEL_HOP, LABEL_HOP_LEN, data, 64)
    fog_wipe(data, 64)
    return 0


cdef int sphinx_next_element(unsigned char *out, const unsigned char *keys,
                             const unsigned char *alpha) noexcept nogil:
    return S.crypto_scalarmult(out, keys + _hop.HK_BLIND, alpha)


# ---- sender: the hops' shared secrets -------------------------------------------------------

cdef void _clamped_mod_l(unsigned char *z, const unsigned char *k) noexcept nogil:
    """z <- clamp(k) mod ℓ."""
    cdef unsigned char wide[64]
    memset(wide, 0, 64)
    memcpy(wide, k, 32)
    wide[0] &= 248
    wide[31] &= 127
    wide[31] |= 64
    S.crypto_core_ed25519_scalar_reduce(z, wide)
    fog_wipe(wide, 64)


cdef bint _x25519_scalar_from(unsigned char *k, const unsigned char *z,
                              bint negate) noexcept nogil:
    """k <- 2^254 + 8m with m = ((±z) - 2^254) / 8 mod ℓ, when m < 2^251: then clamp(k) = k
    and k ≡ ±z (mod ℓ). False when m is too large (then the other sign works, except with
    probability about 2^-125)."""
    cdef unsigned char t[32]
    cdef unsigned char m[32]
    cdef unsigned char carry = 0
    cdef int i
    if negate:
        S.crypto_core_ed25519_scalar_negate(t, z)
        S.crypto_core_ed25519_scalar_sub(t, t, C254)
    else:
        S.crypto_core_ed25519_scalar_sub(t, z, C254)
    S.crypto_core_ed25519_scalar_mul(m, t, INV8)
    if m[31] >= 0x08:
        return False
    for i in range(32):
        k[i] = <unsigned char>((m[i] << 3) | carry)
        carry = m[i] >> 5
    k[31] |= 0x40
    fog_wipe(m, 32)
    fog_wipe(t, 32)
    return True


cdef int _secrets_scalar(unsigned char *alphas, unsigned char *keys, int n,
                         const unsigned char *pks, const unsigned char *x) noexcept nogil:
    cdef unsigned char z[32]
    cdef unsigned char b[32]
    cdef unsigned char k[32]
    cdef unsigned char data[64]
    cdef int i
    cdef int rc = 0
    _clamped_mod_l(z, x)
    for i in range(n):
        if not (_x25519_scalar_from(k, z, False) or _x25519_scalar_from(k, z, True)):
            rc = 1  # no clamped representative: the caller falls back to "sequential"
            break
        S.crypto_scalarmult_base(alphas + 32 * i, k)
        memcpy(data, alphas + 32 * i, 32)
        if S.crypto_scalarmult(data + 32, k, pks + 32 * i) != 0:
            rc = -1
            break
        _hop.hop_kdf(keys + i * _hop.HOP_KEYS_SIZE, _hop.HOP_KEYS_SIZE, C_LABEL_HOP,
                     LABEL_HOP_LEN, data, 64)
        _clamped_mod_l(b, keys + i * _hop.HOP_KEYS_SIZE + _hop.HK_BLIND)
        S.crypto_core_ed25519_scalar_mul(z, z, b)
    fog_wipe(z, 32)
    fog_wipe(b, 32)
    fog_wipe(k, 32)
    fog_wipe(data, 64)
    return rc


cdef int _secrets_sequential(unsigned char *alphas, unsigned char *keys, int n,
                             const unsigned char *pks, const unsigned char *x) noexcept nogil:
    cdef unsigned char data[64]
    cdef int i, j
    cdef int rc = 0
    S.crypto_scalarmult_base(alphas, x)
    for i in range(n):
        memcpy(data, alphas + 32 * i, 32)
        if S.crypto_scalarmult(data + 32, x, pks + 32 * i) != 0:
            rc = -1
            break
        for j in range(i):
            if S.crypto_scalarmult(data + 32, keys + j * _hop.HOP_KEYS_SIZE + _hop.HK_BLIND,
                                   data + 32) != 0:
                rc = -1
                break
        if rc:
            break
        _hop.hop_kdf(keys + i * _hop.HOP_KEYS_SIZE, _hop.HOP_KEYS_SIZE, C_LABEL_HOP,
                     LABEL_HOP_LEN, data, 64)
        if i + 1 < n and sphinx_next_element(alphas + 32 * (i + 1),
                                             keys + i * _hop.HOP_KEYS_SIZE,
                                             alphas + 32 * i) != 0:
            rc = -1
            break
    fog_wipe(data, 64)
    return rc


cdef int sphinx_build_header(unsigned char *header, unsigned char *keys, int n,
                             const unsigned char *ids, const unsigned char *pks,
                             const unsigned char *final_slot, const unsigned char *seed,
                             int method) noexcept nogil:
    cdef unsigned char e[SPHINX_BUILD_SIZE]
    cdef unsigned char alphas[32 * _hop.MAX_HOPS]
    cdef unsigned char relays[SPHINX_SLOT_SIZE * (_hop.MAX_HOPS - 1)]
    cdef int i
    cdef int rc
    if n < 1 or n > _hop.MAX_HOPS:
        return -1
    _hop.hop_kdf(e, SPHINX_BUILD_SIZE, C_LABEL_BUILD, LABEL_BUILD_LEN, seed, 32)
    rc = 1
    if method == METHOD_REENCODED:
        rc = _secrets_scalar(alphas, keys, n, pks, e)
    if rc == 1:
        rc = _secrets_sequential(alphas, keys, n, pks, e)
    if rc != 0:
        fog_wipe(e, sizeof(e))
        return -1
    memset(relays, 0, sizeof(relays))
    for i in range(n - 1):
        relays[i * SPHINX_SLOT_SIZE + _hop.SLOT_COMMAND] = _hop.CMD_RELAY
        memcpy(relays + i * SPHINX_SLOT_SIZE + _hop.SLOT_ADDRESS, ids + 32 * (i + 1), 32)
    memcpy(header, alphas, 32)
    _hop.build_routing(header + 32, header + 32 + SPHINX_BETA_SIZE, SPHINX_SLOT_SIZE, n, keys,
                       final_slot, e + 32, relays)
    fog_wipe(e, sizeof(e))
    return 0


# ---- Python API, named as the reference (fogcore.packet._sphinx_py) ------------------------

def node_hop_keys(routing_secret, routing_public, alpha):
    """The 256 bytes of hop keys at a node (§2.3 steps 1-2), or None when X25519(y, α) is
    all zero. (`routing_public` is unused by this format; kept for symmetry with `kem`.)"""
    cdef const unsigned char[::1] y = routing_secret
    cdef const unsigned char[::1] a = alpha
    if y.shape[0] != 32 or a.shape[0] != 32:
        raise ValueError("routing secret and α are 32 bytes each")
    out = PyBytes_FromStringAndSize(NULL, _hop.HOP_KEYS_SIZE)
    cdef unsigned char *o = <unsigned char *>PyBytes_AS_STRING(out)
    cdef int rc
    with nogil:
        rc = sphinx_node_keys(o, &y[0], &a[0])
    return None if rc != 0 else out


def next_element(alpha, keys, slot=None):
    """α' = X25519(blind, α), the blinded element for the next hop; None if all zero.
    `keys` are the 256 bytes of hop keys."""
    cdef const unsigned char[::1] a = alpha
    cdef const unsigned char[::1] k = keys
    if a.shape[0] != 32 or k.shape[0] != _hop.HOP_KEYS_SIZE:
        raise ValueError("α is 32 bytes and hop keys 256")
    cdef unsigned char out[32]
    if sphinx_next_element(out, &k[0], &a[0]) != 0:
        return None
    return PyBytes_FromStringAndSize(<char *>out, 32)


cdef int _method_code(method) except -1:
    if method == "sequential":
        return METHOD_SEQUENTIAL
    if method in ("scalar", "reencoded"):
        # the edwards25519 products and their X25519 re-encoding define the same bytes;
        # C computes both the faster way (§2.6)
        return METHOD_REENCODED
    raise ValueError(f"unknown method {method!r}")


def route_arrays(route, bint need_ids=True):
    """(node ids, routing keys) of a route as two concatenated byte strings."""
    n = len(route)
    if not 1 <= n <= _hop.MAX_HOPS:
        raise ValueError(f"a route has 1 to {_hop.MAX_HOPS} hops")
    ids = b"".join([bytes(node.node_id) for node in route])
    pks = b"".join([bytes(node.routing_public_key) for node in route])
    if len(ids) != 32 * n or len(pks) != 32 * n:
        raise ValueError("node ids and routing keys are 32 bytes each")
    return ids, pks


def build_header(route, final_slot, seed, method="sequential"):
    """(header bytes, [256 bytes of hop keys per hop]) for `route` ending in the 50-byte
    `final_slot` (§2.4). Every method gives the same bytes; "reencoded" is the fastest."""
    cdef int code = _method_code(method)
    ids, pks = route_arrays(route)
    cdef const unsigned char[::1] fs = final_slot
    cdef const unsigned char[::1] sd = seed
    if fs.shape[0] != SPHINX_SLOT_SIZE or sd.shape[0] != 32:
        raise ValueError("the final slot is 50 bytes and the seed 32")
    cdef int n = len(route)
    cdef const unsigned char *cids = ids
    cdef const unsigned char *cpks = pks
    header = PyBytes_FromStringAndSize(NULL, SPHINX_HEADER_SIZE)
    keys = PyBytes_FromStringAndSize(NULL, n * _hop.HOP_KEYS_SIZE)
    cdef unsigned char *h = <unsigned char *>PyBytes_AS_STRING(header)
    cdef unsigned char *k = <unsigned char *>PyBytes_AS_STRING(keys)
    cdef int rc
    with nogil:
        rc = sphinx_build_header(h, k, n, cids, cpks, &fs[0], &sd[0], code)
    if rc != 0:
        raise ValueError("a routing key yields an all-zero shared secret")
    return header, [keys[i * 256:(i + 1) * 256] for i in range(n)]

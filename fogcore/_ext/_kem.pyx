# cython: language_level=3, embedsignature=True
"""The `kem` (v2) packet format in C (docs/packet-format.md §3).

Each hop has its own encapsulation (an ephemeral X25519 public key, the ciphertext); the
node decapsulates with one X25519 and binds the result to both public keys in the KDF, so a
low-order ciphertext cannot yield a valid packet. There is no blinding: the next ciphertext
is the tail of the decrypted routing slot.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy, memset

from fogcore._ext cimport _hop
from fogcore._ext._sodium cimport SodiumAPI, sodium_api
from fogcore._ext.includes.fog_wipe cimport fog_wipe

from fogcore._ext._sphinx import route_arrays

cdef const SodiumAPI *S = sodium_api()

FORMAT = _hop.FORMAT_KEM
NAME = "kem"
LABEL_HOP = b"fogcore/kem/v2/hop"
LABEL_BUILD = b"fogcore/kem/v2/build"
ELEMENT_SIZE = _hop.ELEMENT_SIZE
SLOT_SIZE = KEM_SLOT_SIZE
TAIL_OFFSET = _hop.SLOT_TAIL
BETA_SIZE = KEM_BETA_SIZE
HEADER_SIZE = KEM_HEADER_SIZE
PACKET_SIZE = KEM_PACKET_SIZE

cdef const unsigned char *C_LABEL_HOP = b"fogcore/kem/v2/hop"
cdef const unsigned char *C_LABEL_BUILD = b"fogcore/kem/v2/build"
cdef size_t LABEL_HOP_LEN = len(LABEL_HOP)
cdef size_t LABEL_BUILD_LEN = len(LABEL_BUILD)


cdef int kem_node_keys(unsigned char *keys, const unsigned char *secret,
                       const unsigned char *public, const unsigned char *ct) noexcept nogil:
    cdef unsigned char data[96]
    memcpy(data, ct, 32)
    memcpy(data + 32, public, 32)
    if S.crypto_scalarmult(data + 64, secret, ct) != 0:
        return -1
    _hop.hop_kdf(keys, _hop.HOP_KEYS_SIZE, C_LABEL_HOP, LABEL_HOP_LEN, data, 96)
    fog_wipe(data, 96)
    return 0


cdef int kem_build_header(unsigned char *header, unsigned char *keys, int n,
                          const unsigned char *ids, const unsigned char *pks,
                          const unsigned char *final_slot, const unsigned char *seed) noexcept nogil:
    cdef unsigned char e[KEM_BUILD_SIZE]
    cdef unsigned char cts[32 * _hop.MAX_HOPS]
    cdef unsigned char data[96]
    cdef unsigned char relays[KEM_SLOT_SIZE * (_hop.MAX_HOPS - 1)]
    cdef unsigned char *relay
    cdef int i
    cdef int rc = 0
    if n < 1 or n > _hop.MAX_HOPS:
        return -1
    _hop.hop_kdf(e, KEM_BUILD_SIZE, C_LABEL_BUILD, LABEL_BUILD_LEN, seed, 32)
    for i in range(n):
        # encapsulate to hop i: ct = X25519(e_i, G), dh = X25519(e_i, pk_i)
        S.crypto_scalarmult_base(cts + 32 * i, e + 32 * i)
        memcpy(data, cts + 32 * i, 32)
        memcpy(data + 32, pks + 32 * i, 32)
        if S.crypto_scalarmult(data + 64, e + 32 * i, pks + 32 * i) != 0:
            rc = -1
            break
        _hop.hop_kdf(keys + i * _hop.HOP_KEYS_SIZE, _hop.HOP_KEYS_SIZE, C_LABEL_HOP,
                     LABEL_HOP_LEN, data, 96)
    if rc == 0:
        memset(relays, 0, sizeof(relays))
        for i in range(n - 1):
            relay = relays + i * KEM_SLOT_SIZE
            relay[_hop.SLOT_COMMAND] = _hop.CMD_RELAY
            memcpy(relay + _hop.SLOT_ADDRESS, ids + 32 * (i + 1), 32)
            memcpy(relay + _hop.SLOT_TAIL, cts + 32 * (i + 1), 32)
        memcpy(header, cts, 32)
        _hop.build_routing(header + 32, header + 32 + KEM_BETA_SIZE, KEM_SLOT_SIZE, n, keys,
                           final_slot, e + 32 * _hop.MAX_HOPS, relays)
    fog_wipe(e, sizeof(e))
    fog_wipe(data, sizeof(data))
    return rc


# ---- Python API, named as the reference (fogcore.packet._kem_py) ---------------------------

def node_hop_keys(routing_secret, routing_public, ct):
    """The 256 bytes of hop keys at a node (§3.3 steps 1-2), None for an all-zero DH."""
    cdef const unsigned char[::1] y = routing_secret
    cdef const unsigned char[::1] pk = routing_public
    cdef const unsigned char[::1] c = ct
    if y.shape[0] != 32 or pk.shape[0] != 32 or c.shape[0] != 32:
        raise ValueError("routing secret, routing key and ciphertext are 32 bytes each")
    out = PyBytes_FromStringAndSize(NULL, _hop.HOP_KEYS_SIZE)
    cdef unsigned char *o = <unsigned char *>PyBytes_AS_STRING(out)
    cdef int rc
    with nogil:
        rc = kem_node_keys(o, &y[0], &pk[0], &c[0])
    return None if rc != 0 else out


def next_element(ct, keys, slot):
    """The next hop's ciphertext: the tail of this hop's decrypted slot."""
    return bytes(slot[TAIL_OFFSET:KEM_SLOT_SIZE])


def build_header(route, final_slot, seed, method="sequential"):
    """(header bytes, [256 bytes of hop keys per hop]) for `route` ending in the 82-byte
    `final_slot` (§3.4). `method` is accepted for symmetry with `sphinx` and ignored."""
    ids, pks = route_arrays(route)
    cdef const unsigned char[::1] fs = final_slot
    cdef const unsigned char[::1] sd = seed
    if fs.shape[0] != KEM_SLOT_SIZE or sd.shape[0] != 32:
        raise ValueError("the final slot is 82 bytes and the seed 32")
    cdef int n = len(route)
    cdef const unsigned char *cids = ids
    cdef const unsigned char *cpks = pks
    header = PyBytes_FromStringAndSize(NULL, KEM_HEADER_SIZE)
    keys = PyBytes_FromStringAndSize(NULL, n * _hop.HOP_KEYS_SIZE)
    cdef unsigned char *h = <unsigned char *>PyBytes_AS_STRING(header)
    cdef unsigned char *k = <unsigned char *>PyBytes_AS_STRING(keys)
    cdef int rc
    with nogil:
        rc = kem_build_header(h, k, n, cids, cpks, &fs[0], &sd[0])
    if rc != 0:
        raise ValueError("a routing key yields an all-zero shared secret")
    return header, [keys[i * 256:(i + 1) * 256] for i in range(n)]

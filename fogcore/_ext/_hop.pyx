# cython: language_level=3, embedsignature=True
"""Per-hop cryptography shared by both packet formats (docs/packet-format.md §1).

The C functions (declared in _hop.pxd) are what the packet core runs per packet; the Python
functions below wrap them with the names and results of the pure-Python reference
(`fogcore.packet._hop_py`) so the two can be compared byte for byte.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy, memmove, memset

from operator import index as _index

from fogcore._ext._sodium cimport SodiumAPI, fog_hash_state, sodium_api
from fogcore._ext.includes.fog_wipe cimport fog_wipe

cdef const SodiumAPI *S = sodium_api()

# ChaCha20 with a zero nonce is safe here: every key below is fresh per packet and hop.
cdef unsigned char ZERO_NONCE[12]
memset(ZERO_NONCE, 0, 12)

cdef int hop_kdf(unsigned char *out, size_t n, const unsigned char *label, size_t label_len,
             const unsigned char *data, size_t data_len) noexcept nogil:
    cdef unsigned char prk[32]
    if S.crypto_generichash_blake2b(prk, 32, data, data_len, label, label_len) != 0:
        return -1
    # The key stream is ChaCha20 of zeros: xor it over a zeroed output, in place.
    memset(out, 0, n)
    S.crypto_stream_chacha20_ietf_xor_ic(out, out, n, ZERO_NONCE, 0, prk)
    fog_wipe(prk, 32)
    return 0


cdef void stream_xor(unsigned char *data, size_t n, const unsigned char *key) noexcept nogil:
    S.crypto_stream_chacha20_ietf_xor_ic(data, data, n, ZERO_NONCE, 0, key)


cdef void header_mac(unsigned char *out, const unsigned char *key, const unsigned char *beta,
                     size_t n) noexcept nogil:
    cdef fog_hash_state st
    cdef unsigned char full[32]
    S.crypto_auth_hmacsha256_init(&st, key, KEY_SIZE)
    S.crypto_auth_hmacsha256_update(&st, beta, n)
    S.crypto_auth_hmacsha256_final(&st, full)
    memcpy(out, full, MAC_SIZE)


cdef bint header_mac_ok(const unsigned char *key, const unsigned char *beta, size_t n,
                        const unsigned char *gamma) noexcept nogil:
    cdef unsigned char expected[MAC_SIZE]
    header_mac(expected, key, beta, n)
    return S.crypto_verify_16(expected, gamma) == 0


# Lioness (§1.6): the block is L (32 bytes) || R. A stream round xors R with ChaCha20 keyed
# by L ^ K; a hash round xors L with BLAKE2b-256 of R keyed by K. Both work in place.

cdef inline void _stream_round(unsigned char *block, size_t n,
                               const unsigned char *k) noexcept nogil:
    cdef unsigned char key[LIONESS_SPLIT]
    cdef int i
    for i in range(LIONESS_SPLIT):
        key[i] = block[i] ^ k[i]
    S.crypto_stream_chacha20_ietf_xor_ic(block + LIONESS_SPLIT, block + LIONESS_SPLIT,
                                         n - LIONESS_SPLIT, ZERO_NONCE, 0, key)


cdef inline void _hash_round(unsigned char *block, size_t n,
                             const unsigned char *k) noexcept nogil:
    cdef unsigned char digest[LIONESS_SPLIT]
    S.crypto_generichash_blake2b(digest, LIONESS_SPLIT, block + LIONESS_SPLIT,
                                 n - LIONESS_SPLIT, k, KEY_SIZE)
    xor_into(block, digest, LIONESS_SPLIT)


cdef void lioness_enc(unsigned char *block, size_t n, const unsigned char *keys) noexcept nogil:
    _stream_round(block, n, keys)
    _hash_round(block, n, keys + 32)
    _stream_round(block, n, keys + 64)
    _hash_round(block, n, keys + 96)


cdef void lioness_dec(unsigned char *block, size_t n, const unsigned char *keys) noexcept nogil:
    _hash_round(block, n, keys + 96)
    _stream_round(block, n, keys + 64)
    _hash_round(block, n, keys + 32)
    _stream_round(block, n, keys)


cdef int plaintext_open(const unsigned char *plain) noexcept nogil:
    cdef unsigned int length = load_be16(plain + INTEGRITY_SIZE)
    cdef bint zero = is_zero(plain, INTEGRITY_SIZE)
    if not zero or length > MESSAGE_CAPACITY:
        return -1
    return <int>length


cdef int plaintext_make(unsigned char *plain, const unsigned char *message,
                        size_t length) noexcept nogil:
    if length > MESSAGE_CAPACITY:
        return -1
    memset(plain, 0, PAYLOAD_SIZE)
    plain[INTEGRITY_SIZE] = <unsigned char>(length >> 8)
    plain[INTEGRITY_SIZE + 1] = <unsigned char>(length & 0xFF)
    if length:
        memcpy(plain + INTEGRITY_SIZE + LENGTH_SIZE, message, length)
    return 0


cdef void build_routing(unsigned char *beta, unsigned char *gamma, size_t slot, int n,
                        const unsigned char *keys, const unsigned char *final_slot,
                        const unsigned char *pad, unsigned char *relay_slots) noexcept nogil:
    cdef size_t L = MAX_HOPS * slot
    cdef size_t width = L + slot
    cdef unsigned char rho[MAX_HOPS * MAX_BETA_PLUS_SLOT]
    cdef unsigned char phi[MAX_BETA_PLUS_SLOT]
    cdef size_t phi_len = 0
    cdef int i
    cdef unsigned char *relay
    for i in range(n):
        memset(rho + i * width, 0, width)
        stream_xor(rho + i * width, width, keys + i * HOP_KEYS_SIZE + HK_STREAM)
    # The filler: what hops 0..n-2 append to the routing block, as hop n-1 will see it.
    for i in range(1, n):
        memset(phi + phi_len, 0, slot)
        phi_len += slot
        xor_into(phi, rho + (i - 1) * width + L - (i - 1) * slot, phi_len)
    memcpy(beta, final_slot, slot)
    memcpy(beta + slot, pad, L - n * slot)
    xor_into(beta, rho + (n - 1) * width, L - (n - 1) * slot)
    memcpy(beta + L - phi_len, phi, phi_len)
    header_mac(gamma, keys + (n - 1) * HOP_KEYS_SIZE + HK_MAC, beta, L)
    for i in range(n - 2, -1, -1):
        relay = relay_slots + i * slot
        memcpy(relay + SLOT_EXTRA, gamma, MAC_SIZE)
        memmove(beta + slot, beta, L - slot)
        memcpy(beta, relay, slot)
        xor_into(beta, rho + i * width, L)
        header_mac(gamma, keys + i * HOP_KEYS_SIZE + HK_MAC, beta, L)
    fog_wipe(rho, sizeof(rho))


# ---- Python wrappers with the reference's names (for tests and slow paths) ------------------

#: The longest output of one `kdf` or `stream` call (§1.3); the formats need at most 570.
MAX_STREAM_BYTES = 65536


cdef size_t _stream_length(n) except? 0:
    # Checked as a Python integer, so no size, however large or negative, can wrap; the
    # reference raises the same TypeError or ValueError.
    n = _index(n)
    if not 0 <= n <= MAX_STREAM_BYTES:
        raise ValueError(f"a key stream is 0 to {MAX_STREAM_BYTES} bytes")
    return n


def kdf(label, data, n):
    """KDF(label, data, n) = ChaCha20(BLAKE2b(key=label, data=data, 32), n) (§1.3)."""
    cdef size_t length = _stream_length(n)
    cdef const unsigned char[::1] lab = label
    cdef const unsigned char[::1] d = data
    if lab.shape[0] < 1 or lab.shape[0] > 64:
        raise ValueError("a label is 1 to 64 bytes")
    out = PyBytes_FromStringAndSize(NULL, length)
    cdef unsigned char *o = <unsigned char *>PyBytes_AS_STRING(out)
    with nogil:
        hop_kdf(o, length, &lab[0], lab.shape[0], &d[0] if d.shape[0] else NULL, d.shape[0])
    return out


def stream(key, n):
    """ChaCha20(key, n): n bytes of key stream, nonce 0^12, block counter 0."""
    cdef size_t length = _stream_length(n)
    cdef const unsigned char[::1] k = key
    if k.shape[0] != KEY_SIZE:
        raise ValueError("a stream key is 32 bytes")
    out = PyBytes_FromStringAndSize(NULL, length)
    cdef unsigned char *o = <unsigned char *>PyBytes_AS_STRING(out)
    memset(o, 0, length)
    stream_xor(o, length, &k[0])
    return out


def mac(key, beta):
    """γ = HMAC-SHA256(key, β) truncated to 16 bytes."""
    cdef const unsigned char[::1] k = key
    cdef const unsigned char[::1] b = beta
    cdef unsigned char out[MAC_SIZE]
    if k.shape[0] != KEY_SIZE:
        raise ValueError("a MAC key is 32 bytes")
    header_mac(out, &k[0], &b[0] if b.shape[0] else NULL, b.shape[0])
    return PyBytes_FromStringAndSize(<char *>out, MAC_SIZE)


def mac_ok(key, beta, gamma):
    """Constant-time check of a header MAC."""
    cdef const unsigned char[::1] g = gamma
    if g.shape[0] != MAC_SIZE:
        return False
    cdef const unsigned char[::1] k = key
    cdef const unsigned char[::1] b = beta
    if k.shape[0] != KEY_SIZE:
        raise ValueError("a MAC key is 32 bytes")
    return header_mac_ok(&k[0], &b[0] if b.shape[0] else NULL, b.shape[0], &g[0])


cdef bytes _lioness(keys, block, bint encrypt):
    cdef const unsigned char[::1] k = keys
    cdef const unsigned char[::1] b = block
    if k.shape[0] != LIONESS_KEYS_SIZE or b.shape[0] <= LIONESS_SPLIT:
        raise ValueError("Lioness needs 128 bytes of keys and a block longer than 32 bytes")
    cdef size_t n = b.shape[0]
    out = PyBytes_FromStringAndSize(<const char *>&b[0], n)
    cdef unsigned char *o = <unsigned char *>PyBytes_AS_STRING(out)
    with nogil:
        if encrypt:
            lioness_enc(o, n, &k[0])
        else:
            lioness_dec(o, n, &k[0])
    return out


def lioness_encrypt(keys, block):
    """Lioness encryption of `block` under 128 bytes of keys K1..K4."""
    return _lioness(keys, block, True)


def lioness_decrypt(keys, block):
    """Lioness decryption: the four rounds of encryption undone in reverse order."""
    return _lioness(keys, block, False)



def payload_plaintext(message):
    """0^16 || u16 length || message || zero padding, 2048 bytes (§1.7)."""
    cdef const unsigned char[::1] m = message
    out = PyBytes_FromStringAndSize(NULL, PAYLOAD_SIZE)
    if plaintext_make(<unsigned char *>PyBytes_AS_STRING(out),
                      &m[0] if m.shape[0] else NULL, m.shape[0]) != 0:
        raise ValueError(f"message longer than {MESSAGE_CAPACITY} bytes")
    return out


def open_plaintext(plaintext):
    """The message in a decrypted payload, or None when the integrity check fails."""
    cdef const unsigned char[::1] p = plaintext
    if p.shape[0] != PAYLOAD_SIZE:
        raise ValueError("a payload is 2048 bytes")
    cdef int length = plaintext_open(&p[0])
    if length < 0:
        return None
    return PyBytes_FromStringAndSize(<const char *>&p[INTEGRITY_SIZE + LENGTH_SIZE], length)


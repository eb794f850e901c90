# Per-hop cryptography shared by the `sphinx` and `kem` packet formats
# (docs/packet-format.md §1): the hop KDF, the header stream and MAC, Lioness over ChaCha20
# and keyed BLAKE2b, the payload integrity check and building a routing block with its
# filler. Every function runs without the GIL, allocates nothing and works in place.
#
#     from fogcore._ext cimport _hop
#     with nogil:
#         _hop.lioness_dec(payload, _hop.PAYLOAD_SIZE, keys + _hop.HK_LIONESS)

cdef enum:
    MAX_HOPS = 5
    ID_SIZE = 32
    SURB_ID_SIZE = 16
    MAC_SIZE = 16
    KEY_SIZE = 32
    ELEMENT_SIZE = 32
    PAYLOAD_SIZE = 2048
    INTEGRITY_SIZE = 16
    LENGTH_SIZE = 2
    MESSAGE_CAPACITY = 2030
    HOP_KEYS_SIZE = 256
    LIONESS_KEYS_SIZE = 128
    LIONESS_SPLIT = 32
    FRAME_HEADER_SIZE = 4
    FRAME_VERSION = 1
    FORMAT_SPHINX = 1
    FORMAT_KEM = 2
    # offsets of the named parts in the 256 bytes of hop keys (§1.3)
    HK_MAC = 0
    HK_STREAM = 32
    HK_LIONESS = 64
    HK_TAG = 192
    HK_BLIND = 224
    # routing slot fields (§1.9)
    SLOT_COMMAND = 0
    SLOT_FLAGS = 1
    SLOT_ADDRESS = 2
    SLOT_EXTRA = 34
    SLOT_TAIL = 50
    CMD_RELAY = 1
    CMD_DELIVER = 2
    CMD_REPLY = 3
    # the largest routing block plus one slot (kem: 5 * 82 + 82)
    MAX_BETA_PLUS_SLOT = 492

cdef inline void xor_into(unsigned char *dst, const unsigned char *src, size_t n) noexcept nogil:
    cdef size_t i
    for i in range(n):
        dst[i] ^= src[i]

cdef inline bint is_zero(const unsigned char *p, size_t n) noexcept nogil:
    # constant time: the OR of every byte, one branch at the end
    cdef unsigned char acc = 0
    cdef size_t i
    for i in range(n):
        acc |= p[i]
    return acc == 0

cdef inline unsigned int load_be16(const unsigned char *p) noexcept nogil:
    return (<unsigned int>p[0] << 8) | p[1]

# out[0:n] <- KDF(label, data, n) = ChaCha20(BLAKE2b(key=label, data, 32), n)
cdef int hop_kdf(unsigned char *out, size_t n, const unsigned char *label, size_t label_len,
             const unsigned char *data, size_t data_len) noexcept nogil

# data[0:n] ^= ChaCha20(key, n)
cdef void stream_xor(unsigned char *data, size_t n, const unsigned char *key) noexcept nogil

# out[0:16] <- HMAC-SHA256(key, beta)[0:16]
cdef void header_mac(unsigned char *out, const unsigned char *key, const unsigned char *beta,
                     size_t n) noexcept nogil

# constant-time check of gamma (16 bytes) against the MAC of beta
cdef bint header_mac_ok(const unsigned char *key, const unsigned char *beta, size_t n,
                        const unsigned char *gamma) noexcept nogil

# Lioness on block[0:n] in place, keys = K1..K4 (128 bytes), n > 32
cdef void lioness_enc(unsigned char *block, size_t n, const unsigned char *keys) noexcept nogil
cdef void lioness_dec(unsigned char *block, size_t n, const unsigned char *keys) noexcept nogil

# The message length of a decrypted 2048-byte payload, or -1 when its integrity check fails.
cdef int plaintext_open(const unsigned char *plain) noexcept nogil

# plain[0:2048] <- 0^16 || u16 length || message || zeros; -1 if the message is too long
cdef int plaintext_make(unsigned char *plain, const unsigned char *message,
                        size_t length) noexcept nogil

# β_0 and γ_0 of a route of n hops (§2.4 steps 3-6, shared by both formats). `keys` holds
# the n hops' 256-byte keys; `final_slot` is the last hop's slot; `pad` has at least
# MAX_HOPS * slot bytes; `relay_slots` holds n - 1 RELAY slots whose MAC field this fills.
cdef void build_routing(unsigned char *beta, unsigned char *gamma, size_t slot, int n,
                        const unsigned char *keys, const unsigned char *final_slot,
                        const unsigned char *pad, unsigned char *relay_slots) noexcept nogil

# The `kem` (v2) packet format (docs/packet-format.md §3): KEM Sphinx with X25519 as the
# KEM. A node decapsulates with one X25519; the next hop's ciphertext rides in the tail of
# its routing slot. Common per-hop cryptography is in _hop.pxd.

cdef enum:
    KEM_SLOT_SIZE = 82
    KEM_BETA_SIZE = 410
    KEM_HEADER_SIZE = 458
    KEM_PACKET_SIZE = 2506
    KEM_BUILD_SIZE = 570

# keys (256 bytes) <- KDF("fogcore/kem/v2/hop", ct || pk || X25519(secret, ct), 256);
# -1 when the X25519 result is all zero (LOW_ORDER).
cdef int kem_node_keys(unsigned char *keys, const unsigned char *secret,
                       const unsigned char *public, const unsigned char *ct) noexcept nogil

# header (458 bytes) and the n hops' keys (n * 256 bytes) for a route of n nodes with ids
# and X25519 routing keys (n * 32 bytes each), the last hop's 82-byte slot and the 32-byte
# packet seed (§3.4). -1 when a routing key yields an all-zero shared secret.
cdef int kem_build_header(unsigned char *header, unsigned char *keys, int n,
                          const unsigned char *ids, const unsigned char *pks,
                          const unsigned char *final_slot, const unsigned char *seed) noexcept nogil

# The `sphinx` (v1) packet format (docs/packet-format.md §2): what differs from `kem` — the
# group element α, its blinding, and how a sender derives every hop's shared secret.
# Common per-hop cryptography is in _hop.pxd.

cdef enum:
    SPHINX_SLOT_SIZE = 50
    SPHINX_BETA_SIZE = 250
    SPHINX_HEADER_SIZE = 298
    SPHINX_PACKET_SIZE = 2346
    SPHINX_BUILD_SIZE = 282
    METHOD_SEQUENTIAL = 0
    METHOD_REENCODED = 1

# keys (256 bytes) <- KDF("fogcore/sphinx/v1/hop", α || X25519(secret, α), 256);
# -1 when the X25519 result is all zero (LOW_ORDER).
cdef int sphinx_node_keys(unsigned char *keys, const unsigned char *secret,
                          const unsigned char *alpha) noexcept nogil

# out <- X25519(keys.blind, α), the next hop's element; -1 when all zero.
cdef int sphinx_next_element(unsigned char *out, const unsigned char *keys,
                             const unsigned char *alpha) noexcept nogil

# header (298 bytes) and the n hops' keys (n * 256 bytes) for a route of n nodes with ids
# and X25519 routing keys (n * 32 bytes each), the last hop's 50-byte slot and the 32-byte
# packet seed (§2.4). -1 when a routing key yields an all-zero secret.
cdef int sphinx_build_header(unsigned char *header, unsigned char *keys, int n,
                             const unsigned char *ids, const unsigned char *pks,
                             const unsigned char *final_slot, const unsigned char *seed,
                             int method) noexcept nogil

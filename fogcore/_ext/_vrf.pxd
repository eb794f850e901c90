# ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03) on libsodium's edwards25519
# operations. Every function runs without the GIL and allocates nothing; they return 0 on
# success and -1 where the RFC outputs "INVALID" (or, for prove, on an impossible failure).
#
# Use from another extension module:
#     from fogcore._ext._vrf cimport vrf_prove, vrf_verify, VRF_PROOF_BYTES

cdef enum:
    VRF_SECRET_KEY_BYTES = 32
    VRF_PUBLIC_KEY_BYTES = 32
    VRF_PROOF_BYTES = 80
    VRF_BETA_BYTES = 64

# pk (32 bytes) <- the RFC 8032 public key of the 32-byte secret key (seed) sk
cdef int vrf_public_key(unsigned char *pk, const unsigned char *sk) noexcept nogil

# proof (80 bytes) <- ECVRF_prove(sk, alpha)
cdef int vrf_prove(unsigned char *proof, const unsigned char *sk, const unsigned char *alpha,
                   size_t alpha_len) noexcept nogil

# beta (64 bytes) <- ECVRF_verify(pk, proof, alpha) with validate_key; -1 if invalid
cdef int vrf_verify(unsigned char *beta, const unsigned char *pk, const unsigned char *proof,
                    const unsigned char *alpha, size_t alpha_len) noexcept nogil

# beta (64 bytes) <- ECVRF_proof_to_hash(proof); -1 if the proof does not decode
cdef int vrf_proof_to_hash(unsigned char *beta, const unsigned char *proof) noexcept nogil

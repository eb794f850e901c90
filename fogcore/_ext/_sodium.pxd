# The libsodium functions the packet core needs, resolved at import from a loaded libsodium
# (PyNaCl's bundled copy by default) and called through this table, so that every call can
# run inside a `nogil` block with no build-time dependency on libsodium's headers.
#
# Use from another extension module:
#     from fogcore._ext._sodium cimport SodiumAPI, sodium_api
#     cdef const SodiumAPI *S = sodium_api()
#     with nogil:
#         S.crypto_scalarmult(out, scalar, point)

from libc.stdint cimport uint8_t, uint32_t, uint64_t

# Opaque multi-part states, sized and aligned generously; _sodium checks at import that
# libsodium's *_statebytes() fit.
cdef extern from *:
    """
    typedef struct { _Alignas(64) unsigned char opaque[512]; } fog_hash_state;
    """
    ctypedef struct fog_hash_state:
        pass

ctypedef int (*scalarmult_fn)(unsigned char *q, const unsigned char *n,
                              const unsigned char *p) noexcept nogil
ctypedef int (*scalarmult_base_fn)(unsigned char *q, const unsigned char *n) noexcept nogil
ctypedef int (*stream_xor_ic_fn)(unsigned char *c, const unsigned char *m,
                                 unsigned long long mlen, const unsigned char *n,
                                 uint32_t ic, const unsigned char *k) noexcept nogil
ctypedef int (*hash_fn)(unsigned char *out, const unsigned char *inp,
                        unsigned long long inlen) noexcept nogil
ctypedef int (*state_init_fn)(void *state) noexcept nogil
ctypedef int (*state_update_fn)(void *state, const unsigned char *inp,
                                unsigned long long inlen) noexcept nogil
ctypedef int (*state_final_fn)(void *state, unsigned char *out) noexcept nogil
ctypedef int (*hmac_init_fn)(void *state, const unsigned char *key, size_t keylen) noexcept nogil
ctypedef int (*generichash_fn)(unsigned char *out, size_t outlen, const unsigned char *inp,
                               unsigned long long inlen, const unsigned char *key,
                               size_t keylen) noexcept nogil
ctypedef int (*generichash_init_fn)(void *state, const unsigned char *key, size_t keylen,
                                    size_t outlen) noexcept nogil
ctypedef int (*generichash_final_fn)(void *state, unsigned char *out,
                                     size_t outlen) noexcept nogil
ctypedef int (*point_check_fn)(const unsigned char *p) noexcept nogil
ctypedef int (*point_op_fn)(unsigned char *r, const unsigned char *p,
                            const unsigned char *q) noexcept nogil
ctypedef void (*scalar_unary_fn)(unsigned char *r, const unsigned char *s) noexcept nogil
ctypedef int (*scalar_invert_fn)(unsigned char *r, const unsigned char *s) noexcept nogil
ctypedef void (*scalar_binary_fn)(unsigned char *z, const unsigned char *x,
                                  const unsigned char *y) noexcept nogil
ctypedef int (*verify_fn)(const unsigned char *x, const unsigned char *y) noexcept nogil
ctypedef void (*randombytes_fn)(void *buf, size_t size) noexcept nogil
ctypedef int (*seed_keypair_fn)(unsigned char *pk, unsigned char *sk,
                                const unsigned char *seed) noexcept nogil
ctypedef int (*pk_to_curve_fn)(unsigned char *curve_pk, const unsigned char *ed_pk) noexcept nogil
ctypedef size_t (*size_fn)() noexcept nogil

ctypedef struct SodiumAPI:
    # X25519 (RFC 7748); returns -1 on an all-zero output
    scalarmult_fn crypto_scalarmult
    scalarmult_base_fn crypto_scalarmult_base
    # ChaCha20, IETF variant (RFC 8439) with an explicit initial block counter
    stream_xor_ic_fn crypto_stream_chacha20_ietf_xor_ic
    # SHA-2
    hash_fn crypto_hash_sha256
    hash_fn crypto_hash_sha512
    state_init_fn crypto_hash_sha512_init
    state_update_fn crypto_hash_sha512_update
    state_final_fn crypto_hash_sha512_final
    # HMAC-SHA256 with a key of any length (RFC 2104 / RFC 4231)
    hmac_init_fn crypto_auth_hmacsha256_init
    state_update_fn crypto_auth_hmacsha256_update
    state_final_fn crypto_auth_hmacsha256_final
    # BLAKE2b, keyed or not (RFC 7693)
    generichash_fn crypto_generichash_blake2b
    generichash_init_fn crypto_generichash_blake2b_init
    state_update_fn crypto_generichash_blake2b_update
    generichash_final_fn crypto_generichash_blake2b_final
    # edwards25519 group and scalar arithmetic (for the ECVRF)
    point_check_fn crypto_core_ed25519_is_valid_point
    point_op_fn crypto_core_ed25519_add
    point_op_fn crypto_core_ed25519_sub
    scalarmult_fn crypto_scalarmult_ed25519_noclamp
    scalarmult_base_fn crypto_scalarmult_ed25519_base_noclamp
    scalar_unary_fn crypto_core_ed25519_scalar_reduce
    scalar_binary_fn crypto_core_ed25519_scalar_add
    scalar_binary_fn crypto_core_ed25519_scalar_sub
    scalar_binary_fn crypto_core_ed25519_scalar_mul
    scalar_unary_fn crypto_core_ed25519_scalar_negate
    scalar_invert_fn crypto_core_ed25519_scalar_invert
    # Ed25519 signatures' key derivation and the birational map to X25519
    seed_keypair_fn crypto_sign_ed25519_seed_keypair
    pk_to_curve_fn crypto_sign_ed25519_pk_to_curve25519
    # constant-time comparisons and randomness
    verify_fn crypto_verify_16
    verify_fn crypto_verify_32
    randombytes_fn randombytes_buf

cdef const SodiumAPI *sodium_api() noexcept nogil

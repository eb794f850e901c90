# cython: language_level=3, embedsignature=True
"""libsodium resolved at import, for calls from C without the GIL.

The library is the one PyNaCl loads (its `nacl._sodium` extension exports libsodium's
symbols), or another one named by FOGCORE_LIBSODIUM: a path, or ``system`` for the system's
``libsodium.so``. Each symbol of `SodiumAPI` is looked up once; a missing one raises
ImportError naming it. The Python functions below are thin wrappers used by the known-answer
tests and by code that is not per-packet.
"""

import ctypes.util
import os

from libc.stdint cimport uint32_t
from libc.string cimport memset
from posix.dlfcn cimport RTLD_LOCAL, RTLD_NOW, dlerror, dlopen, dlsym

from fogcore._ext.includes.dlfcn_flags cimport RTLD_NODELETE


cdef SodiumAPI _api
cdef void *_handle = NULL
_library_path = None
_library_source = None


cdef const SodiumAPI *sodium_api() noexcept nogil:
    return &_api


class SodiumSymbolError(ImportError):
    """The chosen libsodium lacks a function fogcore needs."""


def _choose_library():
    choice = os.environ.get("FOGCORE_LIBSODIUM", "").strip()
    if choice == "system":
        found = ctypes.util.find_library("sodium")
        if not found:
            raise ImportError("FOGCORE_LIBSODIUM=system but no system libsodium was found")
        return found, "system"
    if choice:
        return choice, "FOGCORE_LIBSODIUM"
    import nacl._sodium

    return nacl._sodium.__file__, "pynacl"


cdef void *_resolve(bytes name) except NULL:
    cdef void *sym = dlsym(_handle, name)
    if sym == NULL:
        raise SodiumSymbolError(
            f"libsodium at {_library_path} has no symbol {name.decode()}; fogcore needs "
            "libsodium >= 1.0.18 (set FOGCORE_LIBSODIUM to another library)"
        )
    return sym


cdef int _load() except -1:
    global _handle, _library_path, _library_source
    path, source = _choose_library()
    _library_path, _library_source = path, source
    _handle = dlopen(os.fsencode(path), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)
    if _handle == NULL:
        raise ImportError(f"cannot load libsodium from {path}: {dlerror().decode()}")
    memset(&_api, 0, sizeof(_api))
    _api.crypto_scalarmult = <scalarmult_fn>_resolve(b"crypto_scalarmult")
    _api.crypto_scalarmult_base = <scalarmult_base_fn>_resolve(b"crypto_scalarmult_base")
    _api.crypto_stream_chacha20_ietf_xor_ic = <stream_xor_ic_fn>_resolve(
        b"crypto_stream_chacha20_ietf_xor_ic")
    _api.crypto_hash_sha256 = <hash_fn>_resolve(b"crypto_hash_sha256")
    _api.crypto_hash_sha512 = <hash_fn>_resolve(b"crypto_hash_sha512")
    _api.crypto_hash_sha512_init = <state_init_fn>_resolve(b"crypto_hash_sha512_init")
    _api.crypto_hash_sha512_update = <state_update_fn>_resolve(b"crypto_hash_sha512_update")
    _api.crypto_hash_sha512_final = <state_final_fn>_resolve(b"crypto_hash_sha512_final")
    _api.crypto_auth_hmacsha256_init = <hmac_init_fn>_resolve(b"crypto_auth_hmacsha256_init")
    _api.crypto_auth_hmacsha256_update = <state_update_fn>_resolve(
        b"crypto_auth_hmacsha256_update")
    _api.crypto_auth_hmacsha256_final = <state_final_fn>_resolve(
        b"crypto_auth_hmacsha256_final")
    _api.crypto_generichash_blake2b = <generichash_fn>_resolve(b"crypto_generichash_blake2b")
    _api.crypto_generichash_blake2b_init = <generichash_init_fn>_resolve(
        b"crypto_generichash_blake2b_init")
    _api.crypto_generichash_blake2b_update = <state_update_fn>_resolve(
        b"crypto_generichash_blake2b_update")
    _api.crypto_generichash_blake2b_final = <generichash_final_fn>_resolve(
        b"crypto_generichash_blake2b_final")
    _api.crypto_core_ed25519_is_valid_point = <point_check_fn>_resolve(
        b"crypto_core_ed25519_is_valid_point")
    _api.crypto_core_ed25519_add = <point_op_fn>_resolve(b"crypto_core_ed25519_add")
    _api.crypto_core_ed25519_sub = <point_op_fn>_resolve(b"crypto_core_ed25519_sub")
    _api.crypto_scalarmult_ed25519_noclamp = <scalarmult_fn>_resolve(
        b"crypto_scalarmult_ed25519_noclamp")
    _api.crypto_scalarmult_ed25519_base_noclamp = <scalarmult_base_fn>_resolve(
        b"crypto_scalarmult_ed25519_base_noclamp")
    _api.crypto_core_ed25519_scalar_reduce = <scalar_unary_fn>_resolve(
        b"crypto_core_ed25519_scalar_reduce")
    _api.crypto_core_ed25519_scalar_add = <scalar_binary_fn>_resolve(
        b"crypto_core_ed25519_scalar_add")
    _api.crypto_core_ed25519_scalar_sub = <scalar_binary_fn>_resolve(
        b"crypto_core_ed25519_scalar_sub")
    _api.crypto_core_ed25519_scalar_mul = <scalar_binary_fn>_resolve(
        b"crypto_core_ed25519_scalar_mul")
    _api.crypto_core_ed25519_scalar_negate = <scalar_unary_fn>_resolve(
        b"crypto_core_ed25519_scalar_negate")
    _api.crypto_core_ed25519_scalar_invert = <scalar_invert_fn>_resolve(
        b"crypto_core_ed25519_scalar_invert")
    _api.crypto_sign_ed25519_seed_keypair = <seed_keypair_fn>_resolve(
        b"crypto_sign_ed25519_seed_keypair")
    _api.crypto_sign_ed25519_pk_to_curve25519 = <pk_to_curve_fn>_resolve(
        b"crypto_sign_ed25519_pk_to_curve25519")
    _api.crypto_verify_16 = <verify_fn>_resolve(b"crypto_verify_16")
    _api.crypto_verify_32 = <verify_fn>_resolve(b"crypto_verify_32")
    _api.randombytes_buf = <randombytes_fn>_resolve(b"randombytes_buf")

    # Our opaque state buffers must hold libsodium's multi-part states.
    cdef size_t limit = sizeof(fog_hash_state)
    for name in (b"crypto_hash_sha512_statebytes", b"crypto_auth_hmacsha256_statebytes",
                 b"crypto_generichash_blake2b_statebytes"):
        if (<size_fn>_resolve(name))() > limit:
            raise ImportError(f"libsodium's {name.decode()}() exceeds {limit} bytes")
    cdef int (*init)() noexcept nogil
    init = <int (*)() noexcept nogil>_resolve(b"sodium_init")
    if init() < 0:
        raise ImportError("sodium_init() failed")
    return 0


_load()


def library_info():
    """Where libsodium was loaded from: {"path", "source", "version"}.

    PyNaCl's bundled copy exports no version function, so its version is given as the
    oldest release that has every feature probed here."""
    cdef const char *(*version_fn)() noexcept nogil
    version_fn = <const char *(*)() noexcept nogil>dlsym(_handle, b"sodium_version_string")
    if version_fn != NULL:
        version = version_fn().decode()
    elif dlsym(_handle, b"crypto_ipcrypt_encrypt") != NULL:
        version = ">=1.0.21"
    elif dlsym(_handle, b"crypto_aead_aegis256_encrypt") != NULL:
        version = ">=1.0.19"
    else:
        version = ">=1.0.18"
    return {"path": _library_path, "source": _library_source, "version": version}


# ---- Python-facing wrappers: each checks sizes, then calls libsodium without the GIL ----

def x25519(const unsigned char[::1] scalar not None, const unsigned char[::1] point not None):
    """X25519(scalar, point) per RFC 7748 (the scalar is clamped). Raises ValueError on an
    all-zero result (a low-order point)."""
    if scalar.shape[0] != 32 or point.shape[0] != 32:
        raise ValueError("x25519 takes a 32-byte scalar and a 32-byte point")
    cdef unsigned char out[32]
    cdef int rc
    with nogil:
        rc = _api.crypto_scalarmult(out, &scalar[0], &point[0])
    if rc != 0:
        raise ValueError("x25519 result is all-zero (low-order point)")
    return out[:32]


def x25519_base(const unsigned char[::1] scalar not None):
    """X25519(scalar, 9): the public key of a secret scalar."""
    if scalar.shape[0] != 32:
        raise ValueError("x25519_base takes a 32-byte scalar")
    cdef unsigned char out[32]
    with nogil:
        _api.crypto_scalarmult_base(out, &scalar[0])
    return out[:32]


def chacha20_xor(const unsigned char[::1] key not None, const unsigned char[::1] nonce not None,
                 const unsigned char[::1] data not None, uint32_t counter=0):
    """ChaCha20 (RFC 8439, 96-bit nonce) keystream XOR data, starting at block `counter`."""
    if key.shape[0] != 32 or nonce.shape[0] != 12:
        raise ValueError("chacha20 takes a 32-byte key and a 12-byte nonce")
    cdef Py_ssize_t n = data.shape[0]
    out = bytearray(n)
    cdef unsigned char[::1] o = out
    if n:
        with nogil:
            _api.crypto_stream_chacha20_ietf_xor_ic(&o[0], &data[0], n, &nonce[0], counter,
                                                    &key[0])
    return bytes(out)


cdef const unsigned char *_ptr(const unsigned char[::1] view) noexcept:
    # Empty memoryviews have no element 0; libsodium accepts any pointer for length 0.
    return &view[0] if view.shape[0] else <const unsigned char *>b""


def hmac_sha256(const unsigned char[::1] key not None, const unsigned char[::1] data not None):
    """HMAC-SHA256 with a key of any length."""
    cdef fog_hash_state st
    cdef unsigned char out[32]
    cdef const unsigned char *k = _ptr(key)
    cdef const unsigned char *d = _ptr(data)
    cdef size_t klen = key.shape[0], dlen = data.shape[0]
    with nogil:
        _api.crypto_auth_hmacsha256_init(&st, k, klen)
        _api.crypto_auth_hmacsha256_update(&st, d, dlen)
        _api.crypto_auth_hmacsha256_final(&st, out)
    return out[:32]


def sha512(const unsigned char[::1] data not None):
    """SHA-512 digest."""
    cdef unsigned char out[64]
    cdef const unsigned char *d = _ptr(data)
    cdef size_t dlen = data.shape[0]
    with nogil:
        _api.crypto_hash_sha512(out, d, dlen)
    return out[:64]


def blake2b(const unsigned char[::1] data not None, const unsigned char[::1] key=None,
            size_t digest_size=64):
    """BLAKE2b digest (RFC 7693), keyed when `key` (at most 64 bytes) is given."""
    if not 1 <= digest_size <= 64:
        raise ValueError("blake2b digest_size must be 1..64")
    cdef size_t klen = 0 if key is None else key.shape[0]
    if klen > 64:
        raise ValueError("blake2b key must be at most 64 bytes")
    cdef const unsigned char *k = NULL
    if klen:
        k = &key[0]
    cdef const unsigned char *d = _ptr(data)
    cdef size_t dlen = data.shape[0]
    cdef unsigned char out[64]
    with nogil:
        _api.crypto_generichash_blake2b(out, digest_size, d, dlen, k, klen)
    return out[:digest_size]


def ed25519_scalarmult_noclamp(const unsigned char[::1] scalar not None,
                               const unsigned char[::1] point not None):
    """scalar · point on edwards25519, scalar not clamped (reduced mod L by libsodium).
    Raises ValueError for an invalid or small-order point or an identity result."""
    if scalar.shape[0] != 32 or point.shape[0] != 32:
        raise ValueError("ed25519 scalarmult takes a 32-byte scalar and a 32-byte point")
    cdef unsigned char out[32]
    cdef int rc
    with nogil:
        rc = _api.crypto_scalarmult_ed25519_noclamp(out, &scalar[0], &point[0])
    if rc != 0:
        raise ValueError("invalid edwards25519 point or identity result")
    return out[:32]


def ed25519_scalarmult_base_noclamp(const unsigned char[::1] scalar not None):
    """scalar · B on edwards25519, scalar not clamped."""
    if scalar.shape[0] != 32:
        raise ValueError("ed25519 base scalarmult takes a 32-byte scalar")
    cdef unsigned char out[32]
    cdef int rc
    with nogil:
        rc = _api.crypto_scalarmult_ed25519_base_noclamp(out, &scalar[0])
    if rc != 0:
        raise ValueError("scalar is zero modulo L")
    return out[:32]

"""Pure-Python implementations of the primitives in `fogcore.crypto`.

They lean on hashlib, hmac, `cryptography` and PyNaCl's Python bindings; the compiled twin
is `fogcore._ext._sodium`. Tests require both to give identical bytes.
"""

import hashlib
import hmac

import nacl.bindings as nb
import nacl.exceptions
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import ChaCha20

__all__ = [
    "blake2b",
    "chacha20_xor",
    "ed25519_scalarmult_base_noclamp",
    "ed25519_scalarmult_noclamp",
    "hmac_sha256",
    "sha512",
    "x25519",
    "x25519_base",
]


def _require(value, size: int, what: str) -> bytes:
    value = bytes(value)
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes")
    return value


def x25519(scalar, point) -> bytes:
    """X25519(scalar, point) per RFC 7748; ValueError on an all-zero result."""
    scalar = _require(scalar, 32, "x25519 scalar")
    point = _require(point, 32, "x25519 point")
    try:
        return nb.crypto_scalarmult(scalar, point)
    except nacl.exceptions.RuntimeError as exc:
        raise ValueError("x25519 result is all-zero (low-order point)") from exc


def x25519_base(scalar) -> bytes:
    """X25519(scalar, 9)."""
    return nb.crypto_scalarmult_base(_require(scalar, 32, "x25519 scalar"))


def chacha20_xor(key, nonce, data, counter: int = 0) -> bytes:
    """ChaCha20 (RFC 8439) keystream XOR data from block `counter`."""
    key = _require(key, 32, "chacha20 key")
    nonce = _require(nonce, 12, "chacha20 nonce")
    if not 0 <= counter < 2**32:
        raise OverflowError("chacha20 counter must fit in 32 bits")
    # cryptography's ChaCha20 nonce is the 32-bit little-endian counter then the 96-bit nonce.
    encryptor = Cipher(ChaCha20(key, counter.to_bytes(4, "little") + nonce), None).encryptor()
    return encryptor.update(bytes(data))


def hmac_sha256(key, data) -> bytes:
    """HMAC-SHA256 with a key of any length."""
    return hmac.new(bytes(key), bytes(data), hashlib.sha256).digest()


def sha512(data) -> bytes:
    """SHA-512 digest."""
    return hashlib.sha512(bytes(data)).digest()


def blake2b(data, key=None, digest_size: int = 64) -> bytes:
    """BLAKE2b digest, keyed when `key` is given."""
    if not 1 <= digest_size <= 64:
        raise ValueError("blake2b digest_size must be 1..64")
    key = b"" if key is None else bytes(key)
    if len(key) > 64:
        raise ValueError("blake2b key must be at most 64 bytes")
    return hashlib.blake2b(bytes(data), key=key, digest_size=digest_size).digest()


def ed25519_scalarmult_noclamp(scalar, point) -> bytes:
    """scalar · point on edwards25519 without clamping; ValueError on a bad point."""
    scalar = _require(scalar, 32, "ed25519 scalar")
    point = _require(point, 32, "ed25519 point")
    try:
        return nb.crypto_scalarmult_ed25519_noclamp(scalar, point)
    except nacl.exceptions.RuntimeError as exc:
        raise ValueError("invalid edwards25519 point or identity result") from exc


def ed25519_scalarmult_base_noclamp(scalar) -> bytes:
    """scalar · B on edwards25519 without clamping."""
    scalar = _require(scalar, 32, "ed25519 scalar")
    try:
        return nb.crypto_scalarmult_ed25519_base_noclamp(scalar)
    except nacl.exceptions.RuntimeError as exc:
        raise ValueError("scalar is zero modulo L") from exc

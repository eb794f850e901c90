"""Symmetric and curve primitives used by fogcore, from libsodium.

Compiled mode calls libsodium from C without the GIL (`fogcore._ext._sodium`); pure mode
(`FOGCORE_NO_EXTENSIONS=1`) uses `fogcore._sodium_py`. Both give identical bytes.
"""

from fogcore import _sodium_py
from fogcore._impl import implementation

__all__ = [
    "IMPLEMENTATION",
    "blake2b",
    "chacha20_xor",
    "ed25519_scalarmult_base_noclamp",
    "ed25519_scalarmult_noclamp",
    "hmac_sha256",
    "sha512",
    "x25519",
    "x25519_base",
]

_impl = implementation("_sodium")
IMPLEMENTATION = "c" if _impl is not _sodium_py else "py"

x25519 = _impl.x25519
x25519_base = _impl.x25519_base
chacha20_xor = _impl.chacha20_xor
hmac_sha256 = _impl.hmac_sha256
sha512 = _impl.sha512
blake2b = _impl.blake2b
ed25519_scalarmult_noclamp = _impl.ed25519_scalarmult_noclamp
ed25519_scalarmult_base_noclamp = _impl.ed25519_scalarmult_base_noclamp

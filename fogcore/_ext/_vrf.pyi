"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03) on libsodium; see fogcore.vrf."""

from collections.abc import Buffer

def public_key(secret_key: Buffer) -> bytes:
    """The 32-byte public key of a 32-byte secret key (seed); ValueError on a bad length."""

def prove(secret_key: Buffer, alpha: Buffer) -> bytes:
    """The 80-byte proof of `alpha`; ValueError when the secret key is not 32 bytes."""

def verify(public_key: Buffer, proof: Buffer, alpha: Buffer) -> bytes | None:
    """The 64-byte output beta for a valid proof, None otherwise."""

def proof_to_hash(proof: Buffer) -> bytes | None:
    """The 64-byte output beta of a proof that decodes, None otherwise."""

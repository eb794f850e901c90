"""ECVRF-EDWARDS25519-SHA512-TAI: the verifiable random function of RFC 9381 (suite 0x03).

A node proves one VRF output per delay epoch (see `fogcore.delays`); anyone holding its
public key can check the proof and recompute the output. Secret keys are RFC 8032 32-byte
seeds and public keys are derived as for Ed25519. A node never uses its Ed25519 identity
seed here (both schemes derive nonces from the secret): its VRF key is derived from the
seed under a label of its own (`fogcore.delays.vrf_secret_key`).

Compiled mode calls libsodium's edwards25519 operations from C (`fogcore._ext._vrf`); pure
mode (`FOGCORE_NO_EXTENSIONS=1`) uses the big-integer reference `fogcore._vrf_py`. Both give
identical bytes and reproduce the vectors of RFC 9381 Appendix B.3.

Verification is strict: wrong lengths, non-canonical point encodings, a public key of small
order (the RFC's validate_key), a Gamma of small order and s >= L are all rejected.
"""

from fogcore import _vrf_py
from fogcore._impl import implementation

__all__ = [
    "BETA_BYTES",
    "IMPLEMENTATION",
    "PROOF_BYTES",
    "PUBLIC_KEY_BYTES",
    "SECRET_KEY_BYTES",
    "InvalidProof",
    "proof_to_hash",
    "prove",
    "public_key",
    "verify",
]

SECRET_KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32
PROOF_BYTES = 80
BETA_BYTES = 64

_impl = implementation("_vrf")
IMPLEMENTATION = "c" if _impl is not _vrf_py else "py"


class InvalidProof(ValueError):
    """The proof is malformed or does not verify for this public key and input."""


def public_key(secret_key: bytes) -> bytes:
    """The 32-byte public key of a 32-byte secret key (the RFC 8032 public key).

    Raises ValueError when the secret key is not 32 bytes."""
    return _impl.public_key(secret_key)


def prove(secret_key: bytes, alpha: bytes) -> bytes:
    """The 80-byte proof pi = Gamma || c || s of `alpha` under `secret_key` (ECVRF_prove).

    Deterministic: the same key and input always give the same proof. Raises ValueError
    when the secret key is not 32 bytes."""
    return _impl.prove(secret_key, alpha)


def verify(public_key: bytes, proof: bytes, alpha: bytes) -> bytes:
    """The 64-byte VRF output beta if `proof` is valid for `alpha` under `public_key`.

    Raises InvalidProof otherwise, including for malformed keys and proofs."""
    beta = _impl.verify(public_key, proof, alpha)
    if beta is None:
        raise InvalidProof("ECVRF proof does not verify")
    return beta


def proof_to_hash(proof: bytes) -> bytes:
    """The 64-byte output beta carried by a proof (ECVRF_proof_to_hash).

    It checks only that the proof decodes: trust beta only from a proof that `verify`
    accepted, or from a proof you made yourself. Raises InvalidProof for a malformed
    proof."""
    beta = _impl.proof_to_hash(proof)
    if beta is None:
        raise InvalidProof("ECVRF proof is malformed")
    return beta

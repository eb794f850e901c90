"""Per-hop cryptography shared by both packet formats."""

from collections.abc import Buffer

MAX_STREAM_BYTES: int

def kdf(label: Buffer, data: Buffer, n: int) -> bytes:
    """ChaCha20(BLAKE2b(key=label, data, 32), n); ValueError unless 0 <= n <= 65536."""

def stream(key: Buffer, n: int) -> bytes:
    """n bytes of ChaCha20 key stream (nonce 0, counter 0); 0 <= n <= 65536."""

def mac(key: Buffer, beta: Buffer) -> bytes:
    """HMAC-SHA256(key, beta)[0:16]."""

def mac_ok(key: Buffer, beta: Buffer, gamma: Buffer) -> bool:
    """Constant-time check of a header MAC."""

def lioness_encrypt(keys: Buffer, block: Buffer) -> bytes:
    """Lioness encryption under 128 bytes of keys."""

def lioness_decrypt(keys: Buffer, block: Buffer) -> bytes:
    """Lioness decryption under 128 bytes of keys."""

def payload_plaintext(message: Buffer) -> bytes:
    """The 2048-byte payload plaintext of a message."""

def open_plaintext(plaintext: Buffer) -> bytes | None:
    """The message of a decrypted payload, None when its integrity check fails."""

"""Pure-Python reference of the parts both packet formats share (docs/packet-format.md §1).

Constants, framing, the hop KDF, the header MAC and stream, Lioness, the payload plaintext
and routing slots. Readable rather than fast: this is the specification in code and the
oracle the compiled implementation is tested against.
"""

import hmac
import operator
import struct

from fogcore import _sodium_py as cp

__all__ = [
    "BATCH_STRIDE",
    "CMD_DELIVER",
    "CMD_RELAY",
    "CMD_REPLY",
    "FORMAT_KEM",
    "FORMAT_SPHINX",
    "FRAME_HEADER_SIZE",
    "FRAME_VERSION",
    "HopKeys",
    "ID_SIZE",
    "INTEGRITY_SIZE",
    "KEY_SIZE",
    "LIONESS_KEYS_SIZE",
    "MAC_SIZE",
    "MAX_HOPS",
    "MAX_STREAM_BYTES",
    "MESSAGE_CAPACITY",
    "PAYLOAD_SIZE",
    "SURB_ID_SIZE",
    "FrameError",
    "build_routing",
    "hop_keys",
    "kdf",
    "lioness_decrypt",
    "lioness_encrypt",
    "mac",
    "mac_ok",
    "make_slot",
    "open_plaintext",
    "pack_frame_header",
    "parse_frame",
    "payload_plaintext",
    "stream",
    "xor",
]

MAX_HOPS = 5
ID_SIZE = 32
SURB_ID_SIZE = 16
MAC_SIZE = 16
KEY_SIZE = 32
PAYLOAD_SIZE = 2048
INTEGRITY_SIZE = 16
LENGTH_SIZE = 2
MESSAGE_CAPACITY = PAYLOAD_SIZE - INTEGRITY_SIZE - LENGTH_SIZE
LIONESS_KEYS_SIZE = 4 * KEY_SIZE
HOP_KEYS_SIZE = 256

FRAME_HEADER_SIZE = 4
FRAME_VERSION = 1
FORMAT_SPHINX = 1
FORMAT_KEM = 2
BATCH_STRIDE = 2560
MAX_STREAM_BYTES = 65536  # the longest output of one `kdf` or `stream` call (§1.3)

CMD_RELAY = 0x01
CMD_DELIVER = 0x02
CMD_REPLY = 0x03

_ZERO_NONCE = bytes(12)
_LIONESS_SPLIT = 32  # the left half is one ChaCha20 key / one BLAKE2b-256 digest wide


def xor(a: bytes, b: bytes) -> bytes:
    """Bytewise XOR of two equal-length strings."""
    assert len(a) == len(b)
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _stream_length(n) -> int:
    n = operator.index(n)
    if not 0 <= n <= MAX_STREAM_BYTES:
        raise ValueError(f"a key stream is 0 to {MAX_STREAM_BYTES} bytes")
    return n


def stream(key: bytes, n: int) -> bytes:
    """ChaCha20(key, n): n bytes of key stream, nonce 0^12, block counter 0 (n at most
    MAX_STREAM_BYTES)."""
    return cp.chacha20_xor(key, _ZERO_NONCE, bytes(_stream_length(n)))


def kdf(label: bytes, data: bytes, n: int) -> bytes:
    """KDF(label, input, n) = ChaCha20(BLAKE2b(key=label, data=input, 32), n)."""
    _stream_length(n)
    return stream(cp.blake2b(data, key=label, digest_size=32), n)


class HopKeys:
    """The 256 bytes one KDF call gives a hop, split into their named parts (§1.3)."""

    __slots__ = ("blind", "lioness", "mac", "raw", "stream", "tag")

    def __init__(self, raw: bytes):
        assert len(raw) == HOP_KEYS_SIZE
        self.raw = raw
        self.mac = raw[0:32]
        self.stream = raw[32:64]
        self.lioness = raw[64:192]
        self.tag = raw[192:224]
        self.blind = raw[224:256]


def hop_keys(label: bytes, data: bytes) -> HopKeys:
    """The hop keys for one hop: exactly one KDF call."""
    return HopKeys(kdf(label, data, HOP_KEYS_SIZE))


def mac(key: bytes, beta: bytes) -> bytes:
    """γ = HMAC-SHA256(key, β) truncated to 16 bytes."""
    return cp.hmac_sha256(key, beta)[:MAC_SIZE]


def mac_ok(key: bytes, beta: bytes, gamma: bytes) -> bool:
    """Constant-time check of a header MAC."""
    return hmac.compare_digest(mac(key, beta), gamma)


# Lioness (§1.6) over ChaCha20 and keyed BLAKE2b-256; a block is split as 32 || rest.


def _lioness_parts(keys: bytes, block: bytes):
    assert len(keys) == LIONESS_KEYS_SIZE and len(block) > _LIONESS_SPLIT
    k = [keys[i : i + 32] for i in range(0, 128, 32)]
    return k, bytes(block[:_LIONESS_SPLIT]), bytes(block[_LIONESS_SPLIT:])


def _stream_round(key: bytes, left: bytes, right: bytes) -> bytes:
    return cp.chacha20_xor(xor(left, key), _ZERO_NONCE, right)


def _hash_round(key: bytes, left: bytes, right: bytes) -> bytes:
    return xor(left, cp.blake2b(right, key=key, digest_size=_LIONESS_SPLIT))


def lioness_encrypt(keys: bytes, block: bytes) -> bytes:
    """Lioness encryption of `block` under 128 bytes of keys K1..K4."""
    k, left, right = _lioness_parts(keys, block)
    right = _stream_round(k[0], left, right)
    left = _hash_round(k[1], left, right)
    right = _stream_round(k[2], left, right)
    left = _hash_round(k[3], left, right)
    return left + right


def lioness_decrypt(keys: bytes, block: bytes) -> bytes:
    """Lioness decryption: the four rounds of `lioness_encrypt` undone in reverse order."""
    k, left, right = _lioness_parts(keys, block)
    left = _hash_round(k[3], left, right)
    right = _stream_round(k[2], left, right)
    left = _hash_round(k[1], left, right)
    right = _stream_round(k[0], left, right)
    return left + right


def payload_plaintext(message: bytes) -> bytes:
    """0^16 || u16 length || message || zero padding, 2048 bytes (§1.7)."""
    message = bytes(message)
    if len(message) > MESSAGE_CAPACITY:
        raise ValueError(f"message longer than {MESSAGE_CAPACITY} bytes")
    body = bytes(INTEGRITY_SIZE) + struct.pack(">H", len(message)) + message
    return body + bytes(PAYLOAD_SIZE - len(body))


def open_plaintext(plaintext: bytes) -> bytes | None:
    """The message in a decrypted payload, or None when the integrity check fails."""
    zero_ok = hmac.compare_digest(plaintext[:INTEGRITY_SIZE], bytes(INTEGRITY_SIZE))
    (length,) = struct.unpack_from(">H", plaintext, INTEGRITY_SIZE)
    if not zero_ok or length > MESSAGE_CAPACITY:
        return None
    start = INTEGRITY_SIZE + LENGTH_SIZE
    return bytes(plaintext[start : start + length])


class FrameError(Exception):
    """A frame failed the checks of §1.2; `reason` is the reject code."""

    def __init__(self, reason: int):
        super().__init__(reason)
        self.reason = reason


def pack_frame_header(fmt: int, length: int) -> bytes:
    """The 4-byte frame header: version, format, length (big-endian)."""
    return struct.pack(">BBH", FRAME_VERSION, fmt, length)


def parse_frame(frame, packet_sizes: dict[int, int], exact: bool = True) -> int:
    """Check a frame's header (§1.2) and return its format code.

    `packet_sizes` maps a format code to its packet length. With `exact`, the frame must be
    exactly header + length bytes; otherwise (a batch slot) it must merely fit.
    Raises FrameError with the reject code (1 WRONG_SIZE, 2 BAD_VERSION, 3 BAD_FORMAT).
    """
    if len(frame) < FRAME_HEADER_SIZE:
        raise FrameError(1)
    version, fmt, length = struct.unpack_from(">BBH", frame, 0)
    if version != FRAME_VERSION:
        raise FrameError(2)
    if fmt not in packet_sizes:
        raise FrameError(3)
    size = FRAME_HEADER_SIZE + length
    if length != packet_sizes[fmt] or (len(frame) != size if exact else len(frame) < size):
        raise FrameError(1)
    return fmt


def make_slot(size: int, command: int, flags: int, address: bytes, extra: bytes = b"",
              tail: bytes = b"") -> bytes:
    """A routing slot (§1.9): command, flags, address, extra (16), format tail, zero-filled."""
    body = bytes([command, flags]) + bytes(address) + bytes(extra).ljust(MAC_SIZE, b"\0")
    body += bytes(tail)
    assert len(address) == ID_SIZE and len(body) <= size
    return body.ljust(size, b"\0")


def build_routing(slot_size: int, keys: list, final_slot: bytes, pad: bytes, relay_slot):
    """β_0 and γ_0 for a route whose hops have `keys` (§2.4 steps 3-6, shared by both
    formats). `relay_slot(i, gamma_next)` gives the RELAY slot of hop i."""
    n = len(keys)
    S, L = slot_size, MAX_HOPS * slot_size
    assert 1 <= n <= MAX_HOPS and len(final_slot) == S
    rho = [stream(k.stream, L + S) for k in keys]
    # The filler: what hops 0..n-2 append to the routing block, seen from hop n-1.
    phi = b""
    for i in range(1, n):
        phi = xor(phi + bytes(S), rho[i - 1][L - (i - 1) * S : L + S])
    beta = xor(final_slot + pad[: L - n * S], rho[n - 1][: L - (n - 1) * S]) + phi
    gamma = mac(keys[n - 1].mac, beta)
    for i in range(n - 2, -1, -1):
        beta = xor(relay_slot(i, gamma) + beta[: L - S], rho[i][:L])
        gamma = mac(keys[i].mac, beta)
    return beta, gamma

"""Single-use reply blocks (docs/packet-format.md §4).

The owner makes a SURB for a route back to its own mailbox and keeps a `SurbKey`; whoever
holds the `Surb` can send one reply without learning the route; the owner opens the reply
payload that its mailbox node reports with the `SurbKey`.
"""

import os
import struct
from dataclasses import dataclass

from fogcore._impl import implementation
from fogcore.packet import _hop_py as c
from fogcore.packet._batch_py import FORMATS

__all__ = [
    "IMPLEMENTATION",
    "LABEL_SURB",
    "LABEL_SURB_PAYLOAD",
    "ReplyError",
    "Surb",
    "SurbKey",
    "build_reply",
    "make_surb",
    "open_reply",
]

LABEL_SURB = b"fogcore/surb/v1"
LABEL_SURB_PAYLOAD = b"fogcore/surb/v1/payload"
_FORMAT_NAMES = {"sphinx": c.FORMAT_SPHINX, "kem": c.FORMAT_KEM}

# The primitives a SURB needs, compiled when built (as `fogcore.packet` chooses its backend),
# else the reference: the KDF, Lioness and the payload plaintext from `_hop`, and each
# format's header builder. Both give the same bytes (tests/test_packet_surb.py).
_hop = implementation("_hop")
_HEADER_BUILDERS = {
    c.FORMAT_SPHINX: implementation("_sphinx"),
    c.FORMAT_KEM: implementation("_kem"),
}
IMPLEMENTATION = "py" if _hop is c else "c"


class ReplyError(ValueError):
    """A reply payload failed its integrity check, or a SURB/SurbKey is malformed."""


@dataclass(frozen=True, slots=True)
class Surb:
    """What the replier gets: format, first hop, payload key and the ready header."""

    fmt: int
    first_hop: bytes
    payload_key: bytes
    header: bytes

    def to_bytes(self) -> bytes:
        """format (1) || first hop id (32) || payload key (32) || header."""
        return bytes([self.fmt]) + self.first_hop + self.payload_key + self.header

    @classmethod
    def from_bytes(cls, data) -> "Surb":
        """Parse `to_bytes` output; ReplyError when malformed."""
        data = bytes(data)
        if not data or data[0] not in FORMATS:
            raise ReplyError("unknown SURB format")
        mod = FORMATS[data[0]]
        if len(data) != 65 + mod.HEADER_SIZE:
            raise ReplyError("SURB has the wrong size")
        return cls(data[0], data[1:33], data[33:65], data[65:])


@dataclass(frozen=True, slots=True)
class SurbKey:
    """What the SURB's owner keeps to open the reply: the SURB id, the payload key, the
    Lioness keys of every hop and the replay tags the hops will report."""

    fmt: int
    surb_id: bytes
    payload_key: bytes
    hop_keys: tuple[bytes, ...]
    tags: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        """format || hops || surb id (16) || payload key (32) || hops × (lioness 128, tag 32)."""
        out = struct.pack(">BB", self.fmt, len(self.hop_keys)) + self.surb_id + self.payload_key
        return out + b"".join(k + t for k, t in zip(self.hop_keys, self.tags, strict=True))

    @classmethod
    def from_bytes(cls, data) -> "SurbKey":
        """Parse `to_bytes` output; ReplyError when malformed."""
        data = bytes(data)
        if len(data) < 50 or data[0] not in FORMATS or not 1 <= data[1] <= c.MAX_HOPS:
            raise ReplyError("malformed SURB key")
        n = data[1]
        if len(data) != 50 + n * 160:
            raise ReplyError("SURB key has the wrong size")
        hops = [data[50 + 160 * i : 50 + 160 * (i + 1)] for i in range(n)]
        return cls(data[0], data[2:18], data[18:50], tuple(h[:128] for h in hops),
                   tuple(h[128:] for h in hops))


def _build_header(fmt: int, route, final: bytes, seed: bytes, method: str):
    """(header, per-hop Lioness keys, per-hop replay tags) of a SURB's header (§2.4/§3.4)."""
    header, keys = _HEADER_BUILDERS[fmt].build_header(route, final, seed, method)
    # The compiled builders return each hop's 256 raw key bytes, the reference `HopKeys`.
    hops = [k if isinstance(k, c.HopKeys) else c.HopKeys(k) for k in keys]
    return header, tuple(k.lioness for k in hops), tuple(k.tag for k in hops)


def make_surb(route, mailbox: bytes, format: str = "sphinx", rng=None,
              method: str = "reencoded") -> tuple[Surb, SurbKey]:
    """A SURB along `route` (1-5 `NodeInfo`, the last one holding `mailbox`) and the key
    to open its reply. `rng(n) -> bytes` defaults to os.urandom; one 32-byte draw.
    `method` only chooses how `sphinx` elements are computed (§2.6): every method gives
    the same bytes."""
    fmt = _FORMAT_NAMES[format]
    mod = FORMATS[fmt]
    if not 1 <= len(route) <= c.MAX_HOPS:
        raise ValueError(f"a route has 1 to {c.MAX_HOPS} hops")
    mailbox = bytes(mailbox)
    if len(mailbox) != c.ID_SIZE:
        raise ValueError("mailbox id must be 32 bytes")
    seed = (rng or os.urandom)(32)
    derived = _hop.kdf(LABEL_SURB, seed, 80)
    surb_id, payload_key, header_seed = derived[:16], derived[16:48], derived[48:80]
    final = c.make_slot(mod.SLOT_SIZE, c.CMD_REPLY, 0, mailbox, surb_id)
    header, lioness, tags = _build_header(fmt, route, final, header_seed, method)
    surb = Surb(fmt, route[0].node_id, payload_key, header)
    return surb, SurbKey(fmt, surb_id, payload_key, lioness, tags)


def _payload_keys(payload_key: bytes) -> bytes:
    return _hop.kdf(LABEL_SURB_PAYLOAD, payload_key, c.LIONESS_KEYS_SIZE)


def build_reply(surb: Surb, message: bytes) -> tuple[bytes, bytes]:
    """(first hop id, frame) of the reply carrying `message` (at most 2030 bytes).
    Deterministic: all randomness was fixed when the SURB was made."""
    mod = FORMATS[surb.fmt]
    payload = _hop.lioness_encrypt(_payload_keys(surb.payload_key),
                                   _hop.payload_plaintext(message))
    return surb.first_hop, c.pack_frame_header(surb.fmt, mod.PACKET_SIZE) + surb.header + payload


def open_reply(key: SurbKey, payload) -> bytes:
    """The message in a REPLY outcome's payload; ReplyError when it was tampered with."""
    payload = bytes(payload)
    if len(payload) != c.PAYLOAD_SIZE:
        raise ReplyError("reply payload has the wrong size")
    # Undo the hops' Lioness decryptions, last hop first, then the replier's encryption.
    for lioness in reversed(key.hop_keys):
        payload = _hop.lioness_encrypt(lioness, payload)
    message = _hop.open_plaintext(_hop.lioness_decrypt(_payload_keys(key.payload_key),
                                                       payload))
    if message is None:
        raise ReplyError("reply payload failed its integrity check")
    return message

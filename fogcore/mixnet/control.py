"""Control frames: the small signed messages that tell a sender whether the node at the
other end of a TCP connection is alive and whether it is leaving (docs/node.md §16).

A control frame uses the packet framing (packet-format §1.2) with format code
`CONTROL_FORMAT` and a fixed body of `CONTROL_LENGTH` bytes, so a node's frame parser
tells it from a packet by its header alone. Three kinds travel:

- `PROBE` (sender → node): a fresh 16-byte nonce, nothing else; unsigned.
- `PROBE_ACK` (node → sender, on the same connection): the nonce echoed, the node's id,
  its state (`STATE_UP` or `STATE_DRAINING`) and an Ed25519 signature by the node's
  identity key. Because TCP delivers in order, an ack also proves that every byte written
  before the probe was read by the node.
- `DRAINING` (node → sender, unsolicited): the same signed layout with a random nonce,
  sent on every incoming connection when the node starts to leave.

This module is sans-I/O: it encodes, decodes, signs and verifies; `ControlReader` splits
a byte stream of control frames. The node, its links, the client transport and the
directory's prober do the I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

__all__ = [
    "CONTROL_FORMAT",
    "CONTROL_FRAME_SIZE",
    "CONTROL_LENGTH",
    "DRAINING",
    "PROBE",
    "PROBE_ACK",
    "STATE_DRAINING",
    "STATE_UP",
    "ControlError",
    "ControlMessage",
    "ControlReader",
    "ControlSigner",
    "decode_control",
    "encode_probe",
    "verify_control",
    "verify_leave",
]

FRAME_VERSION = 1
#: format byte of a control frame (packet formats are 1 and 2)
CONTROL_FORMAT = 0x7F
#: bytes after the 4-byte frame header
CONTROL_LENGTH = 116
CONTROL_FRAME_SIZE = 4 + CONTROL_LENGTH
PROBE, PROBE_ACK, DRAINING = 1, 2, 3
STATE_UP, STATE_DRAINING = 0, 1
KINDS = (PROBE, PROBE_ACK, DRAINING)
STATES = (STATE_UP, STATE_DRAINING)
NONCE_SIZE = 16
#: the signature covers this prefix and the first SIGNED_LENGTH bytes of the body
DOMAIN = b"fogcore control v1"
SIGNED_LENGTH = 52
_HEADER = bytes((FRAME_VERSION, CONTROL_FORMAT)) + CONTROL_LENGTH.to_bytes(2, "big")
_ZERO_ID = bytes(32)
_ZERO_SIG = bytes(64)
#: a leave announcement signs this prefix, the node id and its time (8 bytes, big-endian)
LEAVE_DOMAIN = b"fogcore leave v1"


class ControlError(ValueError):
    """A control frame that is malformed, of an unexpected kind, or badly signed."""


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """One decoded control frame body."""

    kind: int
    state: int
    nonce: bytes
    node_id: bytes
    signature: bytes

    @property
    def draining(self) -> bool:
        """True when the signer says it is leaving."""
        return self.state == STATE_DRAINING


def _body(kind: int, state: int, nonce: bytes, node_id: bytes) -> bytes:
    return bytes((kind, state, 0, 0)) + nonce + node_id


def encode_probe(nonce: bytes | None = None) -> bytes:
    """A whole PROBE frame (header included) with `nonce` (default: 16 random bytes)."""
    nonce = os.urandom(NONCE_SIZE) if nonce is None else bytes(nonce)
    if len(nonce) != NONCE_SIZE:
        raise ControlError(f"a nonce is {NONCE_SIZE} bytes")
    return _HEADER + _body(PROBE, STATE_UP, nonce, _ZERO_ID) + _ZERO_SIG


class ControlSigner:
    """Signs a node's PROBE_ACK and DRAINING frames with its Ed25519 identity seed."""

    def __init__(self, identity_seed: bytes):
        self._key = nacl.signing.SigningKey(bytes(identity_seed))
        #: the node id (Ed25519 public key) the frames carry
        self.node_id = bytes(self._key.verify_key)

    def frame(self, kind: int, state: int, nonce: bytes) -> bytes:
        """A whole signed frame (header included) of `kind` (PROBE_ACK or DRAINING)."""
        if kind not in (PROBE_ACK, DRAINING) or state not in STATES:
            raise ControlError("only PROBE_ACK and DRAINING are signed, in a known state")
        if len(nonce) != NONCE_SIZE:
            raise ControlError(f"a nonce is {NONCE_SIZE} bytes")
        body = _body(kind, state, bytes(nonce), self.node_id)
        return _HEADER + body + self._key.sign(DOMAIN + body).signature

    def ack(self, nonce: bytes, state: int) -> bytes:
        """The PROBE_ACK answering a probe with `nonce`."""
        return self.frame(PROBE_ACK, state, nonce)

    def draining(self) -> bytes:
        """A DRAINING announcement with a fresh nonce."""
        return self.frame(DRAINING, STATE_DRAINING, os.urandom(NONCE_SIZE))

    def leave(self, at: int) -> bytes:
        """The 64-byte signature of a leave announcement at Unix time `at` (seconds), as
        `POST /api/directory/nodes/{node_id}/leave` takes it (docs/directory.md)."""
        return self._key.sign(_leave_message(self.node_id, at)).signature


def _leave_message(node_id: bytes, at: int) -> bytes:
    if not 0 <= at < 1 << 64:
        raise ControlError("a leave time is an unsigned 64-bit number of seconds")
    return LEAVE_DOMAIN + bytes(node_id) + int(at).to_bytes(8, "big")


def verify_leave(node_id: bytes, at: int, signature: bytes, now: float,
                 max_skew_s: float = 300) -> None:
    """Check a leave announcement: `signature` by `node_id` over its time `at`, which must
    lie within `max_skew_s` of `now`. Raises ControlError."""
    if abs(float(now) - at) > max_skew_s:
        raise ControlError("the leave time is too far from the directory's clock")
    node_id = bytes(node_id)
    if len(node_id) != 32 or len(signature) != 64:
        raise ControlError("a node id is 32 bytes and a signature 64")
    try:
        nacl.signing.VerifyKey(node_id).verify(_leave_message(node_id, at), bytes(signature))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise ControlError("bad signature") from exc


def decode_control(body) -> ControlMessage:
    """Decode a control frame's body (the `CONTROL_LENGTH` bytes after the header).
    Checks the layout only; `verify_control` checks the signature."""
    body = bytes(body)
    if len(body) != CONTROL_LENGTH:
        raise ControlError(f"a control body is {CONTROL_LENGTH} bytes, got {len(body)}")
    kind, state = body[0], body[1]
    if kind not in KINDS:
        raise ControlError(f"unknown control kind {kind}")
    if state not in STATES or body[2] or body[3]:
        raise ControlError("bad state or reserved bytes")
    return ControlMessage(kind, state, body[4:20], body[20:52], body[52:116])


def verify_control(message: ControlMessage, node_id: bytes | None = None) -> None:
    """Check that a PROBE_ACK or DRAINING is signed by the node it names, and (when given)
    that this is `node_id`. Raises ControlError."""
    if message.kind == PROBE:
        raise ControlError("a probe carries no signature")
    if node_id is not None and message.node_id != bytes(node_id):
        raise ControlError("signed by another node")
    body = _body(message.kind, message.state, message.nonce, message.node_id)
    try:
        nacl.signing.VerifyKey(message.node_id).verify(DOMAIN + body, message.signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise ControlError("bad signature") from exc


class ControlReader:
    """Splits a byte stream that carries only control frames (what a node writes back on
    a connection) into `ControlMessage`s. Anything else raises ControlError: the stream's
    framing is then lost and the connection must be dropped."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data) -> list[ControlMessage]:
        """Add received bytes; return the complete messages, oldest first."""
        buf = self._buf
        buf += data
        out = []
        while len(buf) >= 4:
            if bytes(buf[:4]) != _HEADER:
                raise ControlError("not a control frame header")
            if len(buf) < CONTROL_FRAME_SIZE:
                break
            out.append(decode_control(buf[4:CONTROL_FRAME_SIZE]))
            del buf[:CONTROL_FRAME_SIZE]
        return out

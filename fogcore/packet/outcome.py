"""What processing one packet produces (docs/packet-format.md §5): an `Outcome` object for
the single-packet API and a fixed 96-byte record per packet for the batch entry point."""

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "OUTCOME_RECORD",
    "OUTCOME_RECORD_SIZE",
    "RECORD_FIELDS",
    "TAG_KNOWN_FROM",
    "Kind",
    "Outcome",
    "Reason",
    "decode_records",
    "pack_record",
]


class Kind(enum.IntEnum):
    """The kind of an outcome; the values are the record's `kind` byte."""

    FORWARD = 1
    DELIVER = 2
    REPLY = 3
    REJECT = 4


class Reason(enum.IntEnum):
    """Why a packet was rejected; the values are the record's `reason` byte, checked in
    this order."""

    NONE = 0
    WRONG_SIZE = 1
    BAD_VERSION = 2
    BAD_FORMAT = 3
    LOW_ORDER = 4
    BAD_MAC = 5
    REPLAY = 6
    BAD_COMMAND = 7
    BAD_PAYLOAD = 8


# Rejects from this reason on happen after the MAC verified, so the tag is known.
_TAG_KNOWN_FROM = Reason.REPLAY


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of processing one packet.

    - FORWARD: `address` is the next node id, `packet` the frame to send it.
    - DELIVER: `address` is the mailbox id, `payload` the delivered message.
    - REPLY: `address` is the mailbox id, `surb_id` the SURB id, `payload` the 2048-byte
      reply payload still encrypted for the SURB's owner.
    - REJECT: `reason` says why; nothing else is set except `tag` when the MAC verified.
    `tag` is the replay tag (input of the node's VRF delay), `flags` the per-hop flags byte.
    """

    kind: Kind
    reason: Reason = Reason.NONE
    fmt: int = 0
    flags: int = 0
    address: bytes | None = None
    surb_id: bytes | None = None
    tag: bytes | None = None
    packet: bytes | None = None
    payload: bytes | None = None
    delay_us: int = 0

    @classmethod
    def reject(cls, reason: int, fmt: int = 0, tag: bytes | None = None) -> "Outcome":
        """A REJECT outcome."""
        return cls(Kind.REJECT, Reason(reason), fmt=fmt, tag=tag)


# The Python mirror of struct fog_outcome (fogcore/_ext/_outcome.pxd, where C defines it);
# tests/test_packet_record.py checks the two against each other. Little-endian integers.
_RECORD_FORMAT = (
    ("kind", "B"), ("reason", "B"), ("flags", "B"), ("format", "B"), ("out_len", "H"),
    ("reserved0", "H"), ("out_offset", "I"), ("delay_us", "I"), ("address", "32s"),
    ("surb_id", "16s"), ("tag", "32s"),
)
OUTCOME_RECORD = struct.Struct("<" + "".join(code for _, code in _RECORD_FORMAT))
OUTCOME_RECORD_SIZE = OUTCOME_RECORD.size
assert OUTCOME_RECORD_SIZE == 96


def _field_positions() -> dict[str, tuple[int, int]]:
    positions, offset = {}, 0
    for name, code in _RECORD_FORMAT:
        size = struct.calcsize("<" + code)
        positions[name] = (offset, size)
        offset += size
    return positions


#: field name -> (offset, size) in the record, in record order
RECORD_FIELDS = _field_positions()
#: rejects with this reason or a later one carry the replay tag (the MAC verified)
TAG_KNOWN_FROM = _TAG_KNOWN_FROM


def pack_record(records, index: int, outcome: Outcome, offset: int, length: int,
                delay_us: int = 0) -> None:
    """Write the record of `outcome` at `index`; `offset`/`length` locate its output bytes
    in the batch slot, `delay_us` is its VRF mixing delay (§5.2)."""
    OUTCOME_RECORD.pack_into(
        records,
        index * OUTCOME_RECORD_SIZE,
        outcome.kind,
        outcome.reason,
        outcome.flags,
        outcome.fmt,
        length,
        0,
        offset,
        delay_us,
        outcome.address or b"",
        outcome.surb_id or b"",
        outcome.tag or b"",
    )


def decode_records(records, count: int, buffer, stride: int) -> list[Outcome]:
    """Turn `count` batch records (and the processed batch buffer) into `Outcome` objects.
    For tests and slow paths; the node runtime reads the records directly."""
    out = []
    view = memoryview(buffer)
    for i in range(count):
        kind, reason, flags, fmt, length, _, offset, delay, address, surb_id, tag = (
            OUTCOME_RECORD.unpack_from(records, i * OUTCOME_RECORD_SIZE)
        )
        base = i * stride
        data = bytes(view[base + offset : base + offset + length])
        if kind == Kind.REJECT:
            known = reason >= _TAG_KNOWN_FROM
            out.append(Outcome.reject(reason, fmt, tag if known else None))
        elif kind == Kind.FORWARD:
            out.append(Outcome(Kind.FORWARD, fmt=fmt, flags=flags, address=address, tag=tag,
                               packet=data, delay_us=delay))
        elif kind == Kind.DELIVER:
            out.append(Outcome(Kind.DELIVER, fmt=fmt, flags=flags, address=address, tag=tag,
                               payload=data, delay_us=delay))
        elif kind == Kind.REPLY:
            out.append(Outcome(Kind.REPLY, fmt=fmt, flags=flags, address=address,
                               surb_id=surb_id, tag=tag, payload=data, delay_us=delay))
        else:
            raise ValueError(f"record {i} has no outcome (kind {kind})")
    return out

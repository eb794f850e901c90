"""Betanet onion packets: the `sphinx` (v1) and `kem` (v2) formats of
docs/packet-format.md.

- Keys: `NodeKeys` (a node's secrets), `NodeInfo` (what senders know of a node).
- Senders: `build_packet`; `make_surb` / `build_reply` / `open_reply` for replies.
- Nodes: `process_packet` for one frame, `process_batch` for a buffer of frames processed
  in place (GIL released in the compiled implementation).

The compiled implementation (`fogcore._ext._batch`) is used when built; in pure mode
(`FOGCORE_NO_EXTENSIONS=1`) the reference in `fogcore.packet._batch_py` is. Both give the same
bytes for the same inputs.
"""

import operator
import os
from dataclasses import dataclass

from fogcore._impl import implementation
from fogcore.packet import _batch_py
from fogcore.packet import _hop_py as _c
from fogcore.packet.keys import NodeInfo, NodeKeys
from fogcore.packet.outcome import (
    OUTCOME_RECORD_SIZE,
    Kind,
    Outcome,
    Reason,
    decode_records,
)
from fogcore.packet.surb import ReplyError, Surb, SurbKey, build_reply, make_surb, open_reply

__all__ = [
    "BATCH_STRIDE",
    "FORMATS",
    "FRAME_SIZES",
    "IMPLEMENTATION",
    "MAX_HOPS",
    "MESSAGE_CAPACITY",
    "OUTCOME_RECORD_SIZE",
    "PAYLOAD_SIZE",
    "BuiltPacket",
    "Kind",
    "NodeInfo",
    "NodeKeys",
    "Outcome",
    "Reason",
    "ReplyError",
    "Surb",
    "SurbKey",
    "build_packet",
    "build_reply",
    "decode_records",
    "make_surb",
    "open_reply",
    "process_batch",
    "process_packet",
]

MAX_HOPS = _c.MAX_HOPS
PAYLOAD_SIZE = _c.PAYLOAD_SIZE
MESSAGE_CAPACITY = _c.MESSAGE_CAPACITY
BATCH_STRIDE = _c.BATCH_STRIDE
#: format name -> format code carried in the frame header
FORMATS = {"sphinx": _c.FORMAT_SPHINX, "kem": _c.FORMAT_KEM}
#: format name -> size of its frames in bytes (frame header included)
FRAME_SIZES = {
    name: _c.FRAME_HEADER_SIZE + _batch_py.FORMATS[code].PACKET_SIZE for name, code in FORMATS.items()
}

_backend = implementation("_batch")
IMPLEMENTATION = "py" if _backend is _batch_py else "c"
if _backend is not _batch_py:
    # The packet core imports nothing above it: it is given the result type here.
    _backend.set_outcome_type(Outcome, Kind, Reason)


@dataclass(frozen=True, slots=True)
class BuiltPacket:
    """A packet ready to send: the node to send it to, the frame, and the replay tag every
    hop will report (what a sender needs to audit each hop's VRF delay)."""

    first_hop: bytes
    packet: bytes
    tags: tuple[bytes, ...]


def build_packet(route, destination: bytes, payload: bytes, format: str = "sphinx",
                 rng=None) -> BuiltPacket:
    """A packet through `route` (1-5 `NodeInfo`) delivering `payload` (at most
    `MESSAGE_CAPACITY` bytes) to mailbox `destination` (32 bytes) at the last node.

    `rng(n) -> bytes` (default `os.urandom`) is called once for the 32-byte packet seed
    from which all of the packet's randomness derives; pass a fixed one for reproducible
    packets.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown packet format {format!r}")
    destination = bytes(destination)
    if len(destination) != _c.ID_SIZE:
        raise ValueError("destination mailbox id must be 32 bytes")
    route = list(route)
    seed = (rng or os.urandom)(32)
    frame, tags = _backend.build_packet(FORMATS[format], route, _c.CMD_DELIVER, destination,
                                        b"", bytes(payload), seed)
    return BuiltPacket(route[0].node_id, frame, tags)


def process_packet(keys: NodeKeys, packet, replay_filter) -> Outcome:
    """Process one frame (bytes-like) at the node with `keys`.

    `replay_filter.check_and_add(tag) -> bool` records a tag and says whether it was seen
    before (`fogcore.replay.ReplayFilter`). Never raises on bad packet bytes: every problem
    is a REJECT outcome with its `Reason`.
    """
    return _backend.process_packet(keys, packet, replay_filter)


def process_batch(keys: NodeKeys, buffer, count: int, replay_filter, records=None, *,
                  threads: int = 1, vrf_output=None, mean_us: int = 0, max_us: int = 0):
    """Process `count` frames held one per `BATCH_STRIDE`-byte slot of the writable
    `buffer`, in place; return the records buffer (`count` × 96-byte outcome records,
    docs/packet-format.md §5.2). `decode_records` turns records into `Outcome` objects.

    The compiled backend releases the GIL for the whole batch and splits it across
    `threads` worker threads. With `vrf_output` (the node's 64-byte VRF output of the
    current delay epoch) each accepted packet's record carries its mixing delay in µs,
    an exponential draw of mean `mean_us` clamped to `max_us` (docs/vrf-delays.md).
    """
    if records is None:
        # Sized by the slots the buffer really holds, so a huge or negative count reaches
        # the backend's ValueError instead of a giant allocation.
        slots = memoryview(buffer).nbytes // BATCH_STRIDE
        records = bytearray(OUTCOME_RECORD_SIZE * min(max(operator.index(count), 0), slots))
    _backend.process_batch(keys, buffer, count, replay_filter, records, threads=threads,
                           vrf_output=vrf_output, mean_us=mean_us, max_us=max_us)
    return records

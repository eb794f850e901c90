"""Fragmentation of long messages into packet-sized pieces and their reassembly
(docs/client.md §2).

A message is cut into fragments that each fit one packet. Every fragment carries a 30-byte
header: version, flags, the 16-byte message id, its index, the fragment count, the total
message length and the offset of its data in the message. The `Reassembler` accepts
fragments in any order, ignores duplicates, holds a bounded number of bytes and drops
incomplete messages after a time to live.
"""

from __future__ import annotations

import enum
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "HEADER_SIZE",
    "MAX_FRAGMENTS",
    "MESSAGE_ID_SIZE",
    "VERSION",
    "AddResult",
    "AddStatus",
    "Fragment",
    "FragmentError",
    "Reassembler",
    "fragment_count",
    "split_message",
]

VERSION = 1
MESSAGE_ID_SIZE = 16
# version, flags, message id, index, count, total length, offset (big-endian)
_HEADER = struct.Struct(">BB16sHHII")
HEADER_SIZE = _HEADER.size
#: The index and count fields are 16 bits wide.
MAX_FRAGMENTS = 0xFFFF


class FragmentError(ValueError):
    """A fragment's bytes do not follow docs/client.md §2, or a message cannot be split."""


@dataclass(frozen=True, slots=True)
class Fragment:
    """One piece of a message: `data` is `message[offset : offset + len(data)]`."""

    message_id: bytes
    index: int
    count: int
    total_length: int
    offset: int
    data: bytes

    def encode(self) -> bytes:
        """The header followed by the data."""
        return _HEADER.pack(VERSION, 0, self.message_id, self.index, self.count,
                            self.total_length, self.offset) + self.data

    @classmethod
    def decode(cls, raw) -> Fragment:
        """Parse and check one encoded fragment; `FragmentError` when it is malformed."""
        raw = bytes(raw)
        if len(raw) < HEADER_SIZE:
            raise FragmentError("fragment shorter than its header")
        version, flags, message_id, index, count, total, offset = _HEADER.unpack_from(raw)
        data = raw[HEADER_SIZE:]
        if version != VERSION:
            raise FragmentError(f"unsupported fragment version {version}")
        if flags != 0:
            raise FragmentError("reserved fragment flags are set")
        if count == 0 or index >= count:
            raise FragmentError("fragment index out of range")
        if offset + len(data) > total:
            raise FragmentError("fragment data runs past the message length")
        # Every fragment carries at least one byte, except the single fragment of an
        # empty message: so `count` can never claim more pieces than there are bytes.
        if total == 0:
            if count != 1 or data:
                raise FragmentError("an empty message has exactly one empty fragment")
        elif not data or count > total:
            raise FragmentError("fragment of a non-empty message without data")
        return cls(message_id, index, count, total, offset, data)


def fragment_count(length: int, chunk_size: int) -> int:
    """How many fragments a message of `length` bytes needs with `chunk_size` data bytes
    per fragment (an empty message still needs one)."""
    if chunk_size < 1:
        raise FragmentError("chunk size must be at least one byte")
    return max(1, -(-length // chunk_size))


def split_message(message, chunk_size: int, message_id: bytes | None = None) -> list[Fragment]:
    """Cut `message` into fragments of at most `chunk_size` data bytes. The message id is
    random unless given (16 bytes)."""
    message = bytes(message)
    message_id = os.urandom(MESSAGE_ID_SIZE) if message_id is None else bytes(message_id)
    if len(message_id) != MESSAGE_ID_SIZE:
        raise FragmentError("message id must be 16 bytes")
    count = fragment_count(len(message), chunk_size)
    if count > MAX_FRAGMENTS or len(message) >= 2**32:
        raise FragmentError("message too long to fragment")
    return [
        Fragment(message_id, i, count, len(message), i * chunk_size,
                 message[i * chunk_size : (i + 1) * chunk_size])
        for i in range(count)
    ]


class AddStatus(enum.Enum):
    """What `Reassembler.add` did with a fragment."""

    NEW = "new"  # stored, message still incomplete
    COMPLETE = "complete"  # it completed its message (`AddResult.message`)
    DUPLICATE = "duplicate"  # already held, or its message was already completed
    REJECTED = "rejected"  # inconsistent with its message or over a bound (`reason`)


@dataclass(frozen=True, slots=True)
class AddResult:
    """The status of one added fragment, the message it completed, or why it was refused."""

    status: AddStatus
    message: bytes | None = None
    reason: str | None = None


@dataclass(slots=True)
class _Partial:
    count: int
    total_length: int
    first_seen: float
    pieces: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Rebuilds messages from fragments arriving in any order.

    Bounds: `max_message_bytes` per message (larger declared lengths are refused at the
    first fragment), `max_pending` incomplete messages and `max_buffered_bytes` of held
    fragment data (the oldest incomplete messages are evicted to make room), `ttl` seconds
    from a message's first fragment to its expiry, and the ids of the last
    `completed_memory` completed messages (so a late copy is a duplicate, not a new message).
    `stats` counts every outcome.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = 1 << 20,
        max_pending: int = 256,
        max_buffered_bytes: int = 8 << 20,
        ttl: float = 120.0,
        completed_memory: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < max_message_bytes <= max_buffered_bytes:
            raise ValueError("need 0 < max_message_bytes <= max_buffered_bytes")
        if max_pending < 1 or completed_memory < 1 or ttl <= 0:
            raise ValueError("max_pending, completed_memory and ttl must be positive")
        self.max_message_bytes = max_message_bytes
        self.max_pending = max_pending
        self.max_buffered_bytes = max_buffered_bytes
        self.ttl = ttl
        self.completed_memory = completed_memory
        self._clock = clock
        # Insertion order is arrival order of each message's first fragment: the oldest
        # incomplete message is the first entry, the one eviction and expiry remove first.
        self._partial: OrderedDict[bytes, _Partial] = OrderedDict()
        self._completed: OrderedDict[bytes, None] = OrderedDict()
        self.buffered_bytes = 0
        self.stats = {
            "fragments": 0,
            "duplicates": 0,
            "completed": 0,
            "rejected": 0,
            "expired": 0,
            "evicted": 0,
        }

    @property
    def pending(self) -> int:
        """Incomplete messages held."""
        return len(self._partial)

    def _reject(self, reason: str) -> AddResult:
        self.stats["rejected"] += 1
        return AddResult(AddStatus.REJECTED, reason=reason)

    def _drop(self, message_id: bytes, counter: str) -> None:
        partial = self._partial.pop(message_id)
        self.buffered_bytes -= partial.size
        self.stats[counter] += 1

    def expire(self) -> int:
        """Drop incomplete messages older than the time to live; return how many."""
        deadline = self._clock() - self.ttl
        expired = [mid for mid, p in self._partial.items() if p.first_seen <= deadline]
        for mid in expired:
            self._drop(mid, "expired")
        return len(expired)

    def add(self, frag: Fragment) -> AddResult:
        """Take one fragment (already checked by `Fragment.decode`)."""
        self.stats["fragments"] += 1
        self.expire()
        mid = frag.message_id
        if mid in self._completed:
            self.stats["duplicates"] += 1
            return AddResult(AddStatus.DUPLICATE)
        if frag.total_length > self.max_message_bytes:
            return self._reject("message too long")
        partial = self._partial.get(mid)
        if partial is None:
            while len(self._partial) >= self.max_pending:
                self._drop(next(iter(self._partial)), "evicted")
            partial = self._partial[mid] = _Partial(frag.count, frag.total_length, self._clock())
        elif partial.count != frag.count or partial.total_length != frag.total_length:
            return self._reject("fragment disagrees with its message's count or length")
        held = partial.pieces.get(frag.index)
        if held is not None:
            if held == (frag.offset, frag.data):
                self.stats["duplicates"] += 1
                return AddResult(AddStatus.DUPLICATE)
            return self._reject("conflicting copy of a fragment")
        if partial.size + len(frag.data) > partial.total_length:
            # Overlapping pieces: refuse before they can hold more than the declared length,
            # which is what keeps one message within max_message_bytes.
            return self._reject("fragments exceed the message length")
        while self.buffered_bytes + len(frag.data) > self.max_buffered_bytes:
            oldest = next(mid_ for mid_ in self._partial if mid_ != mid)
            self._drop(oldest, "evicted")
        partial.pieces[frag.index] = (frag.offset, frag.data)
        partial.size += len(frag.data)
        self.buffered_bytes += len(frag.data)
        if len(partial.pieces) < partial.count:
            return AddResult(AddStatus.NEW)
        return self._complete(mid, partial)

    def _complete(self, mid: bytes, partial: _Partial) -> AddResult:
        self._partial.pop(mid)
        self.buffered_bytes -= partial.size
        pieces = [partial.pieces[i] for i in range(partial.count)]
        # The pieces must tile the message exactly: each starts where the previous ended.
        position = 0
        for offset, data in pieces:
            if offset != position:
                return self._reject("fragments do not tile the message")
            position += len(data)
        if position != partial.total_length:
            return self._reject("fragments do not add up to the message length")
        self._completed[mid] = None
        if len(self._completed) > self.completed_memory:
            self._completed.popitem(last=False)
        self.stats["completed"] += 1
        return AddResult(AddStatus.COMPLETE, message=b"".join(d for _, d in pieces))

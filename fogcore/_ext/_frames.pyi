"""Receive side of a mix node: the slot arena and the framing protocol base."""

from collections.abc import Callable, Iterable
from typing import Any

STRIDE: int
RECORD_BYTES: int
KEY_SLOT_BITS: int
OUTCOME_LAYOUT: dict[str, Any]
DELAY_BUCKETS_US: tuple[int, ...]
REASON_TRUNCATED: int
REASON_SLOW: int
REASON_ARENA_FULL: int
CONTROL_FORMAT: int
CONTROL_LENGTH: int

class Arena:
    """`nslots` receive slots of 2560 bytes and one 96-byte outcome record per slot."""

    nslots: int
    nfree: int
    low_water: int
    high_water: int
    readers_paused: bool
    frames_in: int
    bytes_in: int
    def __init__(self, nslots: int, reserve: int = -1,
                 on_ready: Callable[[], None] | None = None) -> None: ...
    def claim_slot(self) -> int:
        """Take a free slot for a locally made frame; -1 when none."""
    def submit(self, slot: int) -> None:
        """Queue a claimed slot for the batch processor."""
    def release(self, slot: int) -> None:
        """Give a processed (held) slot back."""
    def release_many(self, slots: Iterable[int]) -> None:
        """`release` for every slot of an iterable."""
    def state(self, slot: int) -> int:
        """0 free, 1 filling, 2 ready, 3 in a batch, 4 held."""
    @property
    def memory(self) -> memoryview: ...
    @property
    def records(self) -> memoryview: ...
    @property
    def ready_count(self) -> int: ...
    @property
    def connections(self) -> int: ...
    def take_batch(self, max_count: int, lane: int = 0) -> list[tuple[int, int]]:
        """Up to `max_count` ready frames into `lane` (0-15), as ascending
        (first slot, count) runs."""
    def batch_slots_with(self, kind: int, reason: int, lane: int = 0) -> list[int]:
        """Slots of the lane's batch whose record has this kind and reason."""
    def finish_batch(self, now_us: int, beta: bytes | None, mean_us: int,
                     max_us: int, lane: int = 0) -> list[int]:
        """Free the lane's rejected slots, hold its accepted ones; their delay-queue
        keys."""
    def due_groups(self, slots: Iterable[int]) -> tuple[dict[bytes, list[int]], list[int]]:
        """({next hop id: FORWARD slots}, DELIVER/REPLY slots) of held slots."""
    def frame_views(self, slots: Iterable[int]) -> list[memoryview]:
        """Views of the outgoing frames of held slots."""
    def outcome(self, slot: int) -> tuple[int, bytes, int, int, bytes]:
        """(kind, address, out_offset, out_len, surb_id) of a slot's record."""
    def rejects(self) -> dict[int, int]: ...
    def outcomes(self) -> dict[int, int]: ...
    def delay_histogram(self) -> tuple[list[int], int]: ...

class _BaseMixProtocol:
    """Frames a TCP byte stream into arena slots."""

    frames_in: int
    control_in: int
    bytes_in: int
    def __init__(self, arena: Arena, sizes: dict[int, int], rate: float = 0.0,
                 burst: float = 0.0) -> None: ...
    def connection_made(self, transport: object) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def eof_received(self) -> bool: ...
    def get_buffer(self, sizehint: int) -> object: ...
    def buffer_updated(self, nbytes: int) -> None: ...
    def resume_rate(self) -> None: ...
    def hold_reading(self, hold: bool) -> None: ...
    def check_timeouts(self, now: float, frame_timeout: float, idle_timeout: float,
                       first_frame_timeout: float = 0.0) -> int:
        """0, or 1 slow frame, 2 idle, 3 no first frame (the connection was closed)."""
    def close_now(self) -> None:
        """Abort the connection at once, for the owner."""
    @property
    def paused(self) -> int: ...
    @property
    def partial(self) -> int: ...
    def _rate_limited(self, wait: float) -> None: ...
    def _framing_lost(self, reason: int) -> None: ...
    def _control_frame(self, body: bytes) -> None:
        """Hook: the body of a complete control frame."""

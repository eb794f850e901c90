"""The packet backend in C: build a packet, process one frame, process a batch in place."""

from collections.abc import Buffer, Sequence
from typing import Any

BATCH_STRIDE: int
RECORD_SIZE: int
FRAME_SIZES: dict[int, int]
METHODS: tuple[str, ...]
OUTCOME_LAYOUT: dict[str, Any]

def set_outcome_type(outcome: type, kinds: type, reasons: type) -> None:
    """Give `process_packet` its result type (fogcore.packet does this on selection)."""

def build_packet(fmt: int, route: Sequence[Any], command: int, address: Buffer, extra: Buffer,
                 message: Buffer, seed: Buffer,
                 method: str = "reencoded") -> tuple[bytes, tuple[bytes, ...]]:
    """(frame, replay tags per hop); ValueError on bad arguments or node keys."""

def process_packet(keys: Any, packet: Buffer, replay_filter: Any) -> Any:
    """The `fogcore.packet.Outcome` of one frame; never raises on packet bytes."""

def process_batch(keys: Any, buffer: Buffer, count: int, replay_filter: Any, records: Buffer,
                  *, threads: int = 1, vrf_output: Buffer | None = None, mean_us: int = 0,
                  max_us: int = 0) -> None:
    """Process `count` BATCH_STRIDE slots in place, writing 96-byte outcome records.
    Every argument is checked first: TypeError for a wrong type or a read-only buffer,
    ValueError for a value out of range (any count, however large)."""

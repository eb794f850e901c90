"""Pure-Python twin of `fogcore._ext._frames` (the slot arena and the framing protocol
base), used when the extensions are not built or FOGCORE_NO_EXTENSIONS=1 is set. Same
behaviour, same counters, same slot states; only slower."""

import heapq
import struct
import time

from fogcore import delays

__all__ = [
    "CONTROL_FORMAT",
    "CONTROL_LENGTH",
    "DELAY_BUCKETS_US",
    "KEY_SLOT_BITS",
    "REASON_ARENA_FULL",
    "REASON_SLOW",
    "REASON_TRUNCATED",
    "RECORD_BYTES",
    "STRIDE",
    "Arena",
    "_BaseMixProtocol",
]

STRIDE = 2560
RECORD_BYTES = 96
KEY_SLOT_BITS = 24
FRAME_HEADER = 4
FRAME_VERSION = 1
MAX_FORMAT = 2
N_COUNTERS = 16
MAX_LANES = 16
#: format code and body length of a control frame (docs/node.md §16)
CONTROL_FORMAT = 0x7F
CONTROL_LENGTH = 116
DELAY_BUCKETS_US = (100, 500, 1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
                    1000000, 2500000, 5000000)
REASON_WRONG_SIZE, REASON_BAD_VERSION, REASON_BAD_FORMAT = 1, 2, 3
REASON_TRUNCATED, REASON_SLOW, REASON_ARENA_FULL = 9, 10, 11
SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_BATCH, SLOT_HELD = range(5)
PAUSE_ARENA, PAUSE_RATE, PAUSE_OWNER = 1, 2, 4
_LEN = struct.Struct("<H")
_OFF = struct.Struct("<I")


class Arena:
    """`nslots` receive slots of 2560 bytes and their outcome records (see the compiled
    module for the contract)."""

    def __init__(self, nslots: int, reserve: int = -1, on_ready=None):
        if not 2 <= nslots < (1 << KEY_SLOT_BITS):
            raise ValueError(f"an arena has 2 to {(1 << KEY_SLOT_BITS) - 1} slots")
        self.nslots = nslots
        self._mem = bytearray(nslots * STRIDE)
        self._records = bytearray(nslots * RECORD_BYTES)
        self._spill = bytearray(STRIDE)
        self._state = bytearray(nslots)
        self._free = list(range(nslots))  # a min-heap: lowest slot first, as the C bitmap
        self.nfree = nslots
        if reserve < 0:
            reserve = min(64, nslots // 8)
        self.low_water = max(1, min(reserve, nslots // 2))
        self.high_water = min(nslots, 2 * self.low_water)
        self.readers_paused = False
        self._ready: list[int] = []
        self._lanes: list[list[int]] = [[] for _ in range(MAX_LANES)]
        self._signalled = False
        self._on_ready = on_ready
        self._conns: set = set()
        self._rejects = [0] * N_COUNTERS
        self._outcomes = [0] * 4
        self._delay_buckets = [0] * (len(DELAY_BUCKETS_US) + 1)
        self._delay_sum_us = 0
        self.frames_in = 0
        self.bytes_in = 0

    # -- slots ---------------------------------------------------------------------------

    def _claim(self) -> int:
        if not self._free:
            return -1
        slot = heapq.heappop(self._free)
        self.nfree -= 1
        self._state[slot] = SLOT_FILLING
        return slot

    def _free_slot(self, slot: int) -> None:
        if not 0 <= slot < self.nslots or self._state[slot] == SLOT_FREE:
            raise ValueError(f"slot {slot} is not in use")
        self._state[slot] = SLOT_FREE
        heapq.heappush(self._free, slot)
        self.nfree += 1

    def _push_ready(self, slot: int) -> None:
        self._state[slot] = SLOT_READY
        self._ready.append(slot)
        self.frames_in += 1
        if not self._signalled and self._on_ready is not None:
            self._signalled = True
            self._on_ready()

    def _count_reject(self, reason: int) -> None:
        if 0 <= reason < N_COUNTERS:
            self._rejects[reason] += 1

    def _check_water(self) -> None:
        if self.readers_paused and self.nfree >= self.high_water:
            self.readers_paused = False
            for conn in list(self._conns):
                conn._resume(PAUSE_ARENA)
        elif not self.readers_paused and self.nfree < self.low_water:
            self.readers_paused = True
            for conn in list(self._conns):
                conn._pause(PAUSE_ARENA)

    def claim_slot(self) -> int:
        """Take a free slot for a locally made frame; -1 when none."""
        slot = self._claim()
        self._check_water()
        return slot

    def submit(self, slot: int) -> None:
        """Queue a claimed slot (holding a frame) for the batch processor."""
        if not 0 <= slot < self.nslots or self._state[slot] != SLOT_FILLING:
            raise ValueError(f"slot {slot} was not claimed")
        self._push_ready(slot)

    def release(self, slot: int) -> None:
        """Give a processed slot back."""
        if not 0 <= slot < self.nslots or self._state[slot] != SLOT_HELD:
            raise ValueError(f"slot {slot} is not held")
        self._free_slot(slot)
        self._check_water()

    def release_many(self, slots) -> None:
        """`release` for every slot of an iterable."""
        for slot in slots:
            if not 0 <= slot < self.nslots or self._state[slot] != SLOT_HELD:
                raise ValueError(f"slot {slot} is not held")
            self._free_slot(slot)
        self._check_water()

    def state(self, slot: int) -> int:
        """The slot's state: 0 free, 1 filling, 2 ready, 3 in a batch, 4 held."""
        if not 0 <= slot < self.nslots:
            raise IndexError("slot out of range")
        return self._state[slot]

    @property
    def memory(self) -> memoryview:
        """A writable memoryview of all slots."""
        return memoryview(self._mem)

    @property
    def records(self) -> memoryview:
        """A writable memoryview of the outcome records."""
        return memoryview(self._records)

    @property
    def ready_count(self) -> int:
        """Complete frames waiting for the batch processor."""
        return len(self._ready)

    @property
    def connections(self) -> int:
        """Live connections reading into this arena."""
        return len(self._conns)

    # -- batches -------------------------------------------------------------------------

    def _lane(self, lane: int) -> list[int]:
        if not 0 <= lane < MAX_LANES:
            raise ValueError(f"lane must be 0 to {MAX_LANES - 1}")
        return self._lanes[lane]

    def take_batch(self, max_count: int, lane: int = 0) -> list[tuple[int, int]]:
        """Move up to `max_count` ready frames into the lane's batch, as ascending runs."""
        if max_count < 0:
            raise ValueError("max_count must be >= 0")
        if self._lane(lane):
            raise RuntimeError("the previous batch is not finished")
        taken, self._ready = self._ready[:max_count], self._ready[max_count:]
        if not self._ready:
            self._signalled = False
        for slot in taken:
            self._state[slot] = SLOT_BATCH
        batch = self._lanes[lane] = sorted(taken)
        runs: list[tuple[int, int]] = []
        for slot in batch:
            if runs and runs[-1][0] + runs[-1][1] == slot:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((slot, 1))
        return runs

    def batch_slots_with(self, kind: int, reason: int, lane: int = 0) -> list[int]:
        """Slots of the lane's batch whose record has this kind and reason."""
        rec = self._records
        return [s for s in self._lane(lane)
                if rec[s * RECORD_BYTES] == kind and rec[s * RECORD_BYTES + 1] == reason]

    def finish_batch(self, now_us: int, beta, mean_us: int, max_us: int,
                     lane: int = 0) -> list[int]:
        """Free the lane's rejected slots, hold its accepted ones and return their
        delay-queue keys."""
        batch = self._lane(lane)
        if beta is not None and len(beta) != 64:
            raise ValueError("the VRF output is 64 bytes")
        keys = []
        rec = self._records
        for slot in batch:
            base = slot * RECORD_BYTES
            kind, reason = rec[base], rec[base + 1]
            if not 1 <= kind <= 3:
                self._rejects[reason if kind == 4 and reason < N_COUNTERS else 0] += 1
                self._free_slot(slot)
                continue
            self._outcomes[kind] += 1
            delay = 0
            if beta is not None:
                delay = delays.delay_us(beta, bytes(rec[base + 64 : base + 96]), mean_us, max_us)
            k = 0
            while k < len(DELAY_BUCKETS_US) and delay > DELAY_BUCKETS_US[k]:
                k += 1
            self._delay_buckets[k] += 1
            self._delay_sum_us += delay
            self._state[slot] = SLOT_HELD
            keys.append(((now_us + delay) << KEY_SLOT_BITS) | slot)
        self._lanes[lane] = []
        self._check_water()
        return keys

    def _held_base(self, slot: int) -> int:
        if not 0 <= slot < self.nslots or self._state[slot] != SLOT_HELD:
            raise ValueError(f"slot {slot} is not held")
        return slot * RECORD_BYTES

    def due_groups(self, slots) -> tuple[dict[bytes, list[int]], list[int]]:
        """Sort due (held) slots by outcome: ({next hop id: FORWARD slots}, the DELIVER
        and REPLY slots), both in due order."""
        rec = self._records
        forwards: dict[bytes, list[int]] = {}
        local: list[int] = []
        for slot in slots:
            base = self._held_base(slot)
            if rec[base] != 1:
                local.append(slot)
                continue
            forwards.setdefault(bytes(rec[base + 16 : base + 48]), []).append(slot)
        return forwards, local

    def frame_views(self, slots) -> list[memoryview]:
        """Memoryviews of the outgoing frames of held slots (record out_offset/out_len)."""
        rec = self._records
        mem = memoryview(self._mem)
        views = []
        for slot in slots:
            base = self._held_base(slot)
            offset = _OFF.unpack_from(rec, base + 8)[0]
            length = _LEN.unpack_from(rec, base + 4)[0]
            if offset + length > STRIDE:
                raise ValueError(f"slot {slot}: outgoing frame outside the slot")
            start = slot * STRIDE + offset
            views.append(mem[start : start + length])
        return views

    def outcome(self, slot: int):
        """(kind, address, out_offset, out_len, surb_id) of a slot's record."""
        if not 0 <= slot < self.nslots:
            raise IndexError("slot out of range")
        base = slot * RECORD_BYTES
        rec = self._records
        return (rec[base], bytes(rec[base + 16 : base + 48]), _OFF.unpack_from(rec, base + 8)[0],
                _LEN.unpack_from(rec, base + 4)[0], bytes(rec[base + 48 : base + 64]))

    # -- counters ------------------------------------------------------------------------

    def rejects(self) -> dict[int, int]:
        """{reason code: count} of rejected packets."""
        return {i: n for i, n in enumerate(self._rejects) if n}

    def outcomes(self) -> dict[int, int]:
        """{kind code: count} of accepted packets."""
        return {i: self._outcomes[i] for i in (1, 2, 3)}

    def delay_histogram(self):
        """(per-bucket counts, sum in µs) of the delays given."""
        return list(self._delay_buckets), self._delay_sum_us


class _BaseMixProtocol:
    """Frames a TCP byte stream into arena slots (pure-Python twin). A control frame
    (format CONTROL_FORMAT, length CONTROL_LENGTH) goes to `_control_frame(body)`, never
    to the ready queue."""

    def __init__(self, arena: Arena, sizes, rate: float = 0.0, burst: float = 0.0):
        self._arena = arena
        self._sizes = [0] * (MAX_FORMAT + 1)
        for fmt, size in dict(sizes).items():
            if not 1 <= fmt <= MAX_FORMAT:
                raise ValueError(f"unknown format code {fmt}")
            if not FRAME_HEADER < size <= STRIDE:
                raise ValueError(f"frame size {size} does not fit a slot")
            self._sizes[fmt] = size - FRAME_HEADER
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._transport = None
        self._slot = -1
        self._pos = 0
        self._need = 0
        self._carry = b""
        self._spilling = False
        self._lost = False
        self._paused = 0
        self._rate = rate
        self._burst = burst if burst > 0 else max(1.0, rate / 10.0)
        self._tokens = self._burst
        self._refilled_at = time.monotonic()
        self._frame_started = 0.0
        self._last_read = self._refilled_at
        self._opened_at = self._refilled_at
        self._control = False
        self.frames_in = 0
        self.control_in = 0
        self.bytes_in = 0

    def connection_made(self, transport) -> None:
        self._transport = transport
        self._arena._conns.add(self)
        self._last_read = time.monotonic()
        self._opened_at = self._last_read
        if self._arena.readers_paused:
            self._pause(PAUSE_ARENA)

    def connection_lost(self, exc) -> None:
        if not self._lost and (self._pos > 0 or self._carry):
            self._arena._count_reject(REASON_TRUNCATED)
        self._lost = True
        self._carry = b""
        if self._slot >= 0:
            self._arena._free_slot(self._slot)
            self._slot = -1
        self._arena._conns.discard(self)
        self._transport = None
        self._arena._check_water()

    def eof_received(self) -> bool:
        return False

    def get_buffer(self, sizehint: int):
        arena = self._arena
        if self._slot < 0 and not self._lost:
            self._take_slot()
        if self._slot < 0:
            self._spilling = True
            return memoryview(arena._spill)
        base = self._slot * STRIDE
        return memoryview(arena._mem)[base + self._pos : base + STRIDE]

    def buffer_updated(self, nbytes: int) -> None:
        now = time.monotonic()
        if self._lost:
            return
        if self._paused and self._transport.is_reading():
            # uvloop starts reading once connection_made returns, even if it paused there.
            self._transport.pause_reading()
        if self._spilling:
            self._spilling = False
            self._fail(REASON_ARENA_FULL)
            return
        if self._pos == 0:
            self._frame_started = now
        self._pos += nbytes
        self._last_read = now
        self.bytes_in += nbytes
        self._arena.bytes_in += nbytes
        self._parse()

    def _take_slot(self) -> None:
        slot = self._arena._claim()
        if slot < 0:
            return
        self._slot, self._pos, self._need = slot, 0, 0
        if self._carry:
            base = slot * STRIDE
            self._arena._mem[base : base + len(self._carry)] = self._carry
            self._pos = len(self._carry)
            self._carry = b""
            self._frame_started = time.monotonic()

    def _parse(self) -> None:
        arena = self._arena
        mem = arena._mem
        while self._slot >= 0:
            base = self._slot * STRIDE
            if self._need == 0:
                if self._pos < FRAME_HEADER:
                    return
                version, fmt = mem[base], mem[base + 1]
                length = (mem[base + 2] << 8) | mem[base + 3]
                if version != FRAME_VERSION:
                    return self._fail(REASON_BAD_VERSION)
                if not 1 <= fmt <= MAX_FORMAT or self._sizes[fmt] == 0:
                    # Off the packet path: a control frame, or a refused format.
                    if fmt != CONTROL_FORMAT:
                        return self._fail(REASON_BAD_FORMAT)
                    if length != CONTROL_LENGTH:
                        return self._fail(REASON_WRONG_SIZE)
                    self._control = True
                elif length != self._sizes[fmt]:
                    return self._fail(REASON_WRONG_SIZE)
                self._need = FRAME_HEADER + length
            if self._pos < self._need:
                return
            if self._control:
                self._end_control(base)
                continue
            done, surplus = self._slot, self._pos - self._need
            self._slot, self._pos = -1, 0
            if surplus:
                start = base + self._need
                nxt = arena._claim()
                if nxt >= 0:
                    mem[nxt * STRIDE : nxt * STRIDE + surplus] = mem[start : start + surplus]
                    self._slot, self._pos = nxt, surplus
                else:
                    self._carry = bytes(mem[start : start + surplus])
                self._frame_started = time.monotonic()
            self._need = 0
            self.frames_in += 1
            arena._push_ready(done)
            if self._rate > 0:
                now = time.monotonic()
                self._tokens = min(self._burst,
                                   self._tokens + (now - self._refilled_at) * self._rate)
                self._refilled_at = now
                self._tokens -= 1.0
                if self._tokens < 0 and not self._paused & PAUSE_RATE:
                    self._pause(PAUSE_RATE)
                    self._rate_limited(-self._tokens / self._rate)
            arena._check_water()

    def _end_control(self, base: int) -> None:
        # Take the control body; keep the slot for the bytes after it, or free it.
        arena = self._arena
        mem = arena._mem
        end = base + FRAME_HEADER + CONTROL_LENGTH
        body = bytes(mem[base + FRAME_HEADER : end])
        surplus = self._pos - self._need
        self._control = False
        self._need = 0
        if surplus:
            mem[base : base + surplus] = mem[end : end + surplus]
            self._pos = surplus
            self._frame_started = time.monotonic()
        else:
            arena._free_slot(self._slot)
            self._slot, self._pos = -1, 0
            arena._check_water()
        self.control_in += 1
        self._control_frame(body)

    def _fail(self, reason: int) -> None:
        self._arena._count_reject(reason)
        self._lost = True
        self._carry = b""
        if self._slot >= 0:
            self._arena._free_slot(self._slot)
            self._slot = -1
        self._pos = self._need = 0
        self._control = False
        if self._transport is not None:
            self._transport.abort()
        self._framing_lost(reason)

    def close_now(self) -> None:
        """Abort the connection at once for the owner (a control-protocol error); a
        partial frame is discarded without being counted as `truncated`."""
        if self._lost:
            return
        self._lost = True
        self._carry = b""
        self._pos = self._need = 0
        self._control = False
        if self._slot >= 0:
            self._arena._free_slot(self._slot)
            self._slot = -1
            self._arena._check_water()
        if self._transport is not None:
            self._transport.abort()

    def _pause(self, reason: int) -> None:
        if self._paused == 0 and self._transport is not None and not self._lost:
            self._transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        before = self._paused
        self._paused &= ~reason
        if before and self._paused == 0 and self._transport is not None and not self._lost:
            self._transport.resume_reading()

    def resume_rate(self) -> None:
        """End a rate-limit pause."""
        self._tokens = max(self._tokens, 0.0)
        self._resume(PAUSE_RATE)

    def hold_reading(self, hold: bool) -> None:
        """Pause (True) or resume (False) reading for the owner."""
        if hold:
            self._pause(PAUSE_OWNER)
        else:
            self._resume(PAUSE_OWNER)

    def check_timeouts(self, now: float, frame_timeout: float, idle_timeout: float,
                       first_frame_timeout: float = 0.0) -> int:
        """1: frame too slow (counted, dropped); 3: no complete frame within
        `first_frame_timeout` of the start (closed); 2: idle too long (closed); else 0."""
        if self._lost or self._transport is None or self._paused:
            return 0
        if (self._pos > 0 or self._carry) and now - self._frame_started > frame_timeout:
            self._fail(REASON_SLOW)
            return 1
        if (first_frame_timeout > 0 and self.frames_in == 0 and self.control_in == 0
                and now - self._opened_at > first_frame_timeout):
            self.close_now()
            return 3
        if idle_timeout > 0 and now - self._last_read > idle_timeout:
            self._lost = True
            self._transport.abort()
            return 2
        return 0

    @property
    def paused(self) -> int:
        """The pause reasons in force (1 arena, 2 rate, 4 owner)."""
        return self._paused

    @property
    def partial(self) -> int:
        """Bytes of an incomplete frame held for this connection."""
        return self._pos + len(self._carry)

    def _rate_limited(self, wait: float) -> None:
        pass

    def _framing_lost(self, reason: int) -> None:
        pass

    def _control_frame(self, body: bytes) -> None:
        pass

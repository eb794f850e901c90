# cython: language_level=3, embedsignature=True
"""Receive side of a mix node: the slot arena and the framing protocol base (docs/node.md).

`Arena(nslots)` preallocates `nslots` slots of 2560 bytes (BATCH_STRIDE) and one 96-byte
outcome record per slot. A connection reads straight into a slot: `get_buffer` hands the
transport the rest of the slot the connection is filling, `buffer_updated` checks the 4-byte
frame header with a pointer cursor and, when the frame is complete, queues the slot index
for the batch processor. Bytes that follow a complete frame in the same read (at most
2560 - 2350 = 210) are the start of the next frame and move to a fresh slot with one
memmove. Nothing here creates a Python object per packet: get_buffer returns the same
window object on every call and completed frames are slot indices in C arrays.

A slot leaves the arena's free set when a connection starts a frame in it and comes back
only when its owner releases it: at once for a rejected packet, after the delay for a
delivered one, and for a forwarded one only after the outgoing transport has flushed it.
"""

from cpython.buffer cimport PyBuffer_FillInfo
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memmove, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from fogcore._ext._delays cimport vrf_delay_us
from fogcore._ext._mem cimport fog_calloc, fog_free
from fogcore._ext._outcome cimport (
    ARENA_FULL,
    BAD_FORMAT,
    BAD_VERSION,
    KIND_FORWARD,
    KIND_REJECT,
    KIND_REPLY,
    OUTCOME_SIZE,
    SLOT_BITS,
    SLOW,
    TRUNCATED,
    WRONG_SIZE,
    check_outcome,
    fog_outcome,
    load_le16,
    load_le32,
    outcome_layout,
)

cdef extern from *:
    int __builtin_ctzll(unsigned long long x) nogil

check_outcome()

STRIDE = BATCH_STRIDE
RECORD_BYTES = OUTCOME_SIZE
KEY_SLOT_BITS = SLOT_BITS
#: the outcome record as this module was compiled with it (tests compare the Python mirror)
OUTCOME_LAYOUT = outcome_layout()
#: upper bounds (µs) of the delay histogram buckets; the last bucket is +Inf
DELAY_BUCKETS_US = (100, 500, 1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
                    1000000, 2500000, 5000000)
#: receive-side reason codes beyond the packet format's reject reasons
REASON_TRUNCATED = TRUNCATED
REASON_SLOW = SLOW
REASON_ARENA_FULL = ARENA_FULL
#: format code and body length of a control frame (docs/node.md §16)
CONTROL_FORMAT = CONTROL_FMT
CONTROL_LENGTH = CONTROL_LEN

cdef uint64_t C_DELAY_BOUNDS[N_DELAY_BUCKETS - 1]
for _i, _b in enumerate(DELAY_BUCKETS_US):
    C_DELAY_BOUNDS[_i] = _b


cdef inline double _monotonic() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef int _cmp_int32(const void *a, const void *b) noexcept nogil:
    cdef int32_t x = (<const int32_t *>a)[0]
    cdef int32_t y = (<const int32_t *>b)[0]
    return (x > y) - (x < y)


cdef class _Window:
    """A writable window on arena memory; a connection re-points its window for every
    read instead of creating one, so handing a buffer to the transport allocates nothing
    (both event loops release the buffer before calling buffer_updated)."""

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        PyBuffer_FillInfo(buffer, self, self._ptr, self._len, 0, flags)

    def __releasebuffer__(self, Py_buffer *buffer):
        pass

    def __len__(self):
        return self._len


cdef _Window _window(object owner, unsigned char *ptr, Py_ssize_t size):
    cdef _Window w = _Window.__new__(_Window)
    w._owner = owner
    w._ptr = ptr
    w._len = size
    return w


cdef class Arena:
    """`nslots` receive slots of 2560 bytes and their outcome records.

    `on_ready()` is called once when a complete frame arrives while the processor has no
    pending signal; `take_batch` clears the signal when it empties the ready queue. Readers
    are paused when fewer than `low_water` slots are free and resumed from `high_water`.
    """

    def __cinit__(self, Py_ssize_t nslots, Py_ssize_t reserve=-1, on_ready=None):
        cdef Py_ssize_t i
        if nslots < 2 or nslots >= (1 << SLOT_BITS):
            raise ValueError(f"an arena has 2 to {(1 << SLOT_BITS) - 1} slots")
        self.nslots = nslots
        self._nwords = (nslots + 63) // 64
        self._mem = <unsigned char *>fog_calloc(nslots, BATCH_STRIDE)
        self._records = <fog_outcome *>fog_calloc(nslots, sizeof(fog_outcome))
        self._state = <uint8_t *>fog_calloc(nslots, 1)
        self._freebits = <uint64_t *>fog_calloc(self._nwords, 8)
        self._ready = <int32_t *>fog_calloc(nslots, 4)
        self._lanes[0] = <int32_t *>fog_calloc(nslots, 4)  # other lanes on first use
        if (self._mem == NULL or self._records == NULL or self._state == NULL
                or self._freebits == NULL or self._ready == NULL or self._lanes[0] == NULL):
            raise MemoryError("cannot allocate the slot arena")
        for i in range(nslots):
            self._freebits[i >> 6] |= (<uint64_t>1) << (i & 63)
        self.nfree = nslots
        if reserve < 0:
            reserve = min(64, nslots // 8)
        self.low_water = max(1, min(reserve, nslots // 2))
        self.high_water = min(nslots, 2 * self.low_water)
        self._on_ready = on_ready
        self._conns = set()

    def __dealloc__(self):
        cdef int i
        fog_free(self._mem)
        fog_free(self._records)
        fog_free(self._state)
        fog_free(self._freebits)
        fog_free(self._ready)
        for i in range(MAX_LANES):
            fog_free(self._lanes[i])

    # -- slots ---------------------------------------------------------------------------

    cdef int claim(self) except -2:
        cdef Py_ssize_t w = self._hint
        cdef uint64_t bits
        cdef int slot
        while w < self._nwords:
            bits = self._freebits[w]
            if bits:
                slot = <int>(w * 64 + __builtin_ctzll(bits))
                self._freebits[w] = bits & (bits - 1)
                self._hint = w
                self.nfree -= 1
                self._state[slot] = SLOT_FILLING
                return slot
            w += 1
        self._hint = self._nwords
        return -1

    cdef int free_slot(self, int slot) except -1:
        if slot < 0 or slot >= self.nslots or self._state[slot] == SLOT_FREE:
            raise ValueError(f"slot {slot} is not in use")
        self._state[slot] = SLOT_FREE
        self._freebits[slot >> 6] |= (<uint64_t>1) << (slot & 63)
        if (slot >> 6) < self._hint:
            self._hint = slot >> 6
        self.nfree += 1
        return 0

    cdef int push_ready(self, int slot) except -1:
        self._state[slot] = SLOT_READY
        self._ready[(self._ready_head + self._nready) % self.nslots] = slot
        self._nready += 1
        self.frames_in += 1
        if not self._signalled and self._on_ready is not None:
            self._signalled = True
            self._on_ready()
        return 0

    cdef int count_reject(self, int reason) except -1:
        if 0 <= reason < N_COUNTERS:
            self._rejects[reason] += 1
        return 0

    cdef int check_water(self) except -1:
        cdef _BaseMixProtocol conn
        if self.readers_paused and self.nfree >= self.high_water:
            self.readers_paused = False
            for conn in list(self._conns):
                conn._resume(PAUSE_ARENA)
        elif not self.readers_paused and self.nfree < self.low_water:
            self.readers_paused = True
            for conn in list(self._conns):
                conn._pause(PAUSE_ARENA)
        return 0

    cdef int32_t *lane_array(self, int lane) except NULL:
        if lane < 0 or lane >= MAX_LANES:
            raise ValueError(f"lane must be 0 to {MAX_LANES - 1}")
        if self._lanes[lane] == NULL:
            self._lanes[lane] = <int32_t *>fog_calloc(self.nslots, 4)
            if self._lanes[lane] == NULL:
                raise MemoryError("cannot allocate a batch lane")
        return self._lanes[lane]

    def claim_slot(self):
        """Take a free slot for a frame made locally (tests, local sends); -1 when none.
        Its bytes are the caller's to fill; `submit` hands it to the batch processor."""
        cdef int slot = self.claim()
        self.check_water()
        return slot

    def submit(self, int slot):
        """Queue a claimed slot (holding a frame) for the batch processor."""
        if slot < 0 or slot >= self.nslots or self._state[slot] != SLOT_FILLING:
            raise ValueError(f"slot {slot} was not claimed")
        self.push_ready(slot)

    def release(self, int slot):
        """Give a processed slot back: its bytes are no longer referenced anywhere."""
        if slot < 0 or slot >= self.nslots or self._state[slot] != SLOT_HELD:
            raise ValueError(f"slot {slot} is not held")
        self.free_slot(slot)
        self.check_water()

    def release_many(self, slots):
        """`release` for every slot of an iterable of slot indices."""
        cdef int slot
        for slot in slots:
            if slot < 0 or slot >= self.nslots or self._state[slot] != SLOT_HELD:
                raise ValueError(f"slot {slot} is not held")
            self.free_slot(slot)
        self.check_water()

    def state(self, int slot):
        """The slot's state: 0 free, 1 filling, 2 ready, 3 in a batch, 4 held."""
        if slot < 0 or slot >= self.nslots:
            raise IndexError("slot out of range")
        return self._state[slot]

    @property
    def memory(self):
        """A writable memoryview of all slots (slot i at i * 2560)."""
        return memoryview(_window(self, self._mem, self.nslots * BATCH_STRIDE))

    @property
    def records(self):
        """A writable memoryview of the outcome records (record i of slot i at i * 96)."""
        return memoryview(_window(self, <unsigned char *>self._records,
                                  self.nslots * sizeof(fog_outcome)))

    @property
    def ready_count(self):
        """Complete frames waiting for the batch processor."""
        return self._nready

    @property
    def connections(self):
        """Live connections reading into this arena."""
        return len(self._conns)

    # -- batches -------------------------------------------------------------------------

    def take_batch(self, Py_ssize_t max_count, int lane=0):
        """Move up to `max_count` ready frames into the batch of `lane` (0 to 15; each
        lane holds one batch in flight, so several can be processed at once); return it
        as a list of (first slot, count) runs of consecutive slots, ascending."""
        cdef int32_t *batch = self.lane_array(lane)
        cdef Py_ssize_t n
        cdef Py_ssize_t i, start
        cdef int32_t slot
        if max_count < 0:
            raise ValueError("max_count must be >= 0")
        n = min(max_count, self._nready)
        if self._nlane[lane]:
            raise RuntimeError("the previous batch is not finished")
        for i in range(n):
            slot = self._ready[self._ready_head]
            self._ready_head = (self._ready_head + 1) % self.nslots
            batch[i] = slot
            self._state[slot] = SLOT_BATCH
        self._nready -= n
        if self._nready == 0:
            self._signalled = False
        self._nlane[lane] = n
        qsort(batch, n, 4, _cmp_int32)
        runs = []
        i = 0
        while i < n:
            start = i
            while i + 1 < n and batch[i + 1] == batch[i] + 1:
                i += 1
            runs.append((batch[start], i - start + 1))
            i += 1
        return runs

    def batch_slots_with(self, int kind, int reason, int lane=0):
        """Slots of the lane's batch whose record has this kind and reason."""
        cdef int32_t *batch = self.lane_array(lane)
        cdef Py_ssize_t i
        cdef const fog_outcome *rec
        found = []
        for i in range(self._nlane[lane]):
            rec = &self._records[batch[i]]
            if rec.kind == kind and rec.reason == reason:
                found.append(batch[i])
        return found

    def finish_batch(self, uint64_t now_us, beta, uint32_t mean_us, uint32_t max_us,
                     int lane=0):
        """Account the lane's processed batch: free every rejected slot, hold every
        accepted one and return its delay-queue key, (now_us + delay) << 24 | slot, where
        the delay comes from the epoch VRF output `beta` (64 bytes) and the record's replay
        tag; no delay when `beta` is None."""
        cdef int32_t *batch = self.lane_array(lane)
        cdef const unsigned char[:] b
        cdef const unsigned char *bp = NULL
        cdef Py_ssize_t i, k
        cdef int slot
        cdef const fog_outcome *rec
        cdef uint32_t delay
        if beta is not None:
            b = beta
            if b.shape[0] != 64:
                raise ValueError("the VRF output is 64 bytes")
            bp = &b[0]
        keys = []
        for i in range(self._nlane[lane]):
            slot = batch[i]
            rec = &self._records[slot]
            if rec.kind < KIND_FORWARD or rec.kind > KIND_REPLY:
                # a REJECT (or a record the processor never wrote, counted as kind 0)
                self._rejects[rec.reason if rec.kind == KIND_REJECT and rec.reason < N_COUNTERS
                              else 0] += 1
                self.free_slot(slot)
                continue
            self._outcomes[rec.kind] += 1
            delay = vrf_delay_us(bp, rec.tag, mean_us, max_us) if bp != NULL else 0
            k = 0
            while k < N_DELAY_BUCKETS - 1 and delay > C_DELAY_BOUNDS[k]:
                k += 1
            self._delay_buckets[k] += 1
            self._delay_sum_us += delay
            self._state[slot] = SLOT_HELD
            keys.append(((now_us + delay) << SLOT_BITS) | <uint64_t>slot)
        self._nlane[lane] = 0
        self.check_water()
        return keys

    cdef fog_outcome *held_record(self, object slot_obj) except NULL:
        cdef Py_ssize_t slot = slot_obj
        if slot < 0 or slot >= self.nslots or self._state[slot] != SLOT_HELD:
            raise ValueError(f"slot {slot} is not held")
        return &self._records[slot]

    def due_groups(self, slots):
        """Sort due slots (held, in due order) by their outcome for the node: returns
        (forwards, local), where `forwards` maps each next hop's node id (32 bytes) to the
        list of its FORWARD slots in due order and `local` lists the DELIVER and REPLY
        slots. The records are read here, in C: one bytes object per next hop, not per
        packet (a run of slots for the same hop shares one lookup)."""
        cdef fog_outcome *rec
        cdef const unsigned char *last = NULL
        cdef list group = None
        forwards = {}
        local = []
        for slot in slots:
            rec = self.held_record(slot)
            if rec.kind != KIND_FORWARD:
                local.append(slot)
                continue
            if last == NULL or memcmp(last, rec.address, sizeof(rec.address)) != 0:
                hop = PyBytes_FromStringAndSize(<const char *>rec.address, sizeof(rec.address))
                group = forwards.get(hop)
                if group is None:
                    group = forwards[hop] = []
                last = rec.address
            group.append(slot)
        return forwards, local

    def frame_views(self, slots):
        """Memoryviews of the outgoing frames of held slots (each record's out_offset and
        out_len), made in C for one `writelines`; they keep the arena alive."""
        cdef fog_outcome *rec
        cdef Py_ssize_t slot, offset, length
        views = []
        for obj in slots:
            rec = self.held_record(obj)
            slot = obj
            offset = load_le32(rec.out_offset)
            length = load_le16(rec.out_len)
            if offset + length > BATCH_STRIDE:
                raise ValueError(f"slot {slot}: outgoing frame outside the slot")
            views.append(memoryview(_window(self, self._mem + slot * BATCH_STRIDE + offset,
                                            length)))
        return views

    def outcome(self, int slot):
        """(kind, address, out_offset, out_len, surb_id) of a held slot's record."""
        cdef const fog_outcome *rec
        if slot < 0 or slot >= self.nslots:
            raise IndexError("slot out of range")
        rec = &self._records[slot]
        return (rec.kind, PyBytes_FromStringAndSize(<const char *>rec.address,
                                                    sizeof(rec.address)),
                load_le32(rec.out_offset), load_le16(rec.out_len),
                PyBytes_FromStringAndSize(<const char *>rec.surb_id, sizeof(rec.surb_id)))

    # -- counters ------------------------------------------------------------------------

    def rejects(self):
        """{reason code: count} of packets rejected on receipt or by the processor."""
        return {i: self._rejects[i] for i in range(N_COUNTERS) if self._rejects[i]}

    def outcomes(self):
        """{kind code: count} of accepted packets (1 forward, 2 deliver, 3 reply)."""
        return {i: self._outcomes[i] for i in range(KIND_FORWARD, KIND_REPLY + 1)}

    def delay_histogram(self):
        """(per-bucket counts, sum in µs) of the delays given to accepted packets; bucket
        bounds are DELAY_BUCKETS_US plus +Inf."""
        return [self._delay_buckets[i] for i in range(N_DELAY_BUCKETS)], self._delay_sum_us


cdef class _BaseMixProtocol:
    """Frames a TCP byte stream into arena slots. The Python subclass mixes in
    `asyncio.BufferedProtocol` and supplies the hooks `_rate_limited(wait_s)`,
    `_framing_lost(reason)` and `_control_frame(body)`.

    A frame with format CONTROL_FORMAT and length CONTROL_LENGTH is a control frame: it
    never reaches the ready queue; its body (bytes) goes to `_control_frame` and its slot
    is reused for what follows, or freed."""

    def __cinit__(self, *args, **kwargs):
        self._slot = -1

    def __init__(self, Arena arena not None, sizes, double rate=0.0, double burst=0.0):
        """`sizes` maps each accepted format code to its frame size (header included);
        `rate` caps frames per second on this connection (0: no cap) with `burst`."""
        cdef int fmt
        cdef Py_ssize_t size
        self._arena = arena
        self._win = _window(arena, arena._spill, BATCH_STRIDE)
        memset(self._sizes, 0, sizeof(self._sizes))
        for fmt, size in dict(sizes).items():
            if not 1 <= fmt <= MAX_FORMAT:
                raise ValueError(f"unknown format code {fmt}")
            if not FRAME_HEADER < size <= BATCH_STRIDE:
                raise ValueError(f"frame size {size} does not fit a slot")
            self._sizes[fmt] = <uint16_t>(size - FRAME_HEADER)
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._rate = rate
        self._burst = burst if burst > 0 else max(1.0, rate / 10.0)
        self._tokens = self._burst
        self._refilled_at = _monotonic()
        self._last_read = self._refilled_at

    # -- asyncio protocol ----------------------------------------------------------------

    def connection_made(self, transport):
        self._transport = transport
        self._arena._conns.add(self)
        self._last_read = _monotonic()
        self._opened_at = self._last_read
        if self._arena.readers_paused:
            self._pause(PAUSE_ARENA)

    def connection_lost(self, exc):
        if not self._lost and (self._pos > 0 or self._ncarry > 0):
            self._arena.count_reject(TRUNCATED)
        self._lost = True
        self._ncarry = 0
        if self._slot >= 0:
            self._arena.free_slot(self._slot)
            self._slot = -1
        self._arena._conns.discard(self)
        self._transport = None
        self._arena.check_water()

    def eof_received(self):
        return False

    def get_buffer(self, Py_ssize_t sizehint):
        cdef Arena arena = self._arena
        if self._slot < 0 and not self._lost:
            self._take_slot()
        if self._slot < 0:
            # Nothing free: read into the spill area and drop the connection afterwards.
            self._spilling = True
            self._win._ptr = arena._spill
            self._win._len = BATCH_STRIDE
        else:
            self._win._ptr = arena._mem + <Py_ssize_t>self._slot * BATCH_STRIDE + self._pos
            self._win._len = BATCH_STRIDE - self._pos
        return self._win

    def buffer_updated(self, Py_ssize_t nbytes):
        cdef double now = _monotonic()
        if self._lost:
            return
        if self._paused and self._transport.is_reading():
            # uvloop starts reading once connection_made returns, even if it paused there:
            # a read that arrives while paused re-applies the pause (its bytes are kept).
            self._transport.pause_reading()
        if self._spilling:
            self._spilling = False
            self._fail(ARENA_FULL)
            return
        if self._pos == 0:
            self._frame_started = now
        self._pos += nbytes
        self._last_read = now
        self.bytes_in += nbytes
        self._arena.bytes_in += nbytes
        self._parse()

    # -- framing -------------------------------------------------------------------------

    cdef int _take_slot(self) except -1:
        cdef int slot = self._arena.claim()
        if slot < 0:
            return 0
        self._slot = slot
        self._pos = 0
        self._need = 0
        if self._ncarry:
            memcpy(self._arena._mem + <Py_ssize_t>slot * BATCH_STRIDE, self._carry, self._ncarry)
            self._pos = self._ncarry
            self._ncarry = 0
            self._frame_started = _monotonic()
        return 0

    cdef int _parse(self) except -1:
        cdef Arena arena = self._arena
        cdef unsigned char *p
        cdef unsigned int version, fmt, length
        cdef Py_ssize_t surplus
        cdef int done, nxt
        cdef double now
        while self._slot >= 0:
            p = arena._mem + <Py_ssize_t>self._slot * BATCH_STRIDE
            if self._need == 0:
                if self._pos < FRAME_HEADER:
                    return 0
                version = p[0]
                fmt = p[1]
                length = (<unsigned int>p[2] << 8) | p[3]
                if version != FRAME_VERSION:
                    return self._fail(BAD_VERSION)
                if fmt < 1 or fmt > MAX_FORMAT or self._sizes[fmt] == 0:
                    # Off the packet path: a control frame, or a refused format.
                    if fmt != CONTROL_FMT:
                        return self._fail(BAD_FORMAT)
                    if length != CONTROL_LEN:
                        return self._fail(WRONG_SIZE)
                    self._control = True
                elif length != self._sizes[fmt]:
                    return self._fail(WRONG_SIZE)
                self._need = FRAME_HEADER + length
            if self._pos < self._need:
                return 0
            if self._control:
                self._end_control(p)
                continue
            # A complete frame; what follows it is the start of the next one.
            done = self._slot
            surplus = self._pos - self._need
            self._slot = -1
            self._pos = 0
            if surplus:
                nxt = arena.claim()
                if nxt >= 0:
                    memmove(arena._mem + <Py_ssize_t>nxt * BATCH_STRIDE, p + self._need, surplus)
                    self._slot = nxt
                    self._pos = surplus
                else:
                    memcpy(self._carry, p + self._need, surplus)
                    self._ncarry = surplus
                self._frame_started = _monotonic()
            self._need = 0
            self.frames_in += 1
            arena.push_ready(done)
            if self._rate > 0:
                now = _monotonic()
                self._tokens = min(self._burst,
                                   self._tokens + (now - self._refilled_at) * self._rate)
                self._refilled_at = now
                self._tokens -= 1.0
                if self._tokens < 0 and not (self._paused & PAUSE_RATE):
                    self._pause(PAUSE_RATE)
                    self._rate_limited(-self._tokens / self._rate)
            arena.check_water()
        return 0

    cdef int _end_control(self, unsigned char *p) except -1:
        # The control frame is complete in the slot at `p`: take its body, keep the slot
        # for the bytes after it (moved to the front) or free it, then run the hook.
        cdef Py_ssize_t surplus = self._pos - self._need
        body = PyBytes_FromStringAndSize(<const char *>p + FRAME_HEADER, CONTROL_LEN)
        self._control = False
        self._need = 0
        if surplus:
            memmove(p, p + FRAME_HEADER + CONTROL_LEN, surplus)
            self._pos = surplus
            self._frame_started = _monotonic()
        else:
            self._arena.free_slot(self._slot)
            self._slot = -1
            self._pos = 0
            self._arena.check_water()
        self.control_in += 1
        self._control_frame(body)
        return 0

    cdef int _fail(self, int reason) except -1:
        self._arena.count_reject(reason)
        self._lost = True
        self._ncarry = 0
        if self._slot >= 0:
            self._arena.free_slot(self._slot)
            self._slot = -1
        self._pos = 0
        self._need = 0
        self._control = False
        if self._transport is not None:
            self._transport.abort()
        self._framing_lost(reason)
        return 0

    def close_now(self):
        """Abort the connection at once for the owner (e.g. a control-protocol error);
        a partial frame is discarded without being counted as `truncated`."""
        if self._lost:
            return
        self._lost = True
        self._ncarry = 0
        self._pos = 0
        self._need = 0
        self._control = False
        if self._slot >= 0:
            self._arena.free_slot(self._slot)
            self._slot = -1
            self._arena.check_water()
        if self._transport is not None:
            self._transport.abort()

    # -- flow control --------------------------------------------------------------------

    cdef int _pause(self, unsigned int reason) except -1:
        if self._paused == 0 and self._transport is not None and not self._lost:
            self._transport.pause_reading()
        self._paused |= reason
        return 0

    cdef int _resume(self, unsigned int reason) except -1:
        cdef unsigned int before = self._paused
        self._paused &= ~reason
        if before and self._paused == 0 and self._transport is not None and not self._lost:
            self._transport.resume_reading()
        return 0

    def resume_rate(self):
        """End a rate-limit pause (the subclass schedules this after `_rate_limited`)."""
        self._tokens = max(self._tokens, 0.0)
        self._resume(PAUSE_RATE)

    def hold_reading(self, bint hold):
        """Pause (True) or resume (False) reading for the owner, e.g. during shutdown."""
        if hold:
            self._pause(PAUSE_OWNER)
        else:
            self._resume(PAUSE_OWNER)

    def check_timeouts(self, double now, double frame_timeout, double idle_timeout,
                       double first_frame_timeout=0.0):
        """Enforce the deadlines at `now` (time.monotonic()): 1 when a frame took longer
        than `frame_timeout` (counted, connection dropped), 3 when no complete frame
        (packet or control) arrived within `first_frame_timeout` of the connection's
        start (0: no such deadline; closed), 2 when the connection was idle longer than
        `idle_timeout` (closed), else 0. Paused connections are exempt: we, not the peer,
        are holding them up."""
        if self._lost or self._transport is None or self._paused:
            return 0
        if (self._pos > 0 or self._ncarry > 0) and now - self._frame_started > frame_timeout:
            self._fail(SLOW)
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
    def paused(self):
        """The pause reasons in force (bit mask: 1 arena, 2 rate, 4 owner)."""
        return self._paused

    @property
    def partial(self):
        """Bytes of an incomplete frame held for this connection."""
        return self._pos + self._ncarry

    def _rate_limited(self, double wait):
        pass

    def _framing_lost(self, int reason):
        pass

    def _control_frame(self, bytes body):
        pass

# The receive side of a mix node (docs/node.md): an arena of fixed-size slots that the
# transports read straight into, and the protocol base that frames the byte stream into
# those slots. Knows nothing of asyncio beyond the transport's pause/resume/abort methods.

from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t

from fogcore._ext._outcome cimport BATCH_STRIDE, fog_outcome

cdef enum:
    FRAME_HEADER = 4
    FRAME_VERSION = 1
    MAX_FORMAT = 2
    CARRY_MAX = 256             # > BATCH_STRIDE - smallest frame (210)
    N_COUNTERS = 16
    N_DELAY_BUCKETS = 14
    MAX_LANES = 16              # batches in flight at once (one per lane)
    CONTROL_FMT = 0x7F          # control frame format (fogcore/mixnet/control.py)
    CONTROL_LEN = 116           # its fixed body length

# slot states
cdef enum:
    SLOT_FREE = 0
    SLOT_FILLING = 1            # a connection is reading a frame into it
    SLOT_READY = 2              # a complete frame waits for the batch processor
    SLOT_BATCH = 3              # the batch processor owns it
    SLOT_HELD = 4               # processed; the delay queue, a link or a pending write holds it

# pause reasons (bit mask)
cdef enum:
    PAUSE_ARENA = 1
    PAUSE_RATE = 2
    PAUSE_OWNER = 4


cdef class _Window:
    cdef unsigned char *_ptr
    cdef Py_ssize_t _len
    cdef object _owner


cdef class Arena:
    cdef unsigned char *_mem            # nslots * BATCH_STRIDE bytes
    cdef fog_outcome *_records          # nslots records, record i for slot i
    cdef uint8_t *_state
    cdef uint64_t *_freebits            # bit set = slot free
    cdef Py_ssize_t _nwords
    cdef Py_ssize_t _hint               # lowest word that may hold a free slot
    cdef int32_t *_ready                # FIFO of complete frames
    cdef Py_ssize_t _ready_head
    cdef Py_ssize_t _nready
    cdef int32_t *_lanes[MAX_LANES]     # per lane: slots of its batch in flight, ascending
    cdef Py_ssize_t _nlane[MAX_LANES]   # frames in each lane's batch (0: lane idle)
    cdef unsigned char _spill[BATCH_STRIDE]  # read target of last resort, contents discarded
    cdef readonly Py_ssize_t nslots
    cdef readonly Py_ssize_t nfree
    cdef readonly Py_ssize_t low_water  # pause every reader below this many free slots
    cdef readonly Py_ssize_t high_water # resume them from this many
    cdef readonly bint readers_paused
    cdef bint _signalled
    cdef object _on_ready
    cdef set _conns
    cdef uint64_t _rejects[N_COUNTERS]
    cdef uint64_t _outcomes[N_COUNTERS]
    cdef uint64_t _delay_buckets[N_DELAY_BUCKETS]
    cdef uint64_t _delay_sum_us
    cdef readonly uint64_t frames_in
    cdef readonly uint64_t bytes_in

    cdef int claim(self) except -2
    cdef int free_slot(self, int slot) except -1
    cdef int push_ready(self, int slot) except -1
    cdef int count_reject(self, int reason) except -1
    cdef int check_water(self) except -1
    cdef int32_t *lane_array(self, int lane) except NULL
    cdef fog_outcome *held_record(self, object slot_obj) except NULL


cdef class _BaseMixProtocol:
    cdef Arena _arena
    cdef object _transport
    cdef _Window _win                   # re-pointed for every read, never re-created
    cdef int _slot                      # slot being filled, -1 when none
    cdef Py_ssize_t _pos                # bytes of the current frame in the slot
    cdef Py_ssize_t _need               # its size once the header is read, else 0
    cdef unsigned char _carry[CARRY_MAX]
    cdef Py_ssize_t _ncarry
    cdef bint _spilling
    cdef bint _lost
    cdef uint16_t _sizes[MAX_FORMAT + 1]  # accepted frame size per format code, 0 = refused
    cdef unsigned int _paused
    cdef double _rate                   # frames per second, 0 = unlimited
    cdef double _burst
    cdef double _tokens
    cdef double _refilled_at
    cdef double _frame_started
    cdef double _last_read
    cdef double _opened_at
    cdef bint _control                  # the frame being read is a control frame
    cdef readonly uint64_t frames_in
    cdef readonly uint64_t control_in
    cdef readonly uint64_t bytes_in

    cdef int _pause(self, unsigned int reason) except -1
    cdef int _resume(self, unsigned int reason) except -1
    cdef int _fail(self, int reason) except -1
    cdef int _take_slot(self) except -1
    cdef int _parse(self) except -1
    cdef int _end_control(self, unsigned char *p) except -1

# The node's packet entry points (docs/packet-format.md §5): one frame, or a batch of frames
# held in one buffer at BATCH_STRIDE, processed in place without the GIL, one 96-byte
# outcome record per frame (struct fog_outcome, §5.2).
#
#     from fogcore._ext._batch cimport NodeCtx, process_frame
#     with nogil:
#         rc = process_frame(&ctx, slot, BATCH_STRIDE, False, record)

from libc.stdint cimport uint32_t

cdef enum:
    OUTCOME_RECORD_SIZE = 96
    MAX_FRAME_SIZE = 2510
    MAX_THREADS = 8
    KIND_FORWARD = 1
    KIND_DELIVER = 2
    KIND_REPLY = 3
    KIND_REJECT = 4
    WRONG_SIZE = 1
    BAD_VERSION = 2
    BAD_FORMAT = 3
    LOW_ORDER = 4
    BAD_MAC = 5
    REPLAY = 6
    BAD_COMMAND = 7
    BAD_PAYLOAD = 8

# check_and_add of a replay filter: 1 seen before, 0 new (now recorded), -1 failed (a Python
# filter raised; the exception is kept by the caller's context).
ctypedef int (*replay_fn)(void *ctx, const unsigned char *tag) noexcept nogil

ctypedef struct NodeCtx:
    unsigned char secret[32]        # X25519 routing secret y
    unsigned char public[32]        # its public key (the kem KDF binds it)
    replay_fn replay
    void *replay_ctx
    bint with_delay                 # write the VRF delay (µs) into every accepted record
    unsigned char vrf_output[64]    # the delay epoch's VRF output β
    uint32_t mean_us
    uint32_t max_us

# Process the frame at `frame` (`avail` bytes: exactly the frame when `exact`, else a batch
# slot it must fit in) in place and write its record. 0 when done (whatever the outcome),
# -1 only when the replay callback failed.
cdef int process_frame(const NodeCtx *ctx, unsigned char *frame, size_t avail, bint exact,
                       unsigned char *record) noexcept nogil

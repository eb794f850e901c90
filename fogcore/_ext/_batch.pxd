# The node's packet entry points (docs/packet-format.md §5): one frame, or a batch of frames
# held in one buffer at BATCH_STRIDE, processed in place without the GIL, one 96-byte
# outcome record per frame (struct fog_outcome of _outcome.pxd, §5.2).
#
#     from fogcore._ext._batch cimport NodeCtx, process_frame
#     with nogil:
#         rc = process_frame(&ctx, slot, BATCH_STRIDE, False, outcome_at(records, i))

from libc.stdint cimport uint32_t

from fogcore._ext._outcome cimport fog_outcome

cdef enum:
    MAX_FRAME_SIZE = 2510
    MAX_THREADS = 8

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
                       fog_outcome *record) noexcept nogil

# The outcome record of one processed frame (docs/packet-format.md §5.2), defined once for
# every module that writes or reads it: the batch processor (_batch) writes it, the slot
# arena (_frames) reads it. Python mirrors it in fogcore.packet.outcome (Kind, Reason,
# OUTCOME_RECORD) and fogcore.mixnet._frames_py; tests/test_packet_record.py compares the
# mirrors with `outcome_layout()` as each compiled module exports it.
#
#     from fogcore._ext._outcome cimport fog_outcome, outcome_at, KIND_FORWARD
#     cdef fog_outcome *rec = outcome_at(records, slot)
#     if rec.kind == KIND_FORWARD: ...
#
# Multi-byte integers are byte arrays read and written little-endian through the inline
# helpers below, so the record's bytes are the same on every host and the struct has no
# padding (every member has alignment 1).

from libc.stdint cimport uint8_t, uint32_t

ctypedef packed struct fog_outcome:
    uint8_t kind                # 0: fog_kind
    uint8_t reason              # 1: fog_reason of a REJECT, else 0
    uint8_t flags               # 2: the routing slot's flags byte, 0 for rejects
    uint8_t format              # 3: packet format 1 or 2; 0 when rejected before it is known
    uint8_t out_len[2]          # 4: length of the output bytes, little-endian
    uint8_t reserved0[2]        # 6: 0
    uint8_t out_offset[4]       # 8: offset of the output bytes from the slot start, LE
    uint8_t delay_us[4]         # 12: VRF mixing delay in µs, LE; 0 for rejects
    uint8_t address[32]         # 16: next node id or mailbox id
    uint8_t surb_id[16]         # 48: REPLY only
    uint8_t tag[32]             # 64: replay tag once the MAC verified

# What processing gave (fogcore.packet.outcome.Kind); 0 is a record never written.
cdef enum fog_kind:
    KIND_NONE = 0
    KIND_FORWARD = 1
    KIND_DELIVER = 2
    KIND_REPLY = 3
    KIND_REJECT = 4

# Why a frame was rejected (fogcore.packet.outcome.Reason, checked in this order), then the
# receive side's own drop reasons, counted in the same table (docs/node.md).
cdef enum fog_reason:
    REASON_NONE = 0
    WRONG_SIZE = 1
    BAD_VERSION = 2
    BAD_FORMAT = 3
    LOW_ORDER = 4
    BAD_MAC = 5
    REPLAY = 6                  # from here on the MAC verified: the record keeps the tag
    BAD_COMMAND = 7
    BAD_PAYLOAD = 8
    TRUNCATED = 9               # connection closed inside a frame
    SLOW = 10                   # a frame took longer than the frame timeout
    ARENA_FULL = 11             # bytes arrived with no slot free

cdef enum:
    OUTCOME_SIZE = 96           # sizeof(fog_outcome), checked at import by check_outcome()
    TAG_KNOWN_FROM = REPLAY
    BATCH_STRIDE = 2560         # bytes per batch slot, >= the largest frame (2510)
    SLOT_BITS = 24              # delay-queue key = deadline_us << SLOT_BITS | slot


cdef inline fog_outcome *outcome_at(unsigned char *records, Py_ssize_t index) noexcept nogil:
    return <fog_outcome *>(records + index * OUTCOME_SIZE)


cdef inline unsigned int load_le16(const uint8_t *p) noexcept nogil:
    return p[0] | (<unsigned int>p[1] << 8)


cdef inline uint32_t load_le32(const uint8_t *p) noexcept nogil:
    return p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef inline void store_le16(uint8_t *p, unsigned int v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF


cdef inline void store_le32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = (v >> 24) & 0xFF


cdef inline int check_outcome() except -1:
    # A compiler that padded the struct would shift every field: refuse to load, loudly.
    if sizeof(fog_outcome) != OUTCOME_SIZE:
        raise ImportError(f"struct fog_outcome is {sizeof(fog_outcome)} bytes, not "
                          f"{OUTCOME_SIZE}: this compiler pads it")
    return 0


cdef inline dict outcome_layout():
    """The record as C sees it, for the mirror test: size, {field: (offset, size)}, the
    kind and reason codes, the batch stride and the delay-queue key's slot bits."""
    cdef fog_outcome r
    cdef char *base = <char *>&r
    return {
        "size": sizeof(fog_outcome),
        "fields": {
            "kind": (<char *>&r.kind - base, sizeof(r.kind)),
            "reason": (<char *>&r.reason - base, sizeof(r.reason)),
            "flags": (<char *>&r.flags - base, sizeof(r.flags)),
            "format": (<char *>&r.format - base, sizeof(r.format)),
            "out_len": (<char *>r.out_len - base, sizeof(r.out_len)),
            "reserved0": (<char *>r.reserved0 - base, sizeof(r.reserved0)),
            "out_offset": (<char *>r.out_offset - base, sizeof(r.out_offset)),
            "delay_us": (<char *>r.delay_us - base, sizeof(r.delay_us)),
            "address": (<char *>r.address - base, sizeof(r.address)),
            "surb_id": (<char *>r.surb_id - base, sizeof(r.surb_id)),
            "tag": (<char *>r.tag - base, sizeof(r.tag)),
        },
        "kinds": {"FORWARD": KIND_FORWARD, "DELIVER": KIND_DELIVER, "REPLY": KIND_REPLY,
                  "REJECT": KIND_REJECT},
        "reasons": {"NONE": REASON_NONE, "WRONG_SIZE": WRONG_SIZE,
                    "BAD_VERSION": BAD_VERSION, "BAD_FORMAT": BAD_FORMAT,
                    "LOW_ORDER": LOW_ORDER, "BAD_MAC": BAD_MAC, "REPLAY": REPLAY,
                    "BAD_COMMAND": BAD_COMMAND, "BAD_PAYLOAD": BAD_PAYLOAD,
                    "TRUNCATED": TRUNCATED, "SLOW": SLOW, "ARENA_FULL": ARENA_FULL},
        "tag_known_from": TAG_KNOWN_FROM,
        "batch_stride": BATCH_STRIDE,
        "slot_bits": SLOT_BITS,
    }

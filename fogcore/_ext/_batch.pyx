# cython: language_level=3, embedsignature=True
"""The packet backend in C: build a packet, process one frame, process a batch in place.

The functions mirror the pure-Python reference `fogcore.packet._batch_py` (same names, arguments
and bytes; docs/packet-format.md §5.3). A batch runs entirely without the GIL and creates no
Python object per packet: frames are decrypted where they lie in the caller's buffer and
each outcome is a 96-byte C record. With `threads > 1` the batch is cut into contiguous
parts, one per POSIX thread (the calling thread takes the first), all sharing the
thread-safe compiled replay filter.
"""

from cpython.buffer cimport (
    PyBUF_SIMPLE,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject_GenericSetAttr
from libc.stdint cimport uint32_t
from libc.string cimport memcpy, memset

from fogcore._ext cimport _hop
from fogcore._ext._delays cimport vrf_delay_us
from fogcore._ext._outcome cimport (
    BAD_COMMAND,
    BAD_FORMAT,
    BAD_MAC,
    BAD_PAYLOAD,
    BAD_VERSION,
    BATCH_STRIDE as C_BATCH_STRIDE,
    KIND_DELIVER,
    KIND_FORWARD,
    KIND_REJECT,
    KIND_REPLY,
    LOW_ORDER,
    OUTCOME_SIZE,
    REPLAY,
    TAG_KNOWN_FROM,
    WRONG_SIZE,
    check_outcome,
    fog_outcome,
    load_le16,
    load_le32,
    outcome_at,
    outcome_layout,
    store_le16,
    store_le32,
)
from fogcore._ext._kem cimport (
    KEM_HEADER_SIZE,
    KEM_PACKET_SIZE,
    KEM_SLOT_SIZE,
    kem_build_header,
    kem_node_keys,
)
from fogcore._ext._replay cimport ReplayFilter
from fogcore._ext.includes.fog_wipe cimport fog_wipe
from fogcore._ext.includes.pthread cimport pthread_create, pthread_join, pthread_t
from fogcore._ext._sphinx cimport (
    METHOD_REENCODED,
    METHOD_SEQUENTIAL,
    SPHINX_HEADER_SIZE,
    SPHINX_PACKET_SIZE,
    SPHINX_SLOT_SIZE,
    sphinx_build_header,
    sphinx_next_element,
    sphinx_node_keys,
)

from operator import index as _index

from fogcore._ext._sphinx import route_arrays

check_outcome()

BATCH_STRIDE = C_BATCH_STRIDE
RECORD_SIZE = OUTCOME_SIZE
#: the outcome record as this module was compiled with it (tests compare the Python mirror)
OUTCOME_LAYOUT = outcome_layout()
FRAME_SIZES = {_hop.FORMAT_SPHINX: 4 + SPHINX_PACKET_SIZE, _hop.FORMAT_KEM: 4 + KEM_PACKET_SIZE}
METHODS = ("sequential", "scalar", "reencoded")


# ---- one frame ------------------------------------------------------------------------------

cdef inline int _reject(fog_outcome *record, unsigned char reason, bint keep_tag) noexcept nogil:
    record.kind = KIND_REJECT
    record.reason = reason
    if not keep_tag:
        memset(record.tag, 0, sizeof(record.tag))
    return 0


cdef int process_frame(const NodeCtx *ctx, unsigned char *frame, size_t avail, bint exact,
                       fog_outcome *record) noexcept nogil:
    cdef unsigned char keys[_hop.HOP_KEYS_SIZE]
    cdef unsigned char block[_hop.MAX_BETA_PLUS_SLOT]   # β || 0^S, then its decryption
    cdef unsigned char element[32]
    cdef unsigned char *body
    cdef unsigned char *beta
    cdef unsigned char *gamma
    cdef unsigned char *payload
    cdef unsigned char fmt, command
    cdef size_t slot, L, header, packet, size
    cdef int rc, seen, length
    memset(record, 0, sizeof(fog_outcome))
    # §1.2, in order: size of the frame header, version, format, length
    if avail < _hop.FRAME_HEADER_SIZE:
        return _reject(record, WRONG_SIZE, False)
    if frame[0] != _hop.FRAME_VERSION:
        return _reject(record, BAD_VERSION, False)
    fmt = frame[1]
    if fmt == _hop.FORMAT_SPHINX:
        slot, header, packet = SPHINX_SLOT_SIZE, SPHINX_HEADER_SIZE, SPHINX_PACKET_SIZE
    elif fmt == _hop.FORMAT_KEM:
        slot, header, packet = KEM_SLOT_SIZE, KEM_HEADER_SIZE, KEM_PACKET_SIZE
    else:
        return _reject(record, BAD_FORMAT, False)
    size = _hop.FRAME_HEADER_SIZE + _hop.load_be16(frame + 2)
    if size != _hop.FRAME_HEADER_SIZE + packet or (avail != size if exact else avail < size):
        return _reject(record, WRONG_SIZE, False)
    record.format = fmt
    L = _hop.MAX_HOPS * slot
    body = frame + _hop.FRAME_HEADER_SIZE
    beta = body + _hop.ELEMENT_SIZE
    gamma = beta + L
    payload = body + header

    if fmt == _hop.FORMAT_SPHINX:
        rc = sphinx_node_keys(keys, ctx.secret, body)
    else:
        rc = kem_node_keys(keys, ctx.secret, ctx.public, body)
    if rc != 0:
        return _reject(record, LOW_ORDER, False)
    if not _hop.header_mac_ok(keys + _hop.HK_MAC, beta, L, gamma):
        fog_wipe(keys, sizeof(keys))
        return _reject(record, BAD_MAC, False)
    # Only now, with the MAC verified, may the tag reach the filter.
    seen = ctx.replay(ctx.replay_ctx, keys + _hop.HK_TAG)
    if seen < 0:
        fog_wipe(keys, sizeof(keys))
        return -1
    memcpy(record.tag, keys + _hop.HK_TAG, sizeof(record.tag))
    if seen:
        fog_wipe(keys, sizeof(keys))
        return _reject(record, REPLAY, True)

    # One ChaCha20 call decrypts β and yields the S fresh bytes that become its new tail.
    memcpy(block, beta, L)
    memset(block + L, 0, slot)
    _hop.stream_xor(block, L + slot, keys + _hop.HK_STREAM)
    command = block[_hop.SLOT_COMMAND]

    if command == _hop.CMD_RELAY:
        if fmt == _hop.FORMAT_SPHINX:
            if sphinx_next_element(element, keys, body) != 0:
                fog_wipe(keys, sizeof(keys))
                return _reject(record, LOW_ORDER, False)
        else:
            memcpy(element, block + _hop.SLOT_TAIL, 32)
        _hop.lioness_dec(payload, _hop.PAYLOAD_SIZE, keys + _hop.HK_LIONESS)
        memcpy(body, element, 32)
        memcpy(beta, block + slot, L)
        memcpy(gamma, block + _hop.SLOT_EXTRA, _hop.MAC_SIZE)
        record.kind = KIND_FORWARD
        store_le16(record.out_len, <unsigned int>size)
    elif command == _hop.CMD_DELIVER:
        if not _hop.is_zero(block + _hop.SLOT_EXTRA, slot - _hop.SLOT_EXTRA):
            fog_wipe(keys, sizeof(keys))
            return _reject(record, BAD_COMMAND, True)
        _hop.lioness_dec(payload, _hop.PAYLOAD_SIZE, keys + _hop.HK_LIONESS)
        length = _hop.plaintext_open(payload)
        if length < 0:
            fog_wipe(keys, sizeof(keys))
            return _reject(record, BAD_PAYLOAD, True)
        record.kind = KIND_DELIVER
        store_le16(record.out_len, <unsigned int>length)
        store_le32(record.out_offset, <uint32_t>(_hop.FRAME_HEADER_SIZE + header
                                                 + _hop.INTEGRITY_SIZE + _hop.LENGTH_SIZE))
    elif command == _hop.CMD_REPLY:
        if not _hop.is_zero(block + _hop.SLOT_TAIL, slot - _hop.SLOT_TAIL):
            fog_wipe(keys, sizeof(keys))
            return _reject(record, BAD_COMMAND, True)
        _hop.lioness_dec(payload, _hop.PAYLOAD_SIZE, keys + _hop.HK_LIONESS)
        record.kind = KIND_REPLY
        store_le16(record.out_len, _hop.PAYLOAD_SIZE)
        store_le32(record.out_offset, <uint32_t>(_hop.FRAME_HEADER_SIZE + header))
        memcpy(record.surb_id, block + _hop.SLOT_EXTRA, _hop.SURB_ID_SIZE)
    else:
        fog_wipe(keys, sizeof(keys))
        return _reject(record, BAD_COMMAND, True)

    record.flags = block[_hop.SLOT_FLAGS]
    memcpy(record.address, block + _hop.SLOT_ADDRESS, _hop.ID_SIZE)
    if ctx.with_delay:
        store_le32(record.delay_us, vrf_delay_us(ctx.vrf_output, keys + _hop.HK_TAG,
                                                 ctx.mean_us, ctx.max_us))
    fog_wipe(keys, sizeof(keys))
    fog_wipe(block, sizeof(block))
    return 0


# ---- replay filters -------------------------------------------------------------------------

cdef int _compiled_replay(void *filt, const unsigned char *tag) noexcept nogil:
    return (<ReplayFilter>filt).check_and_add(tag)


cdef class _PythonReplay:
    """Calls a Python `check_and_add(tag) -> bool` from C; keeps the first exception."""
    cdef object check
    cdef object error


cdef int _python_replay_gil(_PythonReplay state, const unsigned char *tag) noexcept:
    try:
        return 1 if state.check(PyBytes_FromStringAndSize(<const char *>tag, 32)) else 0
    except BaseException as exc:
        if state.error is None:
            state.error = exc
        return -1


cdef int _python_replay(void *state, const unsigned char *tag) noexcept nogil:
    with gil:
        return _python_replay_gil(<_PythonReplay>state, tag)


cdef int _copy_key(unsigned char *dst, key) except -1:
    # bytes (what NodeKeys holds) directly; any other buffer through a memoryview, whose
    # set-up costs more than the copy (this runs once per single-packet call).
    cdef const unsigned char[::1] view
    if type(key) is bytes and PyBytes_GET_SIZE(key) == 32:
        memcpy(dst, PyBytes_AS_STRING(key), 32)
        return 0
    if key is None:  # a typed memoryview would take None as an empty view
        raise TypeError("a routing key must be a bytes-like object, not None")
    view = key
    if view.shape[0] != 32:
        raise ValueError("routing secret and public key are 32 bytes each")
    memcpy(dst, &view[0], 32)
    return 0


cdef object _setup(NodeCtx *ctx, keys, replay_filter, vrf_output, mean_us, max_us):
    """Fill `ctx` from a NodeKeys-like object and a filter; returns what must stay alive."""
    cdef const unsigned char[::1] beta
    cdef _PythonReplay state = None
    _copy_key(ctx.secret, keys.routing_secret)
    _copy_key(ctx.public, keys.routing_public)
    if isinstance(replay_filter, ReplayFilter):
        ctx.replay = _compiled_replay
        ctx.replay_ctx = <void *>replay_filter
    else:
        state = _PythonReplay()
        state.check = replay_filter.check_and_add
        ctx.replay = _python_replay
        ctx.replay_ctx = <void *>state
    ctx.mean_us = <uint32_t>_bounded(mean_us, 0, 0xFFFFFFFF,
                                     "mean_us and max_us are 32-bit unsigned")
    ctx.max_us = <uint32_t>_bounded(max_us, 0, 0xFFFFFFFF,
                                    "mean_us and max_us are 32-bit unsigned")
    ctx.with_delay = vrf_output is not None
    if ctx.with_delay:
        beta = vrf_output
        if beta.shape[0] != 64:
            raise ValueError("the VRF output is 64 bytes")
        memcpy(ctx.vrf_output, &beta[0], 64)
    return state


cdef Py_ssize_t _bounded(value, Py_ssize_t low, Py_ssize_t high, str message) except -1:
    """`value` as a C integer once it is an integer in [low, high] (0 <= low): TypeError
    for a non-integer, ValueError outside the range, whatever its size, as the reference
    raises. Comparing the Python integers first means no product or cast can wrap."""
    value = _index(value)
    if not low <= value <= high:
        raise ValueError(message)
    return value


# ---- Python API: the reference's functions (fogcore.packet._batch_py) -----------------------

cdef object _Outcome = None
cdef dict _KINDS = None
cdef tuple _REASONS = None


def set_outcome_type(outcome, kinds, reasons):
    """Give `process_packet` the result type of the single-packet API: `outcome` (the
    `Outcome` data class), `kinds` and `reasons` (its IntEnums). fogcore.packet calls this
    when it selects this module, so the packet core imports nothing above it."""
    global _Outcome, _KINDS, _REASONS
    by_code = sorted(reasons, key=int)
    if [int(r) for r in by_code] != list(range(len(by_code))):
        raise ValueError("reason codes must run 0, 1, 2, ... without a gap")
    _KINDS = {int(k): k for k in kinds}
    _REASONS = tuple(by_code)
    _Outcome = outcome


cdef object _new_outcome(kind, reason, unsigned char fmt, unsigned char flags, address,
                         surb_id, tag, packet, payload):
    # `Outcome` is a frozen dataclass with slots: its __init__ sets each of its ten fields
    # through object.__setattr__ (about 2.7 µs, a twentieth of a hop). The generic setter
    # fills the same slots directly, bypassing only the frozen class's refusal.
    obj = _Outcome.__new__(_Outcome)
    PyObject_GenericSetAttr(obj, "kind", kind)
    PyObject_GenericSetAttr(obj, "reason", reason)
    PyObject_GenericSetAttr(obj, "fmt", fmt)
    PyObject_GenericSetAttr(obj, "flags", flags)
    PyObject_GenericSetAttr(obj, "address", address)
    PyObject_GenericSetAttr(obj, "surb_id", surb_id)
    PyObject_GenericSetAttr(obj, "tag", tag)
    PyObject_GenericSetAttr(obj, "packet", packet)
    PyObject_GenericSetAttr(obj, "payload", payload)
    PyObject_GenericSetAttr(obj, "delay_us", 0)
    return obj


cdef object _outcome(const fog_outcome *record, const unsigned char *slot):
    cdef unsigned char kind = record.kind
    cdef unsigned char fmt = record.format
    cdef unsigned int length = load_le16(record.out_len)
    cdef uint32_t offset = load_le32(record.out_offset)
    tag = PyBytes_FromStringAndSize(<const char *>record.tag, sizeof(record.tag))
    if kind == KIND_REJECT:
        # the tag is known once the MAC verified: REPLAY, BAD_COMMAND, BAD_PAYLOAD
        return _new_outcome(_KINDS[KIND_REJECT], _REASONS[record.reason], fmt, 0, None, None,
                            tag if record.reason >= TAG_KNOWN_FROM else None, None, None)
    reason = _REASONS[0]
    address = PyBytes_FromStringAndSize(<const char *>record.address, sizeof(record.address))
    data = PyBytes_FromStringAndSize(<const char *>slot + offset, length)
    if kind == KIND_FORWARD:
        return _new_outcome(_KINDS[kind], reason, fmt, record.flags, address, None, tag, data,
                            None)
    if kind == KIND_DELIVER:
        return _new_outcome(_KINDS[kind], reason, fmt, record.flags, address, None, tag, None,
                            data)
    return _new_outcome(_KINDS[kind], reason, fmt, record.flags, address,
                        PyBytes_FromStringAndSize(<const char *>record.surb_id,
                                                  sizeof(record.surb_id)),
                        tag, None, data)


def process_packet(keys, packet, replay_filter):
    """Process one frame (any bytes-like object) at the node with `keys` (a NodeKeys);
    returns an `Outcome` and never raises on any packet bytes."""
    cdef NodeCtx ctx
    cdef Py_buffer view
    cdef unsigned char frame[MAX_FRAME_SIZE]
    cdef fog_outcome record
    cdef size_t avail
    cdef int rc
    if _Outcome is None:  # before the filter sees a tag
        raise RuntimeError("no outcome type: import fogcore.packet, which sets it")
    state = _setup(&ctx, keys, replay_filter, None, 0, 0)
    PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE)
    try:
        avail = <size_t>view.len
        # A frame longer than the largest one is WRONG_SIZE from its first four bytes alone.
        memcpy(frame, view.buf, avail if avail < MAX_FRAME_SIZE else MAX_FRAME_SIZE)
    finally:
        PyBuffer_Release(&view)
    with nogil:
        rc = process_frame(&ctx, frame, avail, True, &record)
    fog_wipe(ctx.secret, 32)
    if rc != 0:
        raise (<_PythonReplay>state).error
    return _outcome(&record, frame)


ctypedef struct _Part:
    const NodeCtx *ctx
    unsigned char *buffer
    unsigned char *records
    Py_ssize_t first
    Py_ssize_t end
    int rc


cdef void *_run_part(void *arg) noexcept nogil:
    cdef _Part *part = <_Part *>arg
    cdef Py_ssize_t i
    part.rc = 0
    for i in range(part.first, part.end):
        if process_frame(part.ctx, part.buffer + i * C_BATCH_STRIDE, C_BATCH_STRIDE, False,
                         outcome_at(part.records, i)) != 0:
            part.rc = -1
            break
    return NULL


cdef int _run_batch(const NodeCtx *ctx, unsigned char *buffer, unsigned char *records,
                    Py_ssize_t count, int threads) noexcept nogil:
    """Split `count` slots into `threads` contiguous parts; the calling thread runs the
    first, POSIX threads the others. 0, or -1 when a part's replay callback failed."""
    cdef _Part parts[MAX_THREADS]
    cdef pthread_t tids[MAX_THREADS]
    cdef bint started[MAX_THREADS]
    cdef int t
    cdef int rc = 0
    cdef Py_ssize_t share
    if threads > count:
        threads = <int>count if count > 0 else 1
    share = (count + threads - 1) // threads
    for t in range(threads):
        parts[t].ctx = ctx
        parts[t].buffer = buffer
        parts[t].records = records
        parts[t].first = min(t * share, count)
        parts[t].end = min((t + 1) * share, count)
        parts[t].rc = 0
        started[t] = False
    for t in range(1, threads):
        started[t] = pthread_create(&tids[t], NULL, _run_part, &parts[t]) == 0
        if not started[t]:
            _run_part(&parts[t])  # no thread to be had: do this part here
    _run_part(&parts[0])
    for t in range(threads):
        if t and started[t]:
            pthread_join(tids[t], NULL)
        if parts[t].rc != 0:
            rc = -1
    return rc


def process_batch(keys, buffer, count, replay_filter, records, *, threads=1,
                  vrf_output=None, mean_us=0, max_us=0):
    """Process `count` frames, one per BATCH_STRIDE-byte slot of the writable `buffer`, in
    place, and write one 96-byte outcome record per frame into `records` (§5.2).

    The GIL is released for the whole batch. `threads` (1 to 8) splits the batch into that
    many contiguous parts processed in parallel; with more than one thread, of two copies
    of a packet in one batch exactly one is accepted but not necessarily the earlier.
    With `vrf_output` (the 64-byte VRF output of the delay epoch), each accepted packet's
    record carries its mixing delay in microseconds at offset 12 (`delay_us`, an
    exponential draw with mean `mean_us` clamped to `max_us`, docs/vrf-delays.md).

    Every argument is checked before the first slot is touched (TypeError for a wrong
    type or a read-only buffer, ValueError for a value out of range), so a bad call
    changes neither the buffers nor the replay filter.
    """
    cdef NodeCtx ctx
    cdef Py_buffer buf
    cdef Py_buffer rec
    cdef Py_ssize_t n
    cdef int nthreads, rc
    nthreads = <int>_bounded(threads, 1, MAX_THREADS, f"threads must be 1 to {MAX_THREADS}")
    _index(count)  # a non-integer count is a TypeError before any buffer is looked at
    # Slot capacities are compared by division: count * stride could wrap for a huge count.
    PyObject_GetBuffer(buffer, &buf, PyBUF_SIMPLE)
    try:
        n = _bounded(count, 0, buf.len // C_BATCH_STRIDE,
                     "buffer holds fewer than count slots")
        if buf.readonly:
            raise TypeError("the batch buffer must be writable")
    finally:
        PyBuffer_Release(&buf)
    PyObject_GetBuffer(records, &rec, PyBUF_SIMPLE)
    try:
        if rec.len // OUTCOME_SIZE < n:
            raise ValueError("records buffer too small")
        if rec.readonly:
            raise TypeError("the records buffer must be writable")
    finally:
        PyBuffer_Release(&rec)
    PyObject_GetBuffer(buffer, &buf, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(records, &rec, PyBUF_WRITABLE)
        try:
            # A buffer may change size between the two requests: check again.
            if buf.len // C_BATCH_STRIDE < n or rec.len // OUTCOME_SIZE < n:
                raise ValueError("buffer holds fewer than count slots")
            state = _setup(&ctx, keys, replay_filter, vrf_output, mean_us, max_us)
            with nogil:
                rc = _run_batch(&ctx, <unsigned char *>buf.buf, <unsigned char *>rec.buf,
                                n, nthreads)
            fog_wipe(ctx.secret, 32)
            if rc != 0:
                raise (<_PythonReplay>state).error
        finally:
            PyBuffer_Release(&rec)
    finally:
        PyBuffer_Release(&buf)


cdef int _method_code(method) except -1:
    if method == "sequential":
        return METHOD_SEQUENTIAL
    if method in ("scalar", "reencoded"):
        # "scalar" (edwards25519 products) and "reencoded" (the same products through
        # X25519) define the same bytes; C computes both the faster way (§2.6).
        return METHOD_REENCODED
    raise ValueError(f"unknown method {method!r}")


def build_packet(int fmt, route, int command, address, extra, message, seed,
                 method="reencoded"):
    """(frame, replay tags per hop) of a packet along `route` (1-5 NodeInfo) whose last hop
    runs `command` (DELIVER or REPLY) with `address` (32 bytes) and `extra` (b"" or 16
    bytes), carrying `message`; all randomness derives from the 32-byte `seed`. `method`
    only chooses how `sphinx` elements are computed; every method gives the same bytes."""
    cdef int code = _method_code(method)
    cdef size_t slot, header, packet
    if fmt == _hop.FORMAT_SPHINX:
        slot, header, packet = SPHINX_SLOT_SIZE, SPHINX_HEADER_SIZE, SPHINX_PACKET_SIZE
    elif fmt == _hop.FORMAT_KEM:
        slot, header, packet = KEM_SLOT_SIZE, KEM_HEADER_SIZE, KEM_PACKET_SIZE
    else:
        raise ValueError(f"unknown packet format {fmt}")
    ids, pks = route_arrays(route)
    cdef const unsigned char[::1] addr = address
    cdef const unsigned char[::1] ext = extra
    cdef const unsigned char[::1] msg = message
    cdef const unsigned char[::1] sd = seed
    if sd.shape[0] != 32:
        raise ValueError("seed must be 32 bytes")
    if addr.shape[0] != _hop.ID_SIZE:
        raise ValueError("address must be 32 bytes")
    if ext.shape[0] > _hop.MAC_SIZE:
        raise ValueError("extra is at most 16 bytes")
    if not 0 <= command <= 255:
        raise ValueError("command is one byte")
    if msg.shape[0] > _hop.MESSAGE_CAPACITY:
        raise ValueError(f"message longer than {_hop.MESSAGE_CAPACITY} bytes")
    cdef int n = len(route)
    cdef unsigned char final[KEM_SLOT_SIZE]
    cdef unsigned char keys[_hop.MAX_HOPS * _hop.HOP_KEYS_SIZE]
    cdef const unsigned char *cids = ids
    cdef const unsigned char *cpks = pks
    cdef int rc, i
    memset(final, 0, sizeof(final))
    final[_hop.SLOT_COMMAND] = <unsigned char>command
    memcpy(final + _hop.SLOT_ADDRESS, &addr[0], _hop.ID_SIZE)
    if ext.shape[0]:
        memcpy(final + _hop.SLOT_EXTRA, &ext[0], ext.shape[0])
    frame = PyBytes_FromStringAndSize(NULL, _hop.FRAME_HEADER_SIZE + packet)
    cdef unsigned char *f = <unsigned char *>PyBytes_AS_STRING(frame)
    cdef unsigned char *p = f + _hop.FRAME_HEADER_SIZE + header
    f[0] = _hop.FRAME_VERSION
    f[1] = <unsigned char>fmt
    f[2] = <unsigned char>(packet >> 8)
    f[3] = <unsigned char>(packet & 0xFF)
    with nogil:
        if fmt == _hop.FORMAT_SPHINX:
            rc = sphinx_build_header(f + 4, keys, n, cids, cpks, final, &sd[0], code)
        else:
            rc = kem_build_header(f + 4, keys, n, cids, cpks, final, &sd[0])
        if rc == 0:
            _hop.plaintext_make(p, &msg[0] if msg.shape[0] else NULL, msg.shape[0])
            for i in range(n - 1, -1, -1):
                _hop.lioness_enc(p, _hop.PAYLOAD_SIZE,
                                 keys + i * _hop.HOP_KEYS_SIZE + _hop.HK_LIONESS)
    if rc != 0:
        raise ValueError("a routing key yields an all-zero shared secret")
    tags = tuple([PyBytes_FromStringAndSize(<const char *>keys + i * _hop.HOP_KEYS_SIZE
                                            + _hop.HK_TAG, 32) for i in range(n)])
    fog_wipe(keys, sizeof(keys))
    return frame, tags

"""The pure-Python packet backend: building, processing one packet and processing a batch,
for both formats. `fogcore.packet` uses it in pure mode; the compiled backend
(`fogcore._ext._packet`) has the same functions and must give the same bytes."""

import operator

from fogcore.delays import delay_us_reference
from fogcore.packet import _hop_py as c
from fogcore.packet import _kem_py, _sphinx_py
from fogcore.packet.outcome import (
    OUTCOME_RECORD_SIZE,
    Kind,
    Outcome,
    Reason,
    pack_record,
)

__all__ = ["FORMATS", "PACKET_SIZES", "build_packet", "process_batch", "process_packet"]

FORMATS = {_sphinx_py.FORMAT: _sphinx_py, _kem_py.FORMAT: _kem_py}
PACKET_SIZES = {code: mod.PACKET_SIZE for code, mod in FORMATS.items()}
MAX_THREADS = 8
_U32_MAX = 0xFFFFFFFF


def build_packet(fmt: int, route, command: int, address: bytes, extra: bytes, message: bytes,
                 seed: bytes, method: str = "sequential"):
    """(frame, replay tags per hop) of a packet along `route` whose last hop runs `command`
    (DELIVER or REPLY) with `address` and `extra`, carrying `message`, all randomness
    derived from the 32-byte `seed`."""
    mod = FORMATS[fmt]
    if not 1 <= len(route) <= c.MAX_HOPS:
        raise ValueError(f"a route has 1 to {c.MAX_HOPS} hops")
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes")
    final = c.make_slot(mod.SLOT_SIZE, command, 0, address, extra)
    header, keys = mod.build_header(route, final, seed, method)
    payload = c.payload_plaintext(message)
    for k in reversed(keys):
        payload = c.lioness_encrypt(k.lioness, payload)
    frame = c.pack_frame_header(fmt, mod.PACKET_SIZE) + header + payload
    return frame, tuple(k.tag for k in keys)


def _process(keys, frame, replay_filter, exact: bool):
    """(Outcome, decrypted payload or None) for one frame (§2.3, §3.3)."""
    try:
        fmt = c.parse_frame(frame, PACKET_SIZES, exact)
    except c.FrameError as err:
        return Outcome.reject(err.reason), None
    mod = FORMATS[fmt]
    frame = bytes(frame[: c.FRAME_HEADER_SIZE + mod.PACKET_SIZE])
    body = frame[c.FRAME_HEADER_SIZE :]
    e, b = mod.ELEMENT_SIZE, mod.BETA_SIZE
    element, beta, gamma = body[:e], body[e : e + b], body[e + b : mod.HEADER_SIZE]
    payload = body[mod.HEADER_SIZE :]

    hk = mod.node_hop_keys(keys.routing_secret, keys.routing_public, element)
    if hk is None:
        return Outcome.reject(Reason.LOW_ORDER, fmt), None
    if not c.mac_ok(hk.mac, beta, gamma):
        return Outcome.reject(Reason.BAD_MAC, fmt), None
    # Only now, with the MAC verified, may the tag enter the filter.
    if replay_filter.check_and_add(hk.tag):
        return Outcome.reject(Reason.REPLAY, fmt, hk.tag), None

    S = mod.SLOT_SIZE
    decrypted = c.xor(beta + bytes(S), c.stream(hk.stream, b + S))
    slot, next_beta = decrypted[:S], decrypted[S:]
    command, flags, address = slot[0], slot[1], slot[2 : 2 + c.ID_SIZE]
    extra = slot[2 + c.ID_SIZE : 2 + c.ID_SIZE + c.MAC_SIZE]
    tail = slot[2 + c.ID_SIZE + c.MAC_SIZE :]
    bad = Outcome.reject(Reason.BAD_COMMAND, fmt, hk.tag), None

    if command == c.CMD_RELAY:
        element_next = mod.next_element(element, hk, slot)
        if element_next is None:
            return Outcome.reject(Reason.LOW_ORDER, fmt), None
        payload = c.lioness_decrypt(hk.lioness, payload)
        packet = frame[: c.FRAME_HEADER_SIZE] + element_next + next_beta + extra + payload
        return Outcome(Kind.FORWARD, fmt=fmt, flags=flags, address=address, tag=hk.tag,
                       packet=packet), None
    if command == c.CMD_DELIVER:
        if any(extra) or any(tail):
            return bad
        plain = c.lioness_decrypt(hk.lioness, payload)
        message = c.open_plaintext(plain)
        if message is None:
            return Outcome.reject(Reason.BAD_PAYLOAD, fmt, hk.tag), None
        return Outcome(Kind.DELIVER, fmt=fmt, flags=flags, address=address, tag=hk.tag,
                       payload=message), plain
    if command == c.CMD_REPLY:
        if any(tail):
            return bad
        plain = c.lioness_decrypt(hk.lioness, payload)
        return Outcome(Kind.REPLY, fmt=fmt, flags=flags, address=address, surb_id=extra,
                       tag=hk.tag, payload=plain), plain
    return bad


def process_packet(keys, packet, replay_filter) -> Outcome:
    """Process one frame at the node with `keys`; never raises on any input bytes."""
    return _process(keys, memoryview(packet).cast("B"), replay_filter, exact=True)[0]


def _bounded(value, low: int, high: int, message: str) -> int:
    """`value` once it is an integer in [low, high]: TypeError for a non-integer, ValueError
    outside the range (the compiled backend raises the same)."""
    value = operator.index(value)
    if not low <= value <= high:
        raise ValueError(message)
    return value


def _key_bytes(key) -> bytes:
    """A routing key as bytes: TypeError for a non-buffer, ValueError unless 32 bytes."""
    key = bytes(memoryview(key).cast("B"))
    if len(key) != 32:
        raise ValueError("routing secret and public key are 32 bytes each")
    return key


def _check_batch_args(keys, buffer, count, replay_filter, records, threads, vrf_output,
                      mean_us, max_us):
    """(writable view of the buffer, record count, check_and_add, VRF output or None, mean,
    max): every argument checked, in the compiled backend's order and with its exception
    types, before any slot is processed, so a bad call burns no replay tag."""
    _bounded(threads, 1, MAX_THREADS, f"threads must be 1 to {MAX_THREADS}")
    operator.index(count)
    view = memoryview(buffer).cast("B")
    # Compared by division, as the compiled code must, although Python integers cannot wrap.
    count = _bounded(count, 0, len(view) // c.BATCH_STRIDE, "buffer holds fewer than count slots")
    if view.readonly:
        raise TypeError("the batch buffer must be writable")
    out = memoryview(records).cast("B")
    if len(out) // OUTCOME_RECORD_SIZE < count:
        raise ValueError("records buffer too small")
    if out.readonly:
        raise TypeError("the records buffer must be writable")
    _key_bytes(keys.routing_secret)
    _key_bytes(keys.routing_public)
    check = replay_filter.check_and_add
    mean_us = _bounded(mean_us, 0, _U32_MAX, "mean_us and max_us are 32-bit unsigned")
    max_us = _bounded(max_us, 0, _U32_MAX, "mean_us and max_us are 32-bit unsigned")
    if vrf_output is not None:
        vrf_output = bytes(memoryview(vrf_output).cast("B"))
        if len(vrf_output) != 64:
            raise ValueError("the VRF output is 64 bytes")
    return view, count, check, vrf_output, mean_us, max_us


def process_batch(keys, buffer, count: int, replay_filter, records, *, threads: int = 1,
                  vrf_output=None, mean_us: int = 0, max_us: int = 0) -> None:
    """Process `count` frames, one per `BATCH_STRIDE`-byte slot of `buffer`, in place, and
    write one 96-byte outcome record per frame into `records` (§5.2). With `vrf_output`,
    accepted packets' records carry their VRF delay. The reference always runs on one
    thread; `threads` is checked only for the same errors as the compiled backend.

    Every argument is checked before the first slot is touched (TypeError for a wrong type
    or a read-only buffer, ValueError for a value out of range)."""
    view, count, _, vrf_output, mean_us, max_us = _check_batch_args(
        keys, buffer, count, replay_filter, records, threads, vrf_output, mean_us, max_us)
    stride = c.BATCH_STRIDE
    for i in range(count):
        base = i * stride
        outcome, plain = _process(keys, view[base : base + stride], replay_filter, exact=False)
        offset = length = 0
        if outcome.kind == Kind.FORWARD:
            length = len(outcome.packet)
            view[base : base + length] = outcome.packet
        elif outcome.kind in (Kind.DELIVER, Kind.REPLY):
            start = base + c.FRAME_HEADER_SIZE + FORMATS[outcome.fmt].HEADER_SIZE
            view[start : start + c.PAYLOAD_SIZE] = plain
            offset = start - base
            if outcome.kind == Kind.DELIVER:
                offset += c.INTEGRITY_SIZE + 2
            length = len(outcome.payload)
        delay = 0
        if vrf_output is not None and outcome.kind != Kind.REJECT:
            delay = delay_us_reference(vrf_output, outcome.tag, mean_us, max_us)
        pack_record(records, i, outcome, offset, length, delay)

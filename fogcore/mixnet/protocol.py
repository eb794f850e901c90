"""The mix node's receiving protocol: the framing base (`fogcore._ext._frames`, or its
pure-Python twin) glued to asyncio's read-into-your-buffer path.

`asyncio.BufferedProtocol` in the bases is what makes uvloop and asyncio call `get_buffer`
and read straight into the arena slot the base hands out.

Control frames (docs/node.md §16) arrive here through the base's `_control_frame` hook: a
PROBE is answered with a signed PROBE_ACK on the same connection, at most
`PROBE_ACK_RATE` per second (a token bucket: signing costs about 20 µs, so unlimited
probes would turn the node into an amplifier); anything else a sender has no business
sending (PROBE_ACK, DRAINING, an undecodable body) closes the connection.
"""

import asyncio
import time
from types import ModuleType

from fogcore._impl import implementation
from fogcore.mixnet import _frames_py
from fogcore.mixnet.control import PROBE, ControlError, decode_control

__all__ = ["IMPLEMENTATION", "PROBE_ACK_BURST", "PROBE_ACK_RATE", "Arena", "MixProtocol",
           "frames_module", "protocol_class"]

#: PROBE_ACKs per second and burst, per connection
PROBE_ACK_RATE = 4.0
PROBE_ACK_BURST = 4.0
#: acks are skipped (counted as limited) while this much is unsent to a peer that does
#: not read what it asked for
_MAX_UNSENT = 16384

_frames = implementation("_frames")
IMPLEMENTATION = "py" if _frames is _frames_py else "c"
Arena = _frames.Arena


def frames_module(impl: str | None = None) -> ModuleType:
    """The framing implementation: "c" (compiled), "py" (pure) or None for the default."""
    return _frames if impl is None else implementation("_frames", impl)


def _make_class(base: type) -> type:
    class MixProtocol(base, asyncio.BufferedProtocol):
        """One incoming connection of a mix node. `owner` (the node) is told about the
        connection coming and going; a rate-limit pause is lifted by a loop timer."""

        def __init__(self, arena, sizes, rate: float = 0.0, burst: float = 0.0, owner=None):
            super().__init__(arena, sizes, rate, burst)
            self.owner = owner
            self._resume_handle = None
            self._out = None
            self._probe_tokens = PROBE_ACK_BURST
            self._probe_at = time.monotonic()

        def connection_made(self, transport):
            self._out = transport
            super().connection_made(transport)
            if self.owner is not None:
                self.owner.connection_opened(self, transport)

        def _control_frame(self, body):
            owner = self.owner
            if owner is None or self._out is None:
                return
            try:
                message = decode_control(body)
            except ControlError:
                message = None
            if message is None or message.kind != PROBE:
                # Acks and DRAINING travel the other way: the peer speaks nonsense.
                owner.control_errors += 1
                self.close_now()
                return
            now = time.monotonic()
            self._probe_tokens = min(PROBE_ACK_BURST,
                                     self._probe_tokens + (now - self._probe_at) * PROBE_ACK_RATE)
            self._probe_at = now
            if self._probe_tokens < 1.0 or self._out.get_write_buffer_size() > _MAX_UNSENT:
                owner.probe_limited += 1
                return
            self._probe_tokens -= 1.0
            owner.probes_answered += 1
            self._out.write(owner.control_signer.ack(message.nonce, owner.control_state))

        def connection_lost(self, exc):
            self._out = None
            if self._resume_handle is not None:
                self._resume_handle.cancel()
                self._resume_handle = None
            super().connection_lost(exc)
            if self.owner is not None:
                self.owner.connection_closed(self)

        def _rate_limited(self, wait: float) -> None:
            # Reading stays paused until the token bucket holds a frame again.
            if self.owner is not None:
                self.owner.rate_pauses += 1
            loop = asyncio.get_running_loop()
            self._resume_handle = loop.call_later(wait, self._end_rate_pause)

        def _end_rate_pause(self) -> None:
            self._resume_handle = None
            self.resume_rate()

    return MixProtocol


_classes: dict[ModuleType, type] = {}


def protocol_class(frames: ModuleType | None = None) -> type:
    """The protocol class over a framing implementation (default: the selected one)."""
    frames = frames or _frames
    cls = _classes.get(frames)
    if cls is None:
        cls = _classes[frames] = _make_class(frames._BaseMixProtocol)
    return cls


#: `class MixProtocol(_BaseMixProtocol, asyncio.BufferedProtocol)` over the selected
#: framing implementation; `protocol_class(frames_module("py"))` gives the pure one.
MixProtocol = protocol_class()

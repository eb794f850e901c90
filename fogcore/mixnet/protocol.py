"""The mix node's receiving protocol: the framing base (`fogcore._ext._frames`, or its
pure-Python twin) glued to asyncio's read-into-your-buffer path.

`asyncio.BufferedProtocol` in the bases is what makes uvloop and asyncio call `get_buffer`
and read straight into the arena slot the base hands out.
"""

import asyncio
from types import ModuleType

from fogcore._impl import compiled
from fogcore.mixnet import _frames_py

__all__ = ["IMPLEMENTATION", "Arena", "MixProtocol", "frames_module", "protocol_class"]

_frames = compiled("_frames") or _frames_py
IMPLEMENTATION = "py" if _frames is _frames_py else "c"
Arena = _frames.Arena


def frames_module(mode: str | None = None) -> ModuleType:
    """The framing implementation: "c" (compiled), "py" (pure) or None for the default."""
    if mode is None:
        return _frames
    if mode == "py":
        return _frames_py
    module = compiled("_frames")
    if module is None:
        raise RuntimeError("fogcore._ext._frames is not available")
    return module


def _make_class(base: type) -> type:
    class MixProtocol(base, asyncio.BufferedProtocol):
        """One incoming connection of a mix node. `owner` (the node) is told about the
        connection coming and going; a rate-limit pause is lifted by a loop timer."""

        def __init__(self, arena, sizes, rate: float = 0.0, burst: float = 0.0, owner=None):
            super().__init__(arena, sizes, rate, burst)
            self.owner = owner
            self._resume_handle = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if self.owner is not None:
                self.owner.connection_opened(self, transport)

        def connection_lost(self, exc):
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

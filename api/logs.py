"""Structured logs: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time

import orjson

__all__ = ["AccessLog", "JsonFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}
# uvicorn adds a terminal-coloured copy of its message; a JSON line is not for a terminal.
_SKIPPED = _STANDARD | {"color_message"}
# A terminal control sequence (CSI ... final byte), as coloured messages carry them.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def _plain(value):
    """`value` without terminal escape sequences when it is a string that has any."""
    if isinstance(value, str) and "\x1b" in value:
        return _ANSI.sub("", value)
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON line: time, level, logger, message, the `extra` fields,
    and the exception trace when there is one (logs are for operators, not clients)."""

    _second = -1
    _stamp = ""
    _milli = -1
    _milli_stamp = ""

    def _timestamp(self, created: float) -> str:
        milli = int(created * 1000)
        if milli == self._milli:  # a busy server logs many lines per millisecond
            return self._milli_stamp
        second = milli // 1000
        if second != self._second:  # one strftime per second, not per line
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        self._milli = milli
        self._milli_stamp = f"{self._stamp}.{milli % 1000:03d}Z"
        return self._milli_stamp

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _plain(record.getMessage()),
        }
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):  # the access log passes its fields in one dict
            entry.update(fields)
        else:
            for key, value in record.__dict__.items():
                if key not in _SKIPPED and not key.startswith("_"):
                    entry[key] = _plain(value)
        if record.exc_info:
            entry["exc"] = _plain(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "info", stream=None) -> None:
    """Send fogcore's logs (and uvicorn's) as JSON lines to `stream` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("fogcore", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


class AccessLog:
    """The per-request log: one JSON line per request, in the same shape as the other
    logs, buffered and written in batches (at most every `interval` seconds or `batch`
    lines) so that a busy server spends one write call on many requests, not one each."""

    def __init__(self, stream=None, *, batch: int = 256, interval: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.batch = batch
        self.interval = interval
        self._lines: list[bytes] = []
        self._timer = None
        self._stamp = JsonFormatter()

    # What every access line starts with after its time stamp, serialised once.
    _HEAD = b'","level":"info","logger":"fogcore.api.access","msg":"request",'

    def write(self, fields: dict) -> None:
        """Queue one request's line (`fields` must be a non-empty dict)."""
        stamp = self._stamp._timestamp(time.time())
        body = orjson.dumps(fields, default=str)
        self._lines.append(b'{"ts":"' + stamp.encode() + self._HEAD + body[1:])
        if len(self._lines) >= self.batch:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Write every queued line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        data = b"\n".join(self._lines) + b"\n"
        self._lines.clear()
        buffer = getattr(self.stream, "buffer", None)
        try:
            if buffer is not None:
                self.stream.flush()  # keep order with text already written
                buffer.write(data)
                buffer.flush()
            else:
                self.stream.write(data.decode())
                self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log stream must not fail requests

"""One message, many ``/ws`` sockets: encode it once, write the same frame to each transport.

Why not ``ws.send_str`` per socket: with 10,000 learners watching one class
(benchmarks/realtime_fanout.py), a seat change cost every socket a queue wake-up,
a task for ``wait_for(queue.get())``, a ``json.dumps`` and another task for
``wait_for(send_str)``; py-spy put 60 % of the server in that machinery and the
booking that caused it waited behind. A server-to-client text frame is unmasked
(RFC 6455 section 5.1), so its bytes are the same for every socket: it is built
once per message (orjson) and written with one ``transport.write`` per socket,
synchronously, inside the broker's fan-out loop. aiohttp's own writer never
leaves half a frame in the transport between awaits (it writes header and
payload without yielding), so these whole frames cannot interleave with its
own. The hub's sockets do not negotiate permessage-deflate (see ``Hub.handle``),
so uncompressed frames are what the client expects.

A consumer that does not read is noticed by its transport's unsent bytes: over
``SLOW_CONSUMER_BYTES`` it is dropped (close code 4008), so one stuck browser
holds at most that much of the server's memory and never slows the others.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

# Unsent bytes a socket may hold before it counts as a consumer that cannot keep up:
# hundreds of ordinary messages (they are 50-300 bytes), a few large notifications.
SLOW_CONSUMER_BYTES = 256 * 1024

_FIN_TEXT = 0x81
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def encode(message: dict[str, Any]) -> bytes:
    """The JSON of a message, compact, with the values ``json.dumps(message, default=str)`` gave
    (datetimes as ``str()``: clients see the same strings as before)."""
    return orjson.dumps(message, default=str, option=_OPTIONS)


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final WebSocket text frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", _FIN_TEXT, n)
    elif n < 65536:
        header = struct.pack("!BBH", _FIN_TEXT, 126, n)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, n)
    return header + payload


class FrameCache:
    """The frame of the message being fanned out right now.

    The broker hands the same dict to every subscriber of a channel in one loop,
    so remembering the last one (by identity, holding a reference so its id is
    not reused) encodes each message once however many sockets get it."""

    __slots__ = ("_message", "_frame")

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._frame = b""

    def frame(self, message: dict[str, Any]) -> bytes:
        if message is not self._message:
            self._frame = text_frame(encode(message))
            self._message = message
        return self._frame


def write_frame(transport: Any, frame: bytes, limit: int = SLOW_CONSUMER_BYTES) -> str | None:
    """Write ``frame`` now; None when written, else why not: ``"gone"`` (the transport is
    closing) or ``"slow"`` (more than ``limit`` bytes already wait to be sent)."""
    if transport is None or transport.is_closing():
        return "gone"
    if transport.get_write_buffer_size() > limit:
        return "slow"
    transport.write(frame)
    return None

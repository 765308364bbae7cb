"""Transport-wide congestion control feedback to publishers (draft-holmer-rmcat-transport-wide-cc-extensions-01).

Browsers estimate their uplink on the *sending* side: each RTP packet carries a
transport-wide sequence number (a header extension shared by every stream of the
connection), the receiver reports when each one arrived (RTCP RTPFB FMT=15), and the
sender's estimator (Google congestion control) reads queueing delay and loss from the
arrival times. Without that feedback Chrome falls back to REMB and loss reports and
climbs to a simulcast camera's top layer only after many seconds.

The SFU terminates each peer connection, so feedback goes per publisher transport:
``TwccResponder`` notes the arrival of every packet that carries the extension (a ring
slot per packet, in C: ``arrivals.py`` / ``_arrivals.pyx``) and sends the feedback from a
timer every ``FEEDBACK_INTERVAL``, only while packets arrive. ``parse_offer``/``accept`` keep the extension and the
``transport-cc`` feedback in the descriptions we give the client: aiortc does not know
them and drops both from its answers.

``build_feedback`` and ``parse_feedback`` are pure (tested against a hand-decoded packet).
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from . import native
from .arrivals import ArrivalLog
from .simulcast import _sections
from .twcc_decode import DELTA_TICK_US as _DELTA_TICK_US
from .twcc_decode import RLE_MAX as _RLE_MAX

URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
#: how often feedback goes out while packets arrive (libwebrtc's receivers: 50-250 ms)
FEEDBACK_INTERVAL = 0.1
#: packet statuses in one feedback message: keeps it well under an MTU
MAX_STATUSES = 500
#: a gap in sequence numbers larger than this is a restart or a long blackout: feedback
#: resumes near the newest packets (the arrival ring holds 8192)
MAX_GAP = 8000

_REF_TICK_US = 64_000  # reference time unit


# ------------------------------------------------------------------ the packet


@dataclass(frozen=True)
class TwccFeedback:
    """One decoded feedback message: ``arrivals[i]`` is when ``base_seq + i`` arrived,
    in microseconds from the reference time (None: not received)."""

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    reference_time: int  # units of 64 ms
    feedback_count: int
    arrivals: tuple[Optional[int], ...]


def _chunks(symbols: list[int]) -> list[int]:
    """Packet status chunks for ``symbols`` (0 not received, 1 small delta, 2 large or
    negative): run lengths for long runs, status vectors (14 one-bit or 7 two-bit
    symbols) for mixed stretches."""
    out: list[int] = []
    i, n = 0, len(symbols)
    while i < n:
        s = symbols[i]
        run = 1
        while i + run < n and symbols[i + run] == s and run < _RLE_MAX:
            run += 1
        if run >= 14 or i + run == n:
            out.append((s << 13) | run)
            i += run
        elif max(symbols[i : i + 14]) <= 1:
            window = symbols[i : i + 14]
            chunk = 0x8000
            for k, sym in enumerate(window):
                chunk |= sym << (13 - k)
            out.append(chunk)
            i += len(window)
        elif run >= 7:
            out.append((s << 13) | run)
            i += run
        else:
            window = symbols[i : i + 7]
            chunk = 0xC000
            for k, sym in enumerate(window):
                chunk |= sym << (12 - 2 * k)
            out.append(chunk)
            i += len(window)
    return out


def build_feedback(
    sender_ssrc: int, media_ssrc: int, base_seq: int, arrivals: list[Optional[int]], feedback_count: int
) -> bytes:
    """One RTPFB FMT=15 message for ``base_seq`` onwards; ``arrivals`` in microseconds (any
    epoch), None for a packet not received. At least one must be received, and every
    delta between received packets must fit 16 bits of 250 us (callers split longer gaps)."""
    first = next(a for a in arrivals if a is not None)
    reference = first // _REF_TICK_US
    last = reference * _REF_TICK_US
    symbols: list[int] = []
    deltas = bytearray()
    for arrival in arrivals:
        if arrival is None:
            symbols.append(0)
            continue
        # from the previous packet's *quantized* time, so rounding never accumulates
        ticks = (arrival - last + _DELTA_TICK_US // 2) // _DELTA_TICK_US
        if 0 <= ticks <= 0xFF:
            symbols.append(1)
            deltas.append(ticks)
        else:
            if not -0x8000 <= ticks <= 0x7FFF:
                raise ValueError("receive delta does not fit 16 bits")
            symbols.append(2)
            deltas += struct.pack("!h", ticks)
        last += ticks * _DELTA_TICK_US
    chunks = _chunks(symbols)
    body = struct.pack(
        "!IIHHI",
        sender_ssrc,
        media_ssrc,
        base_seq & 0xFFFF,
        len(arrivals),
        ((reference & 0xFFFFFF) << 8) | (feedback_count & 0xFF),
    )
    body += struct.pack(f"!{len(chunks)}H", *chunks) + bytes(deltas)
    padding = -len(body) % 4
    if padding:  # RFC 3550 padding: the P bit, and the last byte counts the padding
        body += bytes(padding - 1) + bytes([padding])
    header = struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | 15, 205, (len(body) + 4) // 4 - 1)
    return header + body


def parse_feedback(data: bytes) -> TwccFeedback:
    """Decode one RTPFB FMT=15 message (raises ValueError when malformed): in C on the native
    path (``_twcc_decode.pyx``), else ``twcc_decode.decode_feedback``."""
    return TwccFeedback(*native.decode_feedback(data))


# ------------------------------------------------------------------ the receiver


class TwccResponder:
    """One publisher transport's feedback: arrivals noted per packet by its ``log`` (C by
    default), messages built from them on a timer while packets arrive."""

    def __init__(
        self,
        ext_id: int,
        *,
        sender_ssrc: int,
        send: Callable[[bytes], None],
        interval: float = FEEDBACK_INTERVAL,
        log_class: Optional[type[ArrivalLog]] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self.sender_ssrc = sender_ssrc
        self.feedback_sent = 0
        self._send = send
        self._interval = interval
        self._timer: Optional[asyncio.TimerHandle] = None
        self._closed = False
        # ``clock``: the kernel arrival time of the packet being handled (0.0: unknown)
        self.log = (log_class or native.Arrivals)(ext_id, self._arm, clock)
        #: called with every decrypted RTP packet of the transport: the log's own method,
        #: so the per-packet path is one call into C
        self.on_rtp: Callable[[bytes], None] = self.log.on_rtp

    def feedback(self) -> list[bytes]:
        """Messages covering everything since the last call (empty when nothing arrived)."""
        log = self.log
        if not log.pending:
            return []
        highest = log.highest
        start = log.next
        if highest - start >= MAX_GAP:
            # a very long blackout or a restarted numbering: what lies between is not
            # worth reporting packet by packet (nor still in the ring)
            start = highest - MAX_GAP + 1
            while log.arrival(start) < 0:
                start += 1
        out: list[bytes] = []
        while start <= highest:
            window = log.span(start, min(highest + 1, start + MAX_STATUSES))
            last: Optional[int] = None
            seq = start
            for arrival in window:
                if arrival is not None:
                    if last is not None and abs(arrival - last) >= 0x7FFF * _DELTA_TICK_US:
                        break  # too far from the previous one for a delta: the next message
                    last = arrival
                seq += 1
            statuses = window[: seq - start]
            while statuses and statuses[-1] is None:
                statuses.pop()  # never end on losses we may yet receive
                seq -= 1
            if last is None:
                start = highest + 1
                break
            out.append(build_feedback(self.sender_ssrc, log.media_ssrc, start, statuses, self.feedback_sent))
            self.feedback_sent += 1
            start = seq
        log.advance(start)
        return out

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        # the first arrival since the last feedback: feedback in one interval
        if self._timer is None and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._flush)

    def _flush(self) -> None:
        self._timer = None
        for message in self.feedback():
            self._send(message)
        if self.log.pending:
            self._arm()


# ------------------------------------------------------------------ SDP

_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")
_RTX = re.compile(r"^a=rtpmap:(\d+) rtx/")
_SENDING = ("a=sendonly", "a=sendrecv")


def parse_offer(sdp: str) -> dict[str, int]:
    """mid -> transport-cc extension id, for the video m-sections the client sends on
    and offers the extension for."""
    out: dict[str, int] = {}
    for section in _sections(sdp)[1:]:
        if not section[0].startswith("m=video"):
            continue
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), "")
        ext = next(
            (int(m.group(1)) for line in section if (m := _EXTMAP.match(line)) and m.group(2) == URI_TRANSPORT_CC), 0
        )
        if mid and ext and any(line.strip() in _SENDING for line in section):
            out[mid] = ext
    return out


def accept(sdp: str, offered: dict[str, int]) -> str:
    """``sdp`` (our answer or re-offer) with transport-cc on the ``offered`` m-sections: the
    header extension under the client's id and ``a=rtcp-fb:<pt> transport-cc`` for each
    payload type, so the browser numbers its packets and runs its send-side estimate."""
    if not offered:
        return sdp
    sections = _sections(sdp)
    for section in sections[1:]:
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), "")
        ext = offered.get(mid)
        fields = section[0].split(" ")
        if ext is None or not section[0].startswith("m=video") or fields[1] == "0":
            continue
        kept = [line for line in section if not (URI_TRANSPORT_CC in line or line.endswith(" transport-cc"))]
        rtx = {m.group(1) for line in section if (m := _RTX.match(line))}
        feedback = [f"a=rtcp-fb:{pt} transport-cc" for pt in fields[3:] if pt not in rtx]
        extra = [f"a=extmap:{ext} {URI_TRANSPORT_CC}", *feedback]
        section[:] = kept + extra
    return "\r\n".join(line for section in sections for line in section) + "\r\n"


def negotiated(sdp: str) -> dict[str, int]:
    """mid -> transport-cc extension id of every video m-section of ``sdp`` that carries it,
    whichever way the media goes (toward subscribers: what a client's answer accepted)."""
    out: dict[str, int] = {}
    for section in _sections(sdp)[1:]:
        if not section[0].startswith("m=video") or section[0].split(" ")[1:2] == ["0"]:
            continue
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), "")
        ext = next(
            (int(m.group(1)) for line in section if (m := _EXTMAP.match(line)) and m.group(2) == URI_TRANSPORT_CC), 0
        )
        if mid and ext:
            out[mid] = ext
    return out


def offer_to_subscriber(sdp: str, ext_id: int) -> str:
    """``sdp`` (our description) with transport-cc on every video m-section under ``ext_id``
    (the id the client chose): the client then reports the arrival of what we send it."""
    if not ext_id:
        return sdp
    mids = {}
    for section in _sections(sdp)[1:]:
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), "")
        if mid and section[0].startswith("m=video"):
            mids[mid] = ext_id
    return accept(sdp, mids)

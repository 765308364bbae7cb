"""The cheap load generator's publishing half: pre-packetized RTP replayed on the SFU's native egress.

The clips (``benchmarks/media.py``: encoded once) are packetized ONCE
(``packetize``: VP8 cut as aiortc's packetizer cuts it, Opus whole). An
``OutStream`` replays one of them with the negotiated SSRC, payload type and
header extensions (mid; abs-send-time on video; audio level on audio unless
``level`` is None, as browsers send it): per packet a 12-byte header and the
extension block are joined to the cached payload, and the publisher's
``MediaTransport`` (``sfu.transport.media_transport``) SRTP-protects it in C into its
socket's ``sendmmsg`` batch. Sequence numbers and timestamps run on across clip
loops; a PLI makes the stream jump to the clip's next keyframe; a NACK is
answered from a history (RTX when negotiated). Each video frame carries a fresh
15-bit picture id in its VP8 payload descriptor, the key of its send time for
the subscribers' latency samples (the SFU forwards payloads untouched).

``Replayer`` is one task for every publisher: each ``TICK`` it sends the frames
that became due (30 fps video split into packets, 50 pps audio, each stream at
a random phase), flushes the sockets' batches, then runs the pollers (sockets
read once per tick rather than woken for every arrival); a stream that falls more than
``MAX_LAG`` behind skips frames, as an encoder would, and counts them: a
generator that cannot keep up says so. The subscribing half and the peer
connection are ``benchmarks/replay_participant.py``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from benchmarks.media import Clip

logger = logging.getLogger(__name__)

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

#: largest VP8 payload after the 4-byte descriptor (aiortc's PACKET_MAX 1300 minus it)
VP8_CHUNK = 1296
#: frames whose send time is kept per video stream (picture id -> time), ~34 s at 30 fps
RING = 1024
#: packets kept per stream for NACKs
HISTORY = 1024
#: a stream further behind its schedule than this skips frames, as an encoder would
MAX_LAG = 0.25
#: pacing granularity: every tick sends what became due since the last one
TICK = 0.005
#: seconds between RTCP reports (SR per published stream, one RR per participant)
RTCP_INTERVAL = 1.0

NTP_EPOCH = 2208988800
_HDR = struct.Struct("!BBHII")
_join = b"".join


# ---------------------------------------------------------------- the clip, packetized once


@dataclass(frozen=True)
class PacketizedClip:
    """A clip cut into RTP payloads once: per frame, its payload chunks (VP8 without
    the descriptor, which carries the per-frame picture id) and whether it is a keyframe."""

    kind: str
    clock_rate: int
    frame_ticks: int
    period: float
    frames: list[tuple[tuple[bytes, ...], bool]]
    keyframes: list[int]

    def __post_init__(self) -> None:
        if not self.frames:
            raise TypeError("empty clip")
        if self.kind == "video" and not self.keyframes:
            raise TypeError("a video clip needs a keyframe")

    @property
    def packets_per_second(self) -> float:
        return sum(len(chunks) for chunks, _ in self.frames) / (len(self.frames) * self.period)


def packetize(clip: Clip, chunk: int = VP8_CHUNK) -> PacketizedClip:
    """Split ``clip``'s encoded frames into payloads: VP8 into ``chunk``-byte pieces, Opus whole."""
    frames: list[tuple[tuple[bytes, ...], bool]] = []
    for data, _pts, key in clip.frames:
        if clip.kind == "video":
            pieces = tuple(data[i : i + chunk] for i in range(0, len(data), chunk)) or (b"",)
        else:
            pieces = (data,)
        frames.append((pieces, key))
    keys = [i for i, (_, key) in enumerate(frames) if key]
    return PacketizedClip(
        clip.kind, clip.clock_rate, clip.frame_ticks, clip.frame_ticks / clip.clock_rate, frames, keys
    )


def vp8_descriptor(picture_id: int, start: bool) -> bytes:
    """RFC 7741 payload descriptor as aiortc writes it: X, S, partition 0, 15-bit picture id."""
    return bytes((0x90 if start else 0x80, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF))


def vp8_picture_id(payload: bytes) -> Optional[int]:
    """The 15-bit picture id of a descriptor written by ``vp8_descriptor``."""
    if len(payload) < 4 or not payload[0] & 0x80 or not payload[1] & 0x80 or not payload[2] & 0x80:
        return None
    return ((payload[2] & 0x7F) << 8) | payload[3]


def extension_block(
    ids: dict[str, int], mid: Optional[str], *, abs_send_time: bool, level: Optional[int]
) -> tuple[bytes, bytes]:
    """A one-byte-header extension block (RFC 8285) as ``(prefix, suffix)``: the packet's
    3-byte abs-send-time value goes between them (nothing when it is not negotiated)."""
    body = b""
    mid_id = ids.get(URI_MID)
    if mid and mid_id and 0 < mid_id < 15:
        raw = mid.encode()[:16]
        body += bytes([(mid_id << 4) | (len(raw) - 1)]) + raw
    level_id = ids.get(URI_AUDIO_LEVEL)
    if level is not None and level_id and 0 < level_id < 15:
        body += bytes([level_id << 4, level & 0xFF])
    abs_id = ids.get(URI_ABS_SEND_TIME) if abs_send_time else None
    size = len(body) + (4 if abs_id else 0)
    if not size:
        return b"", b""
    pad = b"\x00" * (-size & 3)
    header = b"\xbe\xde" + struct.pack("!H", (size + len(pad)) // 4)
    if abs_id and 0 < abs_id < 15:
        return header + body + bytes([(abs_id << 4) | 2]), pad
    return header + body + pad, b""


def abs_send_time_now() -> bytes:
    """abs-send-time (6.18 fixed point seconds of the NTP clock), as aiortc stamps it."""
    ntp = int((time.time() + NTP_EPOCH) * 4294967296.0)
    return ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")


# ---------------------------------------------------------------- one published stream


class OutStream:
    """One published RTP stream replayed from a packetized clip: pacing, continuous
    sequence numbers and timestamps, a keyframe on request, a history for NACKs."""

    def __init__(self, clip: PacketizedClip, *, start: int, level: Optional[int]) -> None:
        self.clip = clip
        self.video = clip.kind == "video"
        self.level = level
        self.index = start % len(clip.frames)
        self.frame_no = 0
        self.t0 = 0.0
        self.seq = random.getrandbits(16)
        self.ts0 = random.getrandbits(32)
        self.picture_id = random.getrandbits(15)
        self.ssrc = 0
        self.pt = 0
        self.rtx_ssrc = 0
        self.rtx_pt: Optional[int] = None
        self._rtx_seq = random.getrandbits(16)
        self.prefix = b""
        self.suffix = b""
        self.has_abs = False
        self.bound = False
        self.jump = False
        self.history: list[Optional[bytes]] = [None] * HISTORY
        # picture id -> (send time, clip frame index), for the subscribers' latency samples
        self.sent_pid = [-1] * RING
        self.sent_at = [0.0] * RING
        self.sent_index = [0] * RING
        self.packets = 0
        self.octets = 0
        self.frames = 0
        self.skipped = 0
        self.keyframes_requested = 0
        self.retransmitted = 0
        self.last_ts = 0
        self.lag_max = 0.0

    @property
    def due(self) -> float:
        """When the next frame is due (monotonic clock)."""
        return self.t0 + self.frame_no * self.clip.period if self.bound else float("inf")

    def bind(
        self, *, ssrc: int, pt: int, rtx_ssrc: int, rtx_pt: Optional[int], ids: dict[str, int], mid: Optional[str]
    ) -> None:
        """The negotiated parameters (again after each renegotiation)."""
        self.ssrc, self.pt, self.rtx_ssrc, self.rtx_pt = ssrc, pt, rtx_ssrc, rtx_pt
        self.has_abs = self.video and bool(ids.get(URI_ABS_SEND_TIME))
        self.prefix, self.suffix = extension_block(
            ids, mid, abs_send_time=self.video, level=None if self.video else self.level
        )
        self.bound = True

    def start(self, t0: float) -> None:
        self.t0 = t0
        self.frame_no = 0

    def request_keyframe(self) -> None:
        self.keyframes_requested += 1
        self.jump = True

    def emit(self, now: float, abs3: bytes, send: Callable[[bytes], None]) -> int:
        """Send the frames due by ``now``; returns the number of packets."""
        period = self.clip.period
        due = self.t0 + self.frame_no * period
        if due > now:
            return 0
        lag = now - due
        if lag > self.lag_max:
            self.lag_max = lag
        if lag > MAX_LAG:
            skip = int(lag / period)
            self.skipped += skip
            self.frame_no += skip
            self.index = (self.index + skip) % len(self.clip.frames)
            due += skip * period
        sent = 0
        abs3 = abs3 if self.has_abs else b""
        while due <= now:
            sent += self._frame(abs3, send)
            self.frame_no += 1
            due += period
        return sent

    def retransmit(self, seqs: list[int], send: Callable[[bytes], None]) -> int:
        """Answer a NACK from the history: RTX (RFC 4588) when negotiated, else the packet again."""
        sent = 0
        for seq in seqs:
            packet = self.history[seq & (HISTORY - 1)]
            if packet is None or ((packet[2] << 8) | packet[3]) != seq & 0xFFFF:
                continue
            if self.rtx_pt is not None and self.rtx_ssrc:
                header_len = 12
                if packet[0] & 0x10:
                    header_len = 16 + 4 * ((packet[14] << 8) | packet[15])
                rtx_seq = self._rtx_seq
                self._rtx_seq = (rtx_seq + 1) & 0xFFFF
                packet = _join(
                    (
                        _HDR.pack(
                            packet[0],
                            (packet[1] & 0x80) | self.rtx_pt,
                            rtx_seq,
                            int.from_bytes(packet[4:8], "big"),
                            self.rtx_ssrc,
                        ),
                        packet[12:header_len],
                        packet[2:4],
                        packet[header_len:],
                    )
                )
            send(packet)
            sent += 1
        self.retransmitted += sent
        return sent

    def _frame(self, abs3: bytes, send: Callable[[bytes], None]) -> int:
        clip = self.clip
        if self.jump:
            self.jump = False
            if self.video:
                nxt = next((k for k in clip.keyframes if k >= self.index), clip.keyframes[0])
                self.index = nxt
        chunks, _key = clip.frames[self.index]
        ts = (self.ts0 + self.frame_no * clip.frame_ticks) & 0xFFFFFFFF
        pack = _HDR.pack
        pt, ssrc, prefix, suffix, history = self.pt, self.ssrc, self.prefix, self.suffix, self.history
        b0 = 0x90 if prefix else 0x80
        seq = self.seq
        octets = 0
        if self.video:
            pid = self.picture_id
            self.picture_id = (pid + 1) & 0x7FFF
            k = pid & (RING - 1)
            self.sent_pid[k] = pid
            # queued now, sent with the tick's sendmmsg: the latency measured includes that wait (< 1 ms)
            self.sent_at[k] = time.monotonic()
            self.sent_index[k] = self.index
            first, rest = vp8_descriptor(pid, True), vp8_descriptor(pid, False)
            last = len(chunks) - 1
            for i, chunk in enumerate(chunks):
                packet = _join(
                    (
                        pack(b0, (0x80 if i == last else 0) | pt, seq, ts, ssrc),
                        prefix,
                        abs3,
                        suffix,
                        rest if i else first,
                        chunk,
                    )
                )
                history[seq & (HISTORY - 1)] = packet
                send(packet)
                octets += len(chunk) + 4
                seq = (seq + 1) & 0xFFFF
        else:
            for chunk in chunks:
                # aiortc marks the last packet of every frame, audio included
                packet = _join((pack(b0, 0x80 | pt, seq, ts, ssrc), prefix, abs3, suffix, chunk))
                history[seq & (HISTORY - 1)] = packet
                send(packet)
                octets += len(chunk)
                seq = (seq + 1) & 0xFFFF
        n = (seq - self.seq) & 0xFFFF
        self.seq = seq
        self.last_ts = ts
        self.packets += n
        self.octets += octets
        self.frames += 1
        self.index += 1
        if self.index >= len(clip.frames):
            self.index = 0
        return n


# ---------------------------------------------------------------- pacing


class Replayer:
    """Sends every publisher's due frames each tick; each socket's batch leaves in ``sendmmsg`` calls
    at the end of the tick. Publishers are duck-typed: ``out`` (kind -> OutStream), ``writer``
    (its ``MediaTransport``), ``socket`` (its ``MediaSocket``), ``reports(now)`` and ``next_rtcp``."""

    def __init__(self, clips: dict[str, Clip], *, audio_level: bool = True) -> None:
        self.clips = {kind: packetize(clip) for kind, clip in clips.items()}
        self.audio_level = audio_level
        self.publishers: list[Any] = []
        #: called after each tick's sends: sockets read once per tick instead of on every arrival
        self.pollers: list[Callable[[], None]] = []
        self.measuring = False
        #: how late frames left (ms behind their schedule) and how long ticks took, while measuring
        self.lag_ms: list[float] = []
        self.tick_ms: list[float] = []
        #: CPU time of this thread spent sending (building, protecting, sendmmsg incl. loopback delivery)
        self.send_cpu = 0.0
        self._task: Optional[asyncio.Task[None]] = None
        self.exited = asyncio.Event()

    def start(self, publisher: Any, stream: OutStream) -> None:
        """Start ``stream`` (its first frame at a random phase within one frame period)."""
        stream.start(time.monotonic() + random.random() * stream.clip.period)
        if publisher not in self.publishers:
            self.publishers.append(publisher)
            publisher.next_rtcp = time.monotonic() + random.random() * RTCP_INTERVAL
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def poll(self, reader: Callable[[], None]) -> None:
        """Call ``reader`` every tick from now on."""
        self.pollers.append(reader)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def counters(self) -> dict[str, float]:
        streams = [s for p in self.publishers for s in p.out.values()]
        return {
            "packets_sent": sum(s.packets for s in streams),
            "frames_sent": sum(s.frames for s in streams),
            "frames_skipped": sum(s.skipped for s in streams),
            "keyframes_requested": sum(s.keyframes_requested for s in streams),
            "retransmitted": sum(s.retransmitted for s in streams),
            "send_errors": sum(p.writer.errors for p in self.publishers if p.writer is not None),
            "send_cpu": self.send_cpu,
        }

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await self.exited.wait()

    async def _run(self) -> None:
        try:
            next_tick = time.monotonic()
            while True:
                self._tick()
                for reader in self.pollers:
                    reader()
                next_tick += TICK
                delay = next_tick - time.monotonic()
                if delay < -TICK:
                    next_tick = time.monotonic()  # behind: no catch-up burst of ticks
                await asyncio.sleep(max(delay, 0))
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - a load generator that dies silently measures nothing
            logger.exception("replayer failed")
        finally:
            self.exited.set()

    def _tick(self) -> None:
        cpu = time.thread_time()
        now = time.monotonic()
        abs3 = abs_send_time_now()
        measuring = self.measuring
        lag = self.lag_ms
        sockets = {}
        for p in self.publishers:
            if p.next_due > now and p.next_rtcp > now:
                continue
            writer = p.writer
            if writer is None:
                continue
            send = writer.send
            next_due = float("inf")
            for stream in p.out.values():
                due = stream.due
                if due <= now:
                    if measuring:
                        lag.append((now - due) * 1000)
                    if stream.emit(now, abs3, send):
                        sockets[id(p.socket)] = p.socket
                    due = stream.due
                if due < next_due:
                    next_due = due
            p.next_due = next_due
            if p.t_first_video_sent is None and p.out["video"].frames:
                p.t_first_video_sent = now
            if now >= p.next_rtcp:
                p.next_rtcp = now + RTCP_INTERVAL * (0.5 + random.random())
                p.reports(now)
        for sock in sockets.values():
            sock.flush()  # what is left of this tick's batch leaves now
        if measuring:
            self.tick_ms.append((time.monotonic() - now) * 1000)
        self.send_cpu += time.thread_time() - cpu

"""The hot path: decrypted RTP in, rewritten RTP out, no codecs anywhere.

``RtpForwarder`` (one per producer) parses each ingress packet once: the
fixed header, the one header extension it cares about (audio level), the
padding, an RTX wrapper, and whether the payload starts a keyframe. It
then hands the pieces to every ``RtpRewriter`` (one per consumer), which
writes a new header (its own SSRC, sequence number, timestamp and payload
type), a new header-extension block in the subscriber's negotiated ids
(with the subscriber's own MID), keeps the packet for NACKs and sends it.

Everything per packet is struct packing and byte concatenation; all
per-consumer constants are precomputed when the consumer is configured.
"""

from __future__ import annotations

import logging
import random
import struct
from collections.abc import Callable
from typing import Optional, Protocol

from . import red
from .keyframes import h264_is_keyframe as h264_is_keyframe
from .keyframes import keyframe_detector as keyframe_detector
from .keyframes import vp8_is_keyframe as vp8_is_keyframe
from .header_extensions import URI_ABS_SEND_TIME as URI_ABS_SEND_TIME
from .header_extensions import URI_AUDIO_LEVEL as URI_AUDIO_LEVEL
from .header_extensions import URI_MID as URI_MID
from .header_extensions import URI_TRANSPORT_CC as URI_TRANSPORT_CC
from .header_extensions import ExtensionWriter as ExtensionWriter
from .header_extensions import abs_send_time as abs_send_time
from .header_extensions import find_extension as find_extension
from .header_extensions import parse_extensions as parse_extensions
from .levels import LevelWindow
from .sendlog import SendLog, restamp
from .upstream_nack import MAX_AGE, MAX_GAP, UpstreamNack
from .vp8 import Vp8Numbering

logger = logging.getLogger(__name__)


#: a step in a rewriter's output sequence numbers larger than this (either way) is counted as
#: a jump: upstream loss and reordering stay far below it
JUMP = 64
#: a packet further ahead than this while a rewriter is synced is dropped: a real gap over
#: ``upstream_nack.MAX_GAP`` restarts the subscriber on a keyframe before it gets here, and
#: one sent would push libsrtp's 1,024-packet window past the stream's own numbers
AHEAD_LIMIT = 1000
#: that many such packets in a row: the stream did move on; restart on its next keyframe
STRAYS_BEFORE_RESYNC = 3

_HDR = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")
_HH = struct.Struct("!HH")
_SEQ = struct.Struct("!H")
_U32 = struct.Struct("!I")
_join = b"".join

SendFunc = Callable[[bytes], None]


class RtpSink(Protocol):
    """Where a rewriter's packets go: a subscriber's ``MediaTransport``, a recorder's tap, a test's list.

    A sink that also has a ``batch_sink`` attribute (``MediaTransport``) offers the native socket
    batch behind it, which the C rewriter writes into without a Python call while it is not None."""

    def send(self, packet: bytes) -> None: ...


class CallSink:
    """An ``RtpSink`` over a plain function (a recorder's tap, a test's ``list.append``)."""

    __slots__ = ("send",)

    def __init__(self, send: SendFunc) -> None:
        self.send = send


class PacketSink(Protocol):
    """What a forwarder hands each parsed packet to: a rewriter, or a layer switch's tap."""

    def forward(
        self,
        b1: int,
        pt: int,
        seq: int,
        ts: int,
        payload: bytes,
        abs3: Optional[bytes],
        level: Optional[bytes],
        keyframe: bool,
        now: float,
    ) -> None: ...

    def resync(self) -> None: ...


# ---------------------------------------------------------------- egress


def retransmit_from_history(rw: RtpRewriter, seqs: list[int]) -> int:
    """Resend what ``rw`` (the Python or the C rewriter: the same attributes) still holds of
    ``seqs``, as RTX (RFC 4588: the original sequence number leads the payload) when the
    subscriber negotiated it; returns the number of packets resent."""
    history = rw.history
    sink = rw.sink
    if history is None or sink is None:
        return 0
    sent = 0
    for seq in seqs:
        packet = history[seq & rw.mask]
        if packet is None or _SEQ.unpack_from(packet, 2)[0] != seq & 0xFFFF:
            continue
        if rw.rtx_pt is not None:
            header_len = 12
            if packet[0] & 0x10:
                header_len = 16 + 4 * _SEQ.unpack_from(packet, 14)[0]
            rtx_seq = rw._rtx_seq
            rw._rtx_seq = (rtx_seq + 1) & 0xFFFF
            header = _HDR.pack(
                packet[0], (packet[1] & 0x80) | rw.rtx_pt, rtx_seq, _U32.unpack_from(packet, 4)[0], rw.rtx_ssrc
            )
            packet = header + packet[12:header_len] + packet[2:4] + packet[header_len:]
            log = rw.send_log
            if log is not None and rw.ext.twcc_id:
                packet = restamp(packet, rw.ext.twcc_id, log)
        # without RTX the packet goes again on its own SSRC and sequence number, so SRTP protects it
        # under the same index, hence the same AES-GCM nonce: it must be the very bytes sent before
        # (libsrtp's allow_repeat_tx), never a copy with a new transport-wide number (two messages
        # under one nonce would give away the authentication key)
        sink.send(packet)
        sent += 1
    rw.retransmitted += sent
    return sent


class RtpRewriter:
    """Per-consumer rewrite state: offsets, payload types, extensions, history."""

    def __init__(
        self,
        *,
        ssrc: int,
        rtx_ssrc: int,
        clock_rate: int,
        needs_keyframe: bool,
        history_size: int,
        request_keyframe: Callable[[], None],
    ) -> None:
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.clock_rate = clock_rate
        self.needs_keyframe = needs_keyframe
        self.request_keyframe = request_keyframe
        self.pt_map: dict[int, int] = {}
        self.rtx_pt: Optional[int] = None
        #: the publisher's Opus RED payload type (-1: none); ``red_keep``: the subscriber takes
        #: RED (block types mapped), else it gets the primary Opus frame alone
        self.red_pt = -1
        self.red_keep = False
        self.ext = ExtensionWriter({}, None)
        self.sink: Optional[RtpSink] = None
        #: the subscriber transport's transport-wide numbering (None: no transport-cc toward it)
        self.send_log: Optional[SendLog] = None
        self.mask = history_size - 1
        self.history: Optional[list[Optional[bytes]]] = [None] * history_size if history_size else None
        # sequence/timestamp continuity
        self.synced = False
        self.seq_off = 0
        self.ts_off = 0
        self.last_seq: Optional[int] = None
        self.last_ts = 0
        self.last_at = 0.0
        self._guard_seq: Optional[int] = None
        self._guard_left = 0
        self._rtx_seq = random.randint(0, 0x7FFF)
        #: the publisher's VP8 payload types: their picture ids continue across restarts
        self.vp8_pts: frozenset[int] = frozenset()
        self._vp8 = Vp8Numbering()
        # counters
        self.packets = 0
        self.octets = 0
        self.dropped = 0
        self.retransmitted = 0
        #: output sequence numbers that did not follow the last one (a step over JUMP either
        #: way): a subscriber's SRTP stalls on one, so a frozen tile is traced back to it
        self.jumps = 0
        self.last_jump: Optional[tuple[int, int, int, int]] = None  # (last out, out, in, pt out)
        self.first_jump: Optional[tuple[int, int, int, int]] = None
        self._strays = 0  # packets in a row dropped as far ahead (see AHEAD_LIMIT)

    def configure(
        self,
        *,
        pt_map: dict[int, int],
        rtx_pt: Optional[int],
        ext: ExtensionWriter,
        sink: RtpSink,
        red_pt: Optional[int] = None,
        red_keep: bool = False,
        vp8_pts: frozenset[int] = frozenset(),
    ) -> None:
        self.pt_map = pt_map
        self.rtx_pt = rtx_pt
        self.vp8_pts = vp8_pts
        self.red_pt = -1 if red_pt is None else red_pt
        self.red_keep = red_keep
        self.ext = ext
        self.sink = sink

    def resync(self) -> None:
        """Start again on the next keyframe, continuing sequence numbers/timestamps."""
        self.synced = False

    def forward(
        self,
        b1: int,
        pt: int,
        seq: int,
        ts: int,
        payload: bytes,
        abs3: Optional[bytes],
        level: Optional[bytes],
        keyframe: bool,
        now: float,
    ) -> None:
        if pt == self.red_pt:
            if self.red_keep:
                payload = red.retag(payload, self.pt_map)
            else:
                found = red.primary(payload)
                if found is None:
                    self.dropped += 1
                    return
                pt = found[0]
                payload = payload[found[1] :]
        sink = self.sink
        out_pt = self.pt_map.get(pt)
        if sink is None or out_pt is None:
            self.dropped += 1
            return
        if not self.synced:
            if self.needs_keyframe and not keyframe:
                self.dropped += 1
                self.request_keyframe()
                return
            self._rebase(seq, ts, now)
        elif self._guard_seq is not None:
            # drop reordered packets older than the sync point
            if (seq - self._guard_seq) & 0xFFFF >= 0x8000:
                self.dropped += 1
                return
            self._guard_left -= 1
            if self._guard_left <= 0:
                self._guard_seq = None
        seq_out = (seq + self.seq_off) & 0xFFFF
        last = self.last_seq
        if last is not None and AHEAD_LIMIT < (seq_out - last) & 0xFFFF < 0x8000:
            # far ahead of the stream while synced: not this stream's numbering (a real gap
            # restarts the subscriber on a keyframe first). Sent, it would move the
            # subscriber's SRTP window ahead and every later packet would be refused as too
            # old; dropped, and after a few in a row the subscriber restarts on a keyframe
            self.dropped += 1
            self.jumps += 1
            self.last_jump = (last, seq_out, seq, out_pt)
            if self.first_jump is None:
                self.first_jump = self.last_jump
            self._strays += 1
            if self._strays >= STRAYS_BEFORE_RESYNC:
                self._strays = 0
                self.resync()
                self.request_keyframe()
            return
        self._strays = 0
        ts_out = (ts + self.ts_off) & 0xFFFFFFFF
        if pt in self.vp8_pts:
            payload = self._vp8.rewrite(payload)
        ext = self.ext
        log = self.send_log
        # one allocation for the packet: header, extension block and payload joined once
        if (
            log is not None
            and ext.twcc_prefix is not None
            and level is None
            and (abs3 is not None or ext.abs_prefix is None)
        ):
            # toward a transport-cc subscriber: the transport-wide number last in the block, sent
            # at ``now`` (it leaves in this loop turn's batch; no clock read per egress packet)
            if ext.abs_prefix is not None:
                n = 18 + len(ext.twcc_prefix) + len(ext.twcc_pad) + len(payload)
                value = _join((abs3, ext.twcc_hdr, _SEQ.pack(log.record(n, int(now * 1e6)))))  # type: ignore[arg-type]
            else:
                n = 14 + len(ext.twcc_prefix) + len(ext.twcc_pad) + len(payload)
                value = _SEQ.pack(log.record(n, int(now * 1e6)))
            packet = _join(
                (
                    _HDR.pack(0x90, (b1 & 0x80) | out_pt, seq_out, ts_out, self.ssrc),
                    ext.twcc_prefix,
                    value,
                    ext.twcc_pad,
                    payload,
                )
            )
        elif abs3 is not None and level is None and ext.abs_prefix is not None:
            packet = _join(
                (
                    _HDR.pack(0x90, (b1 & 0x80) | out_pt, seq_out, ts_out, self.ssrc),
                    ext.abs_prefix,
                    abs3,
                    ext.abs_pad,
                    payload,
                )
            )
        elif abs3 is None and level is not None and ext.level_prefix is not None and len(level) == 1:
            packet = _join(
                (
                    _HDR.pack(0x90, (b1 & 0x80) | out_pt, seq_out, ts_out, self.ssrc),
                    ext.level_prefix,
                    level,
                    ext.level_pad,
                    payload,
                )
            )
        else:
            if log is not None and ext.twcc_hdr is not None:
                size = 12 + len(ext.block(abs3, level, 0)) + len(payload)
                block = ext.block(abs3, level, log.record(size, int(now * 1e6)))
            else:
                block = ext.block(abs3, level)
            packet = _join(
                (_HDR.pack(0x90 if block else 0x80, (b1 & 0x80) | out_pt, seq_out, ts_out, self.ssrc), block, payload)
            )
        history = self.history
        if history is not None:
            history[seq_out & self.mask] = packet
        last = self.last_seq
        if last is not None and JUMP < (seq_out - last) & 0xFFFF < 0x10000 - JUMP:
            self.jumps += 1
            self.last_jump = (last, seq_out, (seq_out - self.seq_off) & 0xFFFF, out_pt)
            if self.first_jump is None:
                self.first_jump = self.last_jump
        if last is None or (seq_out - last) & 0xFFFF < 0x8000:
            self.last_seq = seq_out
            self.last_ts = ts_out
            self.last_at = now
        self.packets += 1
        self.octets += len(payload)
        sink.send(packet)

    def retransmit(self, seqs: list[int]) -> int:
        """Answer a NACK from the history; returns the number of packets resent."""
        return retransmit_from_history(self, seqs)

    def _rebase(self, seq: int, ts: int, now: float) -> None:
        if self.last_seq is None:
            self.seq_off = (random.randint(0, 0x7FFF) - seq) & 0xFFFF
            self.ts_off = (random.getrandbits(32) - ts) & 0xFFFFFFFF
        else:
            # continue where this consumer stopped, advancing the timestamp by
            # the wall time elapsed so the receiver's clock recovery stays sane
            elapsed = max(now - self.last_at, 0.0)
            step = max(1, int(elapsed * self.clock_rate))
            self.seq_off = (self.last_seq + 1 - seq) & 0xFFFF
            self.ts_off = (self.last_ts + step - ts) & 0xFFFFFFFF
        self.synced = True
        self._vp8.restart = True
        self._guard_seq = seq
        self._guard_left = 512


# ---------------------------------------------------------------- ingress


class RtpForwarder:
    """Per-producer ingress: parse once, fan out to every rewriter."""

    def __init__(self, *, producer_id: str, kind: str, clock: Callable[[], float]) -> None:
        self.producer_id = producer_id
        self.kind = kind
        self.clock = clock
        #: every consumer's rewriter (or its simulcast layer tap): ``forward`` per packet
        self.rewriters: list[PacketSink] = []
        self.taps: list[Callable[[str, str, bytes], None]] = []
        self.paused = False
        #: payload type -> keyframe detector (None: every packet is a sync point)
        self.detectors: dict[int, Optional[Callable[[bytes], bool]]] = {}
        #: RTX payload type -> the payload type it repairs
        self.rtx_apt: dict[int, int] = {}
        self.level_id = 0
        #: voice activity from the audio-level extension, taken by the speaker detector
        self.levels = LevelWindow()
        #: called per packet with (level byte, timestamp) too, when set (tests, tools)
        self.on_level: Optional[Callable[[int, int], None]] = None
        #: called with the payload of each keyframe (a simulcast layer learns its size)
        self.on_keyframe: Optional[Callable[[bytes], None]] = None
        #: asks the publisher again for packets that never arrived (video)
        self.nack: Optional[UpstreamNack] = None
        #: called before a packet that follows a hole no NACK can fill (a network
        #: blackout, a publisher restart): the subscribers restart on a keyframe
        self.on_gap: Optional[Callable[[], None]] = None
        # counters
        self.packets = 0
        self.octets = 0
        self.media_octets = 0
        self.media_packets = 0
        #: media packets with the marker bit: the frames the publisher sent (video)
        self.frames = 0
        self.discarded = 0
        self.last_seq = -1
        self.cycles = 0
        self.base_seq = -1
        self.last_arrival = 0.0

    def on_rtp(self, data: bytes) -> None:
        n = len(data)
        if n < 12:
            self.discarded += 1
            return
        b0 = data[0]
        b1 = data[1]
        pt = b1 & 0x7F
        seq, ts, _ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        off = 12 + (b0 & 0x0F) * 4
        level = None
        if b0 & 0x10:
            if off + 4 > n:
                self.discarded += 1
                return
            profile, words = _HH.unpack_from(data, off)
            start = off + 4
            off = start + 4 * words
            if self.level_id and off <= n:
                level = find_extension(data, start, off, profile, self.level_id)
        end = n
        if b0 & 0x20:
            end -= data[-1]
        apt = self.rtx_apt.get(pt)
        if apt is not None:
            # RTX (RFC 4588): the original sequence number leads the payload
            if end - off < 3:
                return  # padding-only probe
            seq = _SEQ.unpack_from(data, off)[0]
            off += 2
            pt = apt
            if self.nack is not None:
                self.nack.arrived(seq)
        if end <= off:
            self.discarded += 1  # padding only
            return
        self.packets += 1
        self.octets += n
        now = self.clock()
        stalled = now - self.last_arrival > MAX_AGE
        self.last_arrival = now
        if apt is None:
            # retransmissions (and the RTX "probes" browsers send to test the link) are
            # not the stream's own rate: the layer choice compares this one
            self.media_octets += n
            self.media_packets += 1
            if b1 & 0x80:
                self.frames += 1
            self._track_seq(seq, stalled)
        if level is not None:
            self.levels.add(level[0], ts)
            if self.on_level is not None:
                self.on_level(level[0], ts)
        if self.paused:
            return
        for tap in self.taps:
            tap(self.producer_id, self.kind, data)
        rewriters = self.rewriters
        if not rewriters:
            return
        payload = data[off:end]
        detector = self.detectors.get(pt)
        keyframe = detector(payload) if detector is not None else True
        if keyframe and self.on_keyframe is not None and detector is not None:
            self.on_keyframe(payload)
        abs3 = abs_send_time(now) if self.kind == "video" else None
        for rewriter in rewriters:
            rewriter.forward(b1, pt, seq, ts, payload, abs3, level, keyframe, now)

    def take_levels(self) -> tuple[float, float]:
        """Seconds of voiced and of all audio since the last call (``LevelWindow.take``)."""
        return self.levels.take()

    def _track_seq(self, seq: int, stalled: bool = False) -> None:
        # highest sequence number with wrap cycles, for receiver reports; ``stalled``:
        # nothing arrived for longer than a NACK is worth (what is missing is too old)
        if self.last_seq < 0:
            self.base_seq = seq
            self.last_seq = seq
            return
        delta = (seq - self.last_seq) & 0xFFFF
        if delta < 0x8000:
            if delta > 1 and (delta > MAX_GAP or stalled):
                if self.on_gap is not None:
                    self.on_gap()
            elif delta > 1 and self.nack is not None:
                last = self.last_seq
                self.nack.missing((last + i) & 0xFFFF for i in range(1, delta))
            if seq < self.last_seq:
                self.cycles += 0x10000
            self.last_seq = seq
        elif self.nack is not None:
            self.nack.late(seq)  # late, out of order: no need to ask for it any more

    @property
    def highest_sequence(self) -> int:
        return self.cycles + max(self.last_seq, 0)

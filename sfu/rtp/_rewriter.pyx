# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""``RtpRewriter`` in C: the per-consumer half of the hot path.

The same class as ``sfu.rtp.forwarding.RtpRewriter`` (same constructor, attributes,
``configure`` / ``resync`` / ``forward`` / ``retransmit``, same packets out; the
tests run both), with the header, the extension block and the payload written
into one new packet by ``memcpy``, and, when the consumer's sink is a media transport
on our own socket (it offers a ``batch_sink``), the packet handed straight to that
socket's ``BatchSink`` (SRTP in place, ``sendmmsg`` at the end of the turn) without a
Python call in between.
"""

import random

from libc.string cimport memcpy
from libc.stdint cimport int64_t
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE

from sfu.transport._fastio cimport BatchSink
from sfu.rtp._sendlog cimport NativeSendLog

from sfu.rtp.forwarding import retransmit_from_history

cdef enum:
    JUMP = 64  # sfu.rtp.forwarding.JUMP
    AHEAD_LIMIT = 1000  # sfu.rtp.forwarding.AHEAD_LIMIT
    STRAYS_BEFORE_RESYNC = 3


cdef inline void _put16(char *p, unsigned int v) noexcept:
    p[0] = <char>((v >> 8) & 0xFF)
    p[1] = <char>(v & 0xFF)


cdef inline void _put32(char *p, unsigned int v) noexcept:
    p[0] = <char>((v >> 24) & 0xFF)
    p[1] = <char>((v >> 16) & 0xFF)
    p[2] = <char>((v >> 8) & 0xFF)
    p[3] = <char>(v & 0xFF)


cdef inline Py_ssize_t _red_primary(const unsigned char *p, Py_ssize_t n, int *pt) noexcept:
    """``sfu.rtp.red.primary`` on a pointer: the primary block's offset (its type in ``pt``),
    -1 when malformed or empty (RFC 2198 section 3)."""
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t skip = 0
    while True:
        if i >= n:
            return -1
        if not p[i] & 0x80:
            pt[0] = p[i] & 0x7F
            return i + 1 + skip if i + 1 + skip < n else -1
        if i + 4 > n:
            return -1
        skip += ((p[i + 2] & 0x03) << 8) | p[i + 3]
        i += 4


cdef class NativeRewriter:
    """Per-consumer rewrite state: offsets, payload types, extensions, history."""

    def __init__(self, *, ssrc, rtx_ssrc, clock_rate, needs_keyframe, history_size, request_keyframe):
        from sfu.rtp.header_extensions import ExtensionWriter

        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.clock_rate = clock_rate
        self.needs_keyframe = needs_keyframe
        self.request_keyframe = request_keyframe
        self.pt_map = {}
        self.rtx_pt = None
        self.red_pt = -1
        self.red_keep = False
        self.ext = ExtensionWriter({}, None)
        self.sink = None
        self._send_log = None
        self.mask = history_size - 1 if history_size else 0
        self.history = [None] * history_size if history_size else None
        self.synced = False
        self.seq_off = 0
        self.ts_off = 0
        self._last_seq = -1
        self.last_ts = 0
        self.last_at = 0.0
        self._guard = -1
        self._guard_left = 0
        self._rtx_seq = random.randint(0, 0x7FFF)
        self.vp8_pts = frozenset()
        for i in range(128):
            self._vp8[i] = 0
        self._renumber = False
        self._vp8_restart = True
        self._pid_off = 0
        self._tl0_off = 0
        self._last_pid = -1
        self._last_tl0 = -1
        self.packets = 0
        self.octets = 0
        self.dropped = 0
        self.retransmitted = 0
        self.jumps = 0
        self.last_jump = None
        self.first_jump = None
        self._strays = 0

    # ------------------------------------------------------------ attributes as in Python

    @property
    def ext(self):
        return self._ext

    @ext.setter
    def ext(self, value):
        self._ext = value
        self._abs_prefix = value.abs_prefix
        self._abs_pad = value.abs_pad
        self._level_prefix = value.level_prefix
        self._level_pad = value.level_pad
        self._twcc_prefix = value.twcc_prefix
        self._twcc_pad = value.twcc_pad
        self._twcc_byte = value.twcc_hdr[0] if value.twcc_hdr is not None else 0

    @property
    def pt_map(self):
        return self._pt_map

    @pt_map.setter
    def pt_map(self, value):
        # kept as C arrays too: a dict lookup per egress packet was 4 % of the SFU's loop (py-spy, 5x5)
        cdef int i
        self._pt_map = value
        for i in range(128):
            out = value.get(i)
            self._pt_out[i] = -1 if out is None else (<int>out & 0x7F)
            self._red_map[i] = <unsigned char>(value.get(i, i) & 0x7F)

    @property
    def send_log(self):
        return self._send_log

    @send_log.setter
    def send_log(self, value):
        self._send_log = value

    @property
    def sink(self):
        return self._sink

    @sink.setter
    def sink(self, value):
        self._sink = value
        # a sink with a native batch behind it (MediaTransport): asked per packet, because the
        # batch comes and goes with the transport's DTLS connection
        self._batched = value if value is not None and hasattr(value, "batch_sink") else None

    @property
    def last_seq(self):
        return None if self._last_seq < 0 else self._last_seq

    @last_seq.setter
    def last_seq(self, value):
        self._last_seq = -1 if value is None else value

    @property
    def _guard_seq(self):
        return None if self._guard < 0 else self._guard

    @_guard_seq.setter
    def _guard_seq(self, value):
        self._guard = -1 if value is None else value

    def configure(self, *, pt_map, rtx_pt, ext, sink, red_pt=None, red_keep=False, vp8_pts=frozenset()):
        cdef int i
        self.pt_map = pt_map
        self.rtx_pt = rtx_pt
        self.red_pt = -1 if red_pt is None else red_pt
        self.red_keep = red_keep
        self.vp8_pts = vp8_pts
        for i in range(128):
            self._vp8[i] = 1 if i in vp8_pts else 0
        self.ext = ext
        self.sink = sink

    def resync(self):
        """Start again on the next keyframe, continuing sequence numbers/timestamps."""
        self.synced = False

    # ------------------------------------------------------------ per packet

    def forward(self, int b1, int pt, unsigned int seq, unsigned int ts, bytes payload, abs3, level,
                bint keyframe, double now):
        self.fan_out(b1, pt, seq, ts, payload, abs3, level, keyframe, now)

    cdef int fan_out(self, int b1, int pt, unsigned int seq, unsigned int ts, bytes payload, object abs3,
                     object level, bint keyframe, double now) except -1:
        """``forward`` without the Python call: what ``NativeForwarder`` calls per consumer."""
        cdef bytes prefix
        cdef bytes value
        cdef bytes pad
        cdef Py_ssize_t plen, vlen, padlen, n, off
        cdef unsigned int seq_out, ts_out
        cdef char *p
        cdef Py_ssize_t poff = 0
        cdef Py_ssize_t body
        cdef bint retag = False
        cdef int block_pt = 0
        cdef int out_pt
        if pt == self.red_pt:
            if self.red_keep:
                retag = True
            else:
                poff = _red_primary(<const unsigned char *>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), &block_pt)
                if poff < 0:
                    self.dropped += 1
                    return 0
                pt = block_pt
        body = PyBytes_GET_SIZE(payload) - poff
        sink = self._sink
        out_pt = self._pt_out[pt & 0x7F]
        if sink is None or out_pt < 0:
            self.dropped += 1
            return 0
        self._renumber = self._vp8[pt & 0x7F]
        if not self.synced:
            if self.needs_keyframe and not keyframe:
                self.dropped += 1
                self.request_keyframe()
                return 0
            self._rebase(seq, ts, now)
        elif self._guard >= 0:
            # drop reordered packets older than the sync point
            if ((seq - <unsigned int>self._guard) & 0xFFFF) >= 0x8000:
                self.dropped += 1
                return 0
            self._guard_left -= 1
            if self._guard_left <= 0:
                self._guard = -1
        seq_out = (seq + self.seq_off) & 0xFFFF
        if self._last_seq >= 0 and AHEAD_LIMIT < ((seq_out - <unsigned int>self._last_seq) & 0xFFFF) < 0x8000:
            # see RtpRewriter.forward: far ahead while synced is not this stream's numbering
            self.dropped += 1
            self.jumps += 1
            self.last_jump = (self._last_seq, seq_out, seq, out_pt)
            if self.first_jump is None:
                self.first_jump = self.last_jump
            self._strays += 1
            if self._strays >= STRAYS_BEFORE_RESYNC:
                self._strays = 0
                self.synced = False
                self.request_keyframe()
            return 0
        self._strays = 0
        # unsigned arithmetic wraps at 2**32 by itself: a "& 0xFFFFFFFF" here made Cython box the sum
        # into a Python int per forwarded packet (the literal does not fit a C int; 5 % of the loop)
        ts_out = <unsigned int>(ts + self.ts_off)
        prefix = None
        log = self._send_log
        if (log is not None and self._twcc_prefix is not None and level is None
                and (self._abs_prefix is None or (abs3 is not None and PyBytes_GET_SIZE(abs3) == 3))):
            # toward a transport-cc subscriber: the transport-wide number last in the block
            return self._send_twcc(b1, out_pt, seq_out, ts_out, payload, abs3, sink, now)
        if abs3 is not None and level is None and self._abs_prefix is not None:
            prefix, value, pad = self._abs_prefix, <bytes>abs3, self._abs_pad
        elif abs3 is None and level is not None and self._level_prefix is not None and len(level) == 1:
            prefix, value, pad = self._level_prefix, <bytes>level, self._level_pad
        if prefix is not None:
            plen = PyBytes_GET_SIZE(prefix)
            vlen = PyBytes_GET_SIZE(value)
            padlen = PyBytes_GET_SIZE(pad)
        else:
            if log is not None and self._twcc_byte:
                vlen = PyBytes_GET_SIZE(self._ext.block(abs3, level, 0))
                value = self._ext.block(abs3, level, self._stamp(12 + vlen + body, now))
            else:
                value = self._ext.block(abs3, level)
            plen = 0
            vlen = PyBytes_GET_SIZE(value)
            padlen = 0
        n = 12 + plen + vlen + padlen + body
        packet = PyBytes_FromStringAndSize(NULL, n)
        p = PyBytes_AS_STRING(packet)
        p[0] = <char>(0x90 if (prefix is not None or vlen) else 0x80)
        p[1] = <char>((b1 & 0x80) | out_pt)
        _put16(p + 2, seq_out)
        _put32(p + 4, ts_out)
        _put32(p + 8, self.ssrc)
        off = 12
        if plen:
            memcpy(p + off, PyBytes_AS_STRING(prefix), plen)
            off += plen
        if vlen:
            memcpy(p + off, PyBytes_AS_STRING(value), vlen)
            off += vlen
        if padlen:
            memcpy(p + off, PyBytes_AS_STRING(pad), padlen)
            off += padlen
        memcpy(p + off, PyBytes_AS_STRING(payload) + poff, body)
        if retag:
            # RED passed on: each block header's payload type in the subscriber's numbering
            while off < n:
                p[off] = <char>((<unsigned char>p[off] & 0x80) | self._red_map[<unsigned char>p[off] & 0x7F])
                if not <unsigned char>p[off] & 0x80:
                    break
                off += 4
        return self._finish(packet, seq_out, ts_out, body, sink, now)

    cdef int _send_twcc(self, int b1, int out_pt, unsigned int seq_out, unsigned int ts_out, bytes payload,
                        object abs3, object sink, double now) except -1:
        """Header, [mid, abs-send-time,] transport-wide number, payload: one packet by memcpy."""
        cdef bytes prefix = self._twcc_prefix
        cdef bytes pad = self._twcc_pad
        cdef bint with_abs = self._abs_prefix is not None
        cdef Py_ssize_t plen = PyBytes_GET_SIZE(prefix)
        cdef Py_ssize_t padlen = PyBytes_GET_SIZE(pad)
        cdef Py_ssize_t n = 12 + plen + (6 if with_abs else 2) + padlen + PyBytes_GET_SIZE(payload)
        cdef Py_ssize_t off = 12
        cdef unsigned int tw = self._stamp(n, now)
        packet = PyBytes_FromStringAndSize(NULL, n)
        cdef char *p = PyBytes_AS_STRING(packet)
        p[0] = <char>0x90
        p[1] = <char>((b1 & 0x80) | out_pt)
        _put16(p + 2, seq_out)
        _put32(p + 4, ts_out)
        _put32(p + 8, self.ssrc)
        memcpy(p + off, PyBytes_AS_STRING(prefix), plen)
        off += plen
        if with_abs:
            memcpy(p + off, PyBytes_AS_STRING(abs3), 3)
            p[off + 3] = <char>self._twcc_byte
            off += 4
        _put16(p + off, tw)
        off += 2
        if padlen:
            memcpy(p + off, PyBytes_AS_STRING(pad), padlen)
            off += padlen
        memcpy(p + off, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
        return self._finish(packet, seq_out, ts_out, PyBytes_GET_SIZE(payload), sink, now)

    cdef unsigned int _stamp(self, Py_ssize_t size, double now) except? 0x10000:
        # sent at ``now`` (the ingress time, on the router's monotonic clock): the packet leaves in
        # this loop turn's sendmmsg, and a clock read per egress packet would cost more than the rest
        log = self._send_log
        if type(log) is NativeSendLog:
            return (<NativeSendLog>log).record_c(<int>size, <int64_t>(now * 1e6))
        return log.record(size, int(now * 1e6))

    cdef int _finish(self, bytes packet, unsigned int seq_out, unsigned int ts_out, Py_ssize_t octets,
                     object sink, double now) except -1:
        """History, continuity, counters, and out: to the socket's batch without a Python call
        when the sink offers one."""
        if self._renumber:
            # the payload is the packet's last ``octets`` bytes, and the packet is ours alone yet
            self._vp8_renumber(<unsigned char *>PyBytes_AS_STRING(packet) + PyBytes_GET_SIZE(packet) - octets, octets)
        history = self.history
        if history is not None:
            (<list>history)[seq_out & self.mask] = packet
        cdef unsigned int step = (seq_out - <unsigned int>self._last_seq) & 0xFFFF
        if self._last_seq >= 0 and JUMP < step < 0x10000 - JUMP:
            # see ``RtpRewriter.jumps``: rare, so the tuple costs nothing in the steady state
            self.jumps += 1
            self.last_jump = (self._last_seq, seq_out, (seq_out - self.seq_off) & 0xFFFF,
                              (<unsigned char>PyBytes_AS_STRING(packet)[1]) & 0x7F)
            if self.first_jump is None:
                self.first_jump = self.last_jump
        if self._last_seq < 0 or step < 0x8000:
            self._last_seq = seq_out
            self.last_ts = ts_out
            self.last_at = now
        self.packets += 1
        self.octets += octets
        batched = self._batched
        if batched is not None:
            batch_sink = batched.batch_sink
            if batch_sink is not None and type(batch_sink) is BatchSink:
                (<BatchSink>batch_sink).send(packet, False)
                return 0
        sink.send(packet)
        return 0

    def retransmit(self, seqs):
        """Answer a NACK from the history (rare: the Python code serves both rewriters)."""
        return retransmit_from_history(self, seqs)

    cdef _rebase(self, unsigned int seq, unsigned int ts, double now):
        cdef double elapsed
        cdef long step
        if self._last_seq < 0:
            self.seq_off = (random.randint(0, 0x7FFF) - seq) & 0xFFFF
            self.ts_off = (random.getrandbits(32) - ts) & 0xFFFFFFFF
        else:
            # continue where this consumer stopped, advancing the timestamp by
            # the wall time elapsed so the receiver's clock recovery stays sane
            elapsed = now - self.last_at
            if elapsed < 0:
                elapsed = 0
            step = <long>(elapsed * self.clock_rate)
            if step < 1:
                step = 1
            self.seq_off = (self._last_seq + 1 - seq) & 0xFFFF
            self.ts_off = (self.last_ts + step - ts) & 0xFFFFFFFF
        self.synced = True
        self._vp8_restart = True
        self._guard = seq
        self._guard_left = 512

    cdef void _vp8_renumber(self, unsigned char *p, Py_ssize_t n) noexcept:
        """``Vp8Numbering.rewrite`` in place (RFC 7741 payload descriptor)."""
        cdef Py_ssize_t i = 2
        cdef int x, mask, pid, tl0, new
        if n < 3 or not p[0] & 0x80:
            return
        x = p[1]
        if not x & 0xC0:
            return
        if x & 0x80:
            if p[i] & 0x80:
                if n < i + 2:
                    return
                mask = 0x7FFF
                pid = ((p[i] & 0x7F) << 8) | p[i + 1]
            else:
                mask = 0x7F
                pid = p[i] & 0x7F
            if self._vp8_restart:
                self._pid_off = ((self._last_pid + 1 - pid) & mask) if self._last_pid >= 0 else 0
            new = (pid + self._pid_off) & mask
            if mask == 0x7FFF:
                p[i] = <unsigned char>(0x80 | (new >> 8))
                p[i + 1] = <unsigned char>(new & 0xFF)
                i += 2
            else:
                p[i] = <unsigned char>new
                i += 1
            if self._last_pid < 0 or ((new - self._last_pid) & mask) <= (mask >> 1):
                self._last_pid = new
        if x & 0x40 and i < n:
            tl0 = p[i]
            if self._vp8_restart:
                self._tl0_off = ((self._last_tl0 + 1 - tl0) & 0xFF) if self._last_tl0 >= 0 else 0
            new = (tl0 + self._tl0_off) & 0xFF
            p[i] = <unsigned char>new
            if self._last_tl0 < 0 or ((new - self._last_tl0) & 0xFF) <= 0x7F:
                self._last_tl0 = new
        self._vp8_restart = False

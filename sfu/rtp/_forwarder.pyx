# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""``RtpForwarder`` in C: the per-producer half of the hot path.

The same class as ``sfu.rtp.forwarding.RtpForwarder`` (same constructor, attributes,
``on_rtp`` and counters; the tests run both): the header, the audio-level
extension, padding, an RTX wrapper, the VP8 keyframe bit and abs-send-time are
read and written in C, and each consumer's ``NativeRewriter`` is called at the C
level (``fan_out``), so an ingress packet costs one Python call (``on_rtp``)
whatever the number of consumers. Anything else (simulcast layer taps, the
recorder's taps, H.264 keyframe detection, NACK bookkeeping, level callbacks)
is called exactly as the Python forwarder calls it.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE

from sfu.rtp._rewriter cimport NativeRewriter

from sfu.rtp.forwarding import vp8_is_keyframe
from sfu.rtp.header_extensions import find_extension
from sfu.rtp.upstream_nack import MAX_AGE, MAX_GAP
from sfu.rtp.levels import MAX_STEP, SILENCE_CAP, VOICE_LEVEL, VOICED_CAP

cdef int _MAX_GAP = MAX_GAP
cdef double _MAX_AGE = MAX_AGE
cdef int _VOICE_LEVEL = VOICE_LEVEL
cdef double _MAX_STEP = MAX_STEP
cdef double _SILENCE_CAP = SILENCE_CAP
cdef double _VOICED_CAP = VOICED_CAP


cdef inline bint _vp8_keyframe(const unsigned char *p, Py_ssize_t n) noexcept:
    """``sfu.rtp.forwarding.vp8_is_keyframe`` on a pointer (RFC 7741 payload descriptor)."""
    cdef Py_ssize_t i
    cdef unsigned char b, x
    if n < 1:
        return False
    b = p[0]
    if not b & 0x10 or b & 0x07:
        return False
    i = 1
    if b & 0x80:
        if n < 2:
            return False
        x = p[1]
        i = 2
        if x & 0x80:
            if i >= n:
                return False
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:
            i += 1
        if x & 0x30:
            i += 1
    return i < n and not p[i] & 0x01


cdef class NativeForwarder:
    """Per-producer ingress: parse once, fan out to every rewriter."""

    cdef dict __dict__  # tests and tools may hang attributes on it, as on the Python class
    cdef public str producer_id
    cdef str _kind
    cdef bint _video
    cdef public object clock
    cdef public list rewriters
    cdef public list taps
    cdef public bint paused
    cdef public dict detectors
    cdef public dict rtx_apt
    cdef public int level_id
    cdef public object on_level
    # voice activity (``sfu.rtp.levels.LevelWindow`` in C): no Python call per audio packet
    cdef public int level_clock_rate
    cdef public double level_voiced
    cdef public double level_total
    cdef long long _level_ts  # -1: none yet
    cdef public object on_keyframe
    cdef public object nack
    cdef public object on_gap
    cdef public unsigned long long packets
    cdef public unsigned long long octets
    cdef public unsigned long long media_octets
    cdef public unsigned long long media_packets
    cdef public unsigned long long frames  # media packets with the marker bit: frames sent (video)
    cdef public unsigned long long discarded
    cdef public long long last_seq
    cdef public long long cycles
    cdef public long long base_seq
    cdef public double last_arrival

    def __init__(self, *, producer_id, kind, clock):
        self.producer_id = producer_id
        self.kind = kind
        self.clock = clock
        self.rewriters = []
        self.taps = []
        self.paused = False
        self.detectors = {}
        self.rtx_apt = {}
        self.level_id = 0
        self.on_level = None
        self.level_clock_rate = 48000
        self.level_voiced = 0.0
        self.level_total = 0.0
        self._level_ts = -1
        self.on_keyframe = None
        self.nack = None
        self.on_gap = None
        self.packets = 0
        self.octets = 0
        self.media_octets = 0
        self.media_packets = 0
        self.frames = 0
        self.discarded = 0
        self.last_seq = -1
        self.cycles = 0
        self.base_seq = -1
        self.last_arrival = 0.0

    @property
    def kind(self):
        return self._kind

    @kind.setter
    def kind(self, value):
        self._kind = value
        self._video = value == "video"

    @property
    def highest_sequence(self):
        return self.cycles + (self.last_seq if self.last_seq > 0 else 0)

    def on_rtp(self, bytes data):
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef const unsigned char *d = <const unsigned char *>PyBytes_AS_STRING(data)
        cdef int b0, b1, pt, apt_pt, eid, length
        cdef unsigned int seq, ts
        cdef Py_ssize_t off, start, end, i, stop
        cdef unsigned int profile, words
        cdef long long stamp
        cdef bint keyframe
        cdef bint is_rtx
        cdef bint stalled
        cdef char abs_bytes[3]
        cdef bytes level
        if n < 12:
            self.discarded += 1
            return
        b0 = d[0]
        b1 = d[1]
        pt = b1 & 0x7F
        seq = (d[2] << 8) | d[3]
        ts = (<unsigned int>d[4] << 24) | (d[5] << 16) | (d[6] << 8) | d[7]
        off = 12 + (b0 & 0x0F) * 4
        level = None
        if b0 & 0x10:
            if off + 4 > n:
                self.discarded += 1
                return
            profile = (d[off] << 8) | d[off + 1]
            words = (d[off + 2] << 8) | d[off + 3]
            start = off + 4
            off = start + 4 * words
            if self.level_id and off <= n:
                if profile == 0xBEDE:
                    i = start
                    while i < off:
                        if d[i] == 0:
                            i += 1
                            continue
                        eid = d[i] >> 4
                        if eid == 15:
                            break
                        length = (d[i] & 0x0F) + 1
                        if eid == self.level_id:
                            # as the slice data[i + 1 : i + 1 + length] would
                            stop = i + 1 + length
                            if stop > n:
                                stop = n
                            level = PyBytes_FromStringAndSize(<const char *>d + i + 1, stop - i - 1 if stop > i + 1 else 0)
                            break
                        i += 1 + length
                else:
                    level = find_extension(data, start, off, profile, self.level_id)
        end = n
        if b0 & 0x20:
            end -= d[n - 1]
        apt = self.rtx_apt.get(pt) if self.rtx_apt else None
        is_rtx = apt is not None
        if is_rtx:
            # RTX (RFC 4588): the original sequence number leads the payload
            if end - off < 3:
                return  # padding-only probe
            seq = (d[off] << 8) | d[off + 1]
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
        stalled = <double>now - self.last_arrival > _MAX_AGE
        self.last_arrival = now
        if not is_rtx:
            # retransmissions (and the RTX probes browsers send) are not the stream's own rate
            self.media_octets += n
            self.media_packets += 1
            if b1 & 0x80:
                self.frames += 1
            self._track(seq, stalled)
        if level is not None and PyBytes_GET_SIZE(level) > 0:
            self._add_level(<unsigned char>PyBytes_AS_STRING(level)[0], ts)
            if self.on_level is not None:
                self.on_level(level[0], ts)
        if self.paused:
            return
        for tap in self.taps:
            tap(self.producer_id, self._kind, data)
        rewriters = self.rewriters
        if not rewriters:
            return
        payload = PyBytes_FromStringAndSize(<const char *>d + off, end - off)
        detector = self.detectors.get(pt)
        if detector is None:
            keyframe = True
        elif detector is vp8_is_keyframe:
            keyframe = _vp8_keyframe(d + off, end - off)
        else:
            keyframe = bool(detector(payload))
        if keyframe and self.on_keyframe is not None and detector is not None:
            self.on_keyframe(payload)
        if self._video:
            stamp = (<long long>(<double>now * 262144.0)) & 0xFFFFFF
            abs_bytes[0] = <char>((stamp >> 16) & 0xFF)
            abs_bytes[1] = <char>((stamp >> 8) & 0xFF)
            abs_bytes[2] = <char>(stamp & 0xFF)
            abs3 = PyBytes_FromStringAndSize(abs_bytes, 3)
        else:
            abs3 = None
        for rewriter in rewriters:
            if type(rewriter) is NativeRewriter:
                (<NativeRewriter>rewriter).fan_out(b1, pt, seq, ts, payload, abs3, level, keyframe, now)
            else:
                rewriter.forward(b1, pt, seq, ts, payload, abs3, level, keyframe, now)

    def take_levels(self):
        """Seconds of voiced and of all audio since the last call (``LevelWindow.take``)."""
        out = (self.level_voiced, self.level_total)
        self.level_voiced = 0.0
        self.level_total = 0.0
        return out

    cdef void _add_level(self, unsigned char level_byte, unsigned int ts) noexcept:
        cdef double delta
        if self._level_ts >= 0 and self.level_clock_rate > 0:
            # unsigned wrap, in C (a "& 0xFFFFFFFF" went through Python ints per audio packet)
            delta = <double>(<unsigned int>(ts - <unsigned int>self._level_ts)) / self.level_clock_rate
            if delta < _MAX_STEP:
                self.level_total += delta if delta < _SILENCE_CAP else _SILENCE_CAP
                if (level_byte & 0x7F) <= _VOICE_LEVEL:
                    self.level_voiced += delta if delta < _VOICED_CAP else _VOICED_CAP
        self._level_ts = ts

    def _track_seq(self, int seq, bint stalled=False):
        self._track(seq, stalled)

    cdef _track(self, int seq, bint stalled):
        # highest sequence number with wrap cycles, for receiver reports; ``stalled``:
        # nothing arrived for longer than a NACK is worth (what is missing is too old)
        cdef long long last
        cdef int delta
        if self.last_seq < 0:
            self.base_seq = seq
            self.last_seq = seq
            return
        last = self.last_seq
        delta = (seq - last) & 0xFFFF
        if delta < 0x8000:
            if delta > 1 and (delta > _MAX_GAP or stalled):
                if self.on_gap is not None:
                    self.on_gap()
            elif delta > 1 and self.nack is not None:
                self.nack.missing([(last + k) & 0xFFFF for k in range(1, delta)])
            if seq < last:
                self.cycles += 0x10000
            self.last_seq = seq
        elif self.nack is not None:
            self.nack.late(seq)  # late, out of order: no need to ask for it any more

# cython: boundscheck=False, wraparound=False
"""``ArrivalLog`` (``sfu/rtp/arrivals.py``) in C: the per-packet half of TWCC feedback,
run for every RTP packet a publisher sends, with no Python object made per packet.
Same surface and behaviour as the Python twin; the tests run both."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME

from sfu.rtp.arrivals import RING

assert RING == _RING, "sfu/rtp/arrivals.py and _arrivals.pyx disagree on the ring size"


cdef class NativeArrivalLog:
    # attributes in _arrivals.pxd (the native ingress cimports this class)

    def __init__(self, int ext_id, on_first, clock=None):
        cdef int i
        self.ext_id = ext_id
        self._clock = clock
        self.media_ssrc = 0
        self.highest = -1
        self.next = 0
        self.pending = False
        self._on_first = on_first
        for i in range(_RING):
            self._times[i] = -1
            self._tags[i] = -1

    def on_rtp(self, bytes data):
        self.note(<const unsigned char *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), 0.0)

    cdef int note(self, const unsigned char *d, Py_ssize_t n, double at) except -1:
        """``on_rtp`` on a decrypted packet in place; ``at``: its kernel arrival time (CLOCK_REALTIME
        seconds), 0.0 to ask ``clock`` (then the time of reading). What the native ingress calls."""
        cdef Py_ssize_t i, end
        cdef unsigned int profile
        cdef int b, eid, length
        cdef timespec ts
        cdef int64_t now
        if n < 12 or not d[0] & 0x10:
            return 0
        i = 12 + (d[0] & 0x0F) * 4
        if i + 4 > n:
            return 0
        profile = (d[i] << 8) | d[i + 1]
        end = i + 4 + ((d[i + 2] << 8) | d[i + 3]) * 4
        if end > n:
            end = n
        i += 4
        while i < end:
            b = d[i]
            if profile == 0xBEDE:  # RFC 8285 one-byte form
                if b == 0:
                    i += 1
                    continue
                eid = b >> 4
                if eid == 15:
                    return 0
                length = (b & 0x0F) + 1
                i += 1
            elif (profile & 0xFFF0) == 0x1000:  # two-byte form
                if b == 0:
                    i += 1
                    continue
                if i + 1 >= end:
                    return 0
                eid = b
                length = d[i + 1]
                i += 2
            else:
                return 0
            if eid == self.ext_id:
                if length != 2 or i + 2 > end:
                    return 0
                if at <= 0 and self._clock is not None:
                    at = self._clock()
                if at > 0:
                    now = <int64_t>(at * 1e6)
                else:
                    clock_gettime(CLOCK_REALTIME, &ts)
                    now = <int64_t>ts.tv_sec * 1000000 + ts.tv_nsec // 1000
                self._record((d[i] << 8) | d[i + 1], now,
                             (<unsigned int>d[8] << 24) | (d[9] << 16) | (d[10] << 8) | d[11])
                return 0
            i += length
        return 0

    def record(self, int seq, long long arrival_us, unsigned int ssrc=0):
        self._record(seq, arrival_us, ssrc)

    cdef _record(self, long long seq, int64_t arrival_us, unsigned int ssrc):
        cdef long long delta
        cdef int slot
        if self.highest < 0:
            self.highest = seq
            self.next = seq
            self.media_ssrc = ssrc
        else:
            delta = (seq - self.highest) & 0xFFFF
            if delta >= 0x8000:
                delta -= 0x10000
            seq = self.highest + delta
            if seq < self.next:
                return  # reported as lost already (a late reordering)
            if seq > self.highest:
                self.highest = seq
        slot = seq & (_RING - 1)
        self._tags[slot] = seq
        self._times[slot] = arrival_us
        if not self.pending:
            self.pending = True
            self._on_first()

    def arrival(self, long long seq):
        cdef int slot = seq & (_RING - 1)
        return self._times[slot] if self._tags[slot] == seq else -1

    def span(self, long long start, long long stop):
        cdef list out = []
        cdef long long seq
        cdef int slot
        for seq in range(start, stop):
            slot = seq & (_RING - 1)
            out.append(self._times[slot] if self._tags[slot] == seq else None)
        return out

    def advance(self, long long start):
        self.next = start
        self.pending = start <= self.highest

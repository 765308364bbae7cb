# cython: language_level=3, boundscheck=False, wraparound=False
"""``SendLog`` (``sfu/rtp/sendlog.py``) in C: a transport-wide sequence number per packet sent to a
subscriber, with its send time and size in a ring, called by the C rewriter for every forwarded
video packet. Same surface and behaviour as the Python twin; the tests run both."""

from libc.stdint cimport int64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from sfu.rtp.sendlog import RING

assert RING == _RING, "sfu/rtp/sendlog.py and _sendlog.pyx disagree on the ring size"


cdef class NativeSendLog:
    """One subscriber transport's transport-wide sequence numbers and what each one carried."""

    def __init__(self, int ext_id):
        cdef int i
        self.ext_id = ext_id
        self.probe_cluster = -1
        self.next = 0
        for i in range(_RING):
            self._tags[i] = -1
            self._times[i] = -1
            self._sizes[i] = 0
            self._clusters[i] = -1

    cdef unsigned int stamp_c(self, int size) noexcept:
        cdef timespec ts
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return self.record_c(size, <int64_t>ts.tv_sec * 1000000 + ts.tv_nsec // 1000)

    cdef unsigned int record_c(self, int size, int64_t sent_us) noexcept:
        cdef long long seq = self.next
        cdef int slot = seq & (_RING - 1)
        self.next = seq + 1
        self._tags[slot] = seq
        self._times[slot] = sent_us
        self._sizes[slot] = size
        self._clusters[slot] = self.probe_cluster
        return <unsigned int>(seq & 0xFFFF)

    def stamp(self, int size):
        """The 16-bit number for a packet of ``size`` bytes leaving now (noted in the ring)."""
        return self.stamp_c(size)

    def record(self, int size, long long sent_us):
        """As ``stamp`` with an explicit send time (tests, replays)."""
        return self.record_c(size, sent_us)

    def unwrap(self, int seq16):
        """The unwrapped number of a 16-bit ``seq16`` reported back (the nearest to what was sent)."""
        cdef long long delta = (seq16 - self.next) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self.next + delta

    def sent(self, long long seq):
        """(send time us, size, probe cluster) of unwrapped ``seq``; None when not (or no longer) known."""
        cdef int slot = seq & (_RING - 1)
        if seq < 0 or self._tags[slot] != seq:
            return None
        return self._times[slot], self._sizes[slot], self._clusters[slot]

# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The load generator's subscribers, counting in C (``benchmarks/replay_participant.py``).

``RtpCounter.read`` drains a socket with ``recvmmsg`` (the SFU's own ``Receiver``)
and counts each SRTP packet from its clear header into its stream's counters
(packets, octets, extended highest sequence number, frames by marker bit)
without a Python object per datagram. Only what Python must see is handed to
it, in order: datagrams that are not RTP (STUN, DTLS, SRTCP: routed by the mux),
RTP of an SSRC not registered yet, and the sampled video packets to decrypt. At the end
of each read the touched streams' Python counters are brought up to date, so
the report and the receiver reports read them as before.

``CountingMux.reader``'s Python loop is the twin (used when this module is not
built); tests/benchmarks/test_rtp_count.py runs both on the same datagrams.
"""

from libc.stdlib cimport malloc, realloc, free
from cpython.bytes cimport PyBytes_FromStringAndSize

from sfu.transport._fastio cimport MSG_TRUNC, Receiver

#: what ``read`` hands back, per datagram, for Python to handle
ROUTE = 0    # not RTP: STUN, DTLS, SRTCP
UNKNOWN = 1  # RTP of an unregistered SSRC (not counted): register it, then ``count``
SAMPLE = 2   # counted video packet to decrypt (1 in mask + 1, and all until the first frame)

cdef struct Slot:
    unsigned long long packets
    unsigned long long octets
    unsigned long long frames
    long long highest
    bint video
    bint sample_all
    bint touched


cdef class RtpCounter:
    cdef Receiver rx
    cdef dict index     # ssrc -> slot
    cdef list streams   # slot -> the stream object (packets, octets, highest, frames, first_frame)
    cdef Slot *slots
    cdef int capacity
    cdef int used
    cdef int *touched
    cdef int ntouched
    cdef unsigned int mask
    cdef unsigned int counter
    cdef readonly unsigned long long reads
    cdef readonly unsigned long long datagrams

    def __cinit__(self, unsigned int sample_mask):
        self.rx = Receiver(timestamps=True)  # the socket has SO_TIMESTAMPNS: samples carry their arrival
        self.index = {}
        self.streams = []
        self.capacity = 64
        self.used = 0
        self.slots = <Slot *>malloc(self.capacity * sizeof(Slot))
        self.touched = <int *>malloc(self.capacity * sizeof(int))
        if self.slots is NULL or self.touched is NULL:
            raise MemoryError()
        self.ntouched = 0
        self.mask = sample_mask
        self.counter = 0
        self.reads = 0
        self.datagrams = 0

    def __dealloc__(self):
        free(self.slots)
        free(self.touched)

    def add(self, unsigned int ssrc, stream):
        """Count ``stream`` (its ``highest`` is where counting continues) from now on."""
        cdef Slot *s
        if ssrc in self.index:
            return
        if self.used == self.capacity:
            self._grow()
        s = &self.slots[self.used]
        s.packets = 0
        s.octets = 0
        s.frames = 0
        s.highest = stream.highest
        s.video = stream.kind == "video"
        s.sample_all = stream.first_frame is None
        s.touched = False
        self.index[ssrc] = self.used
        self.streams.append(stream)
        self.used += 1

    cdef _grow(self):
        cdef int capacity = self.capacity * 2
        cdef Slot *slots = <Slot *>realloc(self.slots, capacity * sizeof(Slot))
        if slots is NULL:
            raise MemoryError()
        self.slots = slots
        cdef int *touched = <int *>realloc(self.touched, capacity * sizeof(int))
        if touched is NULL:
            raise MemoryError()
        self.touched = touched
        self.capacity = capacity

    cdef int _count(self, const unsigned char *d, Py_ssize_t n) except -2:
        """Count one RTP packet: -1 unknown SSRC, 1 to sample, 0 counted."""
        cdef unsigned int ssrc = (<unsigned int>d[8] << 24) | (d[9] << 16) | (d[10] << 8) | d[11]
        cdef unsigned int seq = (d[2] << 8) | d[3]
        cdef long long delta
        cdef Slot *s
        found = self.index.get(ssrc)
        if found is None:
            return -1
        cdef int i = <int>found
        s = &self.slots[i]
        if not s.touched:
            s.touched = True
            self.touched[self.ntouched] = i
            self.ntouched += 1
        s.packets += 1
        s.octets += n
        delta = (<long long>seq - s.highest) & 0xFFFF
        if delta < 0x8000:
            s.highest += delta
        if not s.video:
            return 0
        if d[1] & 0x80:
            s.frames += 1
        self.counter += 1
        if not self.counter & self.mask:
            return 1
        if s.sample_all:
            if self.streams[i].first_frame is None:
                return 1
            s.sample_all = False
        return 0

    def count(self, bytes data):
        """Count one RTP datagram of a registered stream (the one ``read`` returned as UNKNOWN):
        True if it is to be decrypted as a sample."""
        cdef int rc = self._count(<const unsigned char *>data, len(data))
        self.sync()
        return rc == 1

    def read(self, int fd, int batch, handle):
        """Read ``fd`` until drained (``recvmmsg`` of up to ``batch``) and count the RTP; call
        ``handle(kind, data, address, arrival)`` for the rest, in arrival order (kind: ROUTE,
        UNKNOWN, SAMPLE), as the Python loop does, so a sample's decryption is seen by the next
        packet. ``arrival``: when the kernel queued it (CLOCK_REALTIME s; 0.0 without
        SO_TIMESTAMPNS), so a socket read once per tick still times its samples exactly."""
        cdef Receiver rx = self.rx
        cdef int got, i, rc
        cdef Py_ssize_t n
        cdef const unsigned char *d
        try:
            while True:
                got = rx.fill(fd, batch)
                if got == 0:
                    break
                self.reads += 1
                self.datagrams += got
                for i in range(got):
                    if rx.msgs[i].msg_hdr.msg_flags & MSG_TRUNC:
                        continue
                    d = <const unsigned char *>rx.slots[i]
                    n = rx.msgs[i].msg_len
                    # RTP, not RTCP (payload types 64-95 with the marker bit are RTCP's)
                    if n > 11 and 127 < d[0] < 192 and not 191 < d[1] < 224:
                        rc = self._count(d, n)
                        if rc == 0:
                            continue
                        kind = UNKNOWN if rc < 0 else SAMPLE
                    else:
                        kind = ROUTE
                    handle(kind, PyBytes_FromStringAndSize(<const char *>d, n), rx._address(i), rx.arrival(i))
                if got < batch:
                    break
        finally:
            self.sync()

    def sync(self):
        """Bring the touched streams' Python counters up to date."""
        cdef int k, i
        cdef Slot *s
        for k in range(self.ntouched):
            i = self.touched[k]
            s = &self.slots[i]
            st = self.streams[i]
            st.packets += s.packets
            st.octets += s.octets
            st.frames += s.frames
            st.highest = s.highest
            s.packets = 0
            s.octets = 0
            s.frames = 0
            s.touched = False
        self.ntouched = 0

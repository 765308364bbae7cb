# The C arrival log's declarations, so the native ingress (sfu/transport/_fastio.pyx) records a
# datagram's transport-wide sequence number and kernel arrival time without a Python call.

from libc.stdint cimport int64_t

cdef enum:
    _RING = 8192


cdef class NativeArrivalLog:
    cdef public int ext_id
    cdef public unsigned int media_ssrc
    cdef public long long highest
    cdef public long long next
    cdef public bint pending
    cdef object _on_first
    cdef object _clock
    cdef int64_t _times[_RING]
    cdef int64_t _tags[_RING]
    cdef int note(self, const unsigned char *d, Py_ssize_t n, double at) except -1
    cdef _record(self, long long seq, int64_t arrival_us, unsigned int ssrc)

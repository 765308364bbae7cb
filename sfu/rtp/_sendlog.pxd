# cython: language_level=3
"""C-level declarations of ``NativeSendLog`` (``sfu/rtp/_sendlog.pyx``), so the C rewriter stamps a
transport-wide sequence number on each packet without a Python call."""

from libc.stdint cimport int64_t, int32_t

cdef enum:
    _RING = 8192

cdef class NativeSendLog:
    cdef public int ext_id
    cdef public int probe_cluster
    cdef public long long next
    cdef int64_t _times[_RING]
    cdef int64_t _tags[_RING]
    cdef int32_t _sizes[_RING]
    cdef int32_t _clusters[_RING]

    cdef unsigned int stamp_c(self, int size) noexcept
    cdef unsigned int record_c(self, int size, int64_t sent_us) noexcept

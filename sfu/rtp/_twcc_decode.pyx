# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Decoding one transport-wide feedback message (RTPFB FMT=15) in C: what
``twcc_decode.decode_feedback`` does, without a Python object per status symbol.
Same result and the same ValueErrors (tests/sfu/test_twcc.py compares both)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF

cdef int DELTA_TICK_US = 250
cdef int RLE_MAX = 0x1FFF


cdef inline unsigned int _u16(const unsigned char *p) nogil:
    return (p[0] << 8) | p[1]


cdef inline unsigned int _u32(const unsigned char *p) nogil:
    return (<unsigned int>p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]


def decode_feedback(bytes data):
    """Decode one RTPFB FMT=15 message (raises ValueError when malformed)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef const unsigned char *d = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t end, i
    cdef unsigned int count, chunk, k, run, take, left
    cdef unsigned int got = 0
    cdef unsigned char *symbols
    cdef long long now = 0
    cdef int ticks
    cdef unsigned char sym
    cdef object value  # a Python int the tuple owns (typed: Cython would infer a C long long)
    cdef tuple arrivals
    if n < 20 or d[1] != 205 or (d[0] & 0x1F) != 15:
        raise ValueError("not a transport-wide feedback message")
    end = (<Py_ssize_t>_u16(d + 2) + 1) * 4
    if end > n:
        raise ValueError("truncated")
    if d[0] & 0x20:
        end -= d[end - 1]
    sender = _u32(d + 4)
    media = _u32(d + 8)
    base = _u16(d + 12)
    count = _u16(d + 14)
    ref_fb = _u32(d + 16)
    symbols = <unsigned char *>PyMem_Malloc(count + 1)
    if symbols == NULL:
        raise MemoryError()
    try:
        i = 20
        while got < count:
            if i + 2 > end:
                raise ValueError("truncated status chunks")
            chunk = _u16(d + i)
            i += 2
            left = count - got
            if not chunk & 0x8000:
                run = chunk & RLE_MAX
                take = run if run < left else left
                for k in range(take):
                    symbols[got + k] = (chunk >> 13) & 3
                got += take
            elif not chunk & 0x4000:
                take = 14 if 14 < left else left
                for k in range(take):
                    symbols[got + k] = (chunk >> (13 - k)) & 1
                got += take
            else:
                take = 7 if 7 < left else left
                for k in range(take):
                    symbols[got + k] = (chunk >> (12 - 2 * k)) & 3
                got += take
        arrivals = PyTuple_New(count)
        for k in range(count):
            sym = symbols[k]
            if sym == 0:
                Py_INCREF(None)
                PyTuple_SET_ITEM(arrivals, k, None)
                continue
            if sym == 1:
                if i + 1 > end:
                    raise ValueError("truncated deltas")
                ticks = d[i]
                i += 1
            elif sym == 2:
                if i + 2 > end:
                    raise ValueError("truncated deltas")
                ticks = <short>_u16(d + i)
                i += 2
            else:
                raise ValueError("reserved status symbol")
            now += ticks * DELTA_TICK_US
            value = now
            Py_INCREF(value)
            PyTuple_SET_ITEM(arrivals, k, value)
    finally:
        PyMem_Free(symbols)
    return sender, media, base, ref_fb >> 8, ref_fb & 0xFF, arrivals

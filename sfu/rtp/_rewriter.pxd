# cython: language_level=3
"""C-level declarations of ``NativeRewriter`` (``sfu/rtp/_rewriter.pyx``), so the native
forwarder (``sfu/rtp/_forwarder.pyx``) fans a packet out without a Python call per consumer."""

cdef class NativeRewriter:
    cdef public unsigned int ssrc
    cdef public unsigned int rtx_ssrc
    cdef public int clock_rate
    cdef public bint needs_keyframe
    cdef public object request_keyframe
    cdef dict _pt_map
    cdef short _pt_out[128]  # the publisher's payload type -> the subscriber's, -1: not sent (``pt_map`` in C)
    cdef public object rtx_pt
    cdef public int red_pt  # the publisher's Opus RED payload type, -1: none
    cdef public bint red_keep  # pass RED on (block types mapped) instead of its primary frame
    cdef unsigned char _red_map[128]  # block payload type -> the subscriber's
    cdef object _ext
    cdef bytes _abs_prefix
    cdef bytes _abs_pad
    cdef bytes _level_prefix
    cdef bytes _level_pad
    cdef bytes _twcc_prefix  # None: no transport-cc toward this subscriber
    cdef bytes _twcc_pad
    cdef int _twcc_byte  # the transport-cc element's header byte
    cdef object _send_log  # the subscriber transport's SendLog (a NativeSendLog in the SFU), or None
    cdef object _sink
    cdef object _batched  # the sink again when it offers a ``batch_sink`` (a MediaTransport), else None
    cdef public unsigned int mask
    cdef public object history
    cdef public bint synced
    cdef public unsigned int seq_off
    cdef public unsigned int ts_off
    cdef long _last_seq  # -1: none yet
    cdef public unsigned int last_ts
    cdef public double last_at
    cdef long _guard  # -1: no guard
    cdef public int _guard_left
    cdef public unsigned int _rtx_seq
    # VP8 picture id / TL0PICIDX continuity across restarts (``sfu.rtp.vp8.Vp8Numbering``)
    cdef unsigned char _vp8[128]  # the publisher's payload type -> 1 when VP8
    cdef public object vp8_pts
    cdef bint _renumber  # the packet being written is VP8
    cdef bint _vp8_restart
    cdef int _pid_off
    cdef int _tl0_off
    cdef int _last_pid  # -1: none yet
    cdef int _last_tl0
    cdef public unsigned long long packets
    cdef public unsigned long long octets
    cdef public unsigned long long dropped
    cdef public unsigned long long retransmitted
    cdef public unsigned long long jumps
    cdef public object last_jump
    cdef public object first_jump
    cdef int _strays  # packets in a row dropped as far ahead

    cdef int fan_out(self, int b1, int pt, unsigned int seq, unsigned int ts, bytes payload, object abs3,
                     object level, bint keyframe, double now) except -1
    cdef unsigned int _stamp(self, Py_ssize_t size, double now) except? 0x10000
    cdef int _send_twcc(self, int b1, int out_pt, unsigned int seq_out, unsigned int ts_out, bytes payload,
                        object abs3, object sink, double now) except -1
    cdef int _finish(self, bytes packet, unsigned int seq_out, unsigned int ts_out, Py_ssize_t octets,
                     object sink, double now) except -1
    cdef _rebase(self, unsigned int seq, unsigned int ts, double now)
    cdef void _vp8_renumber(self, unsigned char *p, Py_ssize_t n) noexcept

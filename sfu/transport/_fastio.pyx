# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The SFU's native packet I/O: batched UDP (recvmmsg / sendmmsg) and SRTP with
the very contexts aiortc negotiated, called from C.

Why: per forwarded packet, a datagram read by asyncio costs 13-16 us, a
``pylibsrtp.Session.protect`` call 5-6.5 us of which ~4 us is the cffi binding,
and a ``sendto`` 3.5 us (issue 16). Here a wakeup reads up to 64 datagrams in
one system call, SRTP runs on libsrtp's own ``srtp_t`` (the one pylibsrtp
bundles and aiortc keyed after DTLS, looked up once with ``dlsym``), and the
packets a wakeup produced leave in one ``sendmmsg``.

``sfu/transport/fastio_py.py`` is the pure-Python twin with the same API and behaviour;
``sfu/transport/fastio.py`` picks one. Everything here is mechanism: which packets go
where is decided in Python.
"""

from libc.stdint cimport uintptr_t, uint16_t
from libc.string cimport memcmp, memcpy, memset
from libc.errno cimport errno, EAGAIN, EINTR, EINVAL, EIO, EMSGSIZE
from libc.stdlib cimport malloc, free
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE

from sfu.rtp._arrivals cimport NativeArrivalLog

cdef srtp_fn _protect = NULL
cdef srtp_fn _unprotect = NULL
cdef srtp_fn _protect_rtcp = NULL
cdef srtp_fn _unprotect_rtcp = NULL

#: largest datagram handled (pylibsrtp's own buffer is 1500 bytes); SRTP adds at most
#: SRTP_MAX_TRAILER_LEN (16-byte tag + 128-byte MKI) to RTP, 4 more to RTCP


def _bind_libsrtp():
    """Find srtp_protect & co. in the libsrtp pylibsrtp already loaded."""
    global _protect, _unprotect, _protect_rtcp, _unprotect_rtcp
    if _protect != NULL:
        return
    import pylibsrtp._binding as binding
    path = binding.__file__.encode()
    cdef void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD)
    if handle == NULL:
        raise ImportError("pylibsrtp's libsrtp is not loaded: %s" % (dlerror() or b"").decode())
    p = <srtp_fn>dlsym(handle, b"srtp_protect")
    u = <srtp_fn>dlsym(handle, b"srtp_unprotect")
    pr = <srtp_fn>dlsym(handle, b"srtp_protect_rtcp")
    ur = <srtp_fn>dlsym(handle, b"srtp_unprotect_rtcp")
    if p == NULL or u == NULL or pr == NULL or ur == NULL or dlsym(handle, b"srtp_protect_mki") == NULL:
        raise ImportError("pylibsrtp's libsrtp lacks the 2.x SRTP entry points")
    _protect, _unprotect, _protect_rtcp, _unprotect_rtcp = p, u, pr, ur


_bind_libsrtp()

NATIVE = True

import logging

_logger = logging.getLogger("sfu.transport.media_socket")


cdef class SrtpContext:
    """One direction of a negotiated SRTP session (a ``pylibsrtp.Session``).

    Keeps the session alive; the ``srtp_t`` inside it is used directly. Methods
    return the processed packet, or None when libsrtp refuses it (not authentic,
    replayed, unknown stream, too long), which is how the SFU drops it.
    """

    def __cinit__(self, session):
        from pylibsrtp._binding import ffi
        self.session = session
        self.ctx = <void *><uintptr_t>int(ffi.cast("uintptr_t", session._srtp[0]))

    cdef object _run(self, bytes data, srtp_fn fn):
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef int length = <int>n
        if n > BUF:
            return None
        memcpy(self.buf, PyBytes_AS_STRING(data), n)
        if fn(self.ctx, self.buf, &length) != 0:
            return None
        return PyBytes_FromStringAndSize(self.buf, length)

    def protect(self, bytes data):
        return self._run(data, _protect)

    def protect_rtcp(self, bytes data):
        return self._run(data, _protect_rtcp)

    def unprotect(self, bytes data):
        return self._run(data, _unprotect)

    def unprotect_rtcp(self, bytes data):
        return self._run(data, _unprotect_rtcp)


cdef class Destination:
    """A remote UDP address turned into a ``sockaddr`` once."""

    def __cinit__(self, tuple address):
        cdef sockaddr_in *v4 = <sockaddr_in *>&self.addr
        cdef sockaddr_in6 *v6 = <sockaddr_in6 *>&self.addr
        host = address[0].encode()
        port = int(address[1])
        memset(&self.addr, 0, sizeof(sockaddr_storage))
        self.address = (address[0], port)
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1:
            v4.sin_family = AF_INET
            v4.sin_port = htons(port)
            self.addrlen = sizeof(sockaddr_in)
        elif inet_pton(AF_INET6, host, &v6.sin6_addr) == 1:
            v6.sin6_family = AF_INET6
            v6.sin6_port = htons(port)
            self.addrlen = sizeof(sockaddr_in6)
        else:
            raise ValueError("not an IP address: %r" % (address[0],))


cdef class SendBatch:
    """Datagrams queued during one event-loop turn, sent with one ``sendmmsg``.

    ``add`` / ``add_srtp`` return False when the batch is full (flush, then add
    again). ``flush`` sends from the front; on EAGAIN the rest stay queued,
    in order, and it returns how many are still pending.
    """

    def __cinit__(self):
        self.dests = [None] * MAX_BATCH
        self.head = 0
        self.count = 0
        self.sent = 0
        self.refused = 0
        self._refused_status = 0
        self._refused_ssrc = 0
        self._refused_seq = -1
        self.deferring = False
        self.gso = True

    @property
    def pending(self):
        return self.count - self.head

    @property
    def last_refusal(self):
        """``(libsrtp status, ssrc, seq)`` of the last packet libsrtp refused (seq -1 for
        RTCP), or None."""
        if not self._refused_status:
            return None
        return (self._refused_status, self._refused_ssrc, self._refused_seq)

    @property
    def capacity(self):
        return MAX_BATCH

    cdef int _slot(self, Destination dest):
        cdef int i = self.count
        self.dests[i] = dest
        memset(&self.msgs[i], 0, sizeof(mmsghdr))
        self.iov[i].iov_base = self.slots[i]
        self.msgs[i].msg_hdr.msg_name = &dest.addr
        self.msgs[i].msg_hdr.msg_namelen = dest.addrlen
        self.msgs[i].msg_hdr.msg_iov = &self.iov[i]
        self.msgs[i].msg_hdr.msg_iovlen = 1
        return i

    def add(self, bytes data, Destination dest):
        """Queue a datagram as it is."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        if self.count >= MAX_BATCH:
            return False
        if n > SLOT:
            self.refused += 1
            return True
        cdef int i = self._slot(dest)
        memcpy(self.slots[i], PyBytes_AS_STRING(data), n)
        self.iov[i].iov_len = n
        self.count += 1
        return True

    def add_srtp(self, SrtpContext ctx, bytes data, Destination dest, bint rtcp=False):
        """SRTP-protect ``data`` in its slot and queue it (dropped if libsrtp refuses it)."""
        return self.push_srtp(ctx, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), dest, rtcp) != 0

    cdef int push_srtp(self, SrtpContext ctx, const char *data, Py_ssize_t n, Destination dest, bint rtcp):
        """0: full (nothing queued); 1: queued or dropped (refused by libsrtp / too long)."""
        cdef int length = <int>n
        if self.count >= MAX_BATCH:
            return 0
        if n > BUF:
            self.refused += 1
            return 1
        cdef int i = self._slot(dest)
        cdef int status
        cdef const unsigned char *h = <const unsigned char *>data
        memcpy(self.slots[i], data, n)
        status = (_protect_rtcp if rtcp else _protect)(ctx.ctx, self.slots[i], &length)
        if status != 0:
            self.dests[i] = None
            self.refused += 1
            self._refused_status = status
            if rtcp and n >= 8:
                self._refused_ssrc = (h[4] << 24) | (h[5] << 16) | (h[6] << 8) | h[7]
                self._refused_seq = -1
            elif n >= 12:
                self._refused_ssrc = (h[8] << 24) | (h[9] << 16) | (h[10] << 8) | h[11]
                self._refused_seq = (h[2] << 8) | h[3]
            return 1
        self.iov[i].iov_len = length
        self.count += 1
        return 1

    def flush(self, int fd):
        """Send what is queued; returns the number still pending (EAGAIN).

        With ``gso`` (the default), each destination's run of packets leaves as one message with
        UDP_SEGMENT: the kernel builds, routes and queues one buffer for the run and cuts it into
        the same datagrams on the way out (a video frame's packets to one subscriber). A
        destination whose route refuses GSO is marked, and its packets go one message each from
        then on; the others keep GSO."""
        cdef int rc
        cdef int i
        cdef int tries = 0
        while self.gso and self.count - self.head > 1 and tries <= MAX_BATCH:
            tries += 1  # each retry has marked one more destination: at most one per entry
            rc = gso_flush(self, fd)
            if rc == 0:
                return 0
            if rc == 1:
                return self.count - self.head  # EAGAIN: the rest wait, each destination's in order
            # 2: a destination refused GSO and is marked (it cannot form a group again): the
            # rest go again
        while self.head < self.count:
            rc = sendmmsg(fd, &self.msgs[self.head], self.count - self.head, MSG_DONTWAIT)
            if rc < 0:
                if errno == EINTR:
                    continue
                if errno == EAGAIN:  # EWOULDBLOCK is the same value on Linux
                    return self.count - self.head
                # unreachable destination and the like: that datagram is lost, as with sendto
                self.refused += 1
                self.dests[self.head] = None
                self.head += 1
                continue
            for i in range(self.head, self.head + rc):
                self.dests[i] = None
            self.head += rc
            self.sent += rc
        self.head = 0
        self.count = 0
        return 0

    def drain(self):
        """The pending datagrams as ``(bytes, address)`` pairs, emptying the batch."""
        out = []
        cdef int i
        for i in range(self.head, self.count):
            out.append((PyBytes_FromStringAndSize(self.slots[i], self.iov[i].iov_len),
                        (<Destination>self.dests[i]).address))
            self.dests[i] = None
        self.head = 0
        self.count = 0
        return out


cdef class Receiver:
    """Reads up to 64 datagrams per call with one ``recvmmsg``."""

    def __cinit__(self, bint timestamps=False):
        self._addresses = {}
        self.calls = 0
        self.datagrams = 0
        self.timestamps = timestamps

    cdef double arrival(self, int i) noexcept:
        """When datagram ``i`` of the last read reached the socket (CLOCK_REALTIME seconds, from
        SCM_TIMESTAMPNS); 0.0 if not asked for or not given."""
        cdef msghdr *hdr = &self.msgs[i].msg_hdr
        cdef cmsghdr *c
        cdef timespec *t
        if not self.timestamps:
            return 0.0
        c = CMSG_FIRSTHDR(hdr)
        while c != NULL:
            if c.cmsg_level == SOL_SOCKET and c.cmsg_type == SCM_TIMESTAMPNS:
                t = <timespec *>CMSG_DATA(c)
                return t.tv_sec + t.tv_nsec * 1e-9
            c = CMSG_NXTHDR(hdr, c)
        return 0.0

    cdef tuple _address(self, int i):
        cdef char text[64]
        cdef sockaddr_in *v4
        cdef sockaddr_in6 *v6
        cdef socklen_t namelen = self.msgs[i].msg_hdr.msg_namelen
        key = PyBytes_FromStringAndSize(<char *>&self.names[i], namelen)
        found = self._addresses.get(key)
        if found is not None:
            return <tuple>found
        if self.names[i].ss_family == AF_INET:
            v4 = <sockaddr_in *>&self.names[i]
            inet_ntop(AF_INET, &v4.sin_addr, text, 64)
            found = (text.decode(), ntohs(v4.sin_port))
        elif self.names[i].ss_family == AF_INET6:
            v6 = <sockaddr_in6 *>&self.names[i]
            inet_ntop(AF_INET6, &v6.sin6_addr, text, 64)
            found = (text.decode(), ntohs(v6.sin6_port), 0, 0)
        else:
            found = ("", 0)
        if len(self._addresses) > 4096:
            self._addresses.clear()
        self._addresses[key] = found
        return <tuple>found

    cdef int fill(self, int fd, int limit) noexcept:
        """One ``recvmmsg`` of up to ``limit`` datagrams into the slots; the count (0: none, or an error)."""
        cdef int i
        cdef int rc
        if limit > MAX_BATCH:
            limit = MAX_BATCH
        for i in range(limit):
            memset(&self.msgs[i], 0, sizeof(mmsghdr))
            self.iov[i].iov_base = self.slots[i]
            self.iov[i].iov_len = RECV_SLOT
            self.msgs[i].msg_hdr.msg_name = &self.names[i]
            self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            self.msgs[i].msg_hdr.msg_iov = &self.iov[i]
            self.msgs[i].msg_hdr.msg_iovlen = 1
            if self.timestamps:
                self.msgs[i].msg_hdr.msg_control = self.control[i]
                self.msgs[i].msg_hdr.msg_controllen = CONTROL
        while True:
            rc = recvmmsg(fd, self.msgs, limit, MSG_DONTWAIT, NULL)
            if rc < 0 and errno == EINTR:
                continue
            break
        self.calls += 1
        if rc <= 0:
            return 0
        self.datagrams += rc
        return rc

    def recv(self, int fd, int limit=MAX_BATCH):
        """Up to ``limit`` ``(bytes, address)`` pairs; [] when none is waiting."""
        cdef int i
        cdef int rc = self.fill(fd, limit)
        out = []
        for i in range(rc):
            if self.msgs[i].msg_hdr.msg_flags & MSG_TRUNC:
                continue  # larger than any WebRTC datagram: not ours to parse
            out.append((PyBytes_FromStringAndSize(self.slots[i], self.msgs[i].msg_len), self._address(i)))
        return out

    def recv_stamped(self, int fd, int limit=MAX_BATCH):
        """As ``recv``, each pair with the kernel's arrival time (CLOCK_REALTIME seconds; 0.0
        unless built with ``timestamps`` on a socket with SO_TIMESTAMPNS)."""
        cdef int i
        cdef int rc = self.fill(fd, limit)
        out = []
        for i in range(rc):
            if self.msgs[i].msg_hdr.msg_flags & MSG_TRUNC:
                continue
            out.append((PyBytes_FromStringAndSize(self.slots[i], self.msgs[i].msg_len), self._address(i),
                        self.arrival(i)))
        return out


cdef class BatchSink:
    """Where one SRTP direction's packets go on a ``MediaSocket``: its batch, the
    context, the destination. ``send`` is what ``MediaTransport`` and the native
    rewriter call per packet; the socket (``owner``) flushes at the end of the turn."""

    def __cinit__(self, SendBatch batch, SrtpContext ctx, Destination dest, owner):
        self.batch = batch
        self.ctx = ctx
        self.dest = dest
        self.owner = owner

    cpdef send(self, bytes packet, bint rtcp=False):
        cdef SendBatch batch = self.batch
        cdef int was_empty
        owner = self.owner
        if batch.deferring:
            owner.send_srtp(self.ctx, packet, self.dest, rtcp)  # in order behind the backlog
            return
        was_empty = batch.count == 0
        if not batch.push_srtp(self.ctx, PyBytes_AS_STRING(packet), PyBytes_GET_SIZE(packet), self.dest, rtcp):
            owner.send_srtp(self.ctx, packet, self.dest, rtcp)  # full: the socket flushes and queues
            return
        if was_empty:
            owner.schedule_flush()


cdef class IngressRoute:
    """Where one peer's SRTP goes once its DTLS is up: its receive context (the ``srtp_t`` aiortc
    keyed), its SSRC routes (the transport's own dict, kept current by it: ssrc -> a forwarder's
    ``on_rtp``), the handlers for an SSRC it has no route for yet and for RTCP, and the TWCC
    arrival log (None until transport-cc is negotiated), which the transport may set later."""

    def __cinit__(self, SrtpContext ctx, dict routes, on_unknown, on_rtcp, arrivals=None):
        self.ctx = ctx
        self.routes = routes
        self.on_unknown = on_unknown
        self.on_rtcp = on_rtcp
        self.arrivals = arrivals
        self.packets = 0


cdef class Ingress:
    """A ``MediaSocket``'s reads: SRTP from a registered peer goes from ``recvmmsg`` to its
    producer's forwarder with no Python frame in between (unprotect, the TWCC arrival with the
    kernel's stamp, the SSRC route: what ``MediaTransport.receive_rtp`` does, in C).

    Anything else (STUN, DTLS, unregistered sources, and a packet the context refuses, handed on
    intact so a stale entry never swallows another peer's traffic) goes to ``fallback(data,
    address)`` with its arrival time published in ``stamp`` (an ``ArrivalStamp``, or None):
    the protocol's path, as before.
    """

    def __cinit__(self, bint timestamps=False):
        self.rx = Receiver(timestamps)
        self.entries = {}
        self.fast = 0
        self._last_route = None
        self._last_len = 0

    cdef bytes _key(self, tuple address):
        cdef Destination d = Destination(address)
        return PyBytes_FromStringAndSize(<char *>&d.addr, d.addrlen)

    def add(self, tuple address, IngressRoute route):
        """Take ``address``'s SRTP to ``route`` (ValueError: not an IP literal)."""
        self.entries[self._key(address)] = route
        self._last_route = None

    def remove(self, tuple address, IngressRoute route=None):
        """Stop taking ``address``'s SRTP (only if it still goes to ``route``, when given)."""
        key = self._key(address)
        if route is None or self.entries.get(key) is route:
            self.entries.pop(key, None)
        self._last_route = None

    def __len__(self):
        return len(self.entries)

    def read(self, int fd, int limit, fallback, stamp=None):
        """One ``recvmmsg`` of up to ``limit``; returns how many datagrams it read."""
        cdef Receiver rx = self.rx
        cdef int rc = rx.fill(fd, limit)
        cdef int i
        cdef int length
        cdef char *d
        cdef unsigned char b0
        cdef double at
        cdef socklen_t namelen
        entries = self.entries
        for i in range(rc):
            if rx.msgs[i].msg_hdr.msg_flags & MSG_TRUNC:
                continue  # larger than any WebRTC datagram: not ours to parse
            d = rx.slots[i]
            length = rx.msgs[i].msg_len
            at = rx.arrival(i)
            b0 = <unsigned char>d[0]
            # RTP/RTCP first byte is 128..191 (RFC 7983); STUN is 0..3, DTLS 20..63
            if entries and 11 < length <= BUF and 127 < b0 < 192:
                namelen = rx.msgs[i].msg_hdr.msg_namelen
                if (self._last_route is not None and namelen == self._last_len
                        and memcmp(&rx.names[i], &self._last_name, namelen) == 0):
                    route = self._last_route
                else:
                    route = entries.get(PyBytes_FromStringAndSize(<char *>&rx.names[i], namelen))
                    if route is not None and namelen <= sizeof(sockaddr_storage):
                        memcpy(&self._last_name, &rx.names[i], namelen)
                        self._last_len = namelen
                        self._last_route = route
                if route is not None:
                    try:
                        if self._deliver(<IngressRoute>route, d, length, at, stamp):
                            self.fast += 1
                            continue
                    except Exception:
                        _logger.exception("SFU ingress handler failed")
                        continue
            if stamp is not None:
                stamp.at = at
            try:
                fallback(PyBytes_FromStringAndSize(d, length), rx._address(i))
            except Exception:
                _logger.exception("media socket: datagram handler failed")
        if stamp is not None:
            stamp.at = 0.0
        return rc

    cdef int _deliver(self, IngressRoute route, const char *d, int length, double at, object stamp) except -1:
        """Unprotect into the context's buffer (the datagram stays as it came, for the fallback)
        and hand on; 0 if the context refuses it."""
        cdef SrtpContext ctx = route.ctx
        cdef char *p = ctx.buf
        cdef unsigned char b1 = <unsigned char>d[1]
        cdef unsigned int ssrc
        memcpy(p, d, length)
        if 191 < b1 < 209:  # RTCP packet types (as aiortc's is_rtcp)
            if _unprotect_rtcp(ctx.ctx, p, &length) != 0:
                return 0
            route.on_rtcp(PyBytes_FromStringAndSize(p, length))
            return 1
        if _unprotect(ctx.ctx, p, &length) != 0:
            return 0
        if length < 12:
            return 1  # authentic but no RTP header: dropped, as receive_rtp does
        route.packets += 1
        arrivals = route.arrivals
        if arrivals is not None:
            if type(arrivals) is NativeArrivalLog:
                (<NativeArrivalLog>arrivals).note(<const unsigned char *>p, length, at)
                clear = PyBytes_FromStringAndSize(p, length)
            else:  # the Python log (tests): it reads the stamp through its clock
                clear = PyBytes_FromStringAndSize(p, length)
                if stamp is not None:
                    stamp.at = at
                arrivals.on_rtp(clear)
        else:
            clear = PyBytes_FromStringAndSize(p, length)
        ssrc = ((<unsigned char>p[8]) << 24) | ((<unsigned char>p[9]) << 16) | ((<unsigned char>p[10]) << 8) | (<unsigned char>p[11])
        target = route.routes.get(ssrc)
        if target is not None:
            target(clear)
        else:
            route.on_unknown(clear)  # an SSRC the peer has not routed yet (found by MID / RID)
        return 1


include "_gso.pxi"

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
from libc.string cimport memcpy, memset
from libc.errno cimport errno, EAGAIN, EINTR
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE

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

    @property
    def pending(self):
        return self.count - self.head

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
        memcpy(self.slots[i], data, n)
        if (_protect_rtcp if rtcp else _protect)(ctx.ctx, self.slots[i], &length) != 0:
            self.dests[i] = None
            self.refused += 1
            return 1
        self.iov[i].iov_len = length
        self.count += 1
        return 1

    def flush(self, int fd):
        """Send what is queued; returns the number still pending (EAGAIN)."""
        cdef int rc
        cdef int i
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
        if owner.deferring:
            owner.send_srtp(self.ctx, packet, self.dest, rtcp)  # in order behind the backlog
            return
        was_empty = batch.count == 0
        if not batch.push_srtp(self.ctx, PyBytes_AS_STRING(packet), PyBytes_GET_SIZE(packet), self.dest, rtcp):
            owner.send_srtp(self.ctx, packet, self.dest, rtcp)  # full: the socket flushes and queues
            return
        if was_empty:
            owner.schedule_flush()

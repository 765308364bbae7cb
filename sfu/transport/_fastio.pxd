# Declarations shared by the native modules (sfu/transport/_fastio.pyx, sfu/rtp/_rewriter.pyx).

cdef extern from "<dlfcn.h>" nogil:
    void *dlopen(const char *filename, int flag)
    void *dlsym(void *handle, const char *symbol)
    char *dlerror()
    int RTLD_NOW
    int RTLD_NOLOAD

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        unsigned short sa_family
    struct sockaddr_storage:
        unsigned short ss_family
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    cmsghdr *CMSG_FIRSTHDR(msghdr *msgh)
    cmsghdr *CMSG_NXTHDR(msghdr *msgh, cmsghdr *cmsg)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    size_t CMSG_LEN(size_t length)
    size_t CMSG_SPACE(size_t length)
    int SOL_SOCKET
    int SCM_TIMESTAMPNS
    int recvmmsg(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags, void *timeout)
    int sendmmsg(int sockfd, mmsghdr *msgvec, unsigned int vlen, int flags)
    int AF_INET
    int AF_INET6
    int MSG_DONTWAIT
    int MSG_TRUNC

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        unsigned int s_addr
    struct in6_addr:
        pass
    struct sockaddr_in:
        unsigned short sin_family
        unsigned short sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        unsigned short sin6_family
        unsigned short sin6_port
        in6_addr sin6_addr
    unsigned short ntohs(unsigned short)
    unsigned short htons(unsigned short)

cdef extern from "<arpa/inet.h>" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    int inet_pton(int af, const char *src, void *dst)

# libsrtp 2.x, as bundled by pylibsrtp (srtp_protect_mki exists there: the 2.x API)


cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec

cdef enum:
    CONTROL = 64  # room for one SCM_TIMESTAMPNS control message per datagram
    BUF = 1500
    TRAILER = 148
    SLOT = 1648  # BUF + TRAILER
    RECV_SLOT = 2048
    MAX_BATCH = 64
    GSO_CONTROL = 32  # CMSG_SPACE(sizeof(uint16_t)) is 24 on 64-bit Linux
    SOL_UDP = 17  # IPPROTO_UDP, the level of UDP_SEGMENT (linux/udp.h)
    UDP_SEGMENT = 103  # Linux 4.18+: send one buffer, the kernel cuts it into datagrams

ctypedef int (*srtp_fn)(void *ctx, void *hdr, int *len_ptr) noexcept nogil


cdef class SrtpContext:
    cdef object session
    cdef void *ctx
    cdef char buf[SLOT]
    cdef object _run(self, bytes data, srtp_fn fn)


cdef class Destination:
    cdef sockaddr_storage addr
    cdef socklen_t addrlen
    cdef readonly tuple address
    # its route refused a GSO message (no checksum offload, IPsec, a path MTU under the segment
    # size): its packets go one datagram each, the other destinations keep GSO
    cdef public bint gso_refused


cdef class SendBatch:
    cdef char slots[MAX_BATCH][SLOT]
    cdef mmsghdr msgs[MAX_BATCH]
    cdef iovec iov[MAX_BATCH]
    cdef list dests  # keeps each queued Destination alive
    cdef int head
    cdef int count
    cdef readonly unsigned long long sent
    cdef readonly unsigned long long refused
    # the last packet libsrtp refused: its status, SSRC and sequence number (RTP) -- a refusal
    # is rare, and when a stream stops it tells a replay-window stall from a key or size error
    cdef int _refused_status
    cdef unsigned int _refused_ssrc
    cdef int _refused_seq
    cdef public bint deferring  # the owning socket's ``deferring``, read per packet without a getattr
    # UDP GSO (see ``flush``): a destination's run of packets leaves as one message
    cdef public bint gso
    cdef readonly unsigned long long gso_messages  # messages of more than one segment sent
    cdef readonly unsigned long long gso_segments  # the datagrams those carried
    cdef readonly unsigned long long gso_refusals  # destinations whose route refused GSO
    cdef mmsghdr gmsgs[MAX_BATCH]
    cdef iovec giov[MAX_BATCH]
    cdef char gctl[MAX_BATCH][GSO_CONTROL]
    cdef int order[MAX_BATCH]  # entries in group order
    cdef int gstart[MAX_BATCH]  # each group's first position in ``order``
    cdef int gcount[MAX_BATCH]  # and its number of segments
    cdef int _slot(self, Destination dest)
    cdef int push_srtp(self, SrtpContext ctx, const char *data, Py_ssize_t n, Destination dest, bint rtcp)


cdef class Receiver:
    cdef char slots[MAX_BATCH][RECV_SLOT]
    cdef mmsghdr msgs[MAX_BATCH]
    cdef iovec iov[MAX_BATCH]
    cdef sockaddr_storage names[MAX_BATCH]
    cdef char control[MAX_BATCH][CONTROL]
    cdef bint timestamps  # ask for the kernel's arrival time (the socket needs SO_TIMESTAMPNS)
    cdef dict _addresses  # raw sockaddr -> (host, port), so a peer's tuple is built once
    cdef readonly unsigned long long calls
    cdef readonly unsigned long long datagrams
    cdef tuple _address(self, int i)
    cdef int fill(self, int fd, int limit) noexcept
    cdef double arrival(self, int i) noexcept


cdef class BatchSink:
    cdef readonly SendBatch batch
    cdef readonly SrtpContext ctx
    cdef readonly Destination dest
    cdef readonly object owner
    cpdef send(self, bytes packet, bint rtcp=*)


cdef class IngressRoute:
    cdef readonly SrtpContext ctx
    cdef readonly dict routes
    cdef readonly object on_unknown
    cdef readonly object on_rtcp
    cdef public object arrivals
    cdef readonly unsigned long long packets


cdef class Ingress:
    cdef readonly Receiver rx
    cdef dict entries  # raw sockaddr bytes -> IngressRoute
    cdef readonly unsigned long long fast
    # the last source found in ``entries`` (datagrams come in runs from one peer): compared with
    # memcmp before building a key and looking it up; cleared by add / remove
    cdef sockaddr_storage _last_name
    cdef socklen_t _last_len
    cdef object _last_route
    cdef bytes _key(self, tuple address)
    cdef int _deliver(self, IngressRoute route, const char *d, int length, double at, object stamp) except -1

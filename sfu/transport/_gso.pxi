# UDP GSO for ``SendBatch.flush`` (included by _fastio.pyx, whose module it is part of): each
# destination's run of packets in a batch leaves as one message with UDP_SEGMENT. Functions of
# the batch (``self``), kept apart so the batch's plain path stays readable.

cdef int gso_group(SendBatch self) noexcept:
    """Fill ``order`` / ``gstart`` / ``gcount``: per entry not yet taken, a group of it and the
    packets after it to the same destination, in their order, while they fit one GSO message
    (equal sizes, a last one smaller); the number of groups. Per destination the groups keep
    the packets' order, so nothing a subscriber receives is reordered."""
    cdef int i, j, k, size, length, total
    cdef int n = 0
    cdef int groups = 0
    cdef char taken[MAX_BATCH]
    cdef void *dest
    memset(taken, 0, MAX_BATCH)
    for i in range(self.head, self.count):
        if taken[i]:
            continue
        dest = <void *>self.msgs[i].msg_hdr.msg_name
        size = <int>self.iov[i].iov_len
        self.gstart[groups] = n
        self.order[n] = i
        n += 1
        k = 1
        total = size
        if (<Destination>self.dests[i]).gso_refused:
            self.gcount[groups] = 1  # its route refused GSO: one datagram per message
            groups += 1
            continue
        for j in range(i + 1, self.count):
            if taken[j] or <void *>self.msgs[j].msg_hdr.msg_name != dest:
                continue
            length = <int>self.iov[j].iov_len
            if length > size or total + length > 65000:
                break  # the next of this destination starts its own group, after this one
            taken[j] = 1
            self.order[n] = j
            n += 1
            k += 1
            total += length
            if length < size:
                break  # a short segment ends a GSO message
        self.gcount[groups] = k
        groups += 1
    return groups

cdef int gso_flush(SendBatch self, int fd) except -1:
    """0: all sent (or lost as on the wire); 1: EAGAIN, the unsent kept in order; 2: a
    destination's route refused GSO: it is marked, and the unsent are back in the batch."""
    cdef int groups = gso_group(self)
    cdef int g, t, rc, first
    cdef mmsghdr *m
    cdef cmsghdr *c
    for g in range(groups):
        m = &self.gmsgs[g]
        first = self.order[self.gstart[g]]
        memset(m, 0, sizeof(mmsghdr))
        m.msg_hdr.msg_name = self.msgs[first].msg_hdr.msg_name
        m.msg_hdr.msg_namelen = self.msgs[first].msg_hdr.msg_namelen
        m.msg_hdr.msg_iov = &self.giov[self.gstart[g]]
        m.msg_hdr.msg_iovlen = self.gcount[g]
        for t in range(self.gcount[g]):
            self.giov[self.gstart[g] + t] = self.iov[self.order[self.gstart[g] + t]]
        if self.gcount[g] > 1:
            m.msg_hdr.msg_control = self.gctl[g]
            m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t))
            c = CMSG_FIRSTHDR(&m.msg_hdr)
            c.cmsg_level = SOL_UDP
            c.cmsg_type = UDP_SEGMENT
            c.cmsg_len = CMSG_LEN(sizeof(uint16_t))
            (<uint16_t *>CMSG_DATA(c))[0] = <uint16_t>self.iov[first].iov_len
    g = 0
    while g < groups:
        rc = sendmmsg(fd, &self.gmsgs[g], groups - g, MSG_DONTWAIT)
        if rc < 0:
            if errno == EINTR:
                continue
            if errno == EAGAIN:
                gso_keep(self, self.gstart[g])
                return 1
            if self.gcount[g] > 1 and (errno == EIO or errno == EINVAL or errno == EMSGSIZE):
                # no checksum offload on the route (EIO), IPsec (EINVAL), or a path MTU under the
                # segment size (EMSGSIZE; a datagram alone is fragmented and gets through)
                (<Destination>self.dests[self.order[self.gstart[g]]]).gso_refused = True
                self.gso_refusals += 1
                gso_keep(self, self.gstart[g])
                return 2
            self.refused += self.gcount[g]  # unreachable and the like: lost, as with sendto
            g += 1
            continue
        for t in range(g, g + rc):
            self.sent += self.gcount[t]
            if self.gcount[t] > 1:
                self.gso_messages += 1
                self.gso_segments += self.gcount[t]
        g += rc
    for t in range(self.head, self.count):
        self.dests[t] = None
    self.head = 0
    self.count = 0
    return 0

cdef int gso_keep(SendBatch self, int pos) except -1:
    """Make the entries from ``order[pos]`` on the batch's pending ones, in group order (rare:
    the socket is full, or GSO was just refused)."""
    cdef int t, e
    cdef int total = (self.count - self.head) - pos
    cdef list dests = []
    cdef char *tmp = <char *>malloc(total * SLOT + 1)
    cdef int *lengths = <int *>malloc(total * sizeof(int) + 1)
    if tmp == NULL or lengths == NULL:
        free(tmp)
        free(lengths)
        raise MemoryError()
    for t in range(total):
        e = self.order[pos + t]
        lengths[t] = <int>self.iov[e].iov_len
        memcpy(tmp + t * SLOT, self.slots[e], lengths[t])
        dests.append(self.dests[e])
    for t in range(self.head, self.count):
        self.dests[t] = None
    self.head = 0
    self.count = 0
    for t in range(total):
        e = self._slot(<Destination>dests[t])
        memcpy(self.slots[e], tmp + t * SLOT, lengths[t])
        self.iov[e].iov_len = lengths[t]
        self.count += 1
    free(tmp)
    free(lengths)
    return total

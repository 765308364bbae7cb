"""The pure-Python twin of ``sfu/transport/_fastio.pyx``: same classes, same behaviour.

Used where the native module was not built (no compiler at install time) or is
switched off (``PEERLEARN_SFU_NATIVE=0``); the tests run the same cases against
both. Each datagram costs a system call here, and SRTP goes through pylibsrtp's
cffi binding.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any, Optional

import pylibsrtp

NATIVE = False

logger = logging.getLogger("sfu.transport.media_socket")
BUF = 1500
MAX_BATCH = 64
RECV_SLOT = 2048


class SrtpContext:
    """One direction of a negotiated SRTP session; None when libsrtp refuses a packet."""

    __slots__ = ("session",)

    def __init__(self, session: pylibsrtp.Session) -> None:
        self.session = session

    def _run(self, data: bytes, fn: Any) -> Optional[bytes]:
        if len(data) > BUF:
            return None
        try:
            out: bytes = fn(data)
        except (pylibsrtp.Error, ValueError):
            return None
        return out

    def protect(self, data: bytes) -> Optional[bytes]:
        return self._run(data, self.session.protect)

    def protect_rtcp(self, data: bytes) -> Optional[bytes]:
        return self._run(data, self.session.protect_rtcp)

    def unprotect(self, data: bytes) -> Optional[bytes]:
        return self._run(data, self.session.unprotect)

    def unprotect_rtcp(self, data: bytes) -> Optional[bytes]:
        return self._run(data, self.session.unprotect_rtcp)


class Destination:
    """A remote UDP address (validated as an IP address, like the native one)."""

    __slots__ = ("address", "family", "gso_refused")

    def __init__(self, address: tuple[Any, ...]) -> None:
        self.gso_refused = False  # as the native one's; no GSO here, so never set
        host, port = address[0], int(address[1])
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(family, host)
            except OSError:
                continue
            self.family = family
            self.address = (host, port)
            return
        raise ValueError(f"not an IP address: {host!r}")


class SendBatch:
    """Datagrams queued during one event-loop turn, then sent one ``sendto`` each."""

    capacity = MAX_BATCH

    def __init__(self) -> None:
        self._queue: list[tuple[bytes, tuple[Any, ...]]] = []
        self._head = 0
        self.sent = 0
        self.refused = 0
        #: ``(status, ssrc, seq)`` of the last packet SRTP refused (pylibsrtp gives no status: -1)
        self.last_refusal: Optional[tuple[int, int, int]] = None
        #: the owning socket's ``deferring`` (see ``MediaSocket``)
        self.deferring = False
        #: UDP GSO in the native batch; here every datagram is its own ``sendto`` either way
        self.gso = False
        self.gso_messages = 0
        self.gso_segments = 0
        self.gso_refusals = 0

    @property
    def pending(self) -> int:
        return len(self._queue) - self._head

    def add(self, data: bytes, dest: Destination) -> bool:
        if len(self._queue) >= MAX_BATCH:
            return False
        if len(data) > BUF + 148:
            self.refused += 1
            return True
        self._queue.append((data, dest.address))
        return True

    def add_srtp(self, ctx: SrtpContext, data: bytes, dest: Destination, rtcp: bool = False) -> bool:
        if len(self._queue) >= MAX_BATCH:
            return False
        packet = ctx.protect_rtcp(data) if rtcp else ctx.protect(data)
        if packet is None:
            self.refused += 1
            if rtcp and len(data) >= 8:
                self.last_refusal = (-1, int.from_bytes(data[4:8], "big"), -1)
            elif len(data) >= 12:
                self.last_refusal = (-1, int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big"))
            return True
        self._queue.append((packet, dest.address))
        return True

    def flush(self, fd: int) -> int:
        queue = self._queue
        if self._head < len(queue):
            with socket.socket(fileno=fd) as sock:
                try:
                    while self._head < len(queue):
                        data, addr = queue[self._head]
                        try:
                            sock.sendto(data, addr)
                            self.sent += 1
                        except InterruptedError:
                            continue
                        except BlockingIOError:
                            return len(queue) - self._head
                        except OSError:
                            self.refused += 1  # unreachable and the like: lost, as on the wire
                        self._head += 1
                finally:
                    sock.detach()  # the fd belongs to its owner
        queue.clear()
        self._head = 0
        return 0

    def drain(self) -> list[tuple[bytes, tuple[Any, ...]]]:
        out = self._queue[self._head :]
        self._queue = []
        self._head = 0
        return out


class Receiver:
    """Reads up to 64 datagrams per call, one ``recvfrom`` each."""

    def __init__(self, timestamps: bool = False) -> None:
        self.calls = 0
        self.datagrams = 0

    def recv_stamped(self, fd: int, limit: int = MAX_BATCH) -> list[tuple[bytes, tuple[Any, ...], float]]:
        """As ``recv``; no kernel arrival times here (0.0: the caller stamps them itself)."""
        return [(data, addr, 0.0) for data, addr in self.recv(fd, limit)]

    def recv(self, fd: int, limit: int = MAX_BATCH) -> list[tuple[bytes, tuple[Any, ...]]]:
        out: list[tuple[bytes, tuple[Any, ...]]] = []
        limit = min(limit, MAX_BATCH)
        self.calls += 1
        with socket.socket(fileno=fd) as sock:
            try:
                while len(out) < limit:
                    try:
                        data, _anc, flags, addr = sock.recvmsg(RECV_SLOT)
                    except InterruptedError:
                        continue
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                            pass  # ICMP errors surface here: nothing to read
                        break
                    if flags & socket.MSG_TRUNC:
                        continue
                    out.append((data, addr))
            finally:
                sock.detach()
        self.datagrams += len(out)
        return out


class BatchSink:
    """Where one SRTP direction's packets go on a ``MediaSocket`` (see the native one)."""

    __slots__ = ("batch", "ctx", "dest", "owner")

    def __init__(self, batch: SendBatch, ctx: SrtpContext, dest: Destination, owner: Any) -> None:
        self.batch = batch
        self.ctx = ctx
        self.dest = dest
        self.owner = owner

    def send(self, packet: bytes, rtcp: bool = False) -> None:
        owner = self.owner
        if self.batch.deferring:
            owner.send_srtp(self.ctx, packet, self.dest, rtcp)
            return
        was_empty = not self.batch.pending
        if not self.batch.add_srtp(self.ctx, packet, self.dest, rtcp):
            owner.send_srtp(self.ctx, packet, self.dest, rtcp)
            return
        if was_empty:
            owner.schedule_flush()


class IngressRoute:
    """Where one peer's SRTP goes once its DTLS is up (see the native one)."""

    __slots__ = ("ctx", "routes", "on_unknown", "on_rtcp", "arrivals", "packets")

    def __init__(
        self, ctx: SrtpContext, routes: dict[int, Any], on_unknown: Any, on_rtcp: Any, arrivals: Any = None
    ) -> None:
        self.ctx = ctx
        self.routes = routes
        self.on_unknown = on_unknown
        self.on_rtcp = on_rtcp
        self.arrivals = arrivals
        self.packets = 0


class Ingress:
    """A ``MediaSocket``'s reads: SRTP from registered peers straight to their routes (see the
    native one; no kernel arrival stamps here, the log stamps the time of reading)."""

    def __init__(self, timestamps: bool = False) -> None:
        self.rx = Receiver(timestamps)
        self.entries: dict[tuple[Any, int], IngressRoute] = {}
        self.fast = 0

    @staticmethod
    def _key(address: tuple[Any, ...]) -> tuple[Any, int]:
        Destination(address)  # ValueError for what is not an IP literal, as the native one
        return (address[0], int(address[1]))

    def add(self, address: tuple[Any, ...], route: IngressRoute) -> None:
        self.entries[self._key(address)] = route

    def remove(self, address: tuple[Any, ...], route: Optional[IngressRoute] = None) -> None:
        key = self._key(address)
        if route is None or self.entries.get(key) is route:
            self.entries.pop(key, None)

    def __len__(self) -> int:
        return len(self.entries)

    def read(self, fd: int, limit: int, fallback: Any, stamp: Any = None) -> int:
        datagrams = self.rx.recv(fd, limit)
        entries = self.entries
        for data, addr in datagrams:
            if entries and 11 < len(data) <= BUF and 127 < data[0] < 192:
                route = entries.get((addr[0], addr[1]))
                if route is not None:
                    try:
                        if self._deliver(route, data):
                            self.fast += 1
                            continue
                    except Exception:  # noqa: BLE001 - one bad packet never breaks the socket
                        logger.exception("SFU ingress handler failed")
                        continue
            try:
                fallback(data, addr)
            except Exception:  # noqa: BLE001 - one bad datagram never stops the socket
                logger.exception("media socket: datagram handler failed")
        return len(datagrams)

    @staticmethod
    def _deliver(route: IngressRoute, data: bytes) -> bool:
        ctx = route.ctx
        if 191 < data[1] < 209:  # RTCP packet types (as aiortc's is_rtcp)
            clear = ctx.unprotect_rtcp(data)
            if clear is None:
                return False
            route.on_rtcp(clear)
            return True
        clear = ctx.unprotect(data)
        if clear is None:
            return False
        if len(clear) < 12:
            return True
        route.packets += 1
        if route.arrivals is not None:
            route.arrivals.on_rtp(clear)
        target = route.routes.get(int.from_bytes(clear[8:12], "big"))
        if target is not None:
            target(clear)
        else:
            route.on_unknown(clear)
        return True

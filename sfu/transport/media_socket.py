"""The SFU's own UDP sockets: batched reads, batched SRTP writes, on any event loop.

A ``MediaSocket`` is the datagram transport under the SFU's ICE candidates (one
per candidate, or the one shared port of ``sfu.transport.ice.UdpMux``). It replaces the
event loop's transport so that the packet path is the same under asyncio and
uvloop and costs one system call per batch, not per datagram:

- **reads**: when the socket is readable, ``Ingress.read`` takes up to 64
  datagrams with one ``recvmmsg``; SRTP from a peer whose DTLS is up (registered
  by its ``MediaTransport``) is unprotected, its TWCC arrival noted with the
  kernel's stamp and handed to its producer's forwarder right there (in C with
  the native module: no Python frame per datagram before the forwarder);
  everything else goes to the protocol (aioice's, or the mux), whose SRTP fast
  ingress (``aiortc_bridge.install_fast_ingress``) still serves peers on other
  addresses;
- **writes**: SRTP the engine sends during that turn is protected into a
  ``SendBatch`` and leaves in one ``sendmmsg`` at the end of the turn; control
  traffic (STUN, DTLS) is sent at once. When the kernel buffer is full, what
  is left waits in a backlog, in order, written when the socket is writable.

The native module does the per-datagram work in C; ``PEERLEARN_SFU_NATIVE=0``
runs the same code on its pure-Python twin (``sfu/transport/fastio.py``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
from typing import Any, Optional

from . import fastio

logger = logging.getLogger(__name__)

#: batches read per readiness callback before yielding to the loop (fairness
#: between sockets; the rest is read on the next turn)
READS_PER_WAKEUP = 4
#: kernel socket buffers (the Linux default ~208 KB holds a few ms of a busy
#: server's ingress; the kernel caps these at net.core.rmem_max / wmem_max)
SOCKET_RCVBUF = 8 << 20
SOCKET_SNDBUF = 4 << 20


def read_interval() -> float:
    """Seconds a readable socket waits before it is drained (``PEERLEARN_SFU_READ_INTERVAL_MS``;
    default 0: at once, as before).

    Interrupt coalescing, as NICs do: at 5 rooms x 5 a datagram arrives every ~0.3 ms, and
    draining on each readiness costs an ``epoll_wait``, a loop callback, a ``recvmmsg`` and a
    ``sendmmsg`` for one or two datagrams; waiting ~1 ms first gathers that millisecond's
    datagrams into one read and their forwarded packets into one ``sendmmsg``. TWCC is not
    affected (kernel arrival stamps). Off by default until measured on a quiet machine (the
    session that wrote it could not: docs/benchmarks.md, "C ingress")."""
    try:
        return max(float(os.environ.get("PEERLEARN_SFU_READ_INTERVAL_MS", "0")), 0.0) / 1000.0
    except ValueError:
        return 0.0


def udp_gso() -> bool:
    """Send each subscriber's run of packets in a batch as one UDP GSO message (the native
    ``SendBatch``; ``PEERLEARN_SFU_GSO=0`` sends one message per datagram, for A/B runs and for
    a path that mangles GSO). A route that refuses it turns it off by itself."""
    return os.environ.get("PEERLEARN_SFU_GSO", "1") != "0"


#: kernel receive timestamps (Linux; Python's socket module lacks the name)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class ArrivalStamp:
    """When the datagram being delivered right now reached the kernel (CLOCK_REALTIME
    seconds; 0.0 outside a delivery). Delivery is synchronous, so a handler deep in the
    packet path (TWCC's arrival log) reads the time of the packet it is handling, however
    late the process got to read it: a busy or descheduled SFU does not look like a
    congested link to the publisher's estimator."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


class MediaSocket(asyncio.DatagramTransport):
    """A non-blocking UDP socket driven by the loop's reader/writer callbacks."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Any, stamp: Optional[ArrivalStamp] = None
    ) -> None:
        super().__init__()
        self._stamp = stamp
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._io = fastio.impl
        self._ingress = self._io.Ingress(stamp is not None)
        self._batch = self._io.SendBatch()
        self._batch.gso = udp_gso()
        self._flush_handle: Optional[asyncio.Handle] = None
        self._backlog: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._closing = False
        #: True while packets must go through ``send_srtp`` (a backlog waits for the socket to be
        #: writable, or the socket is closing): a ``BatchSink`` reads the batch's copy, set with it
        self.deferring = False
        self._sockname = sock.getsockname()
        self.errors = 0
        self._interval = read_interval()
        self._read_handle: Optional[asyncio.TimerHandle] = None
        loop.add_reader(self._fd, self._read_ready)
        protocol.connection_made(self)

    # ---------------------------------------------------------------- reading

    @property
    def ingress(self) -> Any:
        """Where peers' SRTP is registered for the direct path (``add`` / ``remove``)."""
        return self._ingress

    def _read_ready(self) -> None:
        if self._interval:
            # coalesce (see read_interval): stop watching, drain in a moment, watch again
            self._loop.remove_reader(self._fd)
            self._read_handle = self._loop.call_later(self._interval, self._read_due)
            return
        self._drain()

    def _read_due(self) -> None:
        self._read_handle = None
        if self._closing:
            return
        self._drain()
        self._loop.add_reader(self._fd, self._read_ready)

    def _drain(self) -> None:
        read = self._ingress.read
        fd = self._fd
        for _ in range(READS_PER_WAKEUP):
            # the protocol's handler looked up per batch: aiortc_bridge's SRTP fast ingress
            # replaces aioice's once DTLS is up (for packets the Ingress does not take)
            if read(fd, 64, self._protocol.datagram_received, self._stamp) < 64 or self._closing:
                break
        self.flush()

    # ---------------------------------------------------------------- writing

    def sendto(self, data: bytes, addr: Any = None) -> None:  # type: ignore[override]
        """Control traffic (STUN, DTLS, TURN-less anything): sent now, in order."""
        if self._closing:
            return
        if self._batch.pending:
            self.flush()
        if self._backlog:
            self._backlog.append((bytes(data), addr))
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._defer([(bytes(data), addr)])
        except OSError:
            self.errors += 1  # unreachable and the like: lost, as on the wire

    def send_srtp(self, ctx: Any, packet: bytes, dest: Any, rtcp: bool = False) -> None:
        """Protect ``packet`` with ``ctx`` and queue it for this turn's batch."""
        if self._closing:
            return
        if self._backlog:
            protected = ctx.protect_rtcp(packet) if rtcp else ctx.protect(packet)
            if protected is not None:
                self._backlog.append((protected, dest.address))
            return
        batch = self._batch
        if not batch.add_srtp(ctx, packet, dest, rtcp):
            self.flush()
            if self._backlog:
                self.send_srtp(ctx, packet, dest, rtcp)
                return
            batch.add_srtp(ctx, packet, dest, rtcp)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush_soon)

    def sink(self, ctx: Any, dest: Any) -> Any:
        """A ``BatchSink``: per-packet ``send`` into this socket's batch (native: all in C)."""
        return self._io.BatchSink(self._batch, ctx, dest, self)

    def schedule_flush(self) -> None:
        """The batch got its first packet this turn: send it when the turn ends."""
        if self._flush_handle is None and not self._closing:
            self._flush_handle = self._loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_handle = None
        self.flush()

    def flush(self) -> None:
        """Send the batch now (the end of a read does this, and the turn's end)."""
        batch = self._batch
        if not batch.pending or self._closing:
            return
        if batch.flush(self._fd):
            self._defer(batch.drain())

    def _defer(self, datagrams: list[tuple[bytes, Any]]) -> None:
        if not self._backlog:
            self._loop.add_writer(self._fd, self._write_ready)
        self._backlog.extend(datagrams)
        self._set_deferring(bool(self._backlog) or self._closing)

    def _set_deferring(self, value: bool) -> None:
        self.deferring = self._batch.deferring = value

    def _write_ready(self) -> None:
        backlog = self._backlog
        sock = self._sock
        while backlog:
            data, addr = backlog[0]
            try:
                sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.errors += 1
            backlog.popleft()
        self._loop.remove_writer(self._fd)
        self._set_deferring(self._closing)

    # ---------------------------------------------------------------- transport API

    def get_write_buffer_size(self) -> int:
        return len(self._backlog) + int(self._batch.pending)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self._sockname
        if name == "socket":
            return self._sock
        return default

    @property
    def counters(self) -> dict[str, int]:
        return {
            "recv_calls": self._ingress.rx.calls,
            "datagrams_in": self._ingress.rx.datagrams,
            "datagrams_direct": self._ingress.fast,
            "datagrams_out": self._batch.sent,
            "refused": self._batch.refused,
            "errors": self.errors,
        }

    @property
    def last_refusal(self) -> Optional[tuple[int, int, int]]:
        """What libsrtp last refused to protect toward this peer: ``(status, ssrc, seq)``."""
        refusal: Optional[tuple[int, int, int]] = self._batch.last_refusal
        return refusal

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self.flush()
        self._closing = True
        self._set_deferring(True)
        self._loop.remove_reader(self._fd)
        if self._read_handle is not None:
            self._read_handle.cancel()
            self._read_handle = None
        if self._backlog:
            self._loop.remove_writer(self._fd)
            self._backlog.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._loop.call_soon(self._finish)

    def abort(self) -> None:
        self.close()

    def _finish(self) -> None:
        try:
            self._protocol.connection_lost(None)
        finally:
            self._sock.close()


def open_media_socket(
    loop: asyncio.AbstractEventLoop, protocol: Any, address: str, port: int, stamp: Optional[ArrivalStamp] = None
) -> MediaSocket:
    """Bind ``address:port`` (0: any free port) for ``protocol``; OSError if taken. With
    ``stamp``, each datagram's kernel arrival time is published there while it is delivered."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # the shared port holds every peer's input between two wakeups: ask for the size past
        # net.core.rmem_max / wmem_max where allowed (the *FORCE options need CAP_NET_ADMIN)
        for forced, option, size in (
            (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF, SOCKET_RCVBUF),
            (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF, SOCKET_SNDBUF),
        ):
            for opt in (forced, option):
                if opt is None:
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, size)
                    break
                except OSError:
                    continue
        if stamp is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return MediaSocket(loop, sock, protocol, stamp)

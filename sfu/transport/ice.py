"""ICE the way a deployment needs it (aioice has none of this): a UDP port
range, one single shared UDP port, an announced public IP and the interfaces
to gather on; and which remote candidates a client may make us check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import struct
from typing import Any, Optional

from aioice import Candidate, Connection

from . import aiortc_bridge as bridge
from ..config import SfuConfig
from .media_socket import ArrivalStamp, open_media_socket

logger = logging.getLogger(__name__)

_STUN_MAGIC = b"\x21\x12\xa4\x42"
_STUN_USERNAME = 0x0006
# a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
_CANDIDATE_LINE = re.compile(r"^a=candidate:\S+\s+\d+\s+\S+\s+\d+\s+(\S+)\s", re.IGNORECASE)


def remote_address_allowed(address: str, *, allow_private: bool) -> bool:
    """May the server send connectivity checks to ``address`` (a remote candidate's host)?

    Only globally routable addresses, unless ``allow_private``: loopback, RFC 1918,
    link-local, CGNAT, ULA and the like would let a client point the server at its own
    network. Hostnames (mDNS ``.local`` names) resolve to such addresses: refused too.
    """
    if allow_private:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


def filter_remote_candidates(sdp: str, *, allow_private: bool) -> str:
    """``sdp`` without the candidate lines :func:`remote_address_allowed` refuses.

    Done on the client's SDP before aiortc sees it, so aioice never pairs (nor checks)
    those addresses; the client still reaches us, and we learn its real address as a
    peer-reflexive candidate from its own checks.
    """
    if allow_private:
        return sdp
    kept = []
    for line in sdp.splitlines(keepends=True):
        match = _CANDIDATE_LINE.match(line)
        if match is None or remote_address_allowed(match.group(1), allow_private=False):
            kept.append(line)
        else:
            logger.debug("dropping remote candidate at %s", match.group(1))
    return "".join(kept)


def stun_local_ufrag(data: bytes) -> Optional[str]:
    """The receiver's ufrag from a STUN request's USERNAME ("ours:theirs")."""
    if len(data) < 20 or data[0] > 1 or data[4:8] != _STUN_MAGIC:
        return None
    end = min(len(data), 20 + struct.unpack_from("!H", data, 2)[0])
    pos = 20
    while pos + 4 <= end:
        attr, length = struct.unpack_from("!HH", data, pos)
        if attr == _STUN_USERNAME:
            raw = data[pos + 4 : pos + 4 + length]
            return raw.split(b":", 1)[0].decode("utf-8", "replace")
        pos += 4 + length + (-length & 3)
    return None


class _MuxedTransport:
    """What one aioice protocol sees of the shared socket."""

    def __init__(self, mux: UdpMux, protocol: Any) -> None:
        self._mux = mux
        self._protocol = protocol
        self._closed = False

    def sendto(self, data: bytes, addr: Any) -> None:
        self._mux.learn(addr, self._protocol)
        if self._mux.transport is not None:
            self._mux.transport.sendto(data, addr)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._mux.detach(self._protocol)
            self._protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self._closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self._mux.sockname
        return default


class UdpMux(asyncio.DatagramProtocol):
    """One UDP socket shared by every ICE connection: STUN requests are
    routed by the USERNAME's local ufrag, everything else by source address."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.DatagramTransport] = None
        self.sockname: tuple[str, int] = ("", 0)
        self._by_ufrag: dict[str, Any] = {}
        self._by_addr: dict[tuple[str, int], Any] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        name = transport.get_extra_info("sockname")
        self.sockname = (name[0], name[1])

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        key = (addr[0], addr[1])
        ufrag = stun_local_ufrag(data) if data[:1] in (b"\x00", b"\x01") else None
        protocol = self._by_ufrag.get(ufrag) if ufrag else None
        if protocol is not None:
            self._by_addr[key] = protocol
        else:
            protocol = self._by_addr.get(key)
        if protocol is not None:
            protocol.datagram_received(data, key)

    def attach(self, protocol: Any, ufrag: str) -> None:
        self._by_ufrag[ufrag] = protocol
        protocol.connection_made(_MuxedTransport(self, protocol))

    def learn(self, addr: Any, protocol: Any) -> None:
        self._by_addr.setdefault((addr[0], addr[1]), protocol)

    def rekey(self, old_ufrag: str, new_ufrag: str) -> None:
        """An ICE restart gave a connection a new local ufrag: route its checks by the new one."""
        protocol = self._by_ufrag.pop(old_ufrag, None)
        if protocol is not None:
            self._by_ufrag[new_ufrag] = protocol

    def detach(self, protocol: Any) -> None:
        for ufrag in [k for k, v in self._by_ufrag.items() if v is protocol]:
            del self._by_ufrag[ufrag]
        for addr in [k for k, v in self._by_addr.items() if v is protocol]:
            del self._by_addr[addr]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class IceSockets:
    """Host candidate policy shared by one engine's peer connections."""

    def __init__(self, config: SfuConfig) -> None:
        self.config = config
        self._muxes: dict[str, UdpMux] = {}
        #: the kernel arrival time of the datagram our sockets are delivering now
        self.stamp = ArrivalStamp()
        self._mux_lock = asyncio.Lock()
        self._cursor = 0

    @property
    def active(self) -> bool:
        # always: host candidates are our own sockets (sfu.transport.media_socket), whatever the
        # configuration, so the packet path is batched and the same on every event loop
        return True

    def prepare(self, connection: Connection) -> None:
        if self.active:
            bridge.install_host_gatherer(connection, self._gather)

    def addresses(self) -> list[str]:
        wanted = self.config.interfaces
        if not wanted:
            return bridge.host_addresses(self.config.use_ipv6)
        out: list[str] = []
        for item in wanted:
            try:
                ipaddress.ip_address(item)
                out.append(item)
                continue
            except ValueError:
                pass
            import ifaddr  # aioice's own dependency

            for adapter in ifaddr.get_adapters():
                if adapter.nice_name == item or adapter.name == item:
                    for ip in adapter.ips:
                        if isinstance(ip.ip, str):
                            out.append(ip.ip)
                        elif self.config.use_ipv6 and not ip.ip[0].startswith("fe80"):
                            out.append(ip.ip[0])
        return out

    def rekey(self, old_ufrag: str, new_ufrag: str) -> None:
        """After an ICE restart (``sfu.transport.ice_restart``): the shared ports learn the new ufrag."""
        for mux in self._muxes.values():
            mux.rekey(old_ufrag, new_ufrag)

    async def close(self) -> None:
        for mux in self._muxes.values():
            mux.close()
        self._muxes.clear()

    async def _gather(self, connection: Connection, component: int) -> list[Candidate]:
        loop = asyncio.get_running_loop()
        port_range = self.config.udp_port_range
        candidates = []
        for address in self.addresses():
            protocol = bridge.stun_protocol(connection)
            if port_range is None or port_range[0] == port_range[1]:
                # one socket for every peer connection: a wakeup's reads and the packets
                # they fan out to every subscriber each go in one system call
                mux = await self._mux(address, port_range[0] if port_range is not None else 0)
                if mux is None:
                    continue
                mux.attach(protocol, bridge.local_username(connection))
                bound = mux.sockname
            else:
                bound_or_none = await self._bind(loop, protocol, address, port_range)
                if bound_or_none is None:
                    continue
                bound = bound_or_none
            if self.config.announced_port:
                # clients send to a forwarder on that port, which sends on to ours
                bound = (bound[0], self.config.announced_port)
            candidates.append(
                bridge.register_host_protocol(connection, protocol, component, bound, self.config.announced_ip)
            )
        return candidates

    async def _bind(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: Any,
        address: str,
        port_range: Optional[tuple[int, int]],
    ) -> Optional[tuple[str, int]]:
        if port_range is None:
            ports = [0]
        else:
            lo, hi = port_range
            count = hi - lo + 1
            # start where the last allocation ended: fewer collisions
            start = self._cursor % count
            ports = [lo + (start + i) % count for i in range(count)]
        for port in ports:
            try:
                transport = open_media_socket(loop, protocol, address, port, self.stamp)
            except OSError:
                continue
            if port_range is not None:
                self._cursor = port - port_range[0] + 1
            name = transport.get_extra_info("sockname")
            return (name[0], name[1])
        logger.error("no free UDP port on %s in %s", address, port_range)
        return None

    async def _mux(self, address: str, port: int) -> Optional[UdpMux]:
        async with self._mux_lock:
            mux = self._muxes.get(address)
            if mux is None or mux.transport is None:
                loop = asyncio.get_running_loop()
                mux = UdpMux()
                try:
                    open_media_socket(loop, mux, address, port, self.stamp)
                except OSError as exc:
                    logger.error("cannot bind %s:%d: %s", address, port, exc)
                    return None
                self._muxes[address] = mux
            return mux

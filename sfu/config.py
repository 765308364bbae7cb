"""Configuration of the media engine (plain data, validated on creation)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional


@dataclass
class SfuConfig:
    """Settings for an :class:`~sfu.engine.Engine`.

    ``ice_servers`` are the STUN/TURN servers the *server's own* peer
    connections use (normally none: the SFU has a reachable address). The
    servers handed to clients come from :func:`sfu.transport.turn.ice_servers`.
    """

    #: STUN/TURN servers for the server side: [{"urls": ..., "username": ..., "credential": ...}]
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    #: UDP port range (inclusive) for ICE host candidates, one port per peer connection;
    #: ``(p, p)``: that one port shared by every peer connection; None: one ephemeral port
    #: shared by every peer connection (so reads and writes batch across peers).
    udp_port_range: Optional[tuple[int, int]] = None
    #: Public IP written into host candidates instead of the bound address (1:1 NAT).
    announced_ip: Optional[str] = None
    #: Port written into host candidates instead of the bound one: clients reach the SFU
    #: through a forwarder on that port (the impairment relay of the tests and benchmarks,
    #: ``benchmarks/impair.py``; a NAT's port forward). Needs one shared port
    #: (``udp_port_range=(p, p)``), the one the forwarder sends to. None: the bound port.
    announced_port: Optional[int] = None
    #: Interface names ("eth0") or local IP addresses to gather on; empty = all.
    interfaces: list[str] = field(default_factory=list)
    #: Gather IPv6 candidates too.
    use_ipv6: bool = False
    #: Keep remote candidates at loopback, private (RFC 1918, ULA, CGNAT), link-local or other
    #: non-global addresses, and mDNS names (which resolve to such addresses). Off: a client
    #: cannot make the server send connectivity checks into its own network (127.0.0.1:6379
    #: ...); clients behind NAT still connect through their server-reflexive, relay and
    #: peer-reflexive candidates. Turn on for local development and tests on one machine/LAN.
    allow_private_candidates: bool = False
    max_producers_per_peer: int = 3
    max_message_bytes: int = 65536
    max_messages_per_second: int = 50
    #: Violations of the message rate (in a row of windows) before closing 1008.
    max_rate_violations: int = 3
    max_sdp_bytes: int = 65536
    max_m_lines: int = 16
    max_chat_chars: int = 2000
    #: Seconds a server-initiated offer may wait for its answer.
    answer_timeout: float = 20.0
    #: Minimum seconds between two keyframe requests sent to one publisher (per layer). A subscriber
    #: arriving just after a keyframe waits up to this long for its first frame: at 1.0 the 5x5
    #: benchmark's join -> first frame p95 was 1.0 s, at 0.5 it was 0.50-0.63 s for 25 % more PLIs.
    keyframe_request_interval: float = 0.5
    #: RTP packets kept per video consumer for NACK retransmissions (power of 2).
    nack_history: int = 1024
    #: Opus RED (RFC 2198, ``red/48000/2``) negotiated with clients that offer it (Chromium):
    #: publishers send each Opus frame again in the next packet, subscribers that took RED get
    #: it as sent, the others the plain Opus frame (sfu/rtp/red.py). False: Opus only.
    audio_red: bool = True
    #: ``usedtx=1`` in the Opus parameters the server sends to a client whose own offer asks
    #: for it (the room page's do): that publisher then sends a packet every 400 ms during
    #: silence instead of every 20 ms. False: never asked, whatever the client says.
    opus_dtx: bool = True

    def for_worker(self, index: int, count: int) -> SfuConfig:
        """This config for media worker ``index`` of ``count`` (one process per core, as
        mediasoup runs one worker per core): each worker gets its own slice of the port
        range, so no two workers ever bind the same port and a peer's packets always
        reach the worker that holds its room. A single shared port ``(p, p)`` becomes
        ``p + index`` for each worker; no range stays one ephemeral port per worker."""
        if count <= 1 or self.udp_port_range is None:
            return self
        announced = self.announced_port + index if self.announced_port else self.announced_port
        if not 0 <= index < count:
            raise TypeError(f"worker index {index} not in 0..{count - 1}")
        lo, hi = self.udp_port_range
        if lo == hi:
            if lo + count - 1 > 65535:
                raise TypeError(f"no room above port {lo} for {count} workers")
            return replace(self, udp_port_range=(lo + index, lo + index), announced_port=announced)
        size = hi - lo + 1
        if size < count:
            raise TypeError(f"udp_port_range {self.udp_port_range!r} has fewer ports than {count} workers")
        return replace(self, udp_port_range=(lo + index * size // count, lo + (index + 1) * size // count - 1))

    def __post_init__(self) -> None:
        if self.udp_port_range is not None:
            lo, hi = self.udp_port_range
            if not (1 <= lo <= hi <= 65535):
                raise TypeError(f"invalid udp_port_range {self.udp_port_range!r}")
        if self.announced_port is not None and not 1 <= self.announced_port <= 65535:
            raise TypeError(f"invalid announced_port {self.announced_port!r}")
        if self.max_producers_per_peer < 1:
            raise TypeError("max_producers_per_peer must be >= 1")
        if self.nack_history & (self.nack_history - 1):
            raise TypeError("nack_history must be a power of two")
        for server in self.ice_servers:
            if not isinstance(server, dict) or "urls" not in server:
                raise TypeError(f"invalid ice server {server!r}")

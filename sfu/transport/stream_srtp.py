"""One outbound SRTP context per SSRC, keyed like the transport's own.

aiortc keys one outbound ``srtp_t`` per DTLS transport (``ssrc_any_outbound``) with a 1,024-packet
replay window. libsrtp, as pylibsrtp bundles it, finds a packet's stream by walking a linked list
of stream contexts, one cache miss per node, and shifts the whole window on every packet: at 5 x 5
the walk alone was 6.5 % of the SFU's event loop (docs/benchmarks.md, session 9). A context that
holds a single stream finds it first, and a 128-packet window is all a sender needs (outbound, it
only notices a repeated index, which retransmissions are allowed).

Safety: a (key, SSRC, index) must never be protected by two contexts with different payloads
(AES-GCM would reuse its nonce). So for the life of a DTLS transport every RTP packet of one SSRC
goes through the one context this object keeps for it, on every egress path (the socket's batch
and the plain datagram egress alike, and across ICE restarts); RTCP stays on aiortc's session, whose
SRTCP keys and indexes are separate from SRTP's.
"""

from __future__ import annotations

import struct
from typing import Any

from pylibsrtp import Policy, Session

#: the outbound replay window (libsrtp's minimum is 64)
WINDOW = 128

_SSRC = struct.Struct("!I")


class StreamContexts:
    """SSRC -> its own outbound SRTP session (``context`` for the native batch, ``protect`` for the
    datagram egress), created on the SSRC's first packet and kept for the transport's life."""

    def __init__(self, key: bytes, profile: int, make_context: Any) -> None:
        self._key = key
        self._profile = profile
        self._make_context = make_context  # fastio's SrtpContext (native or Python twin)
        self._sessions: dict[int, Session] = {}
        self._contexts: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def session(self, ssrc: int) -> Session:
        session = self._sessions.get(ssrc)
        if session is None:
            policy = Policy(key=self._key, ssrc_type=Policy.SSRC_SPECIFIC, ssrc_value=ssrc, srtp_profile=self._profile)
            policy.allow_repeat_tx = True  # a retransmission may repeat an index, as aiortc allows
            policy.window_size = WINDOW
            session = self._sessions[ssrc] = Session(policy)
        return session

    def context(self, ssrc: int) -> Any:
        """The ``SrtpContext`` for ``ssrc``'s packets (what a ``BatchSink`` protects with)."""
        ctx = self._contexts.get(ssrc)
        if ctx is None:
            ctx = self._contexts[ssrc] = self._make_context(self.session(ssrc))
        return ctx

    def protect(self, packet: bytes) -> bytes:
        """``pylibsrtp.Session.protect`` semantics (raises when refused), by the packet's SSRC."""
        if len(packet) < 12:
            raise ValueError("not an RTP packet")
        return self.session(_SSRC.unpack_from(packet, 8)[0]).protect(packet)

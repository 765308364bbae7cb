"""The SFU's outbound SRTP session, keyed again with a narrower window (``narrow_tx_window``):
the other end still decrypts everything it sends, in either DTLS role, and a retransmission
on the media SSRC itself is still refused once it falls outside the window."""

from __future__ import annotations

import asyncio
import struct

import pylibsrtp
import pytest
from aiortc import RTCPeerConnection

from sfu.transport import aiortc_bridge as bridge


def rtp(seq: int, ssrc: int = 0x1234, payload: bytes = b"\x10" * 200) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, ssrc) + payload


async def _connected_pair(sfu_role: str) -> tuple[RTCPeerConnection, RTCPeerConnection, object, object]:
    """Two aiortc ends over loopback; the SFU end's outbound window narrowed before its handshake."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    offerer.createDataChannel("x")
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    sfu_end = answerer.sctp.transport  # type: ignore[union-attr]
    other_end = offerer.sctp.transport  # type: ignore[union-attr]
    if sfu_role == "server":
        bridge.prefer_gcm(sfu_end)
    bridge.narrow_tx_window(sfu_end)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    ends = [sfu_end, other_end]
    while not all(d.state == "connected" for d in ends):
        await asyncio.sleep(0.05)
    assert sfu_end._role == sfu_role
    return offerer, answerer, sfu_end, other_end


@pytest.mark.parametrize("sfu_role", ["server", "client"])
async def test_what_the_narrowed_session_protects_the_other_end_decrypts(sfu_role: str) -> None:
    offerer, answerer, sfu_end, other_end = await asyncio.wait_for(_connected_pair(sfu_role), 30)
    try:
        for seq in (1000, 1001, 1002, 1500):
            packet = rtp(seq)
            assert other_end._rx_srtp.unprotect(sfu_end._tx_srtp.protect(packet)) == packet
        rtcp = struct.pack("!BBHI", 0x80, 200, 6, 0x1234) + b"\x00" * 20  # a sender report
        assert other_end._rx_srtp.unprotect_rtcp(sfu_end._tx_srtp.protect_rtcp(rtcp)) == rtcp
    finally:
        await offerer.close()
        await answerer.close()


async def test_a_retransmission_older_than_the_window_is_refused_and_a_recent_one_is_not() -> None:
    offerer, answerer, sfu_end, other_end = await asyncio.wait_for(_connected_pair("server"), 30)
    try:
        tx = sfu_end._tx_srtp
        tx.protect(rtp(5000))
        tx.protect(rtp(5000 + bridge.TX_SRTP_WINDOW + 50))
        again = tx.protect(rtp(5000 + bridge.TX_SRTP_WINDOW))  # within the window: the same bytes again
        assert other_end._rx_srtp.unprotect(again) == rtp(5000 + bridge.TX_SRTP_WINDOW)
        with pytest.raises(pylibsrtp.Error):
            tx.protect(rtp(5000))  # behind the window: libsrtp cannot tell it was sent, so it refuses
    finally:
        await offerer.close()
        await answerer.close()

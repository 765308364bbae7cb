"""The SRTP profile a DTLS handshake chose is readable (the benchmarks report it beside their
figures); fails loudly if an aiortc upgrade moves what ``sfu.transport.dtls_profile`` reads."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection

from sfu.transport import dtls_profile

KNOWN = {"SRTP_AEAD_AES_256_GCM", "SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_SHA1_80"}


async def test_both_ends_read_the_profile_their_handshake_chose() -> None:
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.createDataChannel("x")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        ends = [offerer.sctp.transport, answerer.sctp.transport]  # type: ignore[union-attr]
        for dtls in ends:
            dtls_profile.check_compatibility(dtls)
            assert dtls_profile.srtp_profile(dtls) is None  # no handshake yet
        await offerer.setRemoteDescription(answerer.localDescription)

        async def connected() -> None:
            while not all(d.state == "connected" for d in ends):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(connected(), 30)
        chosen = {dtls_profile.srtp_profile(d) for d in ends}
        assert len(chosen) == 1 and chosen <= KNOWN, chosen
    finally:
        await offerer.close()
        await answerer.close()

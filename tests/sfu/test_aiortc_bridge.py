"""Fails loudly when an aiortc/aioice upgrade breaks a private detail we use."""

from __future__ import annotations

import inspect

import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport

from sfu.transport import aiortc_bridge as bridge
from sfu.transport.media_transport import MediaTransport


def test_pinned_minor_version() -> None:
    assert aiortc.__version__.startswith("1.16."), (
        f"aiortc {aiortc.__version__}: re-check sfu/transport/aiortc_bridge.py"
    )


def test_every_private_name_still_exists() -> None:
    bridge.check_compatibility()


def test_signatures_we_replace_are_unchanged() -> None:
    assert list(inspect.signature(RTCRtpReceiver.receive).parameters) == ["self", "parameters"]
    assert list(inspect.signature(RTCRtpSender.send).parameters) == ["self", "parameters"]
    assert list(inspect.signature(RTCDtlsTransport._handle_rtp_data).parameters) == ["self", "data", "arrival_time_ms"]
    assert list(inspect.signature(RTCDtlsTransport._handle_rtcp_data).parameters) == ["self", "data"]
    # aiortc must still route decrypted packets through these two hooks
    source = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "self._handle_rtp_data(" in source and "self._handle_rtcp_data(" in source
    # and still start senders/receivers through send()/receive()
    connect = inspect.getsource(RTCPeerConnection._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    assert "sender.send(" in connect and "receiver.receive(" in connect


async def test_adopted_transceiver_never_starts_codecs() -> None:
    pc = RTCPeerConnection()
    t = pc.addTransceiver("video", direction="sendrecv")
    got: list[str] = []
    assert bridge.adopt_transceiver(t, lambda p: got.append("recv"), lambda p: got.append("send"))
    assert not bridge.adopt_transceiver(t, lambda p: None, lambda p: None)  # idempotent
    await t.receiver.receive(object())  # type: ignore[arg-type]
    await t.sender.send(object())  # type: ignore[arg-type]
    assert got == ["recv", "send"]
    assert not bridge.receiver_has_decoder(t.receiver)
    assert not bridge.sender_has_encoder(t.sender)
    # only this instance changed: a fresh transceiver has aiortc's methods
    other = pc.addTransceiver("audio")
    assert other.receiver.receive.__func__ is RTCRtpReceiver.receive  # type: ignore[attr-defined]
    ssrc, rtx = bridge.sender_ssrcs(t.sender)
    assert isinstance(ssrc, int) and isinstance(rtx, int) and ssrc != rtx
    bridge.set_sender_msid(t.sender, "stream", "track")
    assert (t.sender._stream_id, t.sender._track_id) == ("stream", "track")
    await pc.close()


async def test_transport_interception_and_media_transport() -> None:
    pc = RTCPeerConnection()
    t = pc.addTransceiver("video")
    dtls = t.receiver.transport
    rtp: list[bytes] = []
    rtcp: list[bytes] = []
    assert bridge.intercept_transport(dtls, rtp.append, rtcp.append)
    await dtls._handle_rtp_data(b"rtp", arrival_time_ms=0)
    await dtls._handle_rtcp_data(b"rtcp")
    assert rtp == [b"rtp"] and rtcp == [b"rtcp"]
    assert bridge.connected_path(dtls) is None  # not connected: nothing to install yet
    assert len(bridge.ice_connections(pc)) == 1
    await pc.close()


async def test_media_transport_routes_and_drops_until_connected() -> None:
    pc = RTCPeerConnection()
    dtls = pc.addTransceiver("video").receiver.transport
    unknown: list[bytes] = []
    rtcp: list[bytes] = []
    transport = MediaTransport(on_rtcp=rtcp.append, on_unknown_rtp=unknown.append)
    assert transport.bind(dtls) and not transport.bind(dtls)
    routed: list[bytes] = []
    packet = b"\x80\x60\x00\x01" + b"\x00" * 4 + (0x1234).to_bytes(4, "big") + b"payload"
    transport.route(0x1234, routed.append)
    await dtls._handle_rtp_data(packet, arrival_time_ms=0)  # aiortc's own path reaches the routes too
    await dtls._handle_rtp_data(packet[:8] + (0x99).to_bytes(4, "big") + packet[12:], arrival_time_ms=0)
    await dtls._handle_rtcp_data(b"rtcp")
    assert routed == [packet] and len(unknown) == 1 and rtcp == [b"rtcp"]
    transport.send(b"\x80" * 20)  # not connected: dropped quietly
    transport.send_rtcp(b"\x80" * 20)
    assert not transport.connected and transport.batch_sink is None and transport.errors == 0
    await pc.close()


async def test_reoffers_state_the_negotiated_dtls_role() -> None:
    """Issue 24: aiortc re-offers ``actpass``; Firefox answered the new m-sections of such a
    re-offer with ``active`` and aiortc made the shared (bundled) transport the DTLS server
    while Firefox stayed the server too. ``pin_dtls_setup`` keeps our role in every re-offer."""
    bundled = aiortc.RTCConfiguration(bundlePolicy=aiortc.RTCBundlePolicy.MAX_BUNDLE)  # as sfu.room.peer
    client, server = RTCPeerConnection(bundled), RTCPeerConnection(bundled)
    try:
        client.addTransceiver("audio", direction="sendonly")
        await client.setLocalDescription(await client.createOffer())
        await server.setRemoteDescription(client.localDescription)
        # a first offer has no role yet: actpass stays
        assert bridge.pin_dtls_setup(server, client.localDescription.sdp) == client.localDescription.sdp
        await server.setLocalDescription(await server.createAnswer())
        assert "a=setup:active" in server.localDescription.sdp  # our answer: we are the DTLS client
        await client.setRemoteDescription(server.localDescription)

        server.addTransceiver("video", direction="sendonly")
        reoffer = await server.createOffer()
        assert "a=setup:actpass" in reoffer.sdp  # aiortc's own re-offer
        pinned = bridge.pin_dtls_setup(server, reoffer.sdp)
        assert "a=setup:actpass" not in pinned and pinned.count("a=setup:active") == 2
        await server.setLocalDescription(aiortc.RTCSessionDescription(sdp=pinned, type="offer"))

        # the hazard the pin avoids: one m-section answered `active` flips aiortc to server
        await client.setRemoteDescription(server.localDescription)
        answer = (await client.createAnswer()).sdp
        assert answer.count("a=setup:passive") == 2
        mixed = answer[::-1].replace("a=setup:passive"[::-1], "a=setup:active"[::-1], 1)[::-1]
        await server.setRemoteDescription(aiortc.RTCSessionDescription(sdp=mixed, type="answer"))
        assert bridge.dtls_transports(server)[0]._role == "server"
    finally:
        await client.close()
        await server.close()

"""SDP refused before aiortc parses it."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack

from sfu.errors import SignalingError
from sfu.room.sdp_guard import check_sdp


@pytest.fixture
async def offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(VideoStreamTrack())
    pc.addTrack(AudioStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def refused(sdp: object, code: str = "invalid_sdp", **kwargs: int) -> str:
    with pytest.raises(SignalingError) as info:
        check_sdp(sdp, kind="offer", **kwargs)
    assert info.value.code == code
    return info.value.message


async def test_real_offer_is_accepted(offer: str) -> None:
    assert check_sdp(offer, kind="offer") == offer


async def test_missing_fingerprint(offer: str) -> None:
    sdp = "\r\n".join(line for line in offer.split("\r\n") if not line.startswith("a=fingerprint"))
    assert "fingerprint" in refused(sdp)


async def test_insecure_profile(offer: str) -> None:
    refused(offer.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"))
    refused(offer.replace("UDP/TLS/RTP/SAVPF", "RTP/SAVP"))


async def test_too_large(offer: str) -> None:
    big = offer + "a=x-pad:" + "p" * 70000 + "\r\n"
    refused(big, "sdp_too_large")


async def test_too_many_m_lines(offer: str) -> None:
    head, _, media = offer.partition("m=")
    sections = ("m=" + media).split("m=")[1:]
    many = head + "".join("m=" + sections[0] for _ in range(20))
    refused(many, max_m_lines=16)


async def test_too_many_sending_tracks(offer: str) -> None:
    head, _, media = offer.partition("m=")
    video = "m=" + ("m=" + media).split("m=")[1]
    four = head + "".join(video.replace("a=mid:0", f"a=mid:{i}") for i in range(4))
    refused(four, "too_many_tracks", max_sending=3)


async def test_malformed_lines(offer: str) -> None:
    refused(offer.replace("a=rtpmap:97 VP8/90000", "a=rtpmap:97 VP8"))
    refused(offer.replace("a=rtpmap:97", "a=rtpmap:977"))
    refused(offer.replace("a=group:BUNDLE", "a=group:LS"))
    refused(offer.replace("m=video", "m=application"))
    refused(offer.replace("a=setup:actpass", "a=setup:maybe"))
    refused(offer.replace("v=0", "v=1"))
    refused(offer + "\x00")
    refused(offer.replace("a=mid:0", "a=mid:"))
    refused("é" + offer)
    refused(None)
    refused(42)

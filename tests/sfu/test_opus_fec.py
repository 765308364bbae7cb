"""The server asks publishers for Opus in-band FEC in every description it sends them."""

from __future__ import annotations

from sfu_client import Client

from sfu import Router
from sfu.rtp.opus_fec import asks_dtx, request_fec


def test_fmtp_is_added_or_completed_and_nothing_else_changes() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=rtpmap:96 VP8/90000",
            "",
        ]
    )
    out = request_fec(sdp)
    assert "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" in out
    assert out.replace("a=fmtp:111 minptime=10;useinbandfec=1\r\n", "") == sdp
    assert request_fec(out) == out  # idempotent
    partial = sdp.replace("a=rtpmap:0", "a=fmtp:111 stereo=1\r\na=rtpmap:0")
    assert "a=fmtp:111 stereo=1;useinbandfec=1;minptime=10" in request_fec(partial)


async def test_answers_and_offers_to_a_client_ask_for_fec(router: Router, make_client) -> None:
    a: Client = await make_client("a")
    b: Client = await make_client("b")
    assert a.peer_id and b.peer_id
    await a.wait_frames(b.peer_id, "mic", 5)
    answer = a.of_type("answer")[0]["sdp"]
    offer = a.of_type("offer")[-1]["sdp"]
    for sdp in (answer, offer):
        assert "useinbandfec=1" in sdp


def test_a_description_asks_for_dtx_with_usedtx_on_opus() -> None:
    opus = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    assert asks_dtx(opus + "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n") is True
    assert asks_dtx(opus + "a=fmtp:111 minptime=10;useinbandfec=1\r\n") is False
    assert asks_dtx(opus + "a=fmtp:111 usedtx=0\r\n") is False
    assert asks_dtx("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fmtp:96 usedtx=1\r\n") is None  # no Opus


async def test_dtx_is_asked_of_a_client_whose_offer_asks_for_it(router: Router, make_client) -> None:
    """DTX where the page enables it: the room page's descriptions carry usedtx=1, and only then
    does the server's answer ask that publisher for DTX."""
    plain: Client = await make_client("plain")
    assert "usedtx" not in plain.of_type("answer")[0]["sdp"]
    page: Client = await make_client("page", join=False)
    await page.join(offer=False)
    await page.pc.setLocalDescription(await page.pc.createOffer())
    await page.send(
        {"type": "offer", "sdp": request_fec(page.pc.localDescription.sdp, dtx=True), "sources": page.sources}
    )
    answer = await page.wait_message("answer")
    assert "usedtx=1" in answer["sdp"]
    assert "usedtx" not in plain.of_type("answer")[0]["sdp"]

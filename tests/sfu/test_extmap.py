"""Server re-offers keep the client's header extension ids (browsers refuse renumbering)."""

from __future__ import annotations

from aiortc import RTCSessionDescription

from sfu.rtp.extmap import align_extmap, parse_extmap

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def test_align_rewrites_to_the_negotiated_ids_and_avoids_collisions() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96",
            f"a=extmap:1 {MID}",
            f"a=extmap:2 {LEVEL}",
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            f"a=extmap:1 {MID}",
            f"a=extmap:3 {ABS}",
            "",
        ]
    )
    out = align_extmap(sdp, {LEVEL: 1, MID: 4})
    assert parse_extmap(out) == {MID: 4, LEVEL: 1, ABS: 2}
    assert out.count(f"a=extmap:4 {MID}") == 2


def _renumber(sdp: str) -> str:
    # Chrome's numbering: audio-level 1, abs-send-time 2, mid 4
    ids = {MID: 4, LEVEL: 1, ABS: 2}
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=extmap:"):
            uri = line.split(" ", 1)[1]
            line = f"a=extmap:{ids[uri]} {uri}"
        out.append(line)
    return "\r\n".join(out)


async def test_server_offer_keeps_client_ids(make_client) -> None:
    first = await make_client("alice", join=False)
    await first.join(offer=False)
    await first.pc.setLocalDescription(await first.pc.createOffer())
    munged = _renumber(first.pc.localDescription.sdp)
    count = first._answers_applied
    await first.send({"type": "offer", "sdp": munged})
    await first.wait_for(lambda: first._answers_applied > count)
    await make_client("bob")
    offer = await first.wait_message("offer")
    ids = parse_extmap(offer["sdp"])
    assert ids[MID] == 4 and ids[LEVEL] == 1 and ids[ABS] == 2
    assert isinstance(RTCSessionDescription(offer["sdp"], "offer"), RTCSessionDescription)

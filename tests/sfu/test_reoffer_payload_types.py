"""A server re-offer does not change what the publisher's payload types mean before it is
answered.

aiortc's ``createOffer`` resets every transceiver's codecs to its own numbering (VP8 97, RTX
98), and the connect step after ``setLocalDescription`` hands those out against the previous
remote description. A browser that negotiated Chrome's numbers (VP8 96, RTX 97) keeps sending
RTX on 97 until it answers; the SFU took 97 for VP8 in that window, forwarded a
retransmission with the RTX stream's sequence numbers to every subscriber, and libsrtp's
replay window toward each of them jumped ahead: every later packet of that camera was
refused as too old, and the learners saw one frame, then a frozen tile (CI, session 10).
"""

from __future__ import annotations

import asyncio
import re

from sfu import Router
from sfu_client import Client


def chrome_numbers(sdp: str) -> str:
    """The video section of an aiortc offer with Chromium's payload types: every dynamic
    number one lower (VP8 96, its RTX 97, ...), as a browser's first offer has them."""
    head, sep, video = sdp.partition("m=video")
    if not sep:
        return sdp

    def down(match: re.Match[str]) -> str:
        return str(int(match.group(0)) - 1)

    lines = []
    for line in video.split("\r\n"):
        if line.startswith(" ") and "RTP/SAVPF" in line:  # the m= line's payload list
            proto, _, pts = line.partition("RTP/SAVPF ")
            line = proto + "RTP/SAVPF " + " ".join(str(int(p) - 1) for p in pts.split())
        elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            line = re.sub(r"(?<=:)\d+", down, line, count=1)
            line = re.sub(r"(?<=apt=)\d+", down, line)
        lines.append(line)
    return head + sep + "\r\n".join(lines)


async def test_a_reoffer_keeps_the_publishers_rtx_until_it_is_answered(router: Router, make_client) -> None:
    mentor: Client = await make_client("mentor", join=False, audio=False)
    mentor.munge_offer = chrome_numbers
    await mentor.join()
    peer = router.peers[mentor.peer_id]
    await mentor.wait_for(lambda: any(p.kind == "video" for p in peer.producers.values()))
    camera = next(p for p in peer.producers.values() if p.kind == "video")
    await mentor.wait_for(lambda: camera.forwarder.rtx_apt.get(97) == 96)

    # a learner joins: the server offers the mentor the learner's tracks, and the mentor is
    # slow to answer (a busy browser)
    mentor.hold_answers = asyncio.Event()
    offers = len(mentor.of_type("offer"))
    learner = await make_client("learner", audio=False)
    await mentor.wait_for(lambda: len(mentor.of_type("offer")) > offers)
    await asyncio.sleep(0.5)  # aiortc's connect step after setLocalDescription has run
    assert router.peers[mentor.peer_id].pc.signalingState == "have-local-offer"
    assert camera.forwarder.rtx_apt.get(97) == 96, "97 is still the mentor's RTX, not VP8"
    assert [c.payloadType for c in camera.codecs if c.mimeType.lower() == "video/vp8"][:1] == [96]

    # answered: the room goes on, and the learner sees the mentor
    mentor.hold_answers.set()
    await learner.wait_frames(mentor.peer_id, "camera", 5)
    assert camera.forwarder.rtx_apt.get(97) == 96

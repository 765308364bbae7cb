"""Server re-offers keep the payload types a browser negotiated (sfu/rtp/payload_types.py):
a renumbered codec makes Chromium and Firefox rebuild their send streams (issue 24)."""

from __future__ import annotations

import re

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu.rtp.payload_types import keep_payload_types

# aiortc's re-offer after a Chromium mentor's first offer (audio mid 0, camera mid 1) and two
# new m-sections toward the mentor (a learner's microphone and camera)
OFFER = (
    "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0 1 2 3",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8",
            "a=mid:0",
            "a=recvonly",
            "a=rtpmap:96 opus/48000/2",
            "a=fmtp:96 useinbandfec=1",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
            "a=mid:1",
            "a=recvonly",
            "a=rtpmap:97 VP8/90000",
            "a=rtcp-fb:97 nack",
            "a=rtcp-fb:97 transport-cc",
            "a=rtpmap:98 rtx/90000",
            "a=fmtp:98 apt=97",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8",
            "a=mid:2",
            "a=sendonly",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98 99 100",
            "a=mid:3",
            "a=sendonly",
            "a=rtpmap:97 VP8/90000",
            "a=rtcp-fb:97 nack pli",
            "a=rtpmap:98 rtx/90000",
            "a=fmtp:98 apt=97",
            "a=rtpmap:99 H264/90000",
            "a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            "a=rtpmap:100 rtx/90000",
            "a=fmtp:100 apt=99",
        ]
    )
    + "\r\n"
)


def codec(mime: str, clock: int, pt: int, **params: object) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType=mime, clockRate=clock, payloadType=pt, parameters=dict(params))


# what Chromium's first offer negotiated: Opus 111, VP8 96 with RTX 97
CHROMIUM = {
    "0": [codec("audio/opus", 48000, 111), codec("audio/PCMU", 8000, 0)],
    "1": [codec("video/VP8", 90000, 96), codec("video/rtx", 90000, 97, apt=96)],
}


def table(sdp: str) -> dict[str, dict[int, str]]:
    """mid -> {payload type: codec name (rtx as rtx>apt's name)} of every m-section."""
    out: dict[str, dict[int, str]] = {}
    for section in re.split(r"\r\n(?=m=)", sdp)[1:]:
        mid = re.search(r"a=mid:(\S+)", section).group(1)  # type: ignore[union-attr]
        names = {int(p): n for p, n in re.findall(r"a=rtpmap:(\d+) ([^/]+)/", section)}
        apts = {int(p): int(a) for p, a in re.findall(r"a=fmtp:(\d+) apt=(\d+)", section)}
        fmts = [int(f) for f in section.split("\r\n")[0].split(" ")[3:]]
        assert sorted(fmts) == sorted(names), section
        out[mid] = {p: f"rtx>{names[apts[p]]}" if n == "rtx" else n for p, n in names.items()}
    return out


def test_negotiated_numbers_are_kept_and_new_sections_agree_with_them() -> None:
    got = table(keep_payload_types(OFFER, CHROMIUM))
    assert got["0"] == {111: "opus", 0: "PCMU", 8: "PCMA"}
    assert got["1"] == {96: "VP8", 97: "rtx>VP8"}
    # the learner's m-sections use the same numbers for the same codecs
    assert got["2"] == {111: "opus", 0: "PCMU", 8: "PCMA"}
    assert got["3"][96] == "VP8" and got["3"][97] == "rtx>VP8"
    # one payload type, one codec, across the BUNDLE group
    seen: dict[int, str] = {}
    for section in got.values():
        for pt, name in section.items():
            assert seen.setdefault(pt, name) == name, (pt, name, seen[pt])


def test_feedback_and_apt_follow_the_new_numbers() -> None:
    out = keep_payload_types(OFFER, CHROMIUM)
    video = re.split(r"\r\n(?=m=)", out)[2]
    assert video.startswith("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n")
    assert "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 transport-cc" in video
    assert "a=fmtp:97 apt=96" in video
    h264 = re.split(r"\r\n(?=m=)", out)[4]
    pt = int(re.search(r"a=rtpmap:(\d+) H264", h264).group(1))  # type: ignore[union-attr]
    assert f"apt={pt}" in h264 and pt not in (96, 97, 111, 0, 8)


def test_firefox_numbers_and_nothing_negotiated() -> None:
    firefox = {
        "0": [codec("audio/opus", 48000, 109)],
        "1": [codec("video/VP8", 90000, 120), codec("video/rtx", 90000, 124, apt=120)],
    }
    got = table(keep_payload_types(OFFER, firefox))
    assert got["1"] == {120: "VP8", 124: "rtx>VP8"} and got["2"][109] == "opus"
    assert 96 in got["3"] or 120 in got["3"]
    assert got["3"].get(120) == "VP8"
    assert keep_payload_types(OFFER, {}) == OFFER

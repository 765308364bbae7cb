"""Checks an SDP before aiortc parses it.

aiortc's parser trusts its input (IndexError, KeyError, ValueError,
AssertionError on mutated SDP) and accepts some insecure variants; this
guard refuses, with a ``SignalingError``, anything outside the small
WebRTC subset the SFU serves: BUNDLEd UDP/TLS/RTP/SAVPF audio/video with a
DTLS fingerprint, a bounded number of m-lines and sending tracks.
"""

from __future__ import annotations

import re

from ..errors import SignalingError

_FINGERPRINT = re.compile(
    r"^a=fingerprint:(sha-1|sha-224|sha-256|sha-384|sha-512) ([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+)$", re.I
)
_MLINE = re.compile(r"^m=(audio|video) (\d{1,5})(/\d+)? UDP/TLS/RTP/SAVPF( \d{1,3})+$")
_RTPMAP = re.compile(r"^a=rtpmap:(\d{1,3}) [A-Za-z0-9_.\-]+/\d{1,6}(/\d{1,2})?$")
_FMTP = re.compile(r"^a=fmtp:(\d{1,3}) \S.*$")
_RTCPFB = re.compile(r"^a=rtcp-fb:(\d{1,3}|\*) \S.*$")
_EXTMAP = re.compile(r"^a=extmap:(\d{1,3})(/(sendonly|recvonly|sendrecv|inactive))? \S+( \S.*)?$")
_SSRC = re.compile(r"^a=ssrc:(\d{1,10}) [A-Za-z\-]+(:.*)?$")
_SSRC_GROUP = re.compile(r"^a=ssrc-group:[A-Za-z]+( \d{1,10})+$")
_MID = re.compile(r"^a=mid:[A-Za-z0-9_.\-]{1,16}$")
_CANDIDATE = re.compile(
    r"^a=candidate:\S+ \d{1,3} (udp|tcp|UDP|TCP) \d{1,10} \S+ \d{1,5} typ (host|srflx|prflx|relay)( \S+ \S+)*$"
)
_ICE_UFRAG = re.compile(r"^a=ice-ufrag:[A-Za-z0-9+/]{4,256}$")
_ICE_PWD = re.compile(r"^a=ice-pwd:[A-Za-z0-9+/]{22,256}$")
_SETUP = re.compile(r"^a=setup:(actpass|active|passive)$")
_DIRECTIONS = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")
_CHECKED = {
    "a=rtpmap:": _RTPMAP,
    "a=fmtp:": _FMTP,
    "a=rtcp-fb:": _RTCPFB,
    "a=extmap:": _EXTMAP,
    "a=ssrc:": _SSRC,
    "a=ssrc-group:": _SSRC_GROUP,
    "a=mid:": _MID,
    "a=candidate:": _CANDIDATE,
    "a=ice-ufrag:": _ICE_UFRAG,
    "a=ice-pwd:": _ICE_PWD,
    "a=setup:": _SETUP,
}


def _refuse(message: str) -> SignalingError:
    return SignalingError("invalid_sdp", message)


def check_sdp(
    sdp: object,
    *,
    kind: str,
    max_bytes: int = 65536,
    max_m_lines: int = 16,
    max_sending: int = 3,
) -> str:
    """Return ``sdp`` if acceptable, else raise SignalingError("invalid_sdp")."""
    if not isinstance(sdp, str):
        raise _refuse("sdp must be a string")
    if len(sdp) > max_bytes or len(sdp.encode("utf-8", "surrogatepass")) > max_bytes:
        raise SignalingError("sdp_too_large", f"sdp is larger than {max_bytes} bytes")
    if not sdp.isascii():
        raise _refuse("sdp must be ASCII")
    lines = [line.rstrip("\r") for line in sdp.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines or lines[0] != "v=0":
        raise _refuse("sdp must start with v=0")
    sections: list[list[str]] = [[]]
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise _refuse("malformed sdp line")
        if any(ord(ch) < 32 for ch in line):
            raise _refuse("control character in sdp")
        if line.startswith("m="):
            sections.append([])
            if len(sections) - 1 > max_m_lines:
                raise _refuse(f"more than {max_m_lines} m-lines")
        sections[-1].append(line)
    session, media = sections[0], sections[1:]
    if not media:
        raise _refuse("no m-lines")
    session_fingerprint = _check_attributes(session)
    if not any(line.startswith("a=group:BUNDLE ") for line in session):
        raise _refuse("BUNDLE is required")
    sending = 0
    for section in media:
        mline = section[0]
        match = _MLINE.match(mline)
        if match is None:
            raise _refuse("only audio/video over UDP/TLS/RTP/SAVPF are accepted")
        if int(match.group(2)) > 65535:
            raise _refuse("invalid port")
        formats = [int(f) for f in mline.split(" ")[3:]]
        if any(f > 127 for f in formats):
            raise _refuse("invalid payload type")
        fingerprint = _check_attributes(section[1:])
        if not (fingerprint or session_fingerprint):
            raise _refuse("a DTLS fingerprint is required")
        if not any(line.startswith("a=mid:") for line in section):
            raise _refuse("every m-line needs a mid")
        if not any(line.startswith("a=rtpmap:") for line in section) and not all(f < 35 for f in formats):
            raise _refuse("dynamic payload type without rtpmap")
        direction = next((line[2:] for line in section if line in _DIRECTIONS), "sendrecv")
        if kind == "offer" and direction in ("sendrecv", "sendonly") and int(match.group(2)) != 0:
            sending += 1
    if sending > max_sending:
        raise SignalingError("too_many_tracks", f"at most {max_sending} sending tracks")
    return sdp


def _check_attributes(lines: list[str]) -> bool:
    fingerprint = False
    for line in lines:
        if line.startswith("a=fingerprint:"):
            if not _FINGERPRINT.match(line):
                raise _refuse("malformed fingerprint")
            fingerprint = True
            continue
        for prefix, pattern in _CHECKED.items():
            if line.startswith(prefix):
                match = pattern.match(line)
                if match is None:
                    raise _refuse(f"malformed {prefix[2:-1]} line")
                if prefix in ("a=rtpmap:", "a=fmtp:") and int(match.group(1)) > 127:
                    raise _refuse("invalid payload type")
                if prefix == "a=extmap:" and not 1 <= int(match.group(1)) <= 255:
                    raise _refuse("invalid extension id")
                if prefix in ("a=ssrc:", "a=ssrc-group:"):
                    for number in re.findall(r"\d+", line.split(" ")[0] if prefix == "a=ssrc:" else line):
                        if int(number) > 0xFFFFFFFF:
                            raise _refuse("invalid ssrc")
                break
    return fingerprint

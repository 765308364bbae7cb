"""Opus RED (``red/48000/2``, RFC 2198) in our SDP handling.

Chromium offers ``a=rtpmap:63 red/48000/2`` with ``a=fmtp:63 111/111`` (RED of its Opus),
but aiortc knows no RED and drops it from every description it writes, so a browser never
sends it. As with simulcast and transport-cc, the server reads what the client offers
(``parse``) and writes RED back into every description it sends afterwards (``accept``):

- on the m-sections the client sends audio on, RED under the client's own payload type and
  *before* Opus in the format list: libwebrtc sends RED only when the negotiated RED codec
  precedes the Opus one;
- on the audio m-sections the server sends (other people's microphones), RED after Opus,
  as an offer the subscriber may take or leave. Its answer says which it took (``parse``
  again); the forwarding path passes RED to those and unwraps the primary Opus frame for
  the others (``sfu.rtp.red``).

aiortc itself never sees RED: its descriptions and its parser keep Opus only, and the SFU
routes packets by SSRC, whatever their payload type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RED = re.compile(r"^a=rtpmap:(\d+) red/48000(?:/2)?$", re.IGNORECASE)
_OPUS = re.compile(r"^a=rtpmap:(\d+) opus/48000(?:/2)?$", re.IGNORECASE)
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ")
#: payload types we may pick for RED when the client never named one (RFC 3551 dynamic
#: range, Chromium's own choice first)
_CANDIDATE_PTS = (63, *range(127, 95, -1), *range(62, 34, -1))


@dataclass(frozen=True)
class RedCodec:
    """RED on one m-section: its payload type and the Opus payload type it carries."""

    pt: int
    opus_pt: int


def parse(sdp: str) -> dict[str, RedCodec]:
    """mid -> the RED codec an m-section lists (only RED of that section's Opus, ``X/X``)."""
    out: dict[str, RedCodec] = {}
    for section in _sections(sdp)[1:]:
        if not section[0].startswith("m=audio") or section[0].split(" ")[1] == "0":
            continue
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), "")
        red = next((int(m.group(1)) for line in section if (m := _RED.match(line))), None)
        opus = {int(m.group(1)) for line in section if (m := _OPUS.match(line))}
        if not mid or red is None:
            continue
        fmtp = next((line.split(" ", 1)[1] for line in section if line.startswith(f"a=fmtp:{red} ")), "")
        chain = {p for p in fmtp.strip().split("/") if p}
        primary = next(iter(chain)) if len(chain) == 1 else ""
        # a client's text: anything but "X/X" over this section's Opus is no RED we forward
        if primary.isdigit() and int(primary) in opus:
            out[mid] = RedCodec(red, int(primary))
    return out


def accept(sdp: str, offered: dict[str, RedCodec], *, answer: bool, preferred_pt: int | None = None) -> str:
    """``sdp`` (our answer or re-offer) with RED: first on the m-sections the client offered
    it on (``offered``: where it sends audio, the order makes it send RED), and, in a re-offer
    (``answer=False``; an answer may only name what the offer did), after Opus on every other
    audio m-section we send on. ``preferred_pt`` is the client's own number for RED (one
    payload type means one codec across a BUNDLE group); any free dynamic type otherwise."""
    sections = _sections(sdp)
    used = {int(m.group(1)) for section in sections for line in section if (m := _RTPMAP.match(line))}
    red_pts = {int(m.group(1)) for section in sections for line in section if (m := _RED.match(line))}
    pt = preferred_pt if preferred_pt is not None and (preferred_pt not in used or preferred_pt in red_pts) else None
    if pt is None:
        pt = next((p for p in _CANDIDATE_PTS if p not in used), None)
    for section in sections[1:]:
        fields = section[0].split(" ")
        if fields[0] != "m=audio" or fields[1] == "0" or any(_RED.match(line) for line in section):
            continue
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), "")
        opus = next((int(m.group(1)) for line in section if (m := _OPUS.match(line))), None)
        if opus is None:
            continue
        theirs = offered.get(mid)
        if theirs is not None and (theirs.pt not in used or theirs.pt in red_pts):
            # the client's own RED number; over the Opus of *this* description, which in our
            # re-offers is aiortc's number, not the one the client offered (the client follows)
            red, first = theirs.pt, True
        elif not answer and ("a=sendonly" in section or "a=sendrecv" in section):
            if pt is None:
                continue
            red, first = pt, False
        else:
            continue
        formats = [f for f in fields[3:] if f != str(red)]
        if str(opus) not in formats:
            continue
        at = formats.index(str(opus)) + (0 if first else 1)
        formats.insert(at, str(red))
        section[0] = " ".join(fields[:3] + formats)
        last = max(i for i, line in enumerate(section) if line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")))
        section[last + 1 : last + 1] = [f"a=rtpmap:{red} red/48000/2", f"a=fmtp:{red} {opus}/{opus}"]
    return "\r\n".join(line for section in sections for line in section) + "\r\n"


def _sections(sdp: str) -> list[list[str]]:
    """The session part, then one list of lines per m-section (trailing empty lines dropped)."""
    sections: list[list[str]] = [[]]
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections

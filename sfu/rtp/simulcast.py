"""Simulcast in our SDP handling (RFC 8853 ``a=simulcast`` with RFC 8851 ``a=rid``).

aiortc parses a browser's simulcast offer but answers without ``a=simulcast``, and a
browser that gets no ``a=simulcast:recv`` back sends only its first encoding. So the
server reads each sending m-section's rids and the RTP stream id extensions from the
client's offer (``parse_offer``) and writes the receiving side into every description
it produces for that m-section afterwards, answers and its own re-offers alike
(``accept``). The media itself never reaches aiortc: the SFU tells the layers apart by
the rid extension of their first packets (see ``Peer._route_unknown``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

URI_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_RRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 3

_RID = re.compile(r"^a=rid:([A-Za-z0-9_-]{1,16}) send\b")
_SIMULCAST = re.compile(r"^a=simulcast:send (\S+)")
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")


@dataclass(frozen=True)
class SimulcastOffer:
    """One m-section's layers as the client sends them, lowest quality first (the order
    the client listed them in ``a=simulcast``: browsers list them as configured)."""

    rids: tuple[str, ...]
    rid_ext: int
    rrid_ext: int = 0


def parse_offer(sdp: str) -> dict[str, SimulcastOffer]:
    """mid -> the simulcast the client offers to send on it (m-sections without it are absent)."""
    out: dict[str, SimulcastOffer] = {}
    for section in _sections(sdp)[1:]:
        mid = ""
        rids: list[str] = []
        order: list[str] = []
        ext: dict[str, int] = {}
        for line in section:
            if line.startswith("a=mid:"):
                mid = line[6:].strip()
            elif m := _RID.match(line):
                rids.append(m.group(1))
            elif m := _SIMULCAST.match(line):
                # "q;h;f" (alternatives "a,b" keep their first; paused "~x" are dropped)
                order = [alt.split(",")[0] for alt in m.group(1).split(";") if not alt.startswith("~")]
            elif m := _EXTMAP.match(line):
                ext.setdefault(m.group(2), int(m.group(1)))
        layers = tuple(r for r in order if r in rids)[:MAX_LAYERS]
        if mid and len(layers) > 1 and URI_RID in ext:
            out[mid] = SimulcastOffer(layers, ext[URI_RID], ext.get(URI_RRID, 0))
    return out


def accept(sdp: str, offers: dict[str, SimulcastOffer]) -> str:
    """``sdp`` (our answer or re-offer) receiving the ``offers`` layers on their m-sections:
    the rid extensions under the client's ids, ``a=rid:<id> recv`` and ``a=simulcast:recv``."""
    if not offers:
        return sdp
    sections = _sections(sdp)
    for section in sections[1:]:
        mid = next((line[6:].strip() for line in section if line.startswith("a=mid:")), "")
        offer = offers.get(mid)
        if offer is None or not section[0].startswith("m=video") or section[0].split(" ")[1] == "0":
            continue
        kept = [
            line
            for line in section
            if not line.startswith(("a=rid:", "a=simulcast:"))
            and not (line.startswith("a=extmap:") and (URI_RID in line or URI_RRID in line))
        ]
        extra = [f"a=extmap:{offer.rid_ext} {URI_RID}"]
        if offer.rrid_ext:
            extra.append(f"a=extmap:{offer.rrid_ext} {URI_RRID}")
        extra += [f"a=rid:{rid} recv" for rid in offer.rids]
        extra.append("a=simulcast:recv " + ";".join(offer.rids))
        section[:] = kept + extra
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

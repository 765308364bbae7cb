"""Opus in-band FEC (and DTX) for what publishers send.

A browser's Opus encoder adds in-band forward error correction (a low-bitrate copy of
the previous frame, RFC 6716 2.1.7) only when the receiver's description asks for it
with ``useinbandfec=1``. aiortc writes no ``a=fmtp`` for Opus, so the server asks for it
in every description it sends (answers and re-offers). The SFU forwards Opus payloads
untouched, so the redundancy reaches every subscriber's decoder, which uses it to fill a
lost packet: audio survives a lossy uplink without a retransmission round trip.

``usedtx=1`` (discontinuous transmission, RFC 7587 6.1) likewise asks the publisher's
encoder to send a comfort-noise frame every 400 ms during silence instead of a frame
every 20 ms: the forwarder and the recorder take the gaps in time for what they are
(sequence numbers stay continuous; timestamps jump). The server asks it of a client whose
own description asks for it (``asks_dtx``: the room page's do), so the page decides.
"""

from __future__ import annotations

import re

_OPUS = re.compile(r"^a=rtpmap:(\d+) opus/48000(?:/\d+)?$", re.IGNORECASE)


def asks_dtx(sdp: str) -> bool | None:
    """Whether ``sdp`` asks for DTX (``usedtx=1`` on an Opus payload type); None without Opus."""
    lines = sdp.split("\r\n")
    opus = {m.group(1) for line in lines if (m := _OPUS.match(line))}
    if not opus:
        return None
    for line in lines:
        if line.startswith("a=fmtp:"):
            pt, _, params = line[7:].partition(" ")
            if pt in opus and any(p.strip().lower() == "usedtx=1" for p in params.split(";")):
                return True
    return False


def request_fec(sdp: str, *, dtx: bool = False) -> str:
    """``sdp`` with ``useinbandfec=1`` (and ``minptime=10``; ``usedtx=1`` with ``dtx``) on every
    Opus payload type."""
    lines = sdp.split("\r\n")
    opus = {m.group(1) for line in lines if (m := _OPUS.match(line))}
    if not opus:
        return sdp
    wanted = [("useinbandfec", "useinbandfec=1"), ("minptime", "minptime=10")]
    if dtx:
        wanted.append(("usedtx", "usedtx=1"))
    out: list[str] = []
    with_fmtp: set[str] = set()
    for line in lines:
        if line.startswith("a=fmtp:"):
            pt, _, params = line[7:].partition(" ")
            if pt in opus:
                with_fmtp.add(pt)
                keys = {p.split("=", 1)[0].strip().lower() for p in params.split(";") if p}
                extra = [p for k, p in wanted if k not in keys]
                line = f"a=fmtp:{pt} " + ";".join([p for p in params.split(";") if p] + extra)
        out.append(line)
        m = _OPUS.match(line)
        if m and m.group(1) not in with_fmtp and not any(x.startswith(f"a=fmtp:{m.group(1)} ") for x in lines):
            out.append(f"a=fmtp:{m.group(1)} minptime=10;useinbandfec=1" + (";usedtx=1" if dtx else ""))
    return "\r\n".join(out)

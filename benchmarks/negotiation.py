"""What an SFU agreed with a load participant, so a comparison of two SFUs states its terms.

Read from the participant's peer connections once they are up: for every m-line of the last
answer (the answer holds what both ends accepted), the direction from the participant's side,
the header extensions, whether transport-wide congestion control is on (its header extension;
an ``rtcp-fb transport-cc`` alone does not make the sender stamp anything), whether RTX is
there, the codecs; and the SRTP profile the DTLS handshake chose.
"""

from __future__ import annotations

from typing import Any

FLIP = {"sendonly": "recvonly", "recvonly": "sendonly", "sendrecv": "sendrecv", "inactive": "inactive"}


def media_sections(sdp: str) -> list[dict[str, Any]]:
    """Per m-line: kind, direction (as written), extension URIs, codecs, TWCC, RTX."""
    out: list[dict[str, Any]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            out.append({"kind": line[2:].split()[0], "direction": "sendrecv", "ext": [], "codecs": [], "fb": set()})
        elif not out:
            continue
        elif line[2:] in FLIP and line.startswith("a="):
            out[-1]["direction"] = line[2:]
        elif line.startswith("a=extmap:"):
            out[-1]["ext"].append(line.split(" ", 1)[1].strip())
        elif line.startswith("a=rtpmap:"):
            out[-1]["codecs"].append(line.split(" ", 1)[1].split("/")[0])
        elif line.startswith("a=rtcp-fb:"):
            out[-1]["fb"].add(line.split(" ", 1)[1].strip())
    return out


def describe(pcs: list[Any]) -> dict[str, Any]:
    """The terms of every peer connection of one participant (see the module docstring)."""
    from sfu.transport import aiortc_bridge as bridge
    from sfu.transport.dtls_profile import srtp_profile

    terms: dict[str, Any] = {"srtp_profile": None, "participant_sends": {}, "participant_receives": {}}
    for pc in pcs:
        local, remote = pc.localDescription, pc.remoteDescription
        if local is None or remote is None:
            continue
        # the answer is what both accepted; directions are the participant's own in its answer
        ours = local.type == "answer"
        for section in media_sections(local.sdp if ours else remote.sdp):
            direction = section["direction"] if ours else FLIP[section["direction"]]
            sides = {
                "sendonly": ["participant_sends"],
                "recvonly": ["participant_receives"],
                "sendrecv": ["participant_sends", "participant_receives"],
            }.get(direction, [])
            for side in sides:
                terms[side].setdefault(
                    section["kind"],
                    {
                        "extensions": sorted(section["ext"]),
                        "twcc": any("transport-wide-cc" in e for e in section["ext"]),
                        "rtx": "rtx" in section["codecs"],
                        "codecs": sorted(set(section["codecs"])),
                        "rtcp_fb": sorted(section["fb"]),
                    },
                )
        for dtls in bridge.dtls_transports(pc):
            terms["srtp_profile"] = terms["srtp_profile"] or srtp_profile(dtls)
    return terms

"""Keep RTP header extension ids stable across renegotiations.

aiortc's ``createOffer`` renumbers header extensions to its defaults
(mid=1, audio-level=2, abs-send-time=3). Browsers refuse a re-offer that
moves an extension to another id inside one BUNDLE ("RTP extension ID
reassignment not supported"), so every server offer is rewritten to the ids
the client chose when it first offered.
"""

from __future__ import annotations

import re

_EXTMAP = re.compile(r"^a=extmap:(\d+)(/\w+)? (\S+)(.*)$")


def parse_extmap(sdp: str) -> dict[str, int]:
    """uri -> id as used in ``sdp`` (the first id seen wins, as BUNDLE requires one)."""
    found: dict[str, int] = {}
    for line in sdp.splitlines():
        m = _EXTMAP.match(line.strip())
        if m:
            found.setdefault(m.group(3), int(m.group(1)))
    return found


def align_extmap(sdp: str, negotiated: dict[str, int]) -> str:
    """Rewrite ``a=extmap`` ids of ``sdp`` to the ``negotiated`` ones; extensions the
    client never used get ids that collide with none of the client's."""
    if not negotiated:
        return sdp
    taken = set(negotiated.values())
    assigned = dict(negotiated)
    spare = (i for i in range(1, 15) if i not in taken)
    out = []
    for line in sdp.split("\r\n"):
        m = _EXTMAP.match(line)
        if m:
            uri = m.group(3)
            if uri not in assigned:
                assigned[uri] = next(spare, int(m.group(1)))
            line = f"a=extmap:{assigned[uri]}{m.group(2) or ''} {uri}{m.group(4)}"
        out.append(line)
    return "\r\n".join(out)

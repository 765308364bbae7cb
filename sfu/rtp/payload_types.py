"""Payload types kept across renegotiations (JSEP, RFC 8829 5.2.2: a subsequent offer reuses
the payload types already negotiated).

aiortc's ``createOffer`` gives every transceiver its own codec list afresh (Opus 96, VP8 97,
RTX 98 ...), so each server re-offer renumbered what a browser had negotiated in its own
offer (Chromium's Opus 111 / VP8 96, Firefox's Opus 109 / VP8 120). A browser sending on
such an m-section must then follow the new numbers, and both rebuild their send streams to
do so: every encoder restarts, with keyframes on every layer, at the moment the first
subscriber arrives (issue 24, docs/media-quality.md).

``keep_payload_types`` rewrites our offer: a negotiated m-section keeps its own numbers, and
every other codec takes the number the same codec has elsewhere in the BUNDLE group (one
payload type, one codec: browsers refuse collisions), or its own if free, or a free one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)(?:/(\d+))?")
_FMTP = re.compile(r"^a=fmtp:(\d+) (.*)$")
_PT_LINE = re.compile(r"^a=(rtpmap|fmtp|rtcp-fb):(\d+)( .*)$")
_APT = re.compile(r"(^|;)(\s*)apt=(\d+)")
_FREE = (*range(96, 128), *range(35, 64))

Key = tuple[str, ...]


def _params(text: str) -> dict[str, str]:
    out = {}
    for item in text.split(";"):
        name, _, value = item.strip().partition("=")
        if name:
            out[name.lower()] = value.strip()
    return out


def _key(name: str, clock: int, params: dict[str, str], apt_key: Key | None) -> Key:
    """What makes two payload types the same codec on the wire."""
    name = name.lower()
    if name == "rtx":
        return ("rtx", str(clock), *(apt_key or ("?",)))
    if name == "h264":
        mode = params.get("packetization-mode", "0")
        return (name, str(clock), mode, params.get("profile-level-id", "42e01f").lower()[:4])
    return (name, str(clock))


def _negotiated_keys(codecs: Iterable[RTCRtpCodecParameters]) -> dict[Key, int]:
    codecs = [c for c in codecs if c.payloadType is not None]
    primary = {
        c.payloadType: _key(
            c.mimeType.split("/")[-1], c.clockRate, {k: str(v) for k, v in (c.parameters or {}).items()}, None
        )
        for c in codecs
        if not c.mimeType.lower().endswith("/rtx")
    }
    out: dict[Key, int] = {}
    for c in codecs:
        assert c.payloadType is not None
        if c.mimeType.lower().endswith("/rtx"):
            apt = (c.parameters or {}).get("apt")
            if isinstance(apt, int) and apt in primary:
                out.setdefault(_key("rtx", c.clockRate, {}, primary[apt]), c.payloadType)
        else:
            out.setdefault(primary[c.payloadType], c.payloadType)
    return out


def _section_keys(section: list[str]) -> dict[int, Key]:
    """payload type -> codec key of one m-section of ``sdp``."""
    maps = {int(m.group(1)): (m.group(2), int(m.group(3))) for line in section if (m := _RTPMAP.match(line))}
    fmtp = {int(m.group(1)): _params(m.group(2)) for line in section if (m := _FMTP.match(line))}
    out: dict[int, Key] = {}
    for pt, (name, clock) in maps.items():
        if name.lower() != "rtx":
            out[pt] = _key(name, clock, fmtp.get(pt, {}), None)
    for pt, (name, clock) in maps.items():
        if name.lower() == "rtx":
            apt = fmtp.get(pt, {}).get("apt", "")
            out[pt] = _key(name, clock, {}, out.get(int(apt)) if apt.isdigit() else None)
    return out


def _rewrite(section: list[str], new: dict[int, int]) -> None:
    fields = section[0].split(" ")
    section[0] = " ".join(fields[:3] + [str(new.get(int(f), int(f))) if f.isdigit() else f for f in fields[3:]])
    for i, line in enumerate(section):
        m = _PT_LINE.match(line)
        if m is None:
            continue
        pt, rest = int(m.group(2)), m.group(3)
        if m.group(1) == "fmtp":
            rest = _APT.sub(lambda a: f"{a.group(1)}{a.group(2)}apt={new.get(int(a.group(3)), int(a.group(3)))}", rest)
        section[i] = f"a={m.group(1)}:{new.get(pt, pt)}{rest}"


def keep_payload_types(sdp: str, negotiated: dict[str, list[RTCRtpCodecParameters]]) -> str:
    """``sdp`` (our offer) with the payload types ``negotiated`` per mid kept, and the others
    made consistent with them across the description."""
    if not negotiated:
        return sdp
    sections = [part.split("\r\n") for part in re.split(r"\r\n(?=m=)", sdp.rstrip("\r\n"))]
    mids = [next((line[6:].strip() for line in s if line.startswith("a=mid:")), "") for s in sections]
    kept = {mid: _negotiated_keys(negotiated[mid]) for mid in mids if mid in negotiated}
    pt_of: dict[Key, int] = {}  # one number per codec across the group
    key_of: dict[int, Key] = {}
    for keys in kept.values():
        for key, pt in keys.items():
            if key not in pt_of and pt not in key_of:
                pt_of[key], key_of[pt] = pt, key
    for section, mid in zip(sections[1:], mids[1:]):
        new: dict[int, int] = {}
        own = kept.get(mid, {})
        for pt, key in _section_keys(section).items():
            choice = own.get(key, pt_of.get(key))
            if choice is None or choice in new.values():
                choice = pt if key_of.get(pt, key) == key else next(p for p in _FREE if p not in key_of)
            pt_of.setdefault(key, choice)
            key_of.setdefault(choice, key)
            new[pt] = choice
        if any(old != pt for old, pt in new.items()):
            _rewrite(section, new)
    return "\r\n".join(line for section in sections for line in section) + "\r\n"

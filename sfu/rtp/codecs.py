"""Codec matching between negotiated parameter sets (no media codecs here)."""

from __future__ import annotations

from typing import Optional

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters


def is_rtx(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower().endswith("/rtx")


def _h264_key(codec: RTCRtpCodecParameters | RTCRtpCodecCapability) -> tuple[str, str]:
    params = codec.parameters or {}
    profile = str(params.get("profile-level-id", "42e01f")).lower()[:4]
    return str(params.get("packetization-mode", "0")), profile


def compatible(
    a: RTCRtpCodecParameters | RTCRtpCodecCapability, b: RTCRtpCodecParameters | RTCRtpCodecCapability
) -> bool:
    """Same codec on the wire: mime type, clock rate (and H.264 mode/profile)."""
    if a.mimeType.lower() != b.mimeType.lower() or a.clockRate != b.clockRate:
        return False
    if a.mimeType.lower() == "video/h264":
        return _h264_key(a) == _h264_key(b)
    return True


def primary_codec(codecs: list[RTCRtpCodecParameters]) -> Optional[RTCRtpCodecParameters]:
    return next((c for c in codecs if not is_rtx(c)), None)


def capability_for(kind: str, codec: RTCRtpCodecParameters) -> list[RTCRtpCodecCapability]:
    """Codec preferences that make aiortc offer exactly ``codec`` (plus RTX)."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    out = [c for c in capabilities if not c.mimeType.lower().endswith("/rtx") and compatible(c, codec)][:1]
    if out and kind == "video":
        out += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return out


def payload_type_map(src: list[RTCRtpCodecParameters], dst: list[RTCRtpCodecParameters]) -> dict[int, int]:
    """Publisher payload type -> subscriber payload type, for shared codecs."""
    out: dict[int, int] = {}
    for s in src:
        if is_rtx(s):
            continue
        for d in dst:
            if not is_rtx(d) and compatible(s, d) and s.payloadType is not None and d.payloadType is not None:
                out[s.payloadType] = d.payloadType
                break
    return out


def rtx_payload_type(codecs: list[RTCRtpCodecParameters], apt: int) -> Optional[int]:
    for c in codecs:
        if is_rtx(c) and c.parameters.get("apt") == apt:
            return c.payloadType
    return None

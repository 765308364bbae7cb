"""Minimal RTCP parsing and building: what an SFU needs, nothing decoded twice.

Parsing never raises: a malformed compound packet yields what was valid
before the damage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Union

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_RTPFB = 205
RTCP_PSFB = 206

FMT_NACK = 1
FMT_PLI = 1
FMT_FIR = 4
FMT_AFB = 15  # application layer feedback: REMB
FMT_TWCC = 15  # transport-wide congestion control feedback (an RTPFB)

_HEADER = struct.Struct("!BBH")
_SR_INFO = struct.Struct("!IQIII")
_REPORT = struct.Struct("!IIIIII")
_FB = struct.Struct("!II")


@dataclass
class SenderReport:
    ssrc: int
    ntp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int


@dataclass
class ReportBlock:
    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int


@dataclass
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass
class Nack:
    sender_ssrc: int
    media_ssrc: int
    lost: list[int]


@dataclass
class KeyframeRequest:
    """A PLI (media_ssrcs = [media ssrc]) or FIR (media_ssrcs from the FCI)."""

    sender_ssrc: int
    media_ssrcs: list[int]
    fir: bool = False


@dataclass
class Remb:
    sender_ssrc: int
    bitrate: int
    ssrcs: list[int]


@dataclass
class TransportFeedback:
    """An RTPFB FMT=15 message, kept whole: ``twcc.parse_feedback`` decodes it."""

    sender_ssrc: int
    media_ssrc: int
    data: bytes


RtcpMessage = Union[SenderReport, ReceiverReport, Nack, KeyframeRequest, Remb, TransportFeedback]


def _report_blocks(data: bytes, offset: int, count: int, end: int) -> list[ReportBlock]:
    blocks = []
    for _ in range(count):
        if offset + 24 > end:
            break
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT.unpack_from(data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr))
        offset += 24
    return blocks


def unpack_remb(fci: bytes) -> tuple[int, list[int]]:
    """(bitrate bps, ssrcs) from a REMB FCI; ValueError if it is not one."""
    if len(fci) < 8 or fci[0:4] != b"REMB":
        raise ValueError("not a REMB")
    count = fci[4]
    exponent = fci[5] >> 2
    mantissa = ((fci[5] & 3) << 16) | (fci[6] << 8) | fci[7]
    if len(fci) < 8 + 4 * count:
        raise ValueError("truncated REMB")
    ssrcs = list(struct.unpack_from(f"!{count}I", fci, 8))
    return mantissa << exponent, ssrcs


def parse_rtcp(data: bytes) -> list[RtcpMessage]:
    """Parse a (compound) RTCP packet into the messages an SFU acts on."""
    out: list[RtcpMessage] = []
    pos = 0
    size = len(data)
    while pos + 4 <= size:
        first, ptype, length = _HEADER.unpack_from(data, pos)
        end = pos + 4 * (length + 1)
        if first >> 6 != 2 or end > size:
            break
        count = first & 0x1F
        body = pos + 4
        if ptype == RTCP_SR and body + 24 <= end:
            ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(data, body)
            out.append(SenderReport(ssrc, ntp, rtp_ts, packets, octets))
            if count:
                out.append(ReceiverReport(ssrc, _report_blocks(data, body + 24, count, end)))
        elif ptype == RTCP_RR and body + 4 <= end:
            (ssrc,) = struct.unpack_from("!I", data, body)
            out.append(ReceiverReport(ssrc, _report_blocks(data, body + 4, count, end)))
        elif ptype in (RTCP_RTPFB, RTCP_PSFB) and body + 8 <= end:
            sender, media = _FB.unpack_from(data, body)
            fci = data[body + 8 : end]
            if ptype == RTCP_RTPFB and count == FMT_NACK:
                lost: list[int] = []
                for i in range(0, len(fci) - 3, 4):
                    pid, blp = struct.unpack_from("!HH", fci, i)
                    lost.append(pid)
                    for bit in range(16):
                        if blp & (1 << bit):
                            lost.append((pid + bit + 1) & 0xFFFF)
                out.append(Nack(sender, media, lost))
            elif ptype == RTCP_RTPFB and count == FMT_TWCC:
                out.append(TransportFeedback(sender, media, data[pos:end]))  # decoded by twcc.parse_feedback
            elif ptype == RTCP_PSFB and count == FMT_PLI:
                out.append(KeyframeRequest(sender, [media]))
            elif ptype == RTCP_PSFB and count == FMT_FIR:
                ssrcs = [struct.unpack_from("!I", fci, i)[0] for i in range(0, len(fci) - 7, 8)]
                out.append(KeyframeRequest(sender, ssrcs, fir=True))
            elif ptype == RTCP_PSFB and count == FMT_AFB:
                try:
                    bitrate, ssrcs = unpack_remb(fci)
                except ValueError:
                    pass
                else:
                    out.append(Remb(sender, bitrate, ssrcs))
        pos = end
    return out


def _wrap(first: int, ptype: int, body: bytes) -> bytes:
    # RTCP length is in 32-bit words minus one; bodies here are word aligned
    return _HEADER.pack(first, ptype, (len(body) + 4) // 4 - 1) + body


def build_sr(ssrc: int, ntp: int, rtp_timestamp: int, packets: int, octets: int) -> bytes:
    body = _SR_INFO.pack(
        ssrc,
        ntp & 0xFFFFFFFFFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )
    return _wrap(0x80, RTCP_SR, body)


def build_rr(ssrc: int, blocks: list[ReportBlock]) -> bytes:
    body = struct.pack("!I", ssrc)
    for b in blocks[:31]:
        lost = b.packets_lost & 0xFFFFFF
        body += _REPORT.pack(
            b.ssrc,
            (b.fraction_lost << 24) | lost,
            b.highest_sequence & 0xFFFFFFFF,
            b.jitter & 0xFFFFFFFF,
            b.lsr & 0xFFFFFFFF,
            b.dlsr & 0xFFFFFFFF,
        )
    return _wrap(0x80 | min(len(blocks), 31), RTCP_RR, body)


def build_sdes(ssrc: int, cname: str) -> bytes:
    raw = cname.encode("utf8")[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(raw)) + raw + b"\x00"
    chunk += b"\x00" * (-len(chunk) & 3)
    return _wrap(0x81, RTCP_SDES, chunk)


def pack_compounds(reports: list[bytes], limit: int) -> list[bytes]:
    """``reports`` (each a compound of its own, starting with an SR or RR) joined into as few
    compound packets of at most ``limit`` bytes as keep their order: one SRTCP datagram per
    peer and interval instead of one per stream (RFC 3550 6.1 allows several SR/RR and SDES
    in one compound). An empty report is left out; one longer than ``limit`` goes alone."""
    out: list[bytes] = []
    current = b""
    for report in reports:
        if not report:
            continue
        if current and len(current) + len(report) > limit:
            out.append(current)
            current = b""
        current += report
    if current:
        out.append(current)
    return out


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return _wrap(0x80 | FMT_PLI, RTCP_PSFB, _FB.pack(sender_ssrc, media_ssrc))


def build_nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    fci = b""
    seqs = sorted(set(s & 0xFFFF for s in lost))
    i = 0
    while i < len(seqs):
        pid = seqs[i]
        blp = 0
        i += 1
        while i < len(seqs) and 0 < ((seqs[i] - pid) & 0xFFFF) <= 16:
            blp |= 1 << (((seqs[i] - pid) & 0xFFFF) - 1)
            i += 1
        fci += struct.pack("!HH", pid, blp)
    return _wrap(0x80 | FMT_NACK, RTCP_RTPFB, _FB.pack(sender_ssrc, media_ssrc) + fci)


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    exponent = 0
    mantissa = max(0, int(bitrate))
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exponent += 1
    fci = b"REMB" + struct.pack("!BBH", len(ssrcs), (exponent << 2) | (mantissa >> 16), mantissa & 0xFFFF)
    fci += b"".join(struct.pack("!I", s) for s in ssrcs)
    return _wrap(0x80 | FMT_AFB, RTCP_PSFB, _FB.pack(sender_ssrc, 0) + fci)

"""The periodic RTCP to a peer goes as few compound packets as fit (``rtcp.pack_compounds``):
every stream's report still arrives, in order, readable by a WebRTC stack's parser."""

from __future__ import annotations

from aiortc.rtp import RtcpPacket, RtcpRrPacket, RtcpSdesPacket, RtcpSrPacket

from sfu.rtp import rtcp


def _sr(ssrc: int) -> bytes:
    return rtcp.build_sr(ssrc, (3_900_000_000 << 32) + ssrc, 1000 * ssrc, 10 * ssrc, 1200 * ssrc) + rtcp.build_sdes(
        ssrc, "sfu"
    )


def test_reports_on_every_stream_travel_together_and_parse_as_sent() -> None:
    rr = rtcp.build_rr(0x5F0, [rtcp.ReportBlock(0x1234, 0, 0, 77, 0, 0, 0)])
    reports = [rr, b"", *[_sr(0xA000 + i) for i in range(8)]]  # a producer with nothing to say: b""
    (compound,) = rtcp.pack_compounds(reports, 1100)
    assert compound == b"".join(reports)
    packets = RtcpPacket.parse(compound)  # aiortc's parser, as a subscriber's stack reads it
    assert isinstance(packets[0], RtcpRrPacket) and packets[0].reports[0].highest_sequence == 77
    srs = [p for p in packets if isinstance(p, RtcpSrPacket)]
    assert [p.ssrc for p in srs] == [0xA000 + i for i in range(8)]
    assert [p.sender_info.rtp_timestamp for p in srs] == [1000 * (0xA000 + i) for i in range(8)]
    assert len([p for p in packets if isinstance(p, RtcpSdesPacket)]) == 8


def test_a_peer_with_many_streams_gets_several_compounds_under_the_limit_in_order() -> None:
    reports = [_sr(0xB000 + i) for i in range(60)]  # a mentor receiving 30 learners' audio and video
    compounds = rtcp.pack_compounds(reports, 1100)
    assert len(compounds) > 1 and all(len(c) <= 1100 for c in compounds)
    assert b"".join(compounds) == b"".join(reports)
    assert all(isinstance(RtcpPacket.parse(c)[0], RtcpSrPacket) for c in compounds)


def test_a_report_longer_than_the_limit_goes_alone_and_nothing_goes_for_nothing() -> None:
    big = rtcp.build_rr(1, [rtcp.ReportBlock(i, 0, 0, i, 0, 0, 0) for i in range(31)])
    assert rtcp.pack_compounds([_sr(1), big, _sr(2)], 500) == [_sr(1), big, _sr(2)]
    assert rtcp.pack_compounds([b"", b""], 1100) == []

"""Outbound SRTP with one context per SSRC (sfu/transport/stream_srtp.py): what a browser decrypts,
and the rule that keeps AES-GCM safe (one SSRC, one context, for the life of the DTLS session)."""

from __future__ import annotations

import struct

import pytest
from pylibsrtp import Policy, Session

from sfu.room.router import Router
from sfu.transport import fastio
from sfu.transport.stream_srtp import StreamContexts
from sfu_client import Client

KEY = bytes(range(28))  # AEAD_AES_128_GCM: 16-byte key + 12-byte salt
GCM = Policy.SRTP_PROFILE_AEAD_AES_128_GCM


def rtp(seq: int, ssrc: int, payload: bytes = b"v" * 200) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 3000, ssrc) + payload


def receiver() -> Session:
    return Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=GCM))


@pytest.mark.parametrize("native", [True, False])
def test_each_ssrc_gets_its_own_context_and_the_receiver_decrypts_every_path(native: bool) -> None:
    io = fastio.load(native)
    streams = StreamContexts(KEY, GCM, io.SrtpContext)
    rx = receiver()
    a, b = 0x1111, 0x2222
    assert streams.context(a) is streams.context(a) and streams.context(a) is not streams.context(b)
    for seq in range(5):
        for ssrc in (a, b):
            packet = rtp(seq, ssrc)
            # the batch's context and the datagram egress protect with the same session
            protected = streams.context(ssrc).protect(packet) if seq % 2 else streams.protect(packet)
            assert rx.unprotect(protected) == packet
    assert len(streams) == 2


@pytest.mark.parametrize("native", [True, False])
def test_the_socket_batch_protects_rtp_per_ssrc_and_rtcp_with_the_shared_session(native: bool) -> None:
    io = fastio.load(native)
    streams = StreamContexts(KEY, GCM, io.SrtpContext)
    shared = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=GCM))

    class Owner:
        deferring = False
        scheduled = 0

        def schedule_flush(self) -> None:
            self.scheduled += 1

        def send_srtp(self, ctx, packet, dest, rtcp=False) -> None:  # type: ignore[no-untyped-def]
            raise AssertionError("the batch has room")

    batch = io.SendBatch()
    sink = io.BatchSink(batch, io.SrtpContext(shared), io.Destination(("127.0.0.1", 9)), Owner())
    sink.use_streams(streams)
    ssrcs = [0x10000 + i for i in range(40)]  # more than the native sink's C table holds
    for ssrc in ssrcs:
        sink.send(rtp(7, ssrc))
    sr = struct.pack("!BBHI", 0x80, 200, 6, 0x3333) + bytes(20)
    sink.send(sr, True)
    sent = [data for data, _addr in batch.drain()]
    rx = receiver()
    assert [rx.unprotect(data) for data in sent[:-1]] == [rtp(7, ssrc) for ssrc in ssrcs]
    assert rx.unprotect_rtcp(sent[-1]) == sr
    assert len(streams) == len(ssrcs)
    # the same SSRC again, after the table is full: still its one context (its second index)
    sink.send(rtp(8, ssrcs[-1]))
    assert receiver().unprotect(batch.drain()[0][0]) == rtp(8, ssrcs[-1])


async def test_a_room_sends_each_stream_through_its_own_context_across_a_reconnect(router: Router, make_client) -> None:
    a: Client = await make_client("alice")
    b: Client = await make_client("bob")
    assert a.peer_id is not None
    await b.wait_frames(a.peer_id, "camera", 10)
    transport = router.peers[b.peer_id].transport
    streams = transport.stream_contexts
    assert streams is not None
    ssrcs = {c.rewriter.ssrc for c in router.peers[b.peer_id].consumers.values()}
    before = {ssrc: streams.context(ssrc) for ssrc in ssrcs}
    assert len(ssrcs) == 2 and len(streams) >= 2
    # the egress is rebuilt (as after an ICE restart): the contexts, and their rollover counters, stay
    transport._disconnect()
    assert transport._connect()
    await b.wait_frames(a.peer_id, "camera", 10)
    await b.wait_frames(a.peer_id, "mic", 10)
    assert transport.stream_contexts is streams
    assert all(streams.context(ssrc) is ctx for ssrc, ctx in before.items())

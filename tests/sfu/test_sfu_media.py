"""End to end: aiortc clients exchange media through the SFU."""

from __future__ import annotations

import asyncio

from sfu import Router
from sfu.rtp.forwarding import CallSink
from sfu_client import Client


async def test_two_participants_decode_each_other(router: Router, make_client) -> None:
    a: Client = await make_client("alice")
    b: Client = await make_client("bob")
    for me, other in ((a, b), (b, a)):
        assert other.peer_id is not None
        await me.wait_frames(other.peer_id, "camera", 10)
        await me.wait_frames(other.peer_id, "mic", 10)
    stats = router.stats()
    assert stats.peers == 2 and stats.producers == 4 and stats.consumers == 4
    assert stats.packets_forwarded > 0
    # once DTLS is up, our socket's ingress hands each peer's SRTP to its forwarders itself
    assert all(peer.transport.direct_packets > 0 for peer in router.peers.values())
    # the SFU is the DTLS server and picks AEAD_AES_128_GCM from what the client offers
    assert {peer.transport.srtp_profile for peer in router.peers.values()} == {"SRTP_AEAD_AES_128_GCM"}


async def test_five_participants_decode_everyone(engine, make_client) -> None:
    names = ["mentor", "l1", "l2", "l3", "l4"]
    clients = [await make_client(name) for name in names]
    waits = [
        me.wait_frames(other.peer_id, source, 5, timeout=60)
        for me in clients
        for other in clients
        if other is not me
        for source in ("camera", "mic")
    ]
    try:
        await asyncio.gather(*waits)
    except asyncio.TimeoutError:
        report = {
            me.user_key: {
                o.user_key: (me.frames_from(o.peer_id, "camera"), me.frames_from(o.peer_id, "mic"))
                for o in clients
                if o is not me
            }
            for me in clients
        }
        raise AssertionError(f"frames per (receiver, sender): {report}") from None
    stats = engine.stats()
    assert stats.rooms == 1 and stats.peers == 5
    assert stats.producers == 10 and stats.consumers == 40


async def test_screen_share_is_a_separate_track(router: Router, make_client) -> None:
    a = await make_client("alice", screen=True)
    b = await make_client("bob")
    await b.wait_frames(a.peer_id, "screen", 5)
    await b.wait_frames(a.peer_id, "camera", 5)
    tracks = (await b.wait_message("tracks", lambda m: m["peer_id"] == a.peer_id))["tracks"]
    sources = sorted(t["source"] for t in tracks)
    assert sources == ["camera", "mic", "screen"]
    screen_mid = next(t["mid"] for t in tracks if t["source"] == "screen")
    camera_mid = next(t["mid"] for t in tracks if t["source"] == "camera")
    assert screen_mid != camera_mid


async def test_screen_share_added_later_by_renegotiation(router: Router, make_client) -> None:
    a = await make_client("alice")
    b = await make_client("bob")
    await b.wait_frames(a.peer_id, "camera", 3)
    await a.add_screen()
    await b.wait_frames(a.peer_id, "screen", 5)
    peer = router.peers[a.peer_id]
    assert sorted(p.source for p in peer.producers.values()) == ["camera", "mic", "screen"]


async def test_mute_stops_forwarding_and_unmute_resumes(router: Router, make_client) -> None:
    a = await make_client("alice")
    b = await make_client("bob")
    await b.wait_frames(a.peer_id, "camera", 5)
    await a.send({"type": "mute", "kind": "video", "muted": True})
    await b.wait_message(
        "tracks",
        lambda m: m["peer_id"] == a.peer_id and any(t["source"] == "camera" and t["muted"] for t in m["tracks"]),
    )
    producer = router.peers[a.peer_id].producer_by_source("camera")
    assert producer is not None and producer.paused
    consumer = router.peers[b.peer_id].consumer_for(producer)
    assert consumer is not None
    forwarded, received = consumer.rewriter.packets, producer.forwarder.packets
    # the publisher keeps sending; nothing reaches the subscriber
    await b.wait_for(lambda: producer.forwarder.packets >= received + 30)
    assert consumer.rewriter.packets == forwarded
    await a.send({"type": "mute", "kind": "video", "muted": False})
    await b.wait_frames(a.peer_id, "camera", 5)
    assert consumer.rewriter.packets > forwarded


async def test_disconnect_and_rejoin_is_seen_again(router: Router, make_client) -> None:
    a = await make_client("alice")
    b = await make_client("bob")
    await b.wait_frames(a.peer_id, "camera", 3)
    old_id = a.peer_id
    await a.close(leave=False)  # the WebSocket drops
    await b.wait_message("participant-left", lambda m: m["peer_id"] == old_id)
    assert router.stats().peers == 1
    a2 = await make_client("alice")
    await b.wait_message("participant-joined", lambda m: m["user"]["key"] == "alice")
    await b.wait_frames(a2.peer_id, "camera", 5)
    await a2.wait_frames(b.peer_id, "camera", 5)


async def test_rejoin_replaces_previous_peer_without_renegotiating_others(router: Router, make_client) -> None:
    a = await make_client("alice")
    b = await make_client("bob")
    await b.wait_frames(a.peer_id, "camera", 3)
    offers_to_b = len(b.of_type("offer"))
    consumer = next(iter(c for c in router.peers[b.peer_id].consumers.values() if c.kind == "video"))
    a2 = await make_client("alice")
    assert a2.peer_id == a.peer_id  # a user keeps their peer id in a room
    closed = await a.wait_message("_closed")
    assert closed["code"] == 4000
    assert any(m.get("code") == "replaced" for m in a.of_type("error"))
    await b.wait_for(
        lambda: consumer.producer is not None and consumer.producer.peer_id == a2.peer_id and consumer.rewriter.synced
    )
    before = consumer.rewriter.packets
    await b.wait_frames(a2.peer_id, "camera", 10)
    assert consumer.rewriter.packets > before
    assert len(b.of_type("offer")) == offers_to_b
    assert router.stats().peers == 2


async def test_nothing_is_decoded_or_encoded_on_the_server(router: Router, make_client) -> None:
    import threading

    from sfu.transport import aiortc_bridge as bridge

    a = await make_client("alice")
    b = await make_client("bob")
    c = await make_client("carol")
    for me, other in ((a, b), (b, c), (c, a)):
        await me.wait_frames(other.peer_id, "camera", 10)
    server_transceivers = [t for peer in router.peers.values() for t in peer.pc.getTransceivers()]
    assert len(server_transceivers) == 3 * 2 + 3 * 4
    for t in server_transceivers:
        assert bridge.is_adopted(t)
        assert not bridge.receiver_has_decoder(t.receiver)
        assert not bridge.sender_has_encoder(t.sender)
        track = t.receiver.track
        assert track is None or track._queue.empty()
    # every decoder thread in the process belongs to a client receiver
    client_decoders = sum(
        1 for cl in (a, b, c) for t in cl.pc.getTransceivers() if bridge.receiver_has_decoder(t.receiver)
    )
    threads = [th for th in threading.enumerate() if th.name.endswith("-decoder")]
    assert len(threads) == client_decoders == 3 * 4


async def test_active_speaker_and_talk_time(router: Router, make_client) -> None:
    from sfu.room import observer as ev

    events: list = []
    router.observer.on(ev.ACTIVE_SPEAKER, events.append)
    talk: list = []
    router.observer.on(ev.TALK_TIME, talk.append)
    a = await make_client("alice", video=False, tone=True)
    b = await make_client("bob", video=False)
    message = await b.wait_message("active-speaker")
    assert message["peer_id"] == a.peer_id
    assert events and events[-1].user_key == "alice"
    # talk time counts the voiced audio that arrives; on a loaded machine the first
    # active-speaker decision can come before any is counted: wait for some, then close
    await a.wait_for(lambda: router.speaker.talk_time().get("alice", 0.0) > 0)
    await router.close()
    assert talk[0].seconds["alice"] > 0
    assert talk[0].seconds.get("bob", 0.0) == 0.0


async def test_chat_is_relayed_and_observed(router: Router, make_client) -> None:
    from sfu.room import observer as ev

    seen: list = []
    router.observer.on(ev.CHAT_MESSAGE, seen.append)
    a = await make_client("alice", video=False, audio=False, join=False)
    b = await make_client("bob", video=False, audio=False, join=False)
    await a.join(offer=False)
    await b.join(offer=False)
    await a.send({"type": "chat", "text": "hello"})
    message = await b.wait_message("chat")
    assert message["from"] == a.peer_id and message["text"] == "hello" and message["at"] > 0
    assert message["data"]["text"] == "hello"
    assert seen[0].user_key == "alice" and seen[0].text == "hello"


async def test_end_tells_everyone_and_closes(router: Router, make_client) -> None:
    a = await make_client("alice")
    b = await make_client("bob")
    await b.wait_frames(a.peer_id, "camera", 2)
    await router.end()
    for client in (a, b):
        await client.wait_message("session-ended")
        await client.wait_message("_closed")
    assert router.closed and not router.peers


async def test_room_full_is_refused(engine) -> None:
    small = engine.create_router("small", max_peers=1, app_data={})
    from sfu_client import Client

    a = Client(small, "alice", video=False, audio=False)
    b = Client(small, "bob", video=False, audio=False)
    try:
        await a.join(offer=False)
        b._tasks.append(asyncio.ensure_future(b._read()))
        from sfu import ParticipantInfo, serve_participant

        b._tasks.append(asyncio.ensure_future(serve_participant(small, b.channel, ParticipantInfo("bob"))))
        await b.send({"type": "join"})
        error = await b.wait_message("error")
        assert error["code"] == "room_full"
    finally:
        await a.close()
        await b.close()


async def test_subscriber_nacks_are_answered_from_history(router: Router, make_client) -> None:
    a = await make_client("alice", audio=False)
    b = await make_client("bob", video=False, audio=False)
    await b.wait_frames(a.peer_id, "camera", 3)
    producer = router.peers[a.peer_id].producer_by_source("camera")
    consumer = router.peers[b.peer_id].consumer_for(producer)
    assert consumer is not None
    sink = consumer.rewriter.sink
    assert sink is not None
    count = 0

    def lossy(packet: bytes) -> None:
        # drop every 7th packet on the way to bob: his receiver NACKs them
        nonlocal count
        count += 1
        if count % 7:
            sink.send(packet)

    consumer.rewriter.sink = CallSink(lossy)
    await b.wait_for(lambda: consumer.rewriter.retransmitted >= 3)
    assert consumer.nacks >= 1
    await b.wait_frames(a.peer_id, "camera", 10)


async def test_a_connected_peer_is_given_every_track_it_missed(router: Router, make_client) -> None:
    """Two participants back from the same outage rejoin at once, and one's join can miss the
    other's publication (it awaits the close of its old connection meanwhile). When a peer's
    media connects the router reconciles: a subscription it lacks is made, and it is told
    every other participant's tracks again."""
    a = await make_client("alice")
    b = await make_client("bob")
    await b.wait_frames(a.peer_id, "camera", 3)
    peer_b = router.peers[b.peer_id]
    missed = next(c for c in peer_b.consumers.values() if c.kind == "video")
    router._forget(missed)  # the race's outcome: no subscription to alice's camera
    peer_b.remove_consumer(missed)
    assert all(c.source != "camera" for c in peer_b.consumers.values())
    tracks_before = len(b.of_type("tracks"))
    router._on_peer_connected(peer_b)  # what the peer connection's "connected" calls
    await b.wait_for(lambda: any(c.source == "camera" and c.ready for c in peer_b.consumers.values()))
    assert len(b.of_type("tracks")) > tracks_before
    before = b.frames_from(a.peer_id, "camera")
    await b.wait_for(lambda: b.frames_from(a.peer_id, "camera") >= before + 5)
    # nothing doubled: one consumer per track
    assert len([c for c in peer_b.consumers.values() if c.source == "camera"]) == 1

"""ICE restart on the same peer connection (sfu/transport/ice_restart.py, issue 24): new ICE
credentials both ways, the checks start over, and the DTLS session, the SRTP keys, every
producer and consumer stay; aioice's private shape is pinned."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from sfu.room.peer import Peer
from sfu.transport import aiortc_bridge as bridge
from sfu.transport import ice_restart
from sfu.transport.ice_restart import IceCredentials, IceRestart, RestartPolicy, offered_credentials
from sfu_client import Client


def test_the_private_shape_it_relies_on_is_still_there() -> None:
    # fails loudly (naming what moved) when an aioice/aiortc upgrade changes it
    ice_restart.check_compatibility()


def test_credentials_are_read_from_an_sdp_and_validated() -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:Ab+/\r\na=ice-pwd:" + "p" * 22 + "\r\n"
    assert offered_credentials(sdp) == IceCredentials("Ab+/", "p" * 22)
    assert offered_credentials("v=0\r\na=ice-ufrag:abcd\r\n") is None  # no password
    assert offered_credentials("v=0\r\na=ice-ufrag:ab\r\na=ice-pwd:" + "p" * 22 + "\r\n") is None  # too short
    with pytest.raises(ValueError):
        IceCredentials("abcd", "short")
    fresh = {IceCredentials.generate() for _ in range(20)}
    assert len({c.ufrag for c in fresh}) == 20 and all(len(c.ufrag) == 8 and len(c.pwd) == 22 for c in fresh)


def server_peer(client: Client) -> Peer:
    assert client.peer_id is not None
    return client.router.peers[client.peer_id]


def lines_with(sdp: str, prefix: str) -> list[str]:
    lines = [line for line in sdp.splitlines() if line.startswith(prefix)]
    # an m-line's kind, port and protocol, not its payload types: the description before the
    # restart may be the server's re-offer, which lists Opus RED for a client that did not
    # offer it (sfu/rtp/red_sdp.py), and the restart's is an answer to that client's offer
    return [" ".join(line.split()[:3]) for line in lines] if prefix == "m=" else lines


def ufrag_of(sdp: str) -> str:
    creds = offered_credentials(sdp)
    assert creds is not None
    return creds.ufrag


async def restart_from_client(client: Client, policy: RestartPolicy = RestartPolicy()) -> IceRestart:
    """What a browser's ``restartIce()`` does, with the aiortc client: new local credentials,
    an offer carrying them, and the checks once the answer is in."""
    restart = IceRestart(client.pc, on_new_path=lambda: None, on_ufrag=lambda old, new: None, policy=policy)
    assert restart.renew_local_credentials() is not None
    await client.publish()  # the offer with the new credentials; the answer is applied
    assert restart.restart_if_answered(client.pc.remoteDescription.sdp)
    return restart


async def test_a_restart_keeps_the_connection_and_its_media(make_client: Any) -> None:
    mentor = await make_client("mentor")
    learner = await make_client("learner")
    assert mentor.peer_id and learner.peer_id
    await learner.wait_frames(mentor.peer_id, "camera", 5)
    await mentor.wait_frames(learner.peer_id, "camera", 5)
    peer = server_peer(learner)
    pc, dtls = peer.pc, bridge.dtls_transports(peer.pc)[0]
    producers = dict(peer.producers)
    consumers = dict(peer.consumers)
    server_ufrag = ufrag_of(learner.pc.remoteDescription.sdp)
    client_ufrag = ufrag_of(learner.pc.localDescription.sdp)
    answer_before = learner.pc.remoteDescription.sdp

    client_restart = await restart_from_client(learner)

    # the restart answer keeps what the earlier one negotiated: the DTLS role (pin_dtls_setup's
    # concern), the fingerprint, every m-line with its mid and direction
    answer = learner.pc.remoteDescription.sdp
    for prefix in ("a=setup:", "a=fingerprint:", "a=mid:", "m=", "a=sendrecv", "a=sendonly", "a=recvonly"):
        assert lines_with(answer, prefix) == lines_with(answer_before, prefix), prefix

    # both sides speak new credentials
    assert ufrag_of(learner.pc.localDescription.sdp) != client_ufrag
    assert ufrag_of(learner.pc.remoteDescription.sdp) != server_ufrag
    # the server checked the new generation through to a nominated pair ...
    await learner.wait_for(lambda: peer.ice_restart.completed == 1 and client_restart.completed == 1, timeout=15)
    assert peer.stats()["ice_restarts"] == 1 and peer.ice_restart.requested == 1
    # ... on the same peer connection, DTLS session, producers and consumers
    assert server_peer(learner) is peer and peer.pc is pc and bridge.dtls_transports(pc)[0] is dtls
    assert dtls.state == "connected" and peer.transport.connected
    assert peer.producers == producers and peer.consumers == consumers
    connection = bridge.ice_connections(pc)[0]
    assert connection.local_username == ufrag_of(learner.pc.remoteDescription.sdp)
    assert connection.remote_username == ufrag_of(learner.pc.localDescription.sdp)
    # and media keeps flowing both ways through it
    await learner.wait_frames(mentor.peer_id, "camera", 10, timeout=15)
    await mentor.wait_frames(learner.peer_id, "camera", 10, timeout=15)
    assert not learner.of_type("error") and not [m for m in learner.of_type("participant-left")]
    await client_restart.stop()


async def test_a_restart_offer_only_touches_the_callers_connection(make_client: Any) -> None:
    mentor = await make_client("mentor")
    learner = await make_client("learner")
    assert mentor.peer_id and learner.peer_id
    await mentor.wait_frames(learner.peer_id, "camera", 3)
    other = bridge.ice_connections(server_peer(mentor).pc)[0]
    before = (other.local_username, other.local_password, other.remote_username, other.remote_password)

    restart = await restart_from_client(learner)
    await learner.wait_for(lambda: server_peer(learner).ice_restart.completed == 1, timeout=15)

    assert (other.local_username, other.local_password, other.remote_username, other.remote_password) == before
    assert server_peer(mentor).ice_restart.requested == 0
    # the learner's new server ufrag routes to the learner's connection only
    assert ufrag_of(learner.pc.remoteDescription.sdp) != ufrag_of(mentor.pc.remoteDescription.sdp)
    await mentor.wait_frames(learner.peer_id, "camera", 5, timeout=15)
    await restart.stop()


async def test_a_renegotiation_with_the_same_credentials_is_no_restart(make_client: Any) -> None:
    learner = await make_client("learner")
    await learner.add_screen()  # a second client offer, ICE unchanged
    assert server_peer(learner).ice_restart.requested == 0
    assert learner.peer_id is not None


async def test_checks_lost_in_an_outage_are_sent_again_until_the_network_returns(make_client: Any) -> None:
    """A blackout during the restart: the server's checks go unanswered for 4 s. It asks again
    every ``retry`` s rather than backing off as a STUN transaction does (sent at 0, 0.5, 1.5,
    3.5, then 7.5 s), so it completes as soon as the network returns: as the controlled agent
    it takes the page's nomination only for a pair its own check found working."""
    mentor = await make_client("mentor")
    learner = await make_client("learner")
    assert mentor.peer_id and learner.peer_id
    await mentor.wait_frames(learner.peer_id, "camera", 3)
    # the client answers no check at all for 4 s: its STUN requests to us and its
    # responses are dropped on its side
    connection = bridge.ice_connections(learner.pc)[0]
    protocols = list(connection._protocols)
    originals = [p.send_stun for p in protocols]
    blackout = True

    def dropping(original: Any) -> Any:
        def send_stun(message: Any, addr: Any) -> None:
            if not blackout:
                original(message, addr)

        return send_stun

    for p, original in zip(protocols, originals):
        p.send_stun = dropping(original)  # type: ignore[method-assign]
    peer = server_peer(learner)
    restart = await restart_from_client(learner, RestartPolicy(retry=0.5))  # re-checks as browsers do
    await asyncio.sleep(4)  # the outage itself, not a wait for an event
    assert peer.ice_restart.completed == 0 and peer.ice_restart.in_progress
    blackout = False
    back = asyncio.get_running_loop().time()
    await learner.wait_for(lambda: peer.ice_restart.completed == 1, timeout=15)
    # backing off, our next check would go out 3.5 s after the network returns: it goes within 0.5 s
    assert asyncio.get_running_loop().time() - back < 2.0
    await mentor.wait_frames(learner.peer_id, "camera", 5, timeout=15)
    await restart.stop()


async def test_a_restart_that_never_completes_closes_the_connection(make_client: Any) -> None:
    learner = await make_client("learner")
    peer = server_peer(learner)
    peer.ice_restart.policy = ice_restart.RestartPolicy(timeout=1.0)
    # an offer with new credentials whose checks the client never answers (no client restart)
    pc = learner.pc
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp.replace(ufrag_of(pc.localDescription.sdp), "zzzzzzzz")
    await learner.send({"type": "offer", "sdp": sdp, "sources": learner.sources})
    await learner.wait_for(lambda: peer.closed, timeout=15)
    assert peer.ice_restart.failed == 1
    assert peer.close_reason in ("disconnected", "closed", "failed")


async def test_a_connection_without_ice_yet_is_not_restarted() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    restart = IceRestart(pc, on_new_path=lambda: None, on_ufrag=lambda old, new: None)
    sdp = "v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:" + "p" * 22 + "\r\n"
    assert not restart.restart_if_offered(sdp)  # no remote credentials yet: the first offer
    assert restart.requested == 0
    await pc.close()

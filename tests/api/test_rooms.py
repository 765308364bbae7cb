"""Live rooms end to end: REST room tokens, the signaling socket, media through the SFU."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from api.keys import DB, LIVE_ROOMS
from api.models import AttendanceInterval, Booking, RoomToken, Session
from tests.api.classes import room_ran_for
from tests.conftest import signup
from benchmarks.room_client import RoomParticipant


async def _live_soon(mentor, *, minutes: int = 5, capacity: int = 3) -> int:
    starts = (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()
    resp = await mentor.post(
        "/api/sessions",
        json={
            "title": "Live Python",
            "domain": "Programming",
            "capacity": capacity,
            "price_cents": 0,
            "starts_at": starts,
            "duration_min": 30,
        },
    )
    assert resp.status == 201, await resp.text()
    sid = (await resp.json())["id"]
    assert (await mentor.post(f"/api/sessions/{sid}/publish")).status == 200
    return sid


async def _book(learner, sid: int) -> None:
    resp = await learner.post("/api/bookings/create", json={"session_id": sid})
    assert resp.status == 201, await resp.text()


async def _token(user, sid: int) -> dict:
    resp = await user.post(f"/api/rooms/{sid}/token")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _connect(client, token: dict):
    path = token["signaling_url"].split("://", 1)[1].split("/", 1)[1]
    return await client.ws_connect("/" + path)


async def test_signaling_without_a_media_connection_is_not_attendance(client, mentor, learner) -> None:
    """Issue 14: a booking is attended only if that learner's peer was connected to the room.
    A learner whose page joins the signaling but whose media never connects is a no-show
    (the other learner's media connected: the class took place)."""
    sid = await _live_soon(mentor)
    await _book(learner, sid)
    present = await signup(client, "learner")
    await _book(present, sid)
    m = RoomParticipant(await _connect(client, await _token(mentor, sid)))
    p = RoomParticipant(await _connect(client, await _token(present, sid)))
    ws = None
    try:
        await m.join("Mentor")
        await p.join("Present")
        assert p.peer_id and m.peer_id
        await m.wait_frames(p.peer_id, "video", 3)  # both media connections are up
        ws = await _connect(client, await _token(learner, sid))
        await ws.send_json({"type": "join"})  # ... and nothing more: no offer, no ICE, no DTLS
        assert (await ws.receive_json())["type"] == "joined"
        await client.app[LIVE_ROOMS].get(sid).observer.drain()
        await room_ran_for(client, sid)  # long enough together to count (docs/money.md)
        resp = await mentor.post(f"/api/rooms/{sid}/end")
        assert resp.status == 200 and (await resp.json())["status"] == "completed", await resp.text()
        async with client.app[DB].read() as s:
            status = {
                b.learner_id: b.status.value
                for b in (await s.scalars(select(Booking).where(Booking.session_id == sid))).all()
            }
            users = {
                r.user_id
                for r in (await s.scalars(select(AttendanceInterval).where(AttendanceInterval.session_id == sid))).all()
            }
        assert status == {present.id: "attended", learner.id: "no_show"}
        assert users == {mentor.id, present.id}
    finally:
        await asyncio.gather(m.close(), p.close(), return_exceptions=True)
        if ws is not None:
            await ws.close()


async def test_token_rules(client, mentor, learner) -> None:
    sid = await _live_soon(mentor)
    stranger = await signup(client, "learner")
    assert (await stranger.post(f"/api/rooms/{sid}/token")).status == 403
    await _book(learner, sid)
    tok = await _token(learner, sid)
    assert tok["signaling_url"].endswith(f"/ws/room/{sid}?token={tok['token']}")
    assert tok["role"] == "learner"
    later = await _live_soon(mentor, minutes=120)
    await _book(learner, later)
    resp = await learner.post(f"/api/rooms/{later}/token")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "too_early"
    assert (await client.post(f"/api/rooms/{sid}/token")).status == 401


async def test_signaling_refusals(client, mentor, learner) -> None:
    sid = await _live_soon(mentor)
    other = await _live_soon(mentor)
    await _book(learner, sid)
    tok = await _token(learner, sid)
    # The learner may not enter before the mentor opened the room.
    resp = await client.get(f"/ws/room/{sid}?token={tok['token']}")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "room_not_open"
    # A token for room A used on room B.
    resp = await client.get(f"/ws/room/{other}?token={tok['token']}")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "wrong_room"
    # Garbage and expired tokens.
    assert (await client.get(f"/ws/room/{sid}?token=garbage")).status == 401
    client.session.cookie_jar.clear()  # the token response also set the room cookie browsers use
    assert (await client.get(f"/ws/room/{sid}")).status == 401
    async with client.app[DB].write() as s:
        await s.execute(update(RoomToken).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert (await client.get(f"/ws/room/{sid}?token={tok['token']}")).status == 401


async def test_two_participants_meet_and_mentor_ends(client, mentor, learner) -> None:
    """Attendance follows what the SFU saw: the learner who joined attended, the one who did not
    is a no-show; and the class cannot be ended before its start."""
    sid = await _live_soon(mentor)
    await _book(learner, sid)
    absent = await signup(client, "learner")
    await _book(absent, sid)
    m = RoomParticipant(await _connect(client, await _token(mentor, sid)))
    l_ = None
    try:
        joined = await m.join("Mentor")
        assert joined["recording"] is False
        async with client.app[DB].read() as s:
            assert (await s.get(Session, sid)).status.value == "live"
        l_ = RoomParticipant(await _connect(client, await _token(learner, sid)))
        await l_.join("Learner")
        assert m.peer_id and l_.peer_id
        await m.wait_message("participant-joined")
        for me, other in ((m, l_), (l_, m)):
            await me.wait_frames(other.peer_id, "video", 5)
            await me.wait_frames(other.peer_id, "audio", 5)
        # the server scores both connections and tells everyone
        for other in (m, l_):
            await m.wait_message("quality", lambda msg, o=other: msg.get("peer_id") == o.peer_id)
        await l_.send({"type": "chat", "text": "hello mentor"})
        await m.wait_message("chat", lambda msg: msg.get("text") == "hello mentor")
        # Issue 14: ending 5 minutes before the start completed the session and paid the mentor.
        resp = await mentor.post(f"/api/rooms/{sid}/end")
        assert resp.status == 409
        assert (await resp.json())["error"] == {
            "code": "too_early",
            "message": "A class cannot be ended before its start time.",
            "fields": {},
        }
        # The engine's join events are stored as they happen (wait for its listeners, no sleeping).
        await client.app[LIVE_ROOMS].get(sid).observer.drain()
        await room_ran_for(client, sid)  # long enough together to count (docs/money.md)
        resp = await mentor.post(f"/api/rooms/{sid}/end")
        assert resp.status == 200 and (await resp.json())["status"] == "completed"
        await l_.wait_message("session-ended")
        # the SFU scored both connections while they were in the room, kept with the session
        for _ in range(100):
            async with client.app[DB].read() as s:
                quality = (await s.get(Session, sid)).connection_quality
            if set(quality) == {str(mentor.id), str(learner.id)}:
                break
            await asyncio.sleep(0.05)
        assert set(quality) == {str(mentor.id), str(learner.id)}, quality
        assert all(set(levels) <= {"excellent", "good"} for levels in quality.values()), quality
        async with client.app[DB].read() as s:
            status = {
                b.learner_id: b.status.value
                for b in (await s.scalars(select(Booking).where(Booking.session_id == sid))).all()
            }
            rows = (await s.scalars(select(AttendanceInterval).where(AttendanceInterval.session_id == sid))).all()
        assert status == {learner.id: "attended", absent.id: "no_show"}
        assert {(r.user_id, r.role) for r in rows} == {(mentor.id, "mentor"), (learner.id, "learner")}
        assert all(r.left_at is not None and r.left_at >= r.joined_at for r in rows)
        chat = await (await learner.get(f"/api/rooms/{sid}/chat")).json()
        assert [c["text"] for c in chat["items"]] == ["hello mentor"]
        stranger = await signup(client, "learner")
        assert (await stranger.get(f"/api/rooms/{sid}/chat")).status == 403
    finally:
        await asyncio.gather(m.close(), *(x.close() for x in [l_] if x), return_exceptions=True)

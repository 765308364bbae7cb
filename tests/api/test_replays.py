"""Recordings learners can replay: GET /api/sessions/{id}/recordings for a learner who attended
(by the attendance rules), the file streamed inline with HTTP Range and its content type,
404 for everyone else, the session's replay setting (on by default for 1:1s), retention."""

from __future__ import annotations

from datetime import timedelta

from api.context import Context
from api.keys import DB, SETTINGS
from api.models import AttendanceInterval, BookingStatus, Recording, RecordingStatus, Session, SessionStatus, utcnow
from api.services import recordings
from tests.api.helpers_marketplace import book, make_session
from tests.conftest import signup

SIZE = 10_000


async def recorded_class(client, mentor, *, capacity=1, attendee_replay=None):
    """A completed class with one ready recording (the mentor's WebM on disk)."""
    sid = await make_session(
        client, mentor.id, starts_in=timedelta(hours=-2), status=SessionStatus.completed, capacity=capacity
    )
    async with client.app[DB].write() as s:
        sess = await s.get(Session, sid)
        sess.attendee_replay = attendee_replay
        rec = Recording(
            session_id=sid,
            status=RecordingStatus.ready,
            files=[
                {
                    "index": 0,
                    "name": "0-mentor.webm",
                    "user_id": mentor.id,
                    "display_name": "Test Mentor",
                    "role": "mentor",
                    "bytes": SIZE,
                    "duration_ms": 61_500,
                    "offset_ms": 0,
                    "streams": [],
                }
            ],
            bytes=SIZE,
            duration_ms=61_500,
            started_at=utcnow() - timedelta(hours=2),
            ended_at=utcnow() - timedelta(hours=1),
        )
        s.add(rec)
        await s.flush()
        rid = rec.id
    folder = client.app[SETTINGS].effective_recordings_dir / str(rid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0-mentor.webm").write_bytes(bytes(range(256)) * (SIZE // 256) + b"\0" * (SIZE % 256))
    return sid, rid


async def attend(client, sid, learner_id, status=BookingStatus.confirmed, present=True):
    await book(client, sid, learner_id, status)
    if present:
        async with client.app[DB].write() as s:
            at = utcnow() - timedelta(hours=2)
            s.add(AttendanceInterval(session_id=sid, user_id=learner_id, role="learner", joined_at=at, left_at=at))


async def test_an_attendee_lists_and_streams_with_range(client, learner, mentor):
    sid, rid = await recorded_class(client, mentor)
    await attend(client, sid, learner.id)
    resp = await learner.get(f"/api/sessions/{sid}/recordings")
    assert resp.status == 200, await resp.text()
    [item] = (await resp.json())["items"]
    assert item["id"] == rid and item["duration_s"] == 61.5 and item["content_type"] == "video/webm"
    assert item["url"] == f"/api/recordings/{rid}/replay?file=0"

    resp = await learner.get(item["url"], headers={"Range": "bytes=100-199"})
    assert resp.status == 206
    assert resp.headers["Content-Type"] == "video/webm"
    assert resp.headers["Content-Range"] == f"bytes 100-199/{SIZE}"
    assert resp.headers["Content-Disposition"] == "inline"
    assert await resp.read() == bytes(range(100, 200))
    full = await learner.get(item["url"])
    assert full.status == 200 and full.headers["Accept-Ranges"] == "bytes" and len(await full.read()) == SIZE


async def test_settled_attendance_counts_too(client, learner, mentor):
    sid, _ = await recorded_class(client, mentor)
    await attend(client, sid, learner.id, BookingStatus.attended, present=False)
    assert (await learner.get(f"/api/sessions/{sid}/recordings")).status == 200


async def test_everyone_but_attendees_gets_404(client, learner, mentor, admin):
    sid, rid = await recorded_class(client, mentor, capacity=5, attendee_replay=True)
    await attend(client, sid, learner.id)
    absent = await signup(client, "learner")
    await attend(client, sid, absent.id, present=False)
    no_show = await signup(client, "learner")
    await attend(client, sid, no_show.id, BookingStatus.no_show, present=False)
    cancelled = await signup(client, "learner")
    await attend(client, sid, cancelled.id, BookingStatus.cancelled)
    stranger = await signup(client, "learner")
    other_mentor = await signup(client, "mentor")
    for user in (absent, no_show, cancelled, stranger):
        for path in (f"/api/sessions/{sid}/recordings", f"/api/recordings/{rid}/replay?file=0"):
            assert (await user.get(path)).status == 404, (user.email, path)
    for user in (mentor, other_mentor, admin):
        assert (await user.get(f"/api/sessions/{sid}/recordings")).status in (403, 404)
        assert (await user.get(f"/api/recordings/{rid}/replay")).status in (403, 404)
    assert (await client.get(f"/api/sessions/{sid}/recordings")).status == 401


async def test_group_classes_share_replays_only_when_the_mentor_says_so(client, learner, mentor):
    sid, _ = await recorded_class(client, mentor, capacity=5)
    await attend(client, sid, learner.id)
    resp = await learner.get(f"/api/sessions/{sid}/recordings")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "replay_off"
    sid2, _ = await recorded_class(client, mentor, capacity=5, attendee_replay=True)
    await attend(client, sid2, learner.id)
    assert (await learner.get(f"/api/sessions/{sid2}/recordings")).status == 200
    sid3, _ = await recorded_class(client, mentor, capacity=1, attendee_replay=False)
    await attend(client, sid3, learner.id)
    assert (await learner.get(f"/api/sessions/{sid3}/recordings")).status == 404


async def test_the_session_form_setting_defaults_by_capacity_and_shows_before_booking(client, learner, mentor):
    starts = (utcnow() + timedelta(days=2)).isoformat()
    base = {"title": "Replays", "domain": "Programming", "starts_at": starts}
    one = await (await mentor.post("/api/sessions", json=base)).json()
    group = await (await mentor.post("/api/sessions", json={**base, "capacity": 4})).json()
    chosen = await (await mentor.post("/api/sessions", json={**base, "capacity": 4, "attendee_replay": True})).json()
    assert (one["attendee_replay"], group["attendee_replay"], chosen["attendee_replay"]) == (True, False, True)
    resp = await mentor.post(f"/api/sessions/{one['id']}/update", json={"attendee_replay": False})
    assert (await resp.json())["attendee_replay"] is False
    assert (await mentor.post(f"/api/sessions/{chosen['id']}/publish")).status == 200
    detail = await (await learner.get(f"/api/sessions/{chosen['id']}")).json()
    assert detail["attendee_replay"] is True


async def test_retention_removes_the_learners_copy_with_the_mentors(client, learner, mentor):
    sid, rid = await recorded_class(client, mentor)
    await attend(client, sid, learner.id)
    async with client.app[DB].write() as s:
        (await s.get(Recording, rid)).started_at = utcnow() - timedelta(days=400)
    assert await recordings.apply_retention(Context.of(client.app)) == 1
    assert (await (await learner.get(f"/api/sessions/{sid}/recordings")).json())["items"] == []
    assert (await learner.get(f"/api/recordings/{rid}/replay")).status == 404

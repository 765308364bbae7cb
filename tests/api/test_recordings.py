"""Server-side recording through the API: a real room of aiortc participants, files, permissions,
Range downloads, export, recovery after a killed process, write errors, retention."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import av
from pydantic import BaseModel
from sqlalchemy import select, update

from api.app import create_app
from api.cli_recordings import export_recording
from api.context import Context
from api.keys import DB, RECORDINGS
from api.models import Notification, Recording, RecordingStatus, Session
from api.schemas.recordings import RecordingList, RecordingOut, RoomRecordingOut
from api.services import recordings as svc
from sfu.recording.rtp_dump import DumpWriter, dumps_in
from tests.api.test_rooms import _book, _connect, _live_soon, _token
from tests.conftest import make_admin, signup
from benchmarks.room_client import RoomParticipant

WAIT = 60.0


async def _eventually(fn: Any, timeout: float = WAIT, interval: float = 0.1) -> Any:
    """Poll ``fn`` (async) until it returns something truthy (no fixed sleeps for events)."""

    async def loop() -> Any:
        while True:
            value = await fn()
            if value:
                return value
            await asyncio.sleep(interval)

    return await asyncio.wait_for(loop(), timeout)


def _documented(model: type[BaseModel], body: Any) -> Any:
    """``body`` is exactly what ``model`` (the OpenAPI response schema) says: it validates, and
    no object in it has a key the schema leaves out."""
    model.model_validate(body)

    def keys(tp: Any, value: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            assert set(value) == set(tp.model_fields), (tp.__name__, sorted(value))
            for name, field in tp.model_fields.items():
                keys(field.annotation, value[name])
        elif isinstance(value, list):
            for item in value:
                for arg in get_args(tp):
                    keys(arg, item)
        elif value is not None:
            for arg in get_args(tp):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    keys(arg, value)

    keys(model, body)
    return body


async def _recording(user: Any, rid: int) -> dict[str, Any]:
    resp = await user.get(f"/api/recordings/{rid}")
    assert resp.status == 200, await resp.text()
    return _documented(RecordingOut, await resp.json())  # type: ignore[no-any-return]


async def _until_status(user: Any, rid: int, *statuses: str) -> dict[str, Any]:
    async def check() -> Any:
        rec = await _recording(user, rid)
        return rec if rec["status"] in statuses else None

    return await _eventually(check)


def _probe(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with av.open(str(path)) as c:
        out["codecs"] = sorted(s.codec_context.name for s in c.streams)
        out["duration"] = c.duration / 1e6 if c.duration else 0.0
        starts: dict[str, float] = {}
        packets = 0
        for packet in c.demux():
            if packet.pts is None:
                continue
            kind = packet.stream.type
            starts[kind] = min(starts.get(kind, 1e9), float(packet.pts * packet.time_base))
            packets += kind == "video"
        out["starts"] = starts
        out["video_packets"] = packets
    with av.open(str(path)) as c:
        out["frames"] = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        c.seek(int(out["duration"] / 2 * 1e6))
        out["seek_to"] = next(iter(c.decode(video=0))).time
    return out


async def _room(client: Any, mentor: Any, learner: Any) -> tuple[int, RoomParticipant]:
    sid = await _live_soon(mentor)
    await _book(learner, sid)
    m = RoomParticipant(await _connect(client, await _token(mentor, sid)))
    joined = await m.join("Mentor")
    assert joined["recording"] is False
    return sid, m


async def test_record_a_room_end_to_end(client, mentor, learner, admin) -> None:
    sid, m = await _room(client, mentor, learner)
    lp = None
    try:
        # only the session's mentor starts it
        assert (await learner.post(f"/api/rooms/{sid}/recording", json={"action": "start"})).status == 403
        other = await signup(client, "mentor")
        assert (await other.post(f"/api/rooms/{sid}/recording", json={"action": "start"})).status == 403
        assert (await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "bogus"})).status == 400
        loop = asyncio.get_running_loop()
        started = loop.time()
        resp = await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "start"})
        assert resp.status == 200, await resp.text()
        rid = _documented(RoomRecordingOut, await resp.json())["recording_id"]
        await m.wait_message("recording", lambda msg: msg.get("on") is True)
        # a participant joining a recorded room is told before anything of theirs is captured
        joining = loop.time()
        lp = RoomParticipant(await _connect(client, await _token(learner, sid)))
        joined = await lp.join("Learner")
        assert joined["recording"] is True
        await m.wait_frames(lp.peer_id, "video", 5)
        await lp.wait_frames(m.peer_id, "video", 5)
        both = loop.time()
        await asyncio.sleep(3.0)  # record a known span (a duration to measure, not a wait for an event)
        resp = await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "stop"})
        assert resp.status == 200, await resp.text()
        _documented(RoomRecordingOut, await resp.json())
        stopped = loop.time()
        await lp.wait_message("recording", lambda msg: msg.get("on") is False)
        rec = await _until_status(mentor, rid, "ready", "failed")
        assert rec["status"] == "ready", rec
        assert len(rec["files"]) == 2 and rec["bytes"] > 0 and rec["duration_ms"] > 2500
        assert {p["user_id"] for p in rec["participants"]} == {mentor.id, learner.id}
        directory = client.app[DB] and svc.recording_dir(Context.of(client.app), rid)
        assert not dumps_in(directory)
        for entry in rec["files"]:
            info = _probe(directory / entry["name"])
            assert info["codecs"] == ["opus", "vp8"]
            assert info["frames"] == info["video_packets"] > 30  # every video frame decodes
            assert abs(info["starts"]["video"] - info["starts"]["audio"]) <= 0.1
            assert 0 <= info["seek_to"] <= info["duration"]
        # durations match the recorded spans within 1 s: the mentor from start to stop, the
        # learner from (somewhere between joining and being seen) to stop
        mentor_file = next(f for f in rec["files"] if f["user_id"] == mentor.id)
        assert abs(mentor_file["duration_ms"] / 1000 - (stopped - started)) < 1.0
        learner_file = next(f for f in rec["files"] if f["user_id"] == learner.id)
        assert stopped - both - 1.0 < learner_file["duration_ms"] / 1000 < stopped - joining + 1.0

        # permissions: admin all, the mentor their own, another mentor nothing, learners refused
        listed = _documented(RecordingList, await (await admin.get("/api/recordings")).json())
        assert [r["id"] for r in listed["items"]] == [rid]
        mine = await (await mentor.get(f"/api/recordings?session_id={sid}")).json()
        assert [r["id"] for r in mine["items"]] == [rid]
        assert (await (await other.get("/api/recordings")).json())["items"] == []
        assert (await other.get(f"/api/recordings/{rid}")).status == 404
        assert (await other.get(f"/api/recordings/{rid}/download")).status == 404
        assert (await learner.get("/api/recordings")).status == 403
        assert (await learner.get(f"/api/recordings/{rid}")).status == 403
        assert (await learner.get(f"/api/recordings/{rid}/download")).status == 403
        assert (await other.delete(f"/api/recordings/{rid}")).status == 404
        mentor_filter = await (await admin.get(f"/api/recordings?mentor_id={other.id}")).json()
        assert mentor_filter["items"] == []
        future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
        dated = await admin.get("/api/recordings", params={"date_from": future})
        assert (await dated.json())["items"] == []

        # download: whole file, then a Range
        path = directory / rec["files"][1]["name"]
        data = path.read_bytes()
        resp = await admin.get(f"/api/recordings/{rid}/download?file=1")
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["Accept-Ranges"] == "bytes"
        assert int(resp.headers["Content-Length"]) == len(data)
        assert resp.headers["Content-Type"] == "video/webm"
        etag = resp.headers["ETag"]
        disposition = resp.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and ".webm" in disposition and f"session-{sid}" in disposition
        resp = await admin.get(f"/api/recordings/{rid}/download?file=1", headers={"Range": "bytes=100-1099"})
        assert resp.status == 206
        assert await resp.read() == data[100:1100]
        assert resp.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
        assert resp.headers["Content-Length"] == "1000"
        assert resp.headers["ETag"] == etag
        resp = await admin.get(f"/api/recordings/{rid}/download?file=1", headers={"Range": f"bytes=-{50}"})
        assert resp.status == 206 and await resp.read() == data[-50:]
        resp = await admin.get(f"/api/recordings/{rid}/download?file=1", headers={"If-None-Match": etag})
        assert resp.status == 304
        assert (await admin.get(f"/api/recordings/{rid}/download?file=7")).status == 404
        assert (await admin.get(f"/api/recordings/{rid}/download?file=export")).status == 409

        # composite export: a background process, progress visible, one MP4 with one video stream
        resp = await mentor.post(f"/api/recordings/{rid}/export")
        assert resp.status == 202, await resp.text()
        assert _documented(RecordingOut, await resp.json())["export"]["status"] in ("queued", "running")

        async def exported() -> Any:
            rec = await _recording(mentor, rid)
            return rec if rec["export"]["status"] in ("ready", "failed") else None

        rec = await _eventually(exported, timeout=120)
        assert rec["export"]["status"] == "ready", rec["export"]
        assert rec["export"]["progress"] == 1.0
        resp = await admin.get(f"/api/recordings/{rid}/download?file=export")
        assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
        mp4 = directory / svc.EXPORT_FILE
        with av.open(str(mp4)) as c:
            assert len(c.streams.video) == 1 and c.streams.video[0].codec_context.name == "h264"
            assert len(c.streams.audio) == 1
            assert sum(1 for _ in c.decode(video=0)) > 20

        # delete: row and files gone
        assert (await mentor.delete(f"/api/recordings/{rid}")).status == 204
        assert not directory.exists()
        assert (await admin.get(f"/api/recordings/{rid}")).status == 404
        # the room itself never noticed any of this
        await m.wait_frames(lp.peer_id, "video", 5)
        assert (await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "stop"})).status == 409
    finally:
        await asyncio.gather(m.close(), *(x.close() for x in [lp] if x), return_exceptions=True)


async def test_write_error_fails_recording_notifies_admins_room_goes_on(
    client, mentor, learner, admin, monkeypatch
) -> None:
    sid, m = await _room(client, mentor, learner)
    lp = RoomParticipant(await _connect(client, await _token(learner, sid)))
    try:
        await lp.join("Learner")
        await m.wait_frames(lp.peer_id, "video", 3)
        resp = await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "start"})
        rid = (await resp.json())["recording_id"]
        await lp.wait_message("recording", lambda msg: msg.get("on") is True)

        def disk_full(*_args: Any) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(DumpWriter, "_write", disk_full)
        rec = await _until_status(admin, rid, "failed")
        assert "disk is full" in rec["error"]
        await lp.wait_message("recording", lambda msg: msg.get("on") is False)

        async def notified() -> Any:
            async with client.app[DB].read() as s:
                return (
                    await s.scalars(
                        select(Notification).where(
                            Notification.user_id == admin.id, Notification.kind == "recording.failed"
                        )
                    )
                ).first()

        note = await _eventually(notified)
        assert f"session {sid}" in note.title
        await m.wait_frames(lp.peer_id, "video", 10)  # the room keeps forwarding
        await lp.wait_frames(m.peer_id, "audio", 10)
        monkeypatch.undo()
        # and a new recording can start afterwards
        resp = await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "start"})
        assert resp.status == 200 and (await resp.json())["recording_id"] != rid
        assert (await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "stop"})).status == 200
    finally:
        await asyncio.gather(m.close(), lp.close(), return_exceptions=True)


async def test_recording_default_records_every_room(client, mentor, learner, admin) -> None:
    resp = await admin.post("/api/admin/settings", json={"recording_default": True})
    assert resp.status == 200
    sid = await _live_soon(mentor)
    m = RoomParticipant(await _connect(client, await _token(mentor, sid)))
    try:
        await m.join("Mentor")
        await m.wait_message("recording", lambda msg: msg.get("on") is True)
        items = (await (await admin.get(f"/api/recordings?session_id={sid}")).json())["items"]
        assert [r["status"] for r in items] == ["recording"]
        # ending the class (after its start: before it, ending is refused) stops and finalizes it
        async with client.app[DB].write() as s:
            await s.execute(
                update(Session)
                .where(Session.id == sid)
                .values(starts_at=datetime.now(timezone.utc) - timedelta(minutes=1))
            )
        assert (await mentor.post(f"/api/rooms/{sid}/end")).status == 200
        rec = await _until_status(admin, items[0]["id"], "ready", "failed")
        assert rec["status"] in ("ready", "failed")  # a mentor alone for a moment may send no keyframe yet
    finally:
        await m.close()


async def test_recovery_after_a_killed_process(client, mentor, learner, admin, settings, aiohttp_client) -> None:
    sid, m = await _room(client, mentor, learner)
    lp = RoomParticipant(await _connect(client, await _token(learner, sid)))
    try:
        await lp.join("Learner")
        resp = await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "start"})
        rid = (await resp.json())["recording_id"]
        mgr = client.app[RECORDINGS]
        recorder = mgr.active[sid][1]
        await _eventually(lambda: _true_after(lambda: recorder.packets > 200))
        await asyncio.sleep(1.0)
        # SIGKILL, as far as the disk and the database can tell: the process vanishes without
        # stopping, finalizing or updating the row; its flock goes with it.
        recorder.router.observer.remove_rtp_tap(recorder._on_rtp)
        for track in recorder._tracks.values():
            track.writer.flush()
        if recorder._task is not None:
            recorder._task.cancel()
        recorder._close_all()
        del mgr.active[sid]
        recorder.state = "killed"
    finally:
        await asyncio.gather(m.close(), lp.close(), return_exceptions=True)
    async with client.app[DB].read() as s:
        assert (await s.get(Recording, rid)).status == RecordingStatus.recording
    directory = svc.recording_dir(Context.of(client.app), rid)
    assert dumps_in(directory)
    # a new process starts on the same database and storage
    restarted = await aiohttp_client(create_app(settings))
    rec = await _until_status(admin, rid, "ready", "failed")  # admin's token works on either app
    assert rec["status"] == "ready", rec
    assert "Recovered" in rec["error"]
    assert len(rec["files"]) == 2
    for entry in rec["files"]:
        info = _probe(directory / entry["name"])
        assert info["codecs"] == ["opus", "vp8"] and info["frames"] > 10
    assert restarted.app[RECORDINGS].active == {}


async def _true_after(fn: Any) -> bool:
    return bool(fn())


async def test_retention_deletes_old_recordings(client, mentor, admin) -> None:
    sid = await _live_soon(mentor)
    ctx = Context.of(client.app)
    async with ctx.db.write() as s:
        old = Recording(
            session_id=sid,
            status=RecordingStatus.ready,
            participants=[],
            files=[],
            bytes=0,
            duration_ms=0,
            error="",
            started_at=datetime.now(timezone.utc) - timedelta(days=200),
        )
        new = Recording(
            session_id=sid,
            status=RecordingStatus.ready,
            participants=[],
            files=[],
            bytes=0,
            duration_ms=0,
            error="",
            started_at=datetime.now(timezone.utc) - timedelta(days=2),
        )
        s.add_all([old, new])
        await s.flush()
        old_id, new_id = old.id, new.id
    for rid in (old_id, new_id):
        svc.recording_dir(ctx, rid).mkdir(parents=True)
        (svc.recording_dir(ctx, rid) / "participant-1-x.webm").write_bytes(b"x")
    assert await svc.apply_retention(ctx) == 1
    assert not svc.recording_dir(ctx, old_id).exists() and svc.recording_dir(ctx, new_id).exists()
    assert (await admin.get(f"/api/recordings/{old_id}")).status == 404
    assert (await admin.get(f"/api/recordings/{new_id}")).status == 200
    resp = await admin.post("/api/admin/settings", json={"recording_retention_days": 1})
    assert resp.status == 200
    assert await svc.apply_retention(ctx) == 1
    shutil.rmtree(svc.recording_dir(ctx, new_id), ignore_errors=True)


async def test_not_ready_and_missing(client, mentor, admin) -> None:
    assert (await admin.get("/api/recordings/999")).status == 404
    sid = await _live_soon(mentor)
    # no open room: nothing to record
    resp = await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "start"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "room_not_open"
    assert (await mentor.post(f"/api/rooms/{sid}/recording", json={"action": "stop"})).status == 409
    async with client.app[DB].write() as s:
        rec = Recording(
            session_id=sid,
            status=RecordingStatus.processing,
            participants=[],
            files=[],
            bytes=0,
            duration_ms=0,
            error="",
        )
        s.add(rec)
        await s.flush()
        rid = rec.id
    resp = await admin.get(f"/api/recordings/{rid}/download")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_ready"
    assert (await admin.post(f"/api/recordings/{rid}/export")).status == 409
    other_admin = await make_admin(client)
    assert (await other_admin.get(f"/api/recordings/{rid}")).status == 200
    assert os.path.isdir(client.app[RECORDINGS].ctx.settings.effective_recordings_dir)


async def test_cli_export_with_progress_bar(client, mentor, settings) -> None:
    import io

    from api.cli import build_parser
    from tests.sfu.test_recorder import audio_packets, video_packets, write_dump

    args = build_parser().parse_args(["recordings", "export", "5"])
    assert args.id == 5 and args.func.__name__ == "cmd_recordings_export"
    sid = await _live_soon(mentor)
    ctx = Context.of(client.app)
    async with ctx.db.write() as s:
        rec = Recording(
            session_id=sid,
            status=RecordingStatus.processing,
            participants=[],
            files=[],
            bytes=0,
            duration_ms=0,
            error="",
        )
        s.add(rec)
        await s.flush()
        rid = rec.id
    directory = svc.recording_dir(ctx, rid)
    directory.mkdir(parents=True)
    for user in ("1", "2", "3"):
        write_dump(directory / f"v{user}.rtpd", "video", [(a, d) for a, d, _ in video_packets(2.0)], user=user)
        write_dump(directory / f"a{user}.rtpd", "audio", audio_packets(2.0), user=user)
    await client.app[RECORDINGS].finalize(rid)
    assert (await _recording_row(client, rid)).status == RecordingStatus.ready
    out = io.StringIO()
    assert await export_recording(settings, rid, out) == 0
    assert "100.0%" in out.getvalue() and "[####" in out.getvalue()
    row = await _recording_row(client, rid)
    assert row.export["status"] == "ready" and row.export["progress"] == 1.0
    with av.open(str(directory / svc.EXPORT_FILE)) as c:
        assert len(c.streams.video) == 1
        frame = next(iter(c.decode(video=0)))
        assert (frame.width, frame.height) == (640, 360)
    assert await export_recording(settings, 999999, out) == 2


async def _recording_row(client: Any, rid: int) -> Recording:
    async with client.app[DB].read() as s:
        return await s.get(Recording, rid)

"""Role-by-route matrix: anonymous, learner, other learner, mentor, other mentor, admin against
every object route (a path with ``{id}``). Nobody reads or changes another user's objects, and
no response ever carries a password hash.

Each row names the object, a body, and the roles ALLOWED to act; every other role must be
refused (401 anonymous, 403/404 signed in). Allowed roles may still meet a business rule
(400/409/422), never an authorization refusal. Refused roles run first, so an allowed
change cannot hide a leak. A new object route without a row fails ``test_every_object_route_is_in_the_matrix``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from api.context import Context
from api.keys import DB, ENDPOINTS, SETTINGS
from api.models import (
    Booking,
    BookingReport,
    BookingStatus,
    Feedback,
    Recording,
    RecordingStatus,
    Session,
    SessionStatus,
    utcnow,
)
from api.models_scheduling import RescheduleProposal
from api.services import materials
from tests.api.helpers_marketplace import make_session
from tests.conftest import signup

ROLES = ("anon", "learner", "other_learner", "mentor", "other_mentor", "admin")
REFUSED = {401, 403, 404}
HASH = re.compile(r"\$argon2(id|i|d)\$")


@dataclass
class Row:
    method: str
    template: str  # with {id}
    obj: str  # key into the world's objects
    allowed: frozenset[str]
    body: Any = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def row(method, template, obj, allowed, body=None, note=""):
    return Row(method, template, obj, frozenset(allowed), body, note)


ANY_SIGNED = ("learner", "other_learner", "mentor", "other_mentor", "admin")
EVERYONE = ("anon", *ANY_SIGNED)
FUTURE = (utcnow() + timedelta(days=3)).isoformat()

# Order matters: reads and reversible changes first, destructive ones last.
MATRIX = [
    # users: public profiles are public (no e-mail); edits are own-or-admin
    row("GET", "/api/users/{id}", "learner_user", ANY_SIGNED),
    row("POST", "/api/users/{id}/update", "learner_user", ("learner", "admin"), {"bio": "changed"}),
    row("POST", "/api/users/{id}/avatar", "learner_user", ("learner", "admin"), None),
    # sessions: the published one is public, the draft private to its mentor (and admins)
    row("GET", "/api/sessions/{id}", "session", EVERYONE),
    row("GET", "/api/sessions/{id}", "draft", ("mentor", "admin")),
    row("GET", "/api/sessions/{id}/reviews", "session", EVERYONE),
    row("GET", "/api/sessions/{id}/reviews", "draft", ("mentor", "admin")),
    row("POST", "/api/sessions/{id}/update", "session", ("mentor", "admin"), {"description": "edited"}),
    row("POST", "/api/sessions/{id}/update", "draft", ("mentor", "admin"), {"description": "edited"}),
    row("GET", "/api/mentors/{id}", "mentor_user", EVERYONE),
    # scheduling: a mentor's rules and free slots are public (no query: a 400, not a refusal)
    row("GET", "/api/mentors/{id}/availability", "mentor_user", EVERYONE),
    row("GET", "/api/mentors/{id}/slots", "mentor_user", EVERYONE),
    # moving a booked 1:1: its mentor and its learner only (a pending proposal exists: 409 for them)
    row("GET", "/api/sessions/{id}/reschedule", "one_to_one", ("learner", "mentor")),
    row("POST", "/api/sessions/{id}/reschedule", "one_to_one", ("learner", "mentor"), {"starts_at": FUTURE}),
    # bookings: the learner, the session's mentor, admins
    row("GET", "/api/bookings/{id}", "booking", ("learner", "mentor", "admin")),
    # requests: its learner, the mentor it was sent to, admins
    row("GET", "/api/requests/{id}", "request", ("learner", "mentor", "admin")),
    # readiness: participants (the admin may look)
    row("GET", "/api/rooms/{id}/ready", "session", ("learner", "mentor", "admin")),
    row("POST", "/api/rooms/{id}/ready", "session", ("learner", "mentor"), {"ready": True}),
    row("GET", "/api/rooms/{id}/ready", "draft", ("mentor", "admin")),
    # live room: tokens for participants only; chat for participants (and admins); ending for its mentor
    row("POST", "/api/rooms/{id}/token", "session", ("learner", "mentor")),
    row("GET", "/api/rooms/{id}/chat", "session", ("learner", "mentor", "admin")),
    row("POST", "/api/rooms/{id}/end", "session", ("mentor", "admin")),
    # recordings: admins, and the session's mentor for their own
    row("GET", "/api/recordings/{id}", "recording", ("mentor", "admin")),
    row("GET", "/api/recordings/{id}/download", "recording", ("mentor", "admin")),
    row("POST", "/api/recordings/{id}/export", "recording", ("mentor", "admin")),
    row("POST", "/api/rooms/{id}/recording", "session", ("mentor",), {"action": "start"}),
    # replays: only a learner who attended the class (its mentor and admins use the routes above)
    row("GET", "/api/sessions/{id}/recordings", "done", ("learner",)),
    row("GET", "/api/recordings/{id}/replay", "replay", ("learner",)),
    # following is the learner's own relation to a mentor
    row("POST", "/api/mentors/{id}/follow", "mentor_user", ("learner", "other_learner")),
    row("DELETE", "/api/mentors/{id}/follow", "mentor_user", ("learner", "other_learner")),
    # messages: the two parties of a conversation; everyone else 404 (admins read reports only)
    row("GET", "/api/conversations/{id}/messages", "conversation", ("learner", "mentor")),
    row("POST", "/api/conversations/{id}/read", "conversation", ("learner", "mentor")),
    row("POST", "/api/conversations/{id}/block", "conversation", ("learner", "mentor"), {"blocked": False}),
    row("POST", "/api/conversations/{id}/report", "conversation", ("learner", "mentor"), {"reason": "test"}),
    # class materials: the session's mentor uploads and deletes; it and booked learners read
    row("GET", "/api/sessions/{id}/materials", "session", ("learner", "mentor")),
    row("POST", "/api/sessions/{id}/materials", "session", ("mentor",)),
    row("GET", "/api/materials/{id}", "material", ("learner", "mentor")),
    # admin moderation
    row("POST", "/api/admin/feedback/{id}/hide", "feedback", ("admin",), {"hidden": True}),
    # problem reports: the booking's learner reports (the rules then say 409 for an unfinished
    # class); only admins resolve
    row("POST", "/api/bookings/{id}/report", "booking", ("learner",), {"reason": "The mentor never came"}),
    row("POST", "/api/admin/reports/{id}/resolve", "report", ("admin",), {"action": "release"}),
    # the mentor's proposal is answered by the learner, withdrawn only by the mentor
    row("POST", "/api/reschedules/{id}/accept", "reschedule", ("learner",)),
    row("POST", "/api/reschedules/{id}/decline", "reschedule", ("learner",)),
    row("POST", "/api/reschedules/{id}/withdraw", "reschedule", ("mentor",)),
    # destructive
    row("POST", "/api/requests/{id}/decline", "request2", ("mentor",)),
    row("POST", "/api/requests/{id}/accept", "request", ("mentor",), {"starts_at": FUTURE}),
    # the mentor's proposal is answered by the request's learner only
    row(
        "POST",
        "/api/requests/{id}/proposal/confirm",
        "request",
        ("learner",),
        {"price_cents": 0, "starts_at": FUTURE, "mentor_id": 1},
    ),
    row("POST", "/api/requests/{id}/proposal/decline", "request", ("learner",)),
    row("POST", "/api/requests/{id}/cancel", "request3", ("learner",)),
    row("POST", "/api/sessions/{id}/publish", "draft", ("mentor", "admin")),
    row("POST", "/api/bookings/{id}/accept-change", "booking", ("learner",)),
    row("POST", "/api/bookings/{id}/cancel", "booking", ("learner",)),
    row("POST", "/api/sessions/{id}/cancel", "session", ("mentor", "admin"), {"reason": "test"}),
    row("POST", "/api/admin/sessions/{id}/cancel", "session2", ("admin",), {}),
    row("DELETE", "/api/recordings/{id}", "recording", ("mentor", "admin")),
    row("DELETE", "/api/materials/{id}", "material", ("mentor",)),
    row("POST", "/api/users/{id}/deactivate", "spare_user", ("admin",)),
    row("POST", "/api/users/{id}/reactivate", "spare_user", ("admin",)),
]

# Object routes owned by other parts of the system that this matrix leaves to their own suites.
ELSEWHERE: set[tuple[str, str]] = {
    # addressed by its secret, not by an id: tests/api/test_calendar_feed.py (unknown and revoked secrets)
    ("GET", "/api/calendar/{secret:[A-Za-z0-9_-]+}.ics"),
}


def assert_no_secrets(text: str, where: str) -> None:
    assert "password_hash" not in text, where
    assert not HASH.search(text), where


@pytest.fixture
async def world(client, learner, mentor, admin):
    other_learner = await signup(client, "learner")
    other_mentor = await signup(client, "mentor", domains=["Programming"])
    spare = await signup(client, "learner")
    users = {
        "learner": learner,
        "other_learner": other_learner,
        "mentor": mentor,
        "other_mentor": other_mentor,
        "admin": admin,
    }
    session = await make_session(client, mentor.id, starts_in=timedelta(minutes=5), title="Scheduled")
    session2 = await make_session(client, mentor.id, starts_in=timedelta(days=2), title="Second")
    draft = await make_session(client, mentor.id, status=SessionStatus.draft, title="Draft")
    done = await make_session(
        client, mentor.id, starts_in=timedelta(days=-2), status=SessionStatus.completed, title="Done"
    )
    resp = await learner.post("/api/bookings/create", json={"session_id": session})
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["id"]
    resp = await learner.post("/api/messages", json={"to_user_id": mentor.id, "body": "Hello"})
    assert resp.status == 201, await resp.text()
    conversation = (await resp.json())["conversation_id"]
    reqs = []
    for _ in range(3):
        resp = await learner.post(
            "/api/requests/create",
            json={"topic": "Help", "domain": "Programming", "mentor_id": mentor.id, "preferred_times": [FUTURE]},
        )
        assert resp.status == 201
        reqs.append((await resp.json())["id"])
    async with client.app[DB].write() as s:
        fb = Feedback(session_id=done, author_id=learner.id, rating=4, comment="ok")
        s.add(fb)
        await s.flush()
        feedback = fb.id
        attended = Booking(
            session_id=done,
            learner_id=learner.id,
            status=BookingStatus.attended,
            earnings_release_at=utcnow() + timedelta(days=1),
        )
        s.add(attended)
        await s.flush()
        rep = BookingReport(booking_id=attended.id, session_id=done, learner_id=learner.id, reason="bad audio")
        s.add(rep)
        await s.flush()
        report = rep.id
        one = Session(
            mentor_id=mentor.id,
            title="1:1",
            domain="Programming",
            capacity=1,
            seats_taken=1,
            starts_at=utcnow() + timedelta(days=2),
            duration_min=60,
            status=SessionStatus.scheduled,
            talk_time={},
        )
        s.add(one)
        await s.flush()
        s.add(Booking(session_id=one.id, learner_id=learner.id, status=BookingStatus.confirmed))
        ask = RescheduleProposal(
            session_id=one.id,
            proposed_by_id=mentor.id,
            starts_at=one.starts_at + timedelta(hours=2),
            previous_starts_at=one.starts_at,
        )
        s.add(ask)
        await s.flush()
        one_to_one, reschedule = one.id, ask.id
        rec = Recording(session_id=session, status=RecordingStatus.recording)
        s.add(rec)
        await s.flush()
        recording = rec.id
        (await s.get(Session, done)).attendee_replay = True
        ready = Recording(
            session_id=done,
            status=RecordingStatus.ready,
            files=[{"index": 0, "name": "0.webm", "role": "mentor", "display_name": "M", "duration_ms": 1000}],
        )
        s.add(ready)
        await s.flush()
        replay = ready.id
    folder = client.app[SETTINGS].effective_recordings_dir / str(replay)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0.webm").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 100)
    ctx = Context.of(client.app)
    material = (await materials.add(ctx, session, mentor.id, "mentor", "slides.pdf", b"%PDF-1.4\n%%EOF\n")).id
    objects = {
        "learner_user": learner.id,
        "mentor_user": mentor.id,
        "spare_user": spare.id,
        "session": session,
        "session2": session2,
        "draft": draft,
        "booking": booking,
        "request": reqs[0],
        "request2": reqs[1],
        "request3": reqs[2],
        "feedback": feedback,
        "recording": recording,
        "report": report,
        "one_to_one": one_to_one,
        "reschedule": reschedule,
        "conversation": conversation,
        "done": done,
        "replay": replay,
        "material": material,
    }
    return users, objects


async def call(client, users, role, method, path, body):
    kw: dict[str, Any] = {}
    if body is not None:
        kw["json"] = body
    if role == "anon":
        return await client.request(method, path, **kw)
    return await users[role].request(method, path, **kw)


async def test_matrix(client, world):
    users, objects = world
    mismatches = []
    public = {(ep.method, ep.path) for ep in client.app[ENDPOINTS] if ep.auth is None}
    for r in MATRIX:
        path = r.template.replace("{id}", str(objects[r.obj]))
        order = [x for x in ROLES if x not in r.allowed] + [x for x in ROLES if x in r.allowed]
        for role in order:
            resp = await call(client, users, role, r.method, path, r.body)
            text = await resp.text()
            assert_no_secrets(text, f"{role} {r.method} {path}")
            assert resp.status < 500, (role, r.method, path, resp.status, text)
            if role in r.allowed:
                if resp.status in REFUSED:
                    mismatches.append(
                        f"{role} refused {resp.status} on {r.method} {r.template} [{r.obj}]: {text[:120]}"
                    )
            else:
                must_401 = role == "anon" and (r.method, r.template) not in public
                if resp.status not in REFUSED or (must_401 and resp.status != 401):
                    mismatches.append(f"{role} got {resp.status} on {r.method} {r.template} [{r.obj}]: {text[:200]}")
    assert not mismatches, "\n".join(mismatches)


async def test_lists_show_only_own_objects(client, world):
    users, objects = world
    other_learner, other_mentor = users["other_learner"], users["other_mentor"]
    assert (await (await other_learner.get("/api/bookings")).json())["items"] == []
    assert (await (await other_learner.get("/api/requests")).json())["items"] == []
    assert (await (await other_mentor.get("/api/requests")).json())["items"] == []
    assert (await (await other_learner.get("/api/notifications")).json())["items"] == []
    mentor_notes = await (await users["mentor"].get("/api/notifications")).json()
    assert mentor_notes["total"] >= 1
    learner_ids = {n["id"] for n in mentor_notes["items"]}
    resp = await other_mentor.post("/api/notifications/read", json={"ids": sorted(learner_ids)})
    assert (await resp.json())["marked"] == 0
    me = await (await users["learner"].get(f"/api/users/{users['mentor'].id}")).json()
    assert "email" not in me


async def test_every_response_free_of_password_hashes(client, world):
    users, objects = world
    for role in ROLES:
        for ep in client.app[ENDPOINTS]:
            if ep.method != "GET" or "openapi" in ep.path or ep.path in ("/metrics", "/api/docs"):
                continue
            path = ep.path
            for key in ("session", "learner_user"):
                path = path.replace("{id}", str(objects[key]))
            resp = await call(client, users, role, "GET", path, None)
            assert resp.status < 500, (role, path)
            assert_no_secrets(await resp.text(), f"{role} GET {path}")


async def test_every_object_route_is_in_the_matrix(client):
    covered = {(r.method, r.template) for r in MATRIX} | ELSEWHERE
    routes = {(ep.method, ep.path) for ep in client.app[ENDPOINTS] if "{" in ep.path}
    missing = sorted(routes - covered)
    assert not missing, f"object routes without a matrix row: {missing}"

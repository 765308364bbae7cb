"""The personal calendar feed, read the way calendar apps read it: parsed with the
``icalendar`` library. Booked and taught classes are there with their times; a moved class
keeps its UID with a higher SEQUENCE; cancelled classes and given-up seats say
STATUS:CANCELLED; regenerating the address revokes the old one."""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar

from tests.api.market import book, published
from tests.api.test_availability import put_rules
from tests.api.test_slot_booking import book_slot, first_slot


async def feed_path(user) -> str:
    resp = await user.get("/api/calendar/feed")
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["url"]
    assert url.startswith("http://testserver/api/calendar/") and url.endswith(".ics")
    return url.removeprefix("http://testserver")


async def events_of(client, path: str) -> dict[str, icalendar.Event]:
    resp = await client.get(path)  # no cookie, no token: the secret is the credential
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/calendar"
    cal = icalendar.Calendar.from_ical(await resp.read())
    assert cal.get("VERSION") == "2.0" and cal.get("PRODID")
    return {str(ev["UID"]): ev for ev in cal.walk("VEVENT")}


def start_of(ev: icalendar.Event) -> datetime:
    return ev.decoded("DTSTART")


async def test_learner_and_mentor_feeds_list_their_classes(client, mentor, learner):
    await put_rules(mentor, price_cents=1000)
    slot = await first_slot(client, mentor.id)
    one_to_one = await (await book_slot(learner, mentor.id, slot["starts_at"])).json()
    group = await published(mentor, capacity=3, price_cents=0)
    seat = await (await book(learner, group["id"])).json()

    path = await feed_path(learner)
    assert await feed_path(learner) == path  # the same address until regenerated
    events = await events_of(client, path)
    uid = f"booking-{one_to_one['id']}-session-{one_to_one['session_id']}@peerlearn"
    assert set(events) == {uid, f"booking-{seat['id']}-session-{group['id']}@peerlearn"}
    ev = events[uid]
    assert start_of(ev) == datetime.fromisoformat(str(slot["starts_at"]))
    assert ev.decoded("DTEND") - start_of(ev) == timedelta(minutes=60)
    assert str(ev["STATUS"]) == "CONFIRMED" and f"/sessions/{one_to_one['session_id']}" in str(ev["URL"])
    assert "PeerLearn" in str(ev["SUMMARY"])

    mentor_events = await events_of(client, await feed_path(mentor))
    assert set(mentor_events) == {f"session-{one_to_one['session_id']}@peerlearn", f"session-{group['id']}@peerlearn"}


async def test_moves_raise_the_sequence_and_cancellations_are_cancelled(client, mentor, learner):
    group = await published(mentor, capacity=3, price_cents=0)
    other = await published(mentor, capacity=3, price_cents=0)
    seat = await (await book(learner, group["id"])).json()
    seat2 = await (await book(learner, other["id"])).json()
    path = await feed_path(learner)
    uid = f"booking-{seat['id']}-session-{group['id']}@peerlearn"
    uid2 = f"booking-{seat2['id']}-session-{other['id']}@peerlearn"
    before = (await events_of(client, path))[uid]

    new_start = (datetime.fromisoformat(group["starts_at"]) + timedelta(hours=3)).replace(microsecond=0)
    resp = await mentor.post(f"/api/sessions/{group['id']}/update", json={"starts_at": new_start.isoformat()})
    assert resp.status == 200, await resp.text()
    moved = (await events_of(client, path))[uid]
    assert start_of(moved) == new_start
    assert int(moved["SEQUENCE"]) > int(before["SEQUENCE"])

    assert (await mentor.post(f"/api/sessions/{group['id']}/cancel", json={"reason": "ill"})).status == 200
    assert (await learner.post(f"/api/bookings/{seat2['id']}/cancel")).status == 200
    events = await events_of(client, path)
    assert str(events[uid]["STATUS"]) == "CANCELLED" and int(events[uid]["SEQUENCE"]) > int(moved["SEQUENCE"])
    assert str(events[uid2]["STATUS"]) == "CANCELLED"
    mentor_events = await events_of(client, await feed_path(mentor))
    assert str(mentor_events[f"session-{group['id']}@peerlearn"]["STATUS"]) == "CANCELLED"
    assert str(mentor_events[f"session-{other['id']}@peerlearn"]["STATUS"]) == "CONFIRMED"


async def test_regenerating_revokes_the_old_address(client, learner):
    old = await feed_path(learner)
    assert (await client.get(old)).status == 200
    resp = await learner.post("/api/calendar/feed")
    assert resp.status == 200
    new = (await resp.json())["url"].removeprefix("http://testserver")
    assert new != old
    gone = await client.get(old)
    assert gone.status == 404 and (await gone.json())["error"]["code"] == "not_found"
    assert (await client.get(new)).status == 200
    assert (await client.get("/api/calendar/not-a-real-secret-at-all.ics")).status == 404
    assert (await client.get("/api/calendar/feed")).status == 401


async def test_a_deactivated_users_feed_stops(client, learner, admin):
    path = await feed_path(learner)
    assert (await admin.post(f"/api/users/{learner.id}/deactivate")).status == 200
    assert (await client.get(path)).status == 404


def test_the_access_log_keeps_feed_secrets_out() -> None:
    from api.access_log import redact

    line = 'GET /api/calendar/Zk3_abc-DEF123456789.ics HTTP/1.1" 200 "-" "Google-Calendar-Importer"'
    assert "Zk3_abc" not in redact(line) and "/api/calendar/[redacted].ics" in redact(line)
    assert redact("GET /api/calendar/feed HTTP/1.1") == "GET /api/calendar/feed HTTP/1.1"

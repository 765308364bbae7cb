"""Moving a booked 1:1 by consent: either side proposes a free slot, the other accepts or
declines, the old time stands until then, and no money moves (one charge, nothing refunded,
nothing charged again). Accepting races slot bookings safely."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

from sqlalchemy import func, select

from api.keys import DB
from api.models import Journal, Session
from tests.api.market import book, published, quick_users, trial_balance
from tests.api.test_availability import day_window, put_rules, slots_of
from tests.api.test_slot_booking import book_slot
from tests.conftest import signup


async def booked_one_to_one(client, mentor, learner) -> tuple[dict, list[dict]]:
    """A learner's booked 1:1 on day +4 and the mentor's other free slots that day."""
    await put_rules(mentor, price_cents=3000)
    _, params = day_window(4)
    items = await slots_of(client, mentor.id, params)
    resp = await book_slot(learner, mentor.id, items[0]["starts_at"])
    assert resp.status == 201, await resp.text()
    return await resp.json(), items[1:]


async def starts(client, session_id: int) -> datetime:
    async with client.app[DB].read() as s:
        return (await s.get(Session, session_id)).starts_at


async def propose(user, session_id: int, starts_at) -> object:
    return await user.post(f"/api/sessions/{session_id}/reschedule", json={"starts_at": starts_at})


async def test_mentor_proposes_learner_accepts_and_the_class_moves(client, mentor, learner):
    booking, others = await booked_one_to_one(client, mentor, learner)
    sid, old = booking["session_id"], booking["session"]["starts_at"]
    target = others[1]["starts_at"]
    resp = await propose(mentor, sid, target)
    assert resp.status == 201, await resp.text()
    proposal = await resp.json()
    assert proposal["status"] == "pending" and proposal["proposed_by_id"] == mentor.id
    # Until the learner answers, the old time stands.
    assert await starts(client, sid) == datetime.fromisoformat(old)
    seen = await (await learner.get(f"/api/sessions/{sid}/reschedule")).json()
    assert seen["pending"]["id"] == proposal["id"] and seen["can_propose"] is False
    notes = await (await learner.get("/api/notifications")).json()
    assert any(n["kind"] == "session.reschedule_proposed" for n in notes["items"])
    # The proposer cannot answer their own proposal.
    assert (await mentor.post(f"/api/reschedules/{proposal['id']}/accept")).status == 403

    resp = await learner.post(f"/api/reschedules/{proposal['id']}/accept")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "accepted"
    assert await starts(client, sid) == datetime.fromisoformat(target)
    _, params = day_window(4)
    free = [i["starts_at"] for i in await slots_of(client, mentor.id, params)]
    assert old in free and target not in free  # the old slot is free again, the new one taken
    async with client.app[DB].read() as s:
        assert (await s.get(Session, sid)).sequence == 1
        kinds = Counter((await s.scalars(select(Journal.kind).where(Journal.session_id == sid))).all())
    assert kinds == Counter({"charge": 1})  # nothing charged twice, nothing refunded
    # Agreed by both: the new time is the booked one (docs/money.md), not a move after the sale.
    mine = await (await learner.get(f"/api/bookings/{booking['id']}")).json()
    assert mine["terms_changed"] is False and mine["booked_starts_at"] == mine["session"]["starts_at"]
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["unbalanced_journals"]
    assert (await learner.post(f"/api/reschedules/{proposal['id']}/decline")).status == 409
    state = await (await mentor.get(f"/api/sessions/{sid}/reschedule")).json()
    assert state["pending"] is None and state["can_propose"] is True


async def test_learner_proposes_mentor_declines_and_nothing_moves(client, mentor, learner):
    booking, others = await booked_one_to_one(client, mentor, learner)
    sid = booking["session_id"]
    proposal = await (await propose(learner, sid, others[0]["starts_at"])).json()
    again = await propose(mentor, sid, others[1]["starts_at"])
    assert again.status == 409 and (await again.json())["error"]["code"] == "reschedule_pending"
    resp = await mentor.post(f"/api/reschedules/{proposal['id']}/decline")
    assert resp.status == 200 and (await resp.json())["status"] == "declined"
    assert await starts(client, sid) == datetime.fromisoformat(booking["session"]["starts_at"])
    notes = await (await learner.get("/api/notifications")).json()
    assert any(n["kind"] == "session.reschedule_declined" for n in notes["items"])
    # A new proposal may follow; its proposer may withdraw it, the other side may not.
    second = await (await propose(learner, sid, others[1]["starts_at"])).json()
    assert (await mentor.post(f"/api/reschedules/{second['id']}/withdraw")).status == 403
    assert (await learner.post(f"/api/reschedules/{second['id']}/withdraw")).status == 200
    assert (await mentor.post(f"/api/reschedules/{second['id']}/accept")).status == 409


async def test_only_free_slots_and_only_the_two_people(client, mentor, learner):
    booking, others = await booked_one_to_one(client, mentor, learner)
    sid = booking["session_id"]
    start = datetime.fromisoformat(booking["session"]["starts_at"])
    resp = await propose(learner, sid, start.replace(minute=20).isoformat())
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "slot_unavailable"
    resp = await propose(learner, sid, booking["session"]["starts_at"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "same_time"
    other = await signup(client, "learner")
    assert (await book_slot(other, mentor.id, others[0]["starts_at"])).status == 201
    resp = await propose(learner, sid, others[0]["starts_at"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "slot_taken"
    assert (await propose(other, sid, others[1]["starts_at"])).status == 404
    assert (await other.get(f"/api/sessions/{sid}/reschedule")).status == 404
    group = await published(mentor, capacity=3)
    assert (await book(learner, group["id"])).status == 201
    resp = await propose(learner, group["id"], others[1]["starts_at"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_reschedulable"


async def test_accepting_a_slot_taken_meanwhile_is_409_and_nothing_moves(client, mentor, learner):
    booking, others = await booked_one_to_one(client, mentor, learner)
    sid = booking["session_id"]
    proposal = await (await propose(mentor, sid, others[0]["starts_at"])).json()
    other = await signup(client, "learner")
    assert (await book_slot(other, mentor.id, others[0]["starts_at"])).status == 201
    resp = await learner.post(f"/api/reschedules/{proposal['id']}/accept")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "slot_taken"
    assert await starts(client, sid) == datetime.fromisoformat(booking["session"]["starts_at"])


async def test_accept_racing_bookings_of_the_same_slot_has_one_winner(client, mentor, learner):
    booking, others = await booked_one_to_one(client, mentor, learner)
    sid, target = booking["session_id"], others[0]["starts_at"]
    proposal = await (await propose(mentor, sid, target)).json()
    rivals = await quick_users(client, 10)
    responses = await asyncio.gather(
        learner.post(f"/api/reschedules/{proposal['id']}/accept"),
        *(book_slot(r, mentor.id, target) for r in rivals),
    )
    assert sum(r.status in (200, 201) for r in responses) == 1, [r.status for r in responses]
    assert all(r.status in (200, 201, 409) for r in responses)
    async with client.app[DB].read() as s:
        at_target = await s.scalar(
            select(func.count(Session.id)).where(
                Session.mentor_id == mentor.id, Session.starts_at == datetime.fromisoformat(target)
            )
        )
    assert at_target == 1

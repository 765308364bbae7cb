"""Admin API: every route is admin-only; users search, sessions, cancel, requests, payments,
feedback moderation, settings with audit, health."""

from __future__ import annotations

from datetime import timedelta

from api.keys import DB
from api.models import Feedback, SessionStatus
from tests.api.market import confirm_proposal
from tests.api.helpers_marketplace import book, make_session
from tests.conftest import signup

GETS = [
    "/api/admin/users",
    "/api/admin/sessions",
    "/api/admin/requests",
    "/api/admin/payments",
    "/api/admin/feedback",
    "/api/admin/settings",
    "/api/admin/audit",
    "/api/admin/health",
]


async def make_feedback(client, session_id, author_id, rating=4, comment="Great"):
    async with client.app[DB].write() as s:
        f = Feedback(session_id=session_id, author_id=author_id, rating=rating, comment=comment)
        s.add(f)
        await s.flush()
        return f.id


async def test_admin_only(client, learner, mentor, admin):
    for path in GETS:
        assert (await client.get(path)).status == 401, path
        assert (await learner.get(path)).status == 403, path
        assert (await mentor.get(path)).status == 403, path
        assert (await admin.get(path)).status == 200, path
    for path, body in (
        ("/api/admin/settings", {"max_capacity": 10}),
        ("/api/admin/feedback/1/hide", {}),
        ("/api/admin/sessions/1/cancel", {}),
    ):
        assert (await learner.post(path, json=body)).status == 403
        assert (await mentor.post(path, json=body)).status == 403


async def test_users_search_filter_paginate(client, admin, learner, mentor):
    await signup(client, "learner", email="zoe.search@example.com")
    page = await (await admin.get("/api/admin/users?q=ZOE.SEARCH")).json()
    assert [u["email"] for u in page["items"]] == ["zoe.search@example.com"]
    page = await (await admin.get("/api/admin/users?role=mentor")).json()
    assert [u["id"] for u in page["items"]] == [mentor.id]
    await admin.post(f"/api/users/{learner.id}/deactivate")
    page = await (await admin.get("/api/admin/users?active=false")).json()
    assert [u["id"] for u in page["items"]] == [learner.id]
    page = await (await admin.get("/api/admin/users?page_size=2&page=1")).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert "password_hash" not in str(page)
    assert (await admin.get("/api/admin/users?role=root")).status == 400
    assert (await admin.get("/api/admin/users?q=%25")).status == 200


async def test_sessions_list_and_cancel_refunds(client, admin, learner, mentor):
    draft = await make_session(client, mentor.id, status=SessionStatus.draft, title="Secret draft")
    sid = await make_session(client, mentor.id, title="Public")
    await book(client, sid, learner.id)
    page = await (await admin.get("/api/admin/sessions")).json()
    assert {s["id"] for s in page["items"]} == {draft, sid}
    page = await (await admin.get("/api/admin/sessions?status=draft")).json()
    assert [s["id"] for s in page["items"]] == [draft]
    resp = await admin.post(f"/api/admin/sessions/{sid}/cancel", json={"reason": "Mentor is ill"})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["status"] == "cancelled" and out["refunded_bookings"] == 1
    notes = await (await learner.get("/api/notifications")).json()
    assert notes["items"][0]["kind"] == "session.cancelled"
    assert (await admin.post(f"/api/admin/sessions/{sid}/cancel", json={})).status == 409
    assert (await admin.post("/api/admin/sessions/999999/cancel", json={})).status == 404


async def test_requests_and_payments(client, admin, learner, mentor):
    when = [(__import__("api.models", fromlist=["utcnow"]).utcnow() + timedelta(days=1)).isoformat()]
    resp = await learner.post(
        "/api/requests/create", json={"topic": "X", "domain": "Elsewhere", "preferred_times": when}
    )
    rid = (await resp.json())["id"]
    page = await (await admin.get("/api/admin/requests")).json()
    assert [r["id"] for r in page["items"]] == [rid]
    resp = await learner.post(
        "/api/requests/create",
        json={"topic": "Paid", "domain": "Programming", "mentor_id": mentor.id, "preferred_times": when},
    )
    paid = (await resp.json())["id"]
    resp = await mentor.post(f"/api/requests/{paid}/accept", json={"starts_at": when[0], "price_cents": 5000})
    assert resp.status == 200
    assert (await (await admin.get("/api/admin/payments")).json())["total"] == 0  # proposed, not charged
    assert (await confirm_proposal(learner, paid)).status == 200
    page = await (await admin.get("/api/admin/payments")).json()
    assert page["total"] == 1 and page["items"][0]["kind"] == "charge"
    assert sum(e["amount_cents"] for e in page["items"][0]["entries"]) == 0
    assert (await (await admin.get("/api/admin/payments?kind=refund")).json())["total"] == 0


async def test_feedback_hide_and_unhide_audited(client, admin, learner, mentor):
    sid = await make_session(client, mentor.id, status=SessionStatus.completed, starts_in=timedelta(days=-1))
    fid = await make_feedback(client, sid, learner.id, comment="Rude words")
    page = await (await admin.get("/api/admin/feedback")).json()
    assert [f["id"] for f in page["items"]] == [fid] and page["items"][0]["hidden"] is False
    resp = await admin.post(f"/api/admin/feedback/{fid}/hide", json={})
    assert resp.status == 200 and (await resp.json())["hidden"] is True
    assert (await (await admin.get("/api/admin/feedback?hidden=true")).json())["total"] == 1
    resp = await admin.post(f"/api/admin/feedback/{fid}/hide", json={"hidden": False})
    assert (await resp.json())["hidden"] is False
    audit = await (await admin.get("/api/admin/audit")).json()
    assert [a["action"] for a in audit["items"]] == ["feedback.unhide", "feedback.hide"]
    assert audit["items"][0]["actor_email"] == admin.email
    assert (await admin.post("/api/admin/feedback/999999/hide", json={})).status == 404


async def test_settings_change_is_audited(client, admin):
    before = await (await admin.get("/api/admin/settings")).json()
    assert before["platform_fee_percent"] == 15.0
    resp = await admin.post("/api/admin/settings", json={"platform_fee_percent": 10, "registration_open": False})
    assert resp.status == 200
    after = await resp.json()
    assert after["platform_fee_percent"] == 10 and after["registration_open"] is False
    audit = await (await admin.get("/api/admin/audit?action=settings.update")).json()
    assert {a["target"] for a in audit["items"]} == {"platform_fee_percent", "registration_open"}
    fee = next(a for a in audit["items"] if a["target"] == "platform_fee_percent")
    assert fee["details"] == {"old": None, "new": 10.0} or fee["details"]["new"] == 10
    assert (await admin.post("/api/admin/settings", json={"platform_fee_percent": 99})).status == 400
    assert (await admin.post("/api/admin/settings", json={"unknown": 1})).status == 400


async def test_health(client, admin, learner):
    from tests.api.test_realtime import ws_for

    ws = await ws_for(learner)
    data = await (await admin.get("/api/admin/health")).json()
    assert data["status"] == "ok" and data["database"]["ok"] is True
    assert data["database"]["latency_ms"] >= 0 and data["broker"] == {**data["broker"], "ok": True}
    assert data["rooms"] == 0 and data["peers"] == 0
    assert data["websockets"] == 1 and data["online_users"] == 1
    assert data["process"]["rss_bytes"] > 0 and data["version"]
    await ws.close()

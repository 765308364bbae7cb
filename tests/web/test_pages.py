"""Server-rendered pages read through services: the dashboards' figures, the landing page's
featured mentors, and the room page's door (who gets the room, who gets the error page)."""

from __future__ import annotations

from tests.api.market import book, published
from tests.conftest import signup

HTML = {"Accept": "text/html"}


async def page(user, path: str) -> tuple[int, str]:
    resp = await user.get(path, headers=HTML, allow_redirects=False)
    return resp.status, await resp.text()


async def test_landing_features_active_mentors(client, mentor) -> None:
    await published(mentor)
    resp = await client.get("/", headers=HTML)
    assert resp.status == 200
    assert "Test Mentor" in await resp.text()


async def test_dashboards_show_their_figures(client, mentor, learner, admin) -> None:
    sess = await published(mentor, title="Overview clinic")
    assert (await book(learner, sess["id"])).status == 201
    status, html = await page(mentor, "/mentor/dashboard")
    assert status == 200 and "Overview clinic" in html
    status, html = await page(admin, "/admin/dashboard")
    assert status == 200
    assert 'Active bookings</p><p class="mt-1 text-3xl font-bold">1</p>' in html
    assert 'Scheduled sessions</p><p class="mt-1 text-3xl font-bold">1</p>' in html


async def test_room_page_opens_for_the_mentor_and_a_booked_learner(client, mentor, learner) -> None:
    sess = await published(mentor, title="Room clinic")
    assert (await book(learner, sess["id"])).status == 201
    for user in (mentor, learner):
        status, html = await page(user, f"/room/{sess['id']}")
        assert status == 200 and 'id="room"' in html and "Room clinic" in html


async def test_a_stranger_gets_the_readable_error_page_not_the_room(client, mentor) -> None:
    sess = await published(mentor, title="Private clinic")
    stranger = await signup(client, "learner")
    status, html = await page(stranger, f"/room/{sess['id']}")
    assert status == 403
    assert "You can&#39;t open this page" in html or "You can't open this page" in html
    assert "only for the session&#39;s mentor" in html or "only for the session's mentor" in html
    assert 'id="room"' not in html and "Private clinic" not in html


async def test_a_draft_or_missing_room_is_not_found(client, mentor, learner) -> None:
    from tests.api.market import draft

    sess = await draft(mentor)
    for path in (f"/room/{sess['id']}", "/room/999999"):
        status, html = await page(learner, path)
        assert status == 404 and "find this session" in html and 'id="room"' not in html
    status, _ = await page(mentor, f"/room/{sess['id']}")
    assert status == 200  # the mentor may open a draft's room page (the token is refused later)


async def test_a_signed_out_visitor_is_sent_to_login(client, mentor) -> None:
    sess = await published(mentor)
    resp = await client.get(f"/room/{sess['id']}", headers=HTML, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/login?next=/room/{sess['id']}"

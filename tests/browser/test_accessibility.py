"""axe-core over every page of the page sweep (tests/browser/test_layout.py: public, learner,
mentor and admin pages with each subtab, session detail and edit, the room lobby, messages,
a mentor's profile) at 390 and 1280 px: no WCAG 2.0-2.2 A/AA violation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.accessibility import violations
from tests.browser.conftest import DEMO_ADMIN, DEMO_LEARNER, DEMO_MENTOR, PASSWORD, Api, Tab
from tests.browser.test_layout import (
    ADMIN,
    LEARNER,
    MENTOR,
    PUBLIC,
    _class_soon_with_a_draft,
    _first_session_id,
    _settled,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_every_page_passes_axe(open_tab: Any, api_client: Api, width: int, height: int) -> None:
    sid = _first_session_id(api_client)
    mentor, learner, soon, draft = _class_soon_with_a_draft(api_client)
    assert mentor.user is not None and learner.user is not None
    cid = learner.call("POST", "/api/messages", {"to_user_id": mentor.user["id"], "body": "A question"})[
        "conversation_id"
    ]
    journeys: list[tuple[Any, list[str]]] = [
        (None, PUBLIC + [f"/mentors/{mentor.user['id']}"]),
        (DEMO_LEARNER, LEARNER + [f"/sessions/{sid}"]),
        (DEMO_MENTOR, MENTOR),
        (DEMO_ADMIN, ADMIN),
        ((mentor.user["email"], PASSWORD), [f"/mentor/sessions/{draft}", f"/messages/{cid}", f"/sessions/{soon}"]),
        ((learner.user["email"], PASSWORD), [f"/room/{soon}", f"/messages/{cid}", f"/mentors/{mentor.user['id']}"]),
    ]
    found: list[str] = []
    for who, paths in journeys:
        t: Tab = open_tab(width, height, bypass_csp=True)
        if isinstance(who, tuple):
            t.login(*who)
        elif who:
            t.login(who)
        for path in paths:
            resp = t.goto(path)
            assert resp is not None and resp.status == 200, (path, resp and resp.status)
            _settled(t, path)
            found += violations(t.page)
    assert found == [], "\n".join(found)

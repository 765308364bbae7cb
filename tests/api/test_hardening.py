"""Issue 14, security findings at the HTTP edge: redirects, JSON depth, headers, proxies,
preferences size, /metrics exposure, CSRF bound to the session."""

from __future__ import annotations

import pytest

from api.security import safe_next_path
from tests.conftest import PASSWORD, signup

EVIL_NEXT = ["/%09/evil.example", "/\t/evil.example", "//evil.example", "/\\evil.example",
             "/%5Cevil.example", "https://evil.example", "javascript:alert(1)", "/%2F/evil.example",
             "/\r\n/evil.example", "%2F%2Fevil.example", "/%252F/evil.example".replace("%25", "%"),
             "/\uff0f/evil.example", "evil.example", "/\u2028/evil.example"]


@pytest.mark.parametrize("value", EVIL_NEXT)
def test_safe_next_refuses_other_sites(value: str) -> None:
    assert safe_next_path(value) is None


@pytest.mark.parametrize("value", ["/learner/home", "/sessions/3?tab=reviews", "/room/5#lobby",
                                   "/learner/home?q=data%20science"])
def test_safe_next_keeps_own_paths(value: str) -> None:
    assert safe_next_path(value) == value


async def test_login_page_and_api_never_redirect_off_site(client) -> None:
    user = await signup(client, "learner")
    resp = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD,
                                                       "next": "/\t/evil.example"})
    assert resp.status == 200 and (await resp.json())["redirect"] == "/learner/dashboard"
    ok = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD,
                                                     "next": "/learner/sessions"})
    assert (await ok.json())["redirect"] == "/learner/sessions"
    # Signed in now (cookie): the login page bounces to `next` only when it is ours.
    for raw in ("/%09/evil.example", "/%5C%5Cevil.example", "https:%2F%2Fevil.example"):
        page = await client.get(f"/login?next={raw}", allow_redirects=False)
        assert page.status == 302 and page.headers["Location"] == "/learner/dashboard", raw
    page = await client.get("/login?next=/learner/sessions", allow_redirects=False)
    assert page.headers["Location"] == "/learner/sessions"


async def test_deeply_nested_json_is_a_400(client) -> None:
    for body in (b"[" * 100_000, b'{"a":' * 50_000):
        resp = await client.post("/api/auth/login", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "malformed_json"

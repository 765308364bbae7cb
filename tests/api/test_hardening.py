"""Issue 14, security findings at the HTTP edge: redirects, JSON depth, headers, proxies,
preferences size, /metrics exposure, CSRF bound to the session."""

from __future__ import annotations

import pytest

from api.security import safe_next_path
from tests.conftest import PASSWORD, signup

EVIL_NEXT = [
    "/%09/evil.example",
    "/\t/evil.example",
    "//evil.example",
    "/\\evil.example",
    "/%5Cevil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "/%2F/evil.example",
    "/\r\n/evil.example",
    "%2F%2Fevil.example",
    "/%252F/evil.example".replace("%25", "%"),
    "/\uff0f/evil.example",
    "evil.example",
    "/\u2028/evil.example",
]


@pytest.mark.parametrize("value", EVIL_NEXT)
def test_safe_next_refuses_other_sites(value: str) -> None:
    assert safe_next_path(value) is None


@pytest.mark.parametrize(
    "value", ["/learner/home", "/sessions/3?tab=reviews", "/room/5#lobby", "/learner/home?q=data%20science"]
)
def test_safe_next_keeps_own_paths(value: str) -> None:
    assert safe_next_path(value) == value


async def test_login_page_and_api_never_redirect_off_site(client) -> None:
    user = await signup(client, "learner")
    resp = await client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD, "next": "/\t/evil.example"}
    )
    assert resp.status == 200 and (await resp.json())["redirect"] == "/learner/dashboard"
    ok = await client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD, "next": "/learner/sessions"}
    )
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


async def test_security_headers_on_pages_api_static_and_errors(client) -> None:
    for path in (
        "/",
        "/login",
        "/api/sessions",
        "/healthz",
        "/static/js/api.js",
        "/no-such-page",
        "/api/no-such-route",
    ):
        resp = await client.get(path)
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0], path
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", path
        assert resp.headers.get("Referrer-Policy"), path


async def _app_client(aiohttp_client, settings, **changes):
    from dataclasses import replace

    from api.app import create_app

    return await aiohttp_client(create_app(replace(settings, **changes)))


async def test_secure_cookies_and_client_ip_only_from_trusted_proxies(aiohttp_client, settings) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for trusted, secure in (("", False), ("127.0.0.1/32, 10.0.0.0/8", True)):
        client = await _app_client(aiohttp_client, settings, trusted_proxies=trusted, auth_rate_limit=2)
        user = await signup(client, "learner")
        resp = await client.post("/api/auth/login", headers=forwarded, json={"email": user.email, "password": PASSWORD})
        cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith("pl_session="))
        assert ("Secure" in cookie) is secure, trusted
        # Per-IP limits count the client the trusted proxy names; untrusted headers change nothing.
        statuses = []
        for i in range(3):
            r = await client.post(
                "/api/auth/password-reset",
                json={"email": f"x{i}@example.com"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
            statuses.append(r.status)
        assert statuses == ([200, 200, 200] if trusted else [200, 200, 429]), trusted


async def test_a_request_relayed_by_a_peer_process_counts_the_learner_not_the_relay(aiohttp_client, settings) -> None:
    """A recording POST or room socket another worker relays to the room's owner carries the
    caller's address with our mark: the owner's per-IP limits count each learner. Without the
    mark (anyone can send the header) the address is ignored."""
    from api.context import Context
    from api.owner_forward import CLIENT_HEADER, PROXIED_HEADER, proxy_mark

    client = await _app_client(aiohttp_client, settings, auth_rate_limit=2)
    mark = proxy_mark(Context.of(client.server.app).settings.jwt_secret)
    for headers, expected in (
        ({PROXIED_HEADER: mark}, [200, 200, 200]),  # three learners behind one relay
        ({PROXIED_HEADER: "forged"}, [200, 200, 429]),  # one caller claiming three addresses
    ):
        statuses = []
        for i in range(3):
            r = await client.post(
                "/api/auth/password-reset",
                json={"email": f"y{i}@example.com"},
                headers={**headers, CLIENT_HEADER: f"198.51.{100 + len(headers[PROXIED_HEADER])}.{i}"},
            )
            statuses.append(r.status)
        assert statuses == expected, headers


async def test_metrics_only_for_scrapers(aiohttp_client, settings) -> None:
    client = await _app_client(aiohttp_client, settings, metrics_token="s3cret-scrape")
    assert (await client.get("/metrics")).status == 200  # direct, from loopback
    proxied = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status == 403 and (await proxied.json())["error"]["code"] == "forbidden"
    wrong = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer nope"})
    assert wrong.status == 403
    ok = await client.get(
        "/metrics", headers={"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer s3cret-scrape"}
    )
    assert ok.status == 200 and "peerlearn_http_request" in await ok.text()


async def test_preferences_are_capped(client, learner) -> None:
    path = f"/api/users/{learner.id}/update"
    ok = await learner.post(path, json={"preferences": {"email_reminders": True, "theme": "dark"}})
    assert ok.status == 200
    for prefs in (
        {f"k{i}": i for i in range(51)},
        {"blob": "x" * 501},
        {f"key{i}": "y" * 400 for i in range(20)},
        {"k" * 65: 1},
    ):
        resp = await learner.post(path, json={"preferences": prefs})
        assert resp.status == 400, prefs
        assert "preferences" in " ".join((await resp.json())["error"]["fields"])


async def test_csrf_token_is_bound_to_the_session(client, learner) -> None:
    path = f"/api/users/{learner.id}/update"
    await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD})
    first = client.session.cookie_jar.filter_cookies(client.make_url("/"))["pl_csrf"].value
    assert (await client.post(path, json={"bio": "a"}, headers={"X-CSRF-Token": first})).status == 200
    # A value someone planted in the pl_csrf cookie (and echoes) is not the session's token.
    client.session.cookie_jar.update_cookies({"pl_csrf": "planted-by-attacker"})
    planted = await client.post(path, json={"bio": "b"}, headers={"X-CSRF-Token": "planted-by-attacker"})
    assert planted.status == 403 and (await planted.json())["error"]["code"] == "csrf_failed"
    # A new session (login again) gets a new token; the old session's token no longer works.
    await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD})
    second = client.session.cookie_jar.filter_cookies(client.make_url("/"))["pl_csrf"].value
    assert second != first
    assert (await client.post(path, json={"bio": "c"}, headers={"X-CSRF-Token": first})).status == 403
    assert (await client.post(path, json={"bio": "d"}, headers={"X-CSRF-Token": second})).status == 200
    # Pages embed the same bound token.
    page = await (await client.get("/profile")).text()
    assert f'content="{second}"' in page


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (the pixels compress to almost nothing)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (width + 1) * 64, 9)  # a few rows are enough to look real
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


async def test_avatar_decompression_bomb_refused_from_its_header(client, learner, monkeypatch) -> None:
    from aiohttp import FormData
    from PIL import Image

    loads: list[tuple[int, int]] = []
    real_load = Image.Image.load

    def spy(self):  # type: ignore[no-untyped-def]
        loads.append(self.size)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    bomb = _png_claiming(8900, 8900)
    assert len(bomb) < 20_000
    form = FormData()
    form.add_field("file", bomb, filename="a.png", content_type="image/png")
    resp = await learner.post(f"/api/users/{learner.id}/avatar", data=form)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "image_too_large" and "file" in err["fields"]
    assert (8900, 8900) not in loads  # never decoded


async def test_avatar_uploads_are_rate_limited_per_user(aiohttp_client, settings) -> None:
    import io

    from aiohttp import FormData
    from PIL import Image

    client = await _app_client(aiohttp_client, settings, avatar_rate_limit=2)
    user = await signup(client, "learner")
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(buf, format="PNG")
    statuses = []
    for _ in range(3):
        form = FormData()
        form.add_field("file", buf.getvalue(), filename="a.png", content_type="image/png")
        statuses.append((await user.post(f"/api/users/{user.id}/avatar", data=form)).status)
    assert statuses == [200, 200, 429]
    other = await signup(client, "learner")  # someone else is not affected
    form = FormData()
    form.add_field("file", buf.getvalue(), filename="a.png", content_type="image/png")
    assert (await other.post(f"/api/users/{other.id}/avatar", data=form)).status == 200

"""Accounts over HTTP: registration, login, tokens, cookies + CSRF, profile, avatar, reset."""

from __future__ import annotations

import pytest

import base64
import io
import json
import re
import time
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import jwt
from PIL import Image

from api.app import create_app
from api.keys import SETTINGS
from tests.conftest import PASSWORD, delivered_mail, login, signup


async def _outbox_links(client, kind: str) -> list[str]:
    outbox: Path = await delivered_mail(client)
    links = []
    for f in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        msg = message_from_bytes(f.read_bytes(), policy=policy.default)
        body = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        links += re.findall(rf"http://testserver/{kind}\?token=([\w-]+)", body)
    return links


async def test_register_validation_and_duplicates(client) -> None:
    bad = await client.post("/api/auth/register", json={"email": "not-an-email", "password": "x", "full_name": ""})
    assert bad.status == 400
    fields = (await bad.json())["error"]["fields"]
    assert {"email", "full_name"} <= set(fields)
    # a reserved domain is refused in words a person understands, not email-validator's
    reserved = await client.post(
        "/api/auth/register", json={"email": "me@peerlearn.local", "password": PASSWORD, "full_name": "Me"}
    )
    assert reserved.status == 400
    assert (await reserved.json())["error"]["fields"]["email"].startswith("Enter an e-mail address you can receive")
    weak = await client.post(
        "/api/auth/register", json={"email": "w@example.com", "password": "password", "full_name": "W"}
    )
    assert weak.status == 400 and (await weak.json())["error"]["code"] == "weak_password"
    ok = await client.post(
        "/api/auth/register",
        json={
            "email": "Dup@Example.com",
            "password": PASSWORD,
            "full_name": "Dup",
            "role": "mentor",
            "domains": ["Design"],
            "skills": ["Figma"],
        },
    )
    assert ok.status == 201
    body = await ok.json()
    assert body["user"]["role"] == "mentor" and body["user"]["domains"] == ["Design"]
    dup = await client.post(
        "/api/auth/register", json={"email": "dup@example.com", "password": PASSWORD, "full_name": "Again"}
    )
    assert dup.status == 409 and (await dup.json())["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    "name",
    [
        "\u202eAdmin",
        "Eve\u2066 (mentor)\u2069",
        "\u200b\u200b",
        "\u200d \u2060",
        "\u3164",
        "\u2800\u2800",
        "\u0301\u0301",
        "\u00ad\u034f",
    ],
    ids=[
        "right-to-left-override",
        "isolate",
        "zero-width-only",
        "joiners-only",
        "hangul-filler",
        "braille-blank",
        "combining-marks-only",
        "soft-hyphen-and-grapheme-joiner",
    ],
)
async def test_a_name_that_spoofs_or_shows_nothing_is_refused(client, name: str) -> None:
    """Names show in chat, rooms and e-mails: a text-direction override ("\u202eAdmin" reads
    backwards onto what follows) or a name of invisible characters is a 400 on the name."""
    resp = await client.post(
        "/api/auth/register", json={"email": "spoof@example.com", "password": PASSWORD, "full_name": name}
    )
    assert resp.status == 400 and "full_name" in (await resp.json())["error"]["fields"]
    ok = await client.post(  # right-to-left scripts themselves are names like any other
        "/api/auth/register", json={"email": "rtl@example.com", "password": PASSWORD, "full_name": "\u05d3\u05e0\u05d4"}
    )
    assert ok.status == 201, await ok.text()
    for n, fine in enumerate(("Zo\u00eb", "\u0645\u0631\u064a\u0645", "Ana \U0001f469\u200d\U0001f4bb")):
        resp = await client.post(
            "/api/auth/register", json={"email": f"ok{n}@example.com", "password": PASSWORD, "full_name": fine}
        )
        assert resp.status == 201, (fine, await resp.text())


async def test_self_registration_as_admin_refused(client) -> None:
    resp = await client.post(
        "/api/auth/register",
        json={"email": "boss@example.com", "password": PASSWORD, "full_name": "Boss", "role": "admin"},
    )
    assert resp.status == 400
    assert "role" in (await resp.json())["error"]["fields"]


async def test_malformed_json_and_huge_body(client) -> None:
    resp = await client.post("/api/auth/login", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "malformed_json"
    resp = await client.post("/api/auth/register", data=b"x" * (6 * 1024 * 1024))
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"
    resp = await client.post("/api/auth/login", json=[1, 2])
    assert resp.status == 400


async def test_login_redirects_by_role_and_wrong_password(client, learner, mentor) -> None:
    assert (await login(client, learner.email))["redirect"] == "/learner/dashboard"
    assert (await login(client, mentor.email))["redirect"] == "/mentor/dashboard"
    for email in (learner.email, "nobody@example.com"):
        resp = await client.post("/api/auth/login", json={"email": email, "password": "Wrong-passw0rd"})
        assert resp.status == 401
        assert (await resp.json())["error"]["message"] == "Invalid credentials"


async def test_login_next_must_be_local(client, learner) -> None:
    for nxt, expected in (
        ("/sessions/3", "/sessions/3"),
        ("//evil.example", "/learner/dashboard"),
        ("https://evil.example", "/learner/dashboard"),
    ):
        resp = await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD, "next": nxt})
        assert (await resp.json())["redirect"] == expected


async def test_repeated_failures_get_429(aiohttp_client, settings) -> None:
    client = await aiohttp_client(create_app(replace(settings, auth_rate_limit=3)))
    statuses = []
    for _ in range(5):
        resp = await client.post("/api/auth/login", json={"email": "x@example.com", "password": "Wrong1234"})
        statuses.append(resp.status)
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "rate_limited"


def _forge(claims: dict, key: str = "k" * 40, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_bad_tokens_get_401(client, learner) -> None:
    now = int(time.time())
    base = {
        "sub": str(learner.id),
        "role": "admin",
        "ver": 0,
        "jti": "j",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 600,
        "typ": "access",
    }
    unsigned = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
        + "."
        + base64.urlsafe_b64encode(json.dumps(base).encode()).rstrip(b"=").decode()
        + "."
    )
    secret = client.app[SETTINGS].jwt_secret
    expired = _forge({**base, "role": "learner", "exp": now - 1}, secret)
    for token in (unsigned, _forge(base), expired, "garbage", _forge(base, secret, "HS512")):
        resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 401, token
        assert (await resp.json())["error"]["code"] in ("invalid_token", "unauthorized")
    assert (await client.get("/api/users/me")).status == 401


async def test_logout_revokes_token(client, learner) -> None:
    assert (await learner.post("/api/auth/logout")).status == 200
    assert (await learner.get("/api/users/me")).status == 401


async def test_cookie_is_httponly_and_csrf_required(client, learner) -> None:
    resp = await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD})
    cookie = resp.headers.getall("Set-Cookie")
    session_cookie = next(c for c in cookie if c.startswith("pl_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert "access_token" not in session_cookie
    # Cookie auth works for reads ...
    assert (await client.get("/api/users/me")).status == 200
    # ... but a state change without the CSRF header is refused, and succeeds with it.
    path = f"/api/users/{learner.id}/update"
    refused = await client.post(path, json={"bio": "hi"})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "csrf_failed"
    csrf = client.session.cookie_jar.filter_cookies(client.make_url("/"))["pl_csrf"].value
    ok = await client.post(path, json={"bio": "hi"}, headers={"X-CSRF-Token": csrf})
    assert ok.status == 200 and (await ok.json())["bio"] == "hi"


async def test_profile_update_own_only_and_no_role_change(client, learner) -> None:
    other = await signup(client, "learner")
    resp = await learner.post(f"/api/users/{learner.id}/update", json={"role": "admin"})
    assert resp.status == 400
    resp = await learner.post(f"/api/users/{learner.id}/update", json={"is_active": False})
    assert resp.status == 400
    resp = await learner.post(f"/api/users/{other.id}/update", json={"bio": "pwned"})
    assert resp.status == 403
    resp = await learner.post(
        f"/api/users/{learner.id}/update", json={"full_name": "New Name", "interests": ["Go", "go", "Rust"]}
    )
    data = await resp.json()
    assert resp.status == 200 and data["full_name"] == "New Name" and data["interests"] == ["Go", "Rust"]
    assert data["role"] == "learner"
    assert "password_hash" not in json.dumps(data)


async def test_deactivation_kills_tokens(client, learner, admin) -> None:
    assert (await learner.post(f"/api/users/{admin.id}/deactivate")).status == 403
    resp = await admin.post(f"/api/users/{learner.id}/deactivate")
    assert resp.status == 200 and (await resp.json())["is_active"] is False
    assert (await learner.get("/api/users/me")).status == 401
    again = await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD})
    assert again.status == 403
    assert (await admin.post(f"/api/users/{learner.id}/reactivate")).status == 200
    await login(client, learner.email)


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


async def test_avatar_upload_reencodes_and_checks(client, learner) -> None:
    import aiohttp

    def form(data: bytes, ctype: str) -> aiohttp.FormData:
        f = aiohttp.FormData()
        f.add_field("file", data, filename="a.png", content_type=ctype)
        return f

    other = await signup(client, "learner")
    resp = await learner.post(f"/api/users/{other.id}/avatar", data=form(_png(), "image/png"))
    assert resp.status == 403
    resp = await learner.post(f"/api/users/{learner.id}/avatar", data=form(b"<script>x</script>", "image/png"))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_image"
    resp = await learner.post(f"/api/users/{learner.id}/avatar", data=form(_png(), "text/html"))
    assert resp.status == 415
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 40)).save(jpeg, format="JPEG")
    resp = await learner.post(
        f"/api/users/{learner.id}/avatar", data=form(jpeg.getvalue() + b"TRAILING-PAYLOAD", "image/jpeg")
    )
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["avatar_url"]
    img = await client.get(url)
    raw = await img.read()
    assert img.status == 200 and raw.startswith(b"\x89PNG") and b"TRAILING-PAYLOAD" not in raw


async def test_email_verification_flow(client) -> None:
    user = await signup(client, "learner", verified=False)
    me = await (await user.get("/api/users/me")).json()
    assert me["email_verified"] is False
    (token,) = await _outbox_links(client, "verify-email")
    assert (await client.post("/api/auth/verify-email", json={"token": "wrong"})).status == 400
    resp = await client.post("/api/auth/verify-email", json={"token": token})
    assert resp.status == 200 and (await resp.json())["email_verified"] is True


async def test_password_reset_flow(client, learner) -> None:
    same = []
    for email in (learner.email, "unknown@example.com"):
        resp = await client.post("/api/auth/password-reset", json={"email": email})
        same.append((resp.status, await resp.json()))
    assert same[0] == same[1]
    token = (await _outbox_links(client, "reset-password"))[-1]
    weak = await client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "short"})
    assert weak.status == 400
    resp = await client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "N3w-passw0rd"})
    assert resp.status == 200
    # The old session ends, the old password stops working, the link is single-use.
    assert (await learner.get("/api/users/me")).status == 401
    old = await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD})
    assert old.status == 401
    await login(client, learner.email, "N3w-passw0rd")
    reuse = await client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "An0ther-pass"})
    assert reuse.status == 400


async def test_openapi_lists_routes_with_schemas(client) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    login_op = doc["paths"]["/api/auth/login"]["post"]
    assert login_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("LoginIn")
    assert "LoginOut" in doc["components"]["schemas"]
    assert (await client.get("/api/docs")).status == 200


async def test_metrics_count_requests_by_route(client) -> None:
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    assert 'route="/healthz"' in text and "peerlearn_http_request_seconds_bucket" in text


async def test_unexpected_error_is_json_without_trace(client, monkeypatch) -> None:
    from api.services import accounts

    async def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(accounts, "get_user", boom)
    resp = await client.get("/api/users/1", headers={})
    assert resp.status == 401
    user = await signup(client, "learner")
    resp = await user.get("/api/users/me")
    body = await resp.text()
    assert resp.status == 500 and "secret internals" not in body and "Traceback" not in body
    assert json.loads(body)["error"]["code"] == "internal_error"

"""Password hashing (argon2id), JWT access tokens, and the identity of a request.

JWT code lives here and only here: HS256 pinned, ``exp``/``iat``/``nbf``/``jti``
required, plus ``ver`` (the user's token version) so deactivation and password
changes kill older tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import Type

JWT_ALGORITHM = "HS256"
AUTH_COOKIE = "pl_session"
CSRF_COOKIE = "pl_csrf"
CSRF_HEADER = "X-CSRF-Token"

# OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Verified against when the e-mail is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-work check: an unknown user still pays for one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


PASSWORD_RULES = "at least 8 characters, with a letter and a digit, not a common password"
_COMMON = {
    "password",
    "password1",
    "12345678",
    "123456789",
    "qwerty123",
    "iloveyou1",
    "letmein1",
    "abc12345",
    "welcome1",
    "passw0rd",
    "admin123",
    "peerlearn1",
}


def password_problem(password: str, *, email: str = "") -> str | None:
    """Server-side strength rules; returns what is wrong, or None."""
    if len(password) < 8:
        return "Password must be at least 8 characters."
    if len(password) > 256:
        return "Password must be at most 256 characters."
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return "Password must contain a letter and a digit."
    if password.lower() in _COMMON:
        return "This password is too common."
    if email and password.lower() == email.lower():
        return "Password must differ from the e-mail."
    return None


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: str
    jti: str
    version: int
    expires_at: datetime


class TokenError(Exception):
    """The token is missing, malformed, unsigned, expired or not ours."""


def issue_access_token(
    secret: str, *, user_id: int, role: str, version: int, ttl_seconds: int
) -> tuple[str, TokenClaims]:
    now = datetime.now(timezone.utc)
    exp = now + timedelta(seconds=ttl_seconds)
    jti = uuid.uuid4().hex
    payload = {
        "sub": str(user_id),
        "role": role,
        "ver": version,
        "jti": jti,
        "iat": now,
        "nbf": now - timedelta(seconds=5),
        "exp": exp,
        "typ": "access",
    }
    token = jwt.encode(payload, secret, algorithm=JWT_ALGORITHM)
    return token, TokenClaims(user_id, role, jti, version, exp)


def decode_access_token(secret: str, token: str) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "iat", "nbf", "sub", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    if payload.get("typ") != "access":
        raise TokenError("not an access token")
    try:
        return TokenClaims(
            int(payload["sub"]),
            str(payload["role"]),
            str(payload["jti"]),
            int(payload.get("ver", 0)),
            datetime.fromtimestamp(int(payload["exp"]), timezone.utc),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenError("malformed claims") from exc


def issue_scoped_token(secret: str, *, purpose: str, claims: dict[str, Any], ttl_seconds: int) -> str:
    """A short-lived token for one purpose (e.g. a room token), not accepted as login."""
    now = datetime.now(timezone.utc)
    payload = {
        **claims,
        "typ": purpose,
        "iat": now,
        "nbf": now - timedelta(seconds=5),
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": claims.get("jti") or uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM)


def decode_scoped_token(secret: str, token: str, *, purpose: str) -> dict[str, Any]:
    try:
        payload = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "iat", "jti"]})
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    if payload.get("typ") != purpose:
        raise TokenError("wrong token type")
    return payload


def new_opaque_token() -> tuple[str, str]:
    """A random token for e-mailed links and its SHA-256 (only the hash is stored)."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_opaque(raw)


def hash_opaque(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_for_session(secret: str, jti: str) -> str:
    """The CSRF token bound to one session (its access token's jti): HMAC, not stored."""
    mac = hmac.new(secret.encode(), f"csrf:{jti}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode()


def safe_next_path(value: str | None) -> str | None:
    """``value`` if it is a path on this site, else None (never an open redirect).

    Browsers drop tabs and line breaks inside URLs and read a backslash as a slash,
    so "/<TAB>/evil.example" and "/<BACKSLASH>evil.example" both lead to
    "//evil.example": control characters, backslashes and a leading "//" are
    refused, checked again after one more percent-decoding (double-encoded input)
    and NFKC folding (full-width solidus).
    """
    if not value or len(value) > 2000:
        return None
    for form in {value, unquote(value), unicodedata.normalize("NFKC", unquote(value))}:
        if not form.startswith("/") or form.startswith("//") or "\\" in form:
            return None
        if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in form):
            return None
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return None
    return value

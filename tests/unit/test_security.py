"""Password hashing and token rules (RELIABILITY: accounts and authorization)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from argon2 import extract_parameters

from api.security import (
    TokenError,
    decode_access_token,
    hash_password,
    issue_access_token,
    password_problem,
    verify_password,
)

SECRET = "s" * 64


def test_hash_is_argon2id_with_owasp_parameters() -> None:
    h = hash_password("correct horse 1")
    params = extract_parameters(h)
    assert h.startswith("$argon2id$")
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2
    assert verify_password(h, "correct horse 1")
    assert not verify_password(h, "correct horse 2")
    assert not verify_password(None, "anything")


@pytest.mark.parametrize(
    "pw,ok",
    [("short1", False), ("lettersonly", False), ("12345678", False), ("password1", False), ("Tr0ub4dor&3", True)],
)
def test_password_rules(pw: str, ok: bool) -> None:
    assert (password_problem(pw) is None) is ok


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base = {
        "sub": "1",
        "role": "learner",
        "ver": 0,
        "jti": "x",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 60,
        "typ": "access",
    }
    base.update(over)
    return base


def test_round_trip() -> None:
    token, claims = issue_access_token(SECRET, user_id=7, role="mentor", version=3, ttl_seconds=60)
    got = decode_access_token(SECRET, token)
    assert (got.user_id, got.role, got.version, got.jti) == (7, "mentor", 3, claims.jti)


def test_alg_none_refused() -> None:
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + "."
    with pytest.raises(TokenError):
        decode_access_token(SECRET, token)


def test_other_algorithm_and_other_key_refused() -> None:
    with pytest.raises(TokenError):
        decode_access_token(SECRET, jwt.encode(_claims(), SECRET, algorithm="HS512"))
    with pytest.raises(TokenError):
        decode_access_token(SECRET, jwt.encode(_claims(), "another-key" * 4, algorithm="HS256"))


def test_expired_by_one_second_and_future_nbf_refused() -> None:
    now = int(time.time())
    with pytest.raises(TokenError):
        decode_access_token(SECRET, jwt.encode(_claims(exp=now - 1), SECRET, algorithm="HS256"))
    with pytest.raises(TokenError):
        decode_access_token(SECRET, jwt.encode(_claims(nbf=now + 3600), SECRET, algorithm="HS256"))


def test_missing_claims_and_wrong_type_refused() -> None:
    c = _claims()
    del c["jti"]
    with pytest.raises(TokenError):
        decode_access_token(SECRET, jwt.encode(c, SECRET, algorithm="HS256"))
    with pytest.raises(TokenError):
        decode_access_token(SECRET, jwt.encode(_claims(typ="room"), SECRET, algorithm="HS256"))

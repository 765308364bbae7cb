"""Domain errors reach clients exactly as the HTTP errors services used to raise did."""

from __future__ import annotations

import pytest

from api.errors import from_domain
from api.models import SessionStatus
from api.services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
    Unprocessable,
    UnsupportedMedia,
)
from api.services.session_state import InvalidTransition


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Invalid("Bad."), 400, "validation_error"),
        (Invalid("Weak.", code="weak_password", fields={"password": "Weak."}), 400, "weak_password"),
        (Unauthenticated("Invalid credentials", code="invalid_credentials"), 401, "invalid_credentials"),
        (Forbidden("No."), 403, "forbidden"),
        (NotFound.of("session"), 404, "not_found"),
        (Conflict("Sold out.", code="sold_out"), 409, "sold_out"),
        (UnsupportedMedia("PNG please."), 415, "unsupported_media_type"),
        (Unprocessable("Key reused.", code="idempotency_mismatch"), 422, "idempotency_mismatch"),
        (Unavailable("Recording could not start.", code="recording_unavailable"), 503, "recording_unavailable"),
        (InvalidTransition(SessionStatus.draft, SessionStatus.live), 409, "invalid_status"),
        (DomainError("Unclassified."), 400, "error"),
    ],
)
def test_each_kind_maps_to_its_status(error: DomainError, status: int, code: str) -> None:
    api_error = from_domain(error)
    assert (api_error.status, api_error.code, api_error.message) == (status, code, error.message)
    assert api_error.body() == {"error": {"code": code, "message": error.message, "fields": error.fields}}


def test_rate_limited_is_a_429_that_says_when_to_come_back() -> None:
    api_error = from_domain(RateLimited("Slow down.", retry_after=42))
    assert (api_error.status, api_error.code, api_error.headers) == (429, "rate_limited", {"Retry-After": "42"})
    assert from_domain(RateLimited("Slow down.", retry_after=0)).headers == {"Retry-After": "1"}


def test_not_found_names_the_thing() -> None:
    assert NotFound.of("session").message == "Session not found."

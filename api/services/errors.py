"""The errors services raise when a rule says no: a kind, a stable machine code, a message.

Services know nothing of HTTP. The edge maps each kind to a status once
(``api.errors.from_domain``: the API's JSON error shape, and the pages' readable
error page through the same middleware). The codes are part of the API contract
(docs/architecture.md): clients branch on them, so a code never changes meaning.

    raise NotFound.of("session")
    raise Conflict("This session is sold out.", code="sold_out")
    raise Invalid("Unknown time zone.", fields={"timezone": "unknown time zone"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class DomainError(Exception):
    """A refusal a user should read: ``code`` for programs, ``message`` for people, and
    ``fields`` naming the inputs at fault."""

    default_code: ClassVar[str] = "error"

    def __init__(self, message: str, *, code: str | None = None, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = dict(fields or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class Invalid(DomainError):
    """The input breaks a rule (a weak password, a time in the past, a bad link)."""

    default_code = "validation_error"


class Unauthenticated(DomainError):
    """Who is asking is unknown or no longer valid (wrong credentials, an expired token)."""

    default_code = "unauthorized"


class Forbidden(DomainError):
    """Known, but not allowed to do this."""

    default_code = "forbidden"


class NotFound(DomainError):
    """No such thing, or none this user may know of."""

    default_code = "not_found"

    @classmethod
    def of(cls, what: str) -> NotFound:
        """``NotFound.of("session")``: "Session not found."."""
        return cls(f"{what.capitalize()} not found.")


class Conflict(DomainError):
    """Not in this state: sold out, already booked, not live, too early ... (``code`` says which)."""

    default_code = "conflict"


class Unavailable(DomainError):
    """Cannot be done right now for a reason outside the request (a recorder cannot start)."""

    default_code = "unavailable"


class UnsupportedMedia(DomainError):
    """An upload of a type the service does not take."""

    default_code = "unsupported_media_type"


class RateLimited(DomainError):
    """Too many of these too quickly; ``retry_after`` says when (in seconds) to try again."""

    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))


class TooLarge(DomainError):
    """An upload over a size limit (one file, or all of a session's files together)."""

    default_code = "payload_too_large"


class Unprocessable(DomainError):
    """Well formed, but contradicts what was asked before (an idempotency key reused)."""

    default_code = "unprocessable"

"""Admin API: users, sessions, payments (the ledger's journals), feedback moderation, audit
log and health."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool

from api.schemas.common import QueryModel, Strict


PageNo = Annotated[int, Field(ge=1, le=100_000)]
PageSize = Annotated[int, Field(ge=1, le=200)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Text = Annotated[str, Field(max_length=200)]


class UsersQuery(QueryModel):
    q: Text | None = None
    role: Literal["learner", "mentor", "admin"] | None = None
    active: bool | None = None
    page: PageNo = 1
    page_size: PageSize = 50


class MentorRecord(BaseModel):
    """A mentor's concluded sold classes and how many did not happen through them
    (api/services/mentor_record.py); rates are None until something was sold."""

    sold_classes: int
    cancelled_by_mentor: int
    mentor_no_shows: int
    cancel_rate: float | None
    no_show_rate: float | None


class AdminUser(BaseModel):
    id: int
    email: str
    full_name: str
    role: str
    is_active: bool
    email_verified: bool
    created_at: datetime
    mentor_record: MentorRecord | None = None  # mentors only


class AdminUserPage(BaseModel):
    items: list[AdminUser]
    total: int
    page: int
    page_size: int


class SessionsQuery(QueryModel):
    status: Literal["draft", "scheduled", "live", "completed", "cancelled"] | None = None
    q: Text | None = None
    mentor_id: Id | None = None
    page: PageNo = 1
    page_size: PageSize = 50


class AdminSession(BaseModel):
    id: int
    title: str
    mentor_id: int
    mentor_name: str
    domain: str
    status: str
    starts_at: datetime
    duration_min: int
    capacity: int
    seats_taken: int
    price_cents: int
    currency: str
    created_at: datetime


class AdminSessionPage(BaseModel):
    items: list[AdminSession]
    total: int
    page: int
    page_size: int


class AdminCancel(Strict):
    reason: Annotated[str, Field(max_length=500)] = ""


class AdminCancelOut(BaseModel):
    session_id: int
    status: str
    refunded_bookings: int
    refunded_cents: int


class PaymentsQuery(QueryModel):
    kind: Annotated[str, Field(max_length=40)] | None = None
    account: Annotated[str, Field(max_length=80)] | None = None
    session_id: Id | None = None
    page: PageNo = 1
    page_size: PageSize = 50


class LedgerLeg(BaseModel):
    account: str
    amount_cents: int
    currency: str


class JournalOut(BaseModel):
    id: int
    kind: str
    reference: str
    session_id: int | None
    booking_id: int | None
    created_at: datetime
    entries: list[LedgerLeg]


class PaymentsPage(BaseModel):
    items: list[JournalOut]
    total: int
    page: int
    page_size: int
    test_mode: bool = True


class FeedbackQuery(QueryModel):
    hidden: bool | None = None
    session_id: Id | None = None
    page: PageNo = 1
    page_size: PageSize = 50


class AdminFeedback(BaseModel):
    id: int
    session_id: int
    session_title: str
    author_id: int
    author_name: str
    rating: int
    comment: str
    hidden: bool
    created_at: datetime


class AdminFeedbackPage(BaseModel):
    items: list[AdminFeedback]
    total: int
    page: int
    page_size: int


class HideIn(Strict):
    hidden: StrictBool = True


class AuditQuery(QueryModel):
    action: Annotated[str, Field(max_length=80)] | None = None
    actor_id: Id | None = None
    page: PageNo = 1
    page_size: PageSize = 50


class AuditEntry(BaseModel):
    id: int
    actor_id: int | None
    actor_email: str | None
    action: str
    target: str
    details: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntry]
    total: int
    page: int
    page_size: int


class DatabaseHealth(BaseModel):
    ok: bool
    latency_ms: float | None
    dialect: str
    error: str | None = None


class BrokerHealth(BaseModel):
    ok: bool
    kind: str
    latency_ms: float


class ProcessHealth(BaseModel):
    pid: int
    cpu_percent: float
    rss_bytes: int
    threads: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    uptime_seconds: float
    now: datetime
    database: DatabaseHealth
    broker: BrokerHealth
    rooms: int
    peers: int
    websockets: int
    online_users: int
    process: ProcessHealth

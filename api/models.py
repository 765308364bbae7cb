"""SQLAlchemy 2 ORM models: the data model of docs/architecture.md.

Times are timezone-aware UTC. Money is integer cents. JSON columns hold
lists (skills, topics) that the pages show but never join on.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

# Re-exported: callers (and the migrations, for UTCDateTime) know these as api.models names.
from api.orm import Base as Base
from api.orm import UTCDateTime as UTCDateTime
from api.orm import utcnow as utcnow


def _enum(e: type[enum.Enum]) -> Enum:
    return Enum(e, native_enum=False, length=20, values_callable=lambda x: [m.value for m in x], validate_strings=True)


class Role(str, enum.Enum):
    learner = "learner"
    mentor = "mentor"
    admin = "admin"


class SessionStatus(str, enum.Enum):
    draft = "draft"
    scheduled = "scheduled"
    live = "live"
    completed = "completed"
    cancelled = "cancelled"


class BookingStatus(str, enum.Enum):
    confirmed = "confirmed"
    cancelled = "cancelled"
    attended = "attended"
    # The class took place and the learner never joined it (docs/money.md).
    no_show = "no_show"


class RequestStatus(str, enum.Enum):
    open = "open"
    # A mentor proposed a price and time; nothing is charged until the learner confirms.
    proposed = "proposed"
    accepted = "accepted"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"


class PayoutStatus(str, enum.Enum):
    requested = "requested"
    paid = "paid"
    failed = "failed"


class MailStatus(str, enum.Enum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class RecordingStatus(str, enum.Enum):
    recording = "recording"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(_enum(Role), index=True)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    email_verified_at: Mapped[datetime | None]
    avatar: Mapped[str | None] = mapped_column(String(255))
    bio: Mapped[str] = mapped_column(Text, default="", server_default="")
    domains: Mapped[list[str]] = mapped_column(default=list)
    skills: Mapped[list[str]] = mapped_column(default=list)
    interests: Mapped[list[str]] = mapped_column(default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Bumped on logout-everywhere / deactivation / password change: older tokens die.
    token_version: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Session(Base):
    """A live class a mentor publishes."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"),
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        CheckConstraint("duration_min > 0", name="duration_positive"),
        Index("ix_sessions_status_starts_at", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    curriculum: Mapped[list[str]] = mapped_column(default=list)
    domain: Mapped[str] = mapped_column(String(80), index=True)
    skills: Mapped[list[str]] = mapped_column(default=list)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime]
    duration_min: Mapped[int] = mapped_column(Integer, default=60)
    status: Mapped[SessionStatus] = mapped_column(_enum(SessionStatus), default=SessionStatus.draft)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    reminder_sent_at: Mapped[datetime | None]
    # iCalendar SEQUENCE of the class (calendar feeds): bumped when it moves or is cancelled.
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    talk_time: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: {user_id: {excellent|good|poor|lost: seconds}} as the SFU scored each participant
    connection_quality: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Learners who attended may replay the class's recordings (set on the session form;
    # the catalogue shows it before booking). None: the default, on for 1:1s only.
    attendee_replay: Mapped[bool | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    mentor: Mapped[User] = relationship(lazy="raise")

    @property
    def replay_allowed(self) -> bool:
        """Learners who attended may replay its recordings: the mentor's choice, else 1:1s only."""
        return self.attendee_replay if self.attendee_replay is not None else self.capacity == 1


class Booking(Base):
    """A learner's seat in a session."""

    __tablename__ = "bookings"
    __table_args__ = (
        # One active booking per learner and session; cancelled ones may repeat.
        Index(
            "uq_bookings_active_learner_session",
            "session_id",
            "learner_id",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
        UniqueConstraint("learner_id", "idempotency_key", name="uq_bookings_idempotency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[BookingStatus] = mapped_column(_enum(BookingStatus), default=BookingStatus.confirmed)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    payment_ref: Mapped[str | None] = mapped_column(String(64))
    ready_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]
    # The terms sold (docs/money.md): the start and length the learner paid for. A session
    # moved or shortened since leaves this booking refundable in full on request.
    booked_starts_at: Mapped[datetime | None]
    booked_duration_min: Mapped[int | None] = mapped_column(Integer)
    # Settlement (api/services/settlement.py): when attendance was decided, when the
    # mentor's share may leave the hold, and when it did.
    settled_at: Mapped[datetime | None]
    earnings_release_at: Mapped[datetime | None] = mapped_column(index=True)
    earnings_released_at: Mapped[datetime | None]

    session: Mapped[Session] = relationship(lazy="raise")
    learner: Mapped[User] = relationship(lazy="raise")


class Request(Base):
    """A learner's ask for a custom session, to one mentor or to a domain."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    mentor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    topic: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(80), index=True)
    skills: Mapped[list[str]] = mapped_column(default=list)
    duration_min: Mapped[int] = mapped_column(Integer, default=60)
    preferred_times: Mapped[list[str]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus), default=RequestStatus.open, index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The mentor's proposal (status ``proposed``; the mentor is ``decided_by_id``).
    proposed_price_cents: Mapped[int | None] = mapped_column(Integer)
    proposed_starts_at: Mapped[datetime | None]
    proposed_title: Mapped[str | None] = mapped_column(String(200))
    proposal_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("session_id", "author_id", name="uq_feedback_session_author"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    hidden: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(255), default="")
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoomToken(Base):
    __tablename__ = "room_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The access token (login session) it was issued to: logout revokes the room tokens too.
    access_jti: Mapped[str | None] = mapped_column(String(64), index=True)


class Follow(Base):
    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("learner_id", "mentor_id", name="uq_follows_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Journal(Base):
    """One balanced money movement; its entries sum to zero."""

    __tablename__ = "journals"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # charge|refund|release|payout|fee
    reference: Mapped[str] = mapped_column(String(120), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """One leg of a journal. Immutable: balances are sums of these, never counters."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account", "account"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journal_id: Mapped[int] = mapped_column(ForeignKey("journals.id"), index=True)
    # e.g. "external:sandbox", "learner:12", "mentor:3:pending", "mentor:3:available",
    # "mentor:3:paid", "platform:fees"
    account: Mapped[str] = mapped_column(String(80))
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # debit > 0, credit < 0
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        UniqueConstraint("mentor_id", "idempotency_key", name="uq_payouts_idempotency"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[PayoutStatus] = mapped_column(_enum(PayoutStatus), default=PayoutStatus.requested)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    journal_id: Mapped[int | None] = mapped_column(ForeignKey("journals.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordingParticipant(TypedDict):
    """Who was recorded: one entry of ``Recording.participants`` (JSON)."""

    user_id: int | None
    display_name: str
    role: str


class RecordingFile(TypedDict):
    """One participant's WebM: one entry of ``Recording.files`` (JSON)."""

    index: int
    name: str
    user_id: int | None
    display_name: str
    role: str
    bytes: int
    duration_ms: int
    offset_ms: int
    streams: list[dict[str, Any]]


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    status: Mapped[RecordingStatus] = mapped_column(_enum(RecordingStatus), default=RecordingStatus.recording)
    participants: Mapped[list[RecordingParticipant]] = mapped_column(JSON, default=list)
    files: Mapped[list[RecordingFile]] = mapped_column(JSON, default=list)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    # The composite (grid) MP4 export: {status: queued|running|ready|failed, progress 0..1, file, bytes, codec, error}
    export: Mapped[dict[str, Any] | None]
    # Interruptions the recording went on after (its worker died mid-class): [{start_ms, end_ms}]
    gaps: Mapped[list[dict[str, int]] | None] = mapped_column(JSON, default=list)


class ChatMessage(Base):
    """Room chat, kept with the session for its participants."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(120), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedToken(Base):
    """Access tokens killed by logout before their expiry."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime]


class OneTimeToken(Base):
    """E-mail verification and password reset tokens (only their hash is stored)."""

    __tablename__ = "one_time_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # verify_email | password_reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttendanceInterval(Base):
    """One stretch of a participant's presence in a live room, as the SFU reported it
    (participant joined .. left). Attendance and no-shows are decided from these."""

    __tablename__ = "attendance_intervals"
    __table_args__ = (Index("ix_attendance_intervals_session_user", "session_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(20))  # mentor | learner
    peer_id: Mapped[str] = mapped_column(String(64), default="")
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]


class ReportStatus(str, enum.Enum):
    open = "open"
    refunded = "refunded"  # resolved: the learner got the booking's price back
    released = "released"  # resolved: the mentor keeps it


class BookingReport(Base):
    """A learner's problem report on a past booking; holds its earnings until an admin resolves it."""

    __tablename__ = "booking_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[ReportStatus] = mapped_column(_enum(ReportStatus), default=ReportStatus.open, index=True)
    resolution_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailOutbox(Base):
    """An e-mail waiting for (or done with) the background sender; ``message`` is the RFC 5322 bytes."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300), default="")
    message: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[MailStatus] = mapped_column(_enum(MailStatus), default=MailStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set while one sender delivers the row (a claim), so no other process sends it too.
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class SchedulerClaim(Base):
    """Exactly-once claims for scheduled work across processes (e.g. reminders)."""

    __tablename__ = "scheduler_claims"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    """One per pair of users (``low_user_id`` < ``high_user_id``). Each side's read mark
    (the last message id it has read), block and last reminder e-mail live on the row."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("low_user_id", "high_user_id", name="uq_conversations_pair"),
        CheckConstraint("low_user_id < high_user_id", name="pair_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    low_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    high_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    low_read_id: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    high_read_id: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    low_blocked: Mapped[bool] = mapped_column(default=False, server_default=false())
    high_blocked: Mapped[bool] = mapped_column(default=False, server_default=false())
    low_emailed_at: Mapped[datetime | None]
    high_emailed_at: Mapped[datetime | None]
    last_message_id: Mapped[int | None] = mapped_column(Integer)
    last_message_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DirectMessage(Base):
    """One message of a conversation: plain text, shown as text (never as HTML)."""

    __tablename__ = "direct_messages"
    __table_args__ = (Index("ix_direct_messages_conversation_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationReport(Base):
    """A party's report of a conversation: admins read the conversation through it."""

    __tablename__ = "conversation_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionMaterial(Base):
    """A file a mentor attached to a session, stored under the data directory."""

    __tablename__ = "session_materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(80))
    bytes: Mapped[int] = mapped_column(BigInteger)
    # The file's name on disk (random): the user's name never reaches the file system.
    stored_name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

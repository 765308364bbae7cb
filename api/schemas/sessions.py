"""Session (catalog) request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import QueryModel, SingleLine, Strict, Tags
from api.schemas.dates import DateOrDateTime, IsoDateTime


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
Domain = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80), SingleLine]
Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
Currency = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")]
TzName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), SingleLine]
# Body integers are strict: JSON true/false or "5" are not numbers.
Price = Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
Capacity = Annotated[int, Field(ge=1, le=1000, strict=True)]
Duration = Annotated[int, Field(ge=15, le=480, strict=True)]


class SessionCreate(Strict):
    """A new draft. ``starts_at``: ISO 8601 with an offset, or naive plus ``timezone``
    (an IANA name such as ``Europe/Paris``; default: the mentor's profile time zone)."""

    title: Title
    description: Annotated[str, Field(max_length=5000)] = ""
    curriculum: Annotated[list[Topic], Field(max_length=50)] = []
    domain: Domain
    skills: Tags = []
    price_cents: Price = 0
    currency: Currency = "USD"
    capacity: Capacity = 1
    starts_at: IsoDateTime
    timezone: TzName | None = None
    duration_min: Duration = 60
    # Learners who attended may replay the recording; unset: yes for a 1:1, no for a group.
    attendee_replay: bool | None = None


class SessionUpdate(Strict):
    title: Title | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    curriculum: Annotated[list[Topic], Field(max_length=50)] | None = None
    domain: Domain | None = None
    skills: Tags | None = None
    price_cents: Price | None = None
    currency: Currency | None = None
    capacity: Capacity | None = None
    starts_at: IsoDateTime | None = None
    timezone: TzName | None = None
    duration_min: Duration | None = None
    attendee_replay: bool | None = None


class SessionCancel(Strict):
    reason: Annotated[str, Field(max_length=500)] = ""


SortKey = Literal["starts_at", "-starts_at", "price", "-price", "popularity"]


class SessionQuery(QueryModel):
    domain: Annotated[str, Field(max_length=80)] | None = None
    min_price: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    max_price: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    date_from: DateOrDateTime | None = None
    date_to: DateOrDateTime | None = None
    q: Annotated[str, Field(max_length=100)] | None = None
    mentor_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    status: Literal["scheduled", "live", "completed"] | None = None
    sort: SortKey = "starts_at"
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class MentorSessionsQuery(QueryModel):
    status: Literal["draft", "scheduled", "live", "completed", "cancelled"] | None = None
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class PageQuery(QueryModel):
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class Rating(BaseModel):
    average: float | None = None
    count: int = 0


class MentorBrief(BaseModel):
    id: int
    full_name: str
    avatar_url: str | None = None
    rating: Rating = Rating()


class SessionOut(BaseModel):
    id: int
    title: str
    description: str
    domain: str
    skills: list[str]
    price_cents: int
    currency: str
    capacity: int
    seats_taken: int
    seats_left: int
    starts_at: datetime
    ends_at: datetime
    duration_min: int
    status: str
    mentor: MentorBrief


class SessionDetail(SessionOut):
    curriculum: list[str]
    rating: Rating
    booked: bool = False
    booking_id: int | None = None
    is_owner: bool = False
    # Shown before booking: attendees may replay the class's recording.
    attendee_replay: bool = False
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None


class SessionPage(BaseModel):
    items: list[SessionOut]
    total: int
    page: int
    page_size: int


class ReviewOut(BaseModel):
    id: int
    session_id: int
    rating: int
    comment: str
    author_name: str
    created_at: datetime


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    rating: Rating
    total: int
    page: int
    page_size: int


class SessionCancelOut(BaseModel):
    session: SessionDetail
    refunded_bookings: int
    refunded_cents: int

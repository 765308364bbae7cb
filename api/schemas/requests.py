"""Schemas of learner requests for custom sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import SingleLine, Strict, Tags
from api.schemas.dates import AwareIsoDateTime

Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
Domain = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80), SingleLine]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
RequestStatusName = Literal["open", "proposed", "accepted", "declined", "cancelled", "expired"]


class RequestCreate(Strict):
    """Ask one mentor (``mentor_id``) or every mentor of ``domain`` (no ``mentor_id``)."""

    mentor_id: Id | None = None
    topic: Topic
    domain: Domain
    skills: Tags = []
    duration_min: Annotated[int, Field(ge=15, le=480)] = 60
    preferred_times: Annotated[list[AwareIsoDateTime], Field(min_length=1, max_length=10)]
    description: Annotated[str, Field(max_length=4000)] = ""


class RequestAccept(Strict):
    """The mentor's proposal: one of the learner's preferred times and a price. Nothing is
    charged until the learner confirms it."""

    starts_at: AwareIsoDateTime
    price_cents: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    title: Topic | None = None


class ProposalConfirm(Strict):
    """What the learner saw and agrees to pay: a proposal that differs now (another price,
    time or mentor) is refused with 409 ``proposal_changed`` and nothing is charged. The
    mentor is part of it: another mentor's proposal at the same price and time is another deal."""

    price_cents: Annotated[int, Field(ge=0, le=1_000_000)]
    starts_at: AwareIsoDateTime
    mentor_id: Annotated[int, Field(ge=1, le=2**31 - 1)]


class RequestQuery(Strict):
    status: RequestStatusName | None = None
    page: Annotated[int, Field(ge=1, le=10_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class PersonBrief(BaseModel):
    id: int
    full_name: str


class ProposalOut(BaseModel):
    """A mentor's price and time, waiting for the learner's confirmation until ``expires_at``."""

    mentor: PersonBrief
    title: str
    starts_at: datetime
    price_cents: int
    currency: str
    expires_at: datetime


class RequestOut(BaseModel):
    id: int
    learner: PersonBrief
    mentor: PersonBrief | None
    topic: str
    domain: str
    skills: list[str]
    duration_min: int
    preferred_times: list[datetime]
    description: str
    status: RequestStatusName
    session_id: int | None
    decided_by_id: int | None
    proposal: ProposalOut | None = None
    created_at: datetime
    updated_at: datetime


class RequestPage(BaseModel):
    items: list[RequestOut]
    total: int
    page: int
    page_size: int


class RequestAccepted(BaseModel):
    """``accept`` (a proposal): no session or booking yet; ``confirm``: both, charged."""

    request: RequestOut
    session_id: int | None
    booking_id: int | None

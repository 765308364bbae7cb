"""Request and response models of the recommendation and ML-metrics routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Strict


class RecQuery(BaseModel):
    limit: int = Field(10, ge=1, le=50)


class RecItem(BaseModel):
    """A recommended session: its summary, why it is here, and its score."""

    id: int
    title: str
    mentor_id: int
    mentor_name: str
    domain: str
    starts_at: datetime
    price_cents: int
    currency: str
    seats_left: int
    reason: str
    score: float


class RecOut(BaseModel):
    items: list[RecItem]
    # Send it back with the events so online metrics are attributed to the right version.
    model_version: int | None
    source: Literal["model", "fallback"]
    generated_ms: float


class EventIn(Strict):
    kind: Literal["impression", "click", "book"]
    session_ids: Annotated[list[Annotated[int, Field(gt=0, lt=2**31 - 1)]], Field(min_length=1, max_length=100)]
    model_version: Annotated[int, Field(gt=0, lt=2**31)] | None = None


class EventOut(BaseModel):
    recorded: int


class TrainIn(Strict):
    # Tools and tests may wait for the run to finish; the admin page does not.
    wait: bool = False


class JobOut(BaseModel):
    id: int
    trigger: str
    state: Literal["running", "succeeded", "failed"]
    started_at: datetime
    finished_at: datetime | None
    version: int | None
    error: str | None


class ModelVersionOut(BaseModel):
    version: int
    created_at: datetime
    trigger: str
    training_seconds: float
    n_users: int
    n_items: int
    n_interactions: int
    params: dict[str, Any]
    # {"k", "source": live|synthetic, "split": {...}, "models": {method: {precision, recall,
    #  ndcg, coverage, diversity, distinct_mentors}}, "note"?}
    metrics: dict[str, Any]


class MetricSeries(BaseModel):
    """History ready for charts: one list entry per version, per method and metric."""

    versions: list[int]
    created_at: list[datetime]
    sources: list[str | None]
    training_seconds: list[float]
    methods: dict[str, dict[str, list[float | None]]]


class OnlineRates(BaseModel):
    impressions: int
    clicks: int
    books: int
    ctr: float | None
    conversion: float | None


class OnlineByVersion(OnlineRates):
    model_version: int | None


class OnlineDaily(OnlineRates):
    date: str


class OnlineOut(BaseModel):
    totals: OnlineRates
    by_version: list[OnlineByVersion]
    daily: list[OnlineDaily]


class MlMetricsOut(BaseModel):
    current_version: int | None  # newest stored version
    serving_version: int | None  # version this process serves (None: fallback)
    k: int
    latest: ModelVersionOut | None
    history: list[ModelVersionOut]
    series: MetricSeries
    online: OnlineOut
    job: JobOut | None

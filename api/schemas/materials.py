"""Class materials: the files a mentor attaches to a session."""

from __future__ import annotations

from pydantic import BaseModel


class MaterialOut(BaseModel):
    id: int
    session_id: int
    name: str
    # Decided from the file's content when it was uploaded, never from its name.
    content_type: str
    bytes: int
    created_at: str
    url: str  # downloads the file (its session's mentor and booked learners)


class MaterialList(BaseModel):
    items: list[MaterialOut]

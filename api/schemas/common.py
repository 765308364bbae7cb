"""The schemas' building blocks: strict bodies, lenient query strings, single-line text,
and the small shapes several areas answer with (``Message``, ``Page``)."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def single_line(value: str) -> str:
    """Refuse control characters (CR, LF, TAB, NUL, ...) and line/paragraph separators.

    Titles, names and topics end up in e-mail headers, .ics lines and log lines,
    where a line break splits a header in two.
    """
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("must be a single line without control characters")
    return value


SingleLine = AfterValidator(single_line)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120), SingleLine]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60), SingleLine]
Tags = Annotated[list[Tag], Field(max_length=20)]


class Strict(BaseModel):
    """Request bodies refuse unknown fields: a typo (or ``role``) is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    message: str


class Page(BaseModel):
    total: int
    page: int
    page_size: int


class QueryModel(BaseModel):
    """Query strings: unknown parameters are ignored (the documented ones are validated)."""

    model_config = ConfigDict(extra="ignore")

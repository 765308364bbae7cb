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
    if any(c in BIDI_CONTROLS for c in value):
        # U+202E "Admin" shows as "nimdA" reversed onto whatever follows it: a spoofed name
        raise ValueError("must not contain text-direction override characters")
    return value


# Unicode's explicit embeddings, overrides and isolates: they reorder the text that follows
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Letters and symbols that render as blank space: the Braille blank, the Hangul fillers, the
# Mongolian vowel separator.
BLANK_LOOKING = frozenset("\u2800\u3164\u115f\u1160\uffa0\u180e")


def visible(value: str) -> str:
    """Refuse text with nothing to see: spaces, invisible format characters (zero-width spaces
    and joiners), lone combining marks, controls or blank-looking letters, which pass a length
    check but show as nothing. A visible character is a letter, number, punctuation or symbol."""
    if not any(unicodedata.category(c)[0] in "LNPS" and c not in BLANK_LOOKING for c in value):
        raise ValueError("must contain visible characters")
    return value


def no_controls(value: str) -> str:
    """Multi-line text: line breaks and tabs, but no other control characters (NUL, ESC ...)."""
    if any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in value):
        raise ValueError("must not contain control characters")
    return value


SingleLine = AfterValidator(single_line)
Visible = AfterValidator(visible)
NoControls = AfterValidator(no_controls)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120), SingleLine, Visible]
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

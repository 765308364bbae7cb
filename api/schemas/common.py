"""Pydantic request/response models shared by several resources (one source for OpenAPI).

Resource-specific schemas live next to their routes' domain in ``api/schemas_*.py``
modules only when this file would grow past one idea; accounts live here.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints


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

# Preferences are a few UI switches (notifications on, theme ...), not storage.
MAX_PREFERENCES = 50
MAX_PREFERENCES_BYTES = 4096
PrefKey = Annotated[str, StringConstraints(min_length=1, max_length=64), SingleLine]
PrefValue = Annotated[str, StringConstraints(max_length=500)] | int | bool


def _preferences_size(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, separators=(",", ":"))) > MAX_PREFERENCES_BYTES:
        raise ValueError(f"preferences must stay under {MAX_PREFERENCES_BYTES} bytes")
    return value


Preferences = Annotated[dict[PrefKey, PrefValue], Field(max_length=MAX_PREFERENCES),
                        AfterValidator(_preferences_size)]


class Strict(BaseModel):
    """Request bodies refuse unknown fields: a typo (or ``role``) is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class UserCreate(Strict):
    email: EmailStr
    password: Annotated[str, Field(min_length=1, max_length=256)]
    full_name: Name
    role: Literal["learner", "mentor"] = "learner"
    domains: Tags = []
    skills: Tags = []
    interests: Tags = []
    bio: Annotated[str, Field(max_length=2000)] = ""
    timezone: Annotated[str, Field(max_length=64), SingleLine] = "UTC"


class UserUpdate(Strict):
    full_name: Name | None = None
    bio: Annotated[str, Field(max_length=2000)] | None = None
    domains: Tags | None = None
    skills: Tags | None = None
    interests: Tags | None = None
    timezone: Annotated[str, Field(max_length=64), SingleLine] | None = None
    preferences: Preferences | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    full_name: str
    role: str
    avatar_url: str | None = None
    bio: str = ""
    domains: list[str] = []
    skills: list[str] = []


class UserMe(UserPublic):
    email: str
    interests: list[str] = []
    timezone: str = "UTC"
    preferences: dict[str, str | int | bool] = {}
    email_verified: bool = False
    is_active: bool = True
    created_at: datetime


class LoginIn(Strict):
    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=256)]
    next: Annotated[str, Field(max_length=300)] | None = None


class LoginOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    user: UserMe
    redirect: str


class RegisterOut(BaseModel):
    user: UserMe
    message: str


class TokenIn(Strict):
    token: Annotated[str, Field(min_length=1, max_length=200)]


class EmailIn(Strict):
    email: Annotated[str, Field(min_length=1, max_length=320)]


class PasswordResetConfirm(Strict):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class Message(BaseModel):
    message: str


class Page(BaseModel):
    total: int
    page: int
    page_size: int

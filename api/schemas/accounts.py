"""Accounts: registration, sign-in, e-mail verification, password reset, profiles."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from api.schemas.common import Name, SingleLine, Strict, Tags

# Preferences are a few UI switches (notifications on, theme ...), not storage.
MAX_PREFERENCES = 50
MAX_PREFERENCES_BYTES = 4096
PrefKey = Annotated[str, StringConstraints(min_length=1, max_length=64), SingleLine]
PrefValue = Annotated[str, StringConstraints(max_length=500)] | int | bool


def _preferences_size(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, separators=(",", ":"))) > MAX_PREFERENCES_BYTES:
        raise ValueError(f"preferences must stay under {MAX_PREFERENCES_BYTES} bytes")
    return value


Preferences = Annotated[dict[PrefKey, PrefValue], Field(max_length=MAX_PREFERENCES), AfterValidator(_preferences_size)]


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

"""Accounts: registration, login, verification, password reset, profile, deactivation."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.mailer import Mailer
from api.models import AuditLog, OneTimeToken, RevokedToken, Role, User
from api.schemas.accounts import UserCreate, UserMe, UserPublic, UserUpdate
from api.services import room_access
from api.services.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated, UnsupportedMedia
from api.settings import Settings
from api.security import (
    hash_opaque,
    hash_password,
    issue_access_token,
    needs_rehash,
    new_opaque_token,
    password_problem,
    safe_next_path,
    verify_password,
)

log = logging.getLogger(__name__)

VERIFY_TTL = timedelta(days=2)
RESET_TTL = timedelta(hours=1)
DASHBOARDS = {"learner": "/learner/dashboard", "mentor": "/mentor/dashboard", "admin": "/admin/dashboard"}


def now() -> datetime:
    return datetime.now(timezone.utc)


def avatar_url(user: User) -> str | None:
    return f"/media/avatars/{user.avatar}" if user.avatar else None


def to_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        full_name=user.full_name,
        role=user.role.value,
        avatar_url=avatar_url(user),
        bio=user.bio,
        domains=list(user.domains or []),
        skills=list(user.skills or []),
    )


def to_me(user: User) -> UserMe:
    return UserMe(
        **to_public(user).model_dump(),
        email=user.email,
        interests=list(user.interests or []),
        timezone=user.timezone,
        preferences=dict(user.preferences or {}),
        email_verified=user.email_verified_at is not None,
        is_active=user.is_active,
        created_at=user.created_at,
    )


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def register(
    db: Database, mailer: Mailer, data: UserCreate, *, public_url: str, role: Role | None = None, verified: bool = False
) -> User:
    """Create a learner or mentor (admins only via the CLI) and mail the verification link."""
    email = normalize_email(str(data.email))
    problem = password_problem(data.password, email=email)
    if problem:
        raise Invalid(problem, code="weak_password", fields={"password": problem})
    pw_hash = await asyncio.to_thread(hash_password, data.password)
    raw_token, token_hash = new_opaque_token()
    user = User(
        email=email,
        password_hash=pw_hash,
        full_name=data.full_name,
        role=role or Role(data.role),
        bio=data.bio,
        timezone=data.timezone or "UTC",
        domains=_clean(data.domains),
        skills=_clean(data.skills),
        interests=_clean(data.interests),
        preferences={},
        email_verified_at=now() if verified else None,
    )
    try:
        async with db.write() as s:
            taken = await s.scalar(select(User.id).where(User.email == email))
            if taken:
                raise Conflict("An account with this e-mail already exists.", code="email_taken")
            s.add(user)
            await s.flush()
            if not verified:
                s.add(
                    OneTimeToken(
                        user_id=user.id, purpose="verify_email", token_hash=token_hash, expires_at=now() + VERIFY_TTL
                    )
                )
    except IntegrityError as exc:
        raise Conflict("An account with this e-mail already exists.", code="email_taken") from exc
    if not verified:
        await _mail_verification(mailer, email, user.full_name, raw_token, public_url)
    return user


def _clean(tags: list[str]) -> list[str]:
    seen: list[str] = []
    for t in tags:
        t = t.strip()
        if t and t.lower() not in (x.lower() for x in seen):
            seen.append(t)
    return seen


@dataclass(frozen=True)
class LoginResult:
    user: User
    token: str
    expires_at: datetime
    redirect: str


async def login(
    db: Database, email: str, password: str, *, secret: str, ttl: int, next_url: str | None = None
) -> LoginResult:
    email = normalize_email(email)
    async with db.read() as s:
        user = await s.scalar(select(User).where(User.email == email))
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if not ok or user is None:
        raise Unauthenticated("Invalid credentials", code="invalid_credentials")
    if not user.is_active:
        raise Forbidden("This account has been deactivated.", code="account_inactive")
    if needs_rehash(user.password_hash):
        new_hash = await asyncio.to_thread(hash_password, password)
        async with db.write() as s:
            await s.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
    token, claims = issue_access_token(
        secret, user_id=user.id, role=user.role.value, version=user.token_version, ttl_seconds=ttl
    )
    redirect = DASHBOARDS[user.role.value]
    redirect = safe_next_path(next_url) or redirect
    return LoginResult(user, token, claims.expires_at, redirect)


async def logout(db: Database, jti: str, expires_at: datetime) -> None:
    async with db.write() as s:
        if not await s.get(RevokedToken, jti):
            s.add(RevokedToken(jti=jti, expires_at=expires_at))
        await room_access.revoke_for_session(s, jti)
        # Keep the table small: expired tokens are refused by their own exp.
        await s.execute(delete(RevokedToken).where(RevokedToken.expires_at < now()))


EMAIL_UNVERIFIED = (
    "Confirm your e-mail address first: open the link we mailed you, or get a new one "
    "from the banner at the top of the page (/verify-email)."
)


async def ensure_verified(s: AsyncSession, user_id: int, settings: Settings) -> None:
    """403 ``email_unverified`` unless the user confirmed their e-mail address.

    Money needs an address we can reach: a learner before paying (booking), a mentor
    before publishing (taking bookings) and before a payout."""
    if not settings.require_verified_email:
        return
    user = await s.get(User, user_id)
    if user is not None and user.email_verified_at is None:
        raise Forbidden(EMAIL_UNVERIFIED, code="email_unverified")


async def ensure_can_sell(s: AsyncSession, mentor_id: int, settings: Settings) -> None:
    """The mentor's side of every money path (book, propose, confirm; docs/money.md): an
    active account with a confirmed address. A learner paying a mentor who cannot teach or
    be reached gets 409 ``mentor_unavailable`` and is charged nothing."""
    user = await s.get(User, mentor_id)
    if user is None or not user.is_active:
        raise Conflict("This mentor is not taking bookings any more.", code="mentor_unavailable")
    if settings.require_verified_email and user.email_verified_at is None:
        raise Conflict("This mentor has not confirmed their e-mail address yet.", code="mentor_unavailable")


async def resend_verification(db: Database, mailer: Mailer, user_id: int, *, public_url: str) -> bool:
    """Mail a fresh verification link (older ones keep working until they expire).
    False when the address is already confirmed (nothing sent)."""
    raw_token, token_hash = new_opaque_token()
    async with db.write() as s:
        user = await s.get(User, user_id)
        if user is None:
            raise NotFound.of("user")
        if user.email_verified_at is not None:
            return False
        s.add(
            OneTimeToken(user_id=user.id, purpose="verify_email", token_hash=token_hash, expires_at=now() + VERIFY_TTL)
        )
        email, name = user.email, user.full_name
    await _mail_verification(mailer, email, name, raw_token, public_url)
    return True


async def _mail_verification(mailer: Mailer, email: str, name: str, raw_token: str, public_url: str) -> None:
    await mailer.send(
        email,
        "Confirm your PeerLearn e-mail",
        f"Hello {name},\n\nConfirm your e-mail address:\n"
        f"{public_url}/verify-email?token={raw_token}\n\nThe link is valid for 2 days.\n",
    )


async def verify_email(db: Database, raw_token: str) -> User:
    async with db.write() as s:
        tok = await s.scalar(
            select(OneTimeToken).where(
                OneTimeToken.token_hash == hash_opaque(raw_token), OneTimeToken.purpose == "verify_email"
            )
        )
        if tok is None or tok.used_at is not None or tok.expires_at < now():
            raise Invalid("This verification link is invalid or has expired.", code="invalid_token")
        tok.used_at = now()
        user = await s.get(User, tok.user_id)
        assert user is not None
        if user.email_verified_at is None:
            user.email_verified_at = now()
        return user


async def request_password_reset(db: Database, mailer: Mailer, email: str, *, public_url: str) -> None:
    """Mails a reset link when the account exists; answers the same either way."""
    email = normalize_email(email)
    raw, token_hash = new_opaque_token()
    async with db.write() as s:
        user = await s.scalar(select(User).where(User.email == email, User.is_active.is_(True)))
        if user is None:
            return
        s.add(
            OneTimeToken(user_id=user.id, purpose="password_reset", token_hash=token_hash, expires_at=now() + RESET_TTL)
        )
    await mailer.send(
        email,
        "Reset your PeerLearn password",
        f"Someone asked to reset the password of this account.\n"
        f"Set a new one here (valid for 1 hour):\n{public_url}/reset-password?token={raw}\n\n"
        f"If it was not you, ignore this e-mail.\n",
    )


async def confirm_password_reset(db: Database, raw_token: str, password: str) -> None:
    pw_hash: str | None = None
    async with db.read() as s:
        tok = await s.scalar(
            select(OneTimeToken).where(
                OneTimeToken.token_hash == hash_opaque(raw_token), OneTimeToken.purpose == "password_reset"
            )
        )
        user = await s.get(User, tok.user_id) if tok else None
    if tok is None or user is None or tok.used_at is not None or tok.expires_at < now():
        raise Invalid("This reset link is invalid or has expired.", code="invalid_token")
    problem = password_problem(password, email=user.email)
    if problem:
        raise Invalid(problem, code="weak_password", fields={"password": problem})
    pw_hash = await asyncio.to_thread(hash_password, password)
    async with db.write() as s:
        claimed = await s.execute(
            update(OneTimeToken).where(OneTimeToken.id == tok.id, OneTimeToken.used_at.is_(None)).values(used_at=now())
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Invalid("This reset link is invalid or has expired.", code="invalid_token")
        # A new password ends every existing session of the account, room tokens included.
        await s.execute(
            update(User).where(User.id == user.id).values(password_hash=pw_hash, token_version=User.token_version + 1)
        )
        await room_access.revoke_for_user(s, user.id)


async def get_user(db: Database, user_id: int) -> User:
    async with db.read() as s:
        user = await s.get(User, user_id)
    if user is None:
        raise NotFound.of("user")
    return user


async def update_profile(db: Database, actor_id: int, actor_role: str, user_id: int, data: UserUpdate) -> User:
    """Own profile only (admins may edit anyone); role, e-mail and status are not fields here."""
    if actor_id != user_id and actor_role != Role.admin.value:
        raise Forbidden("You may only edit your own profile.")
    async with db.write() as s:
        user = await s.get(User, user_id)
        if user is None:
            raise NotFound.of("user")
        values = data.model_dump(exclude_unset=True, exclude_none=True)
        for key in ("domains", "skills", "interests"):
            if key in values:
                values[key] = _clean(values[key])
        for key, value in values.items():
            setattr(user, key, value)
        return user


AVATAR_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
# A 12 MP phone photo fits; a few-KB PNG claiming 8900 x 8900 (a decompression bomb that
# would take ~300 MB as RGBA) is refused from its header, before any pixel is decoded.
MAX_AVATAR_PIXELS = 4096 * 4096
MAX_AVATAR_SIDE = 8192
AVATAR_SIZE = 512


def _reencode_avatar(raw: bytes) -> bytes:
    """Decode and re-encode to PNG: only pixels survive (no EXIF, no polyglot payloads).

    Pillow opens lazily: ``size`` comes from the header, so dimensions are checked
    before ``load()`` allocates anything.
    """
    from PIL import Image, UnidentifiedImageError

    invalid = Invalid("The file is not a valid image.", code="invalid_image", fields={"file": "not an image"})
    try:
        with Image.open(io.BytesIO(raw)) as img:
            width, height = img.size
            if (
                width < 1
                or height < 1
                or width > MAX_AVATAR_SIDE
                or height > MAX_AVATAR_SIDE
                or width * height > MAX_AVATAR_PIXELS
            ):
                raise Invalid(
                    f"The image is too large ({width} x {height}); at most {MAX_AVATAR_PIXELS // 1_000_000} "
                    "megapixels.",
                    code="image_too_large",
                    fields={"file": "too many pixels"},
                )
            img.verify()
        with Image.open(io.BytesIO(raw)) as img:
            if img.size != (width, height):
                raise invalid
            img.draft("RGB", (AVATAR_SIZE, AVATAR_SIZE))  # JPEG: decode at a reduced scale
            img.seek(0)  # animated images: the first frame only
            pixels = img.convert("RGBA")
            pixels.thumbnail((AVATAR_SIZE, AVATAR_SIZE))
            out = io.BytesIO()
            pixels.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError) as exc:
        raise invalid from exc


async def set_avatar(
    db: Database, uploads: Path, actor_id: int, actor_role: str, user_id: int, raw: bytes, content_type: str
) -> User:
    if actor_id != user_id and actor_role != Role.admin.value:
        raise Forbidden("You may only change your own picture.")
    if content_type not in AVATAR_TYPES:
        raise UnsupportedMedia("Upload a PNG, JPEG, WebP or GIF image.", fields={"file": "unsupported type"})
    png = await asyncio.to_thread(_reencode_avatar, raw)
    name = f"{user_id}-{uuid.uuid4().hex[:12]}.png"
    avatars = uploads / "avatars"
    avatars.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread((avatars / name).write_bytes, png)
    async with db.write() as s:
        user = await s.get(User, user_id)
        if user is None:
            raise NotFound.of("user")
        old = user.avatar
        user.avatar = name
    if old:
        (avatars / old).unlink(missing_ok=True)
    return user


async def set_active(db: Database, actor_id: int, user_id: int, active: bool) -> User:
    """Admin: deactivate (existing tokens stop working) or reactivate an account."""
    async with db.write() as s:
        user = await s.get(User, user_id)
        if user is None:
            raise NotFound.of("user")
        if user.id == actor_id and not active:
            raise Conflict("Admins cannot deactivate themselves.", code="cannot_deactivate_self")
        user.is_active = active
        user.token_version = user.token_version + 1
        await room_access.revoke_for_user(s, user_id)
        s.add(
            AuditLog(
                actor_id=actor_id, action="user.activate" if active else "user.deactivate", target=f"user:{user_id}"
            )
        )
        return user


async def create_admin(db: Database, email: str, password: str, full_name: str = "Administrator") -> User:
    """CLI: create or promote an admin (idempotent for the same e-mail)."""
    email = normalize_email(email)
    problem = password_problem(password, email=email)
    if problem:
        raise Invalid(problem, code="weak_password", fields={"password": problem})
    pw_hash = await asyncio.to_thread(hash_password, password)
    async with db.write() as s:
        user = await s.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(
                email=email,
                password_hash=pw_hash,
                full_name=full_name,
                role=Role.admin,
                email_verified_at=now(),
                domains=[],
                skills=[],
                interests=[],
                preferences={},
            )
            s.add(user)
        else:
            user.role = Role.admin
            user.password_hash = pw_hash
            user.is_active = True
            user.token_version += 1
            await room_access.revoke_for_user(s, user.id)
        await s.flush()
        return user

"""Class materials: files a mentor attaches to a session for its booked learners.

What is taken is decided by the file's content (its magic bytes), never by its name or
the type the browser claims: PDF, PNG, JPEG, GIF, WebP, and plain UTF-8 text. Anything
else, a renamed executable included, is refused. Each file is at most
``settings.max_material_bytes``, a session's files together ``max_session_material_bytes``.

Files live under ``<data_dir>/materials/<session id>/`` with random names (the uploaded
name is only shown, never used as a path). The session's mentor uploads and deletes;
the mentor and the session's booked learners list and download; everyone else gets 404.
They are removed with the session's recordings, ``recording_retention_days`` after the class.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.models import Booking, BookingStatus, Role, Session, SessionMaterial, SessionStatus, utcnow
from api.schemas.materials import MaterialList, MaterialOut
from api.services import settings_store
from api.services.errors import Conflict, Invalid, NotFound, TooLarge, UnsupportedMedia

# Booked: whoever holds (or held, for a class that took place) a seat.
BOOKED = (BookingStatus.confirmed, BookingStatus.attended, BookingStatus.no_show)
# Text files: these control characters are part of ordinary text; any other means binary.
_TEXT_CONTROLS = frozenset("\t\n\r\f")


def sniff(data: bytes) -> str | None:
    """The content type of ``data`` when it is one we take, else None."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text and all(c in _TEXT_CONTROLS or unicodedata.category(c) != "Cc" for c in text):
        return "text/plain; charset=utf-8"
    return None


def clean_name(name: str) -> str:
    """A display name: the last path part, control characters out, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return base[:200] or "file"


def materials_dir(ctx: Context, session_id: int) -> Path:
    return ctx.settings.data_dir / "materials" / str(int(session_id))


def _out(m: SessionMaterial) -> MaterialOut:
    return MaterialOut(
        id=m.id,
        session_id=m.session_id,
        name=m.name,
        content_type=m.mime,
        bytes=m.bytes,
        created_at=m.created_at.isoformat(),
        url=f"/api/materials/{m.id}",
    )


async def _may_read(s: AsyncSession, sess: Session, user_id: int) -> bool:
    if sess.mentor_id == user_id:
        return True
    booked = await s.scalar(
        select(Booking.id).where(
            Booking.session_id == sess.id, Booking.learner_id == user_id, Booking.status.in_(BOOKED)
        )
    )
    return booked is not None


async def _readable(s: AsyncSession, session_id: int, user_id: int) -> Session:
    sess = await s.get(Session, session_id)
    if sess is None or not await _may_read(s, sess, user_id):
        raise NotFound.of("session")
    return sess


async def _own(s: AsyncSession, session_id: int, user_id: int) -> Session:
    sess = await s.get(Session, session_id)
    if sess is None or sess.mentor_id != user_id:
        raise NotFound.of("session")
    return sess


async def list_for(ctx: Context, session_id: int, user_id: int) -> MaterialList:
    """A session's materials, oldest first, for its mentor and booked learners."""
    async with ctx.db.read() as s:
        await _readable(s, session_id, user_id)
        rows = (
            await s.scalars(
                select(SessionMaterial).where(SessionMaterial.session_id == session_id).order_by(SessionMaterial.id)
            )
        ).all()
    return MaterialList(items=[_out(m) for m in rows])


def check_size(ctx: Context, size: int) -> None:
    """Refuse one file over the limit (called while the upload streams in, to stop early)."""
    limit = ctx.settings.max_material_bytes
    if size > limit:
        raise TooLarge(f"A file may be at most {limit // (1024 * 1024)} MB.")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.rename(path)  # readers never see half a file


async def ensure_owner(ctx: Context, session_id: int, user_id: int, role: str) -> None:
    """404 unless this is the session's mentor: checked before an upload is read at all."""
    if role != Role.mentor.value:
        raise NotFound.of("session")
    async with ctx.db.read() as s:
        await _own(s, session_id, user_id)


async def add(ctx: Context, session_id: int, user_id: int, role: str, name: str, data: bytes) -> MaterialOut:
    """Attach a file to the mentor's own session (before or after the class)."""
    if role != Role.mentor.value:
        raise NotFound.of("session")
    check_size(ctx, len(data))
    if not data:
        raise Invalid("The file is empty.", fields={"file": "empty"})
    mime = sniff(data)
    if mime is None:
        raise UnsupportedMedia("Attach PDF files, images (PNG, JPEG, GIF, WebP) or plain text.")
    stored = f"{secrets.token_hex(16)}.bin"
    async with ctx.db.write() as s:
        sess = await _own(s, session_id, user_id)
        if sess.status == SessionStatus.cancelled:
            raise Conflict("This session was cancelled.", code="invalid_status")
        used = int(
            await s.scalar(
                select(func.coalesce(func.sum(SessionMaterial.bytes), 0)).where(
                    SessionMaterial.session_id == session_id
                )
            )
            or 0
        )
        limit = ctx.settings.max_session_material_bytes
        if used + len(data) > limit:
            raise TooLarge(f"A session's files may take at most {limit // (1024 * 1024)} MB together.")
        await asyncio.to_thread(_write, materials_dir(ctx, session_id) / stored, data)
        m = SessionMaterial(
            session_id=session_id, name=clean_name(name), mime=mime, bytes=len(data), stored_name=stored
        )
        s.add(m)
        await s.flush()
        return _out(m)


async def file_for(ctx: Context, material_id: int, user_id: int) -> tuple[Path, MaterialOut]:
    """(path on disk, the material) for its session's mentor or a booked learner."""
    async with ctx.db.read() as s:
        m = await s.get(SessionMaterial, material_id)
        if m is None:
            raise NotFound.of("file")
        try:
            await _readable(s, m.session_id, user_id)
        except NotFound:
            raise NotFound.of("file") from None
    return materials_dir(ctx, m.session_id) / m.stored_name, _out(m)


async def remove(ctx: Context, material_id: int, user_id: int) -> None:
    """The session's mentor deletes one of its files."""
    async with ctx.db.write() as s:
        m = await s.get(SessionMaterial, material_id)
        if m is None:
            raise NotFound.of("file")
        try:
            await _own(s, m.session_id, user_id)
        except NotFound:
            raise NotFound.of("file") from None
        path = materials_dir(ctx, m.session_id) / m.stored_name
        await s.delete(m)
    await asyncio.to_thread(path.unlink, True)


async def apply_retention(ctx: Context, now: datetime | None = None) -> int:
    """Delete the materials of sessions that started more than the retention period ago."""
    days = int((await settings_store.get_all(ctx.db))["recording_retention_days"])
    cutoff = (now or utcnow()) - timedelta(days=days)
    async with ctx.db.write() as s:
        sessions = (
            await s.scalars(
                select(SessionMaterial.session_id)
                .join(Session, Session.id == SessionMaterial.session_id)
                .where(Session.starts_at < cutoff)
                .distinct()
            )
        ).all()
        if sessions:
            await s.execute(delete(SessionMaterial).where(SessionMaterial.session_id.in_(sessions)))
    for sid in sessions:
        await asyncio.to_thread(shutil.rmtree, materials_dir(ctx, sid), True)
    return len(sessions)

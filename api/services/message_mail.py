"""E-mail for messages left unread: a scheduler job (api/services/scheduler.py).

A message unread for ``settings.message_email_after_minutes`` is mailed to its recipient
through the outbox, batched: one e-mail per conversation and recipient carries every
unread message, and at most one goes out per ``message_email_every_minutes``. Only
messages newer than the last e-mail count, so the same ones are never mailed twice.
Blocked conversations and deactivated recipients get nothing.

Safe with several processes: a recipient's side is claimed with a conditional update of
its ``*_emailed_at`` (the old value in the WHERE clause); only the process whose update
matched sends.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update

from api.context import Context
from api.models import Conversation, DirectMessage, User

log = logging.getLogger(__name__)

EXCERPTS = 3
EXCERPT_CHARS = 300


def _due_side(low: bool, now: datetime, after: timedelta, every: timedelta) -> Any:
    """Conversations where the low (or high) user has a message due for an e-mail."""
    me = Conversation.low_user_id if low else Conversation.high_user_id
    read_id = Conversation.low_read_id if low else Conversation.high_read_id
    emailed = Conversation.low_emailed_at if low else Conversation.high_emailed_at
    due = exists().where(
        DirectMessage.conversation_id == Conversation.id,
        DirectMessage.sender_id != me,
        DirectMessage.id > read_id,
        DirectMessage.created_at <= now - after,
        or_(emailed.is_(None), DirectMessage.created_at > emailed),
    )
    return select(Conversation.id, me, emailed).where(
        due,
        or_(emailed.is_(None), emailed <= now - every),
        Conversation.low_blocked.is_(False),
        Conversation.high_blocked.is_(False),
    )


async def _claim(ctx: Context, conv_id: int, low: bool, old: datetime | None, now: datetime) -> bool:
    emailed = Conversation.low_emailed_at if low else Conversation.high_emailed_at
    same = emailed.is_(None) if old is None else emailed == old
    async with ctx.db.write() as s:
        result = await s.execute(
            update(Conversation)
            .where(Conversation.id == conv_id, same)
            .values({emailed: now})
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


async def _mail_one(ctx: Context, conv_id: int, recipient_id: int, low: bool) -> bool:
    read_id = Conversation.low_read_id if low else Conversation.high_read_id
    async with ctx.db.read() as s:
        recipient = await s.get(User, recipient_id)
        if recipient is None or not recipient.is_active:
            return False
        unread = and_(
            DirectMessage.conversation_id == conv_id,
            DirectMessage.sender_id != recipient_id,
            DirectMessage.id > select(read_id).where(Conversation.id == conv_id).scalar_subquery(),
        )
        count = int(await s.scalar(select(func.count(DirectMessage.id)).where(unread)) or 0)
        latest = (
            await s.scalars(select(DirectMessage).where(unread).order_by(DirectMessage.id.desc()).limit(EXCERPTS))
        ).all()
        if not latest:
            return False
        sender = await s.get(User, latest[0].sender_id)
    name = sender.full_name if sender is not None else "Someone"
    link = f"{ctx.settings.public_url.rstrip('/')}/messages/{conv_id}"
    excerpts = "\n\n".join(
        f"> {m.body[:EXCERPT_CHARS]}{'...' if len(m.body) > EXCERPT_CHARS else ''}" for m in reversed(latest)
    )
    subject = f"{name} sent you {count} message{'s' if count != 1 else ''} on PeerLearn"
    body = f"Hello {recipient.full_name},\n\n{name} wrote to you:\n\n{excerpts}\n\nRead and answer: {link}\n"
    await ctx.mailer.send(recipient.email, subject, body)
    return True


async def mail_unread(ctx: Context, now: datetime) -> list[int]:
    """One pass: e-mail each recipient whose messages waited long enough; the conversation ids."""
    after = timedelta(minutes=ctx.settings.message_email_after_minutes)
    every = timedelta(minutes=ctx.settings.message_email_every_minutes)
    mailed: list[int] = []
    for low in (True, False):
        async with ctx.db.read() as s:
            due = (await s.execute(_due_side(low, now, after, every).limit(500))).all()
        for conv_id, recipient_id, old in due:
            if not await _claim(ctx, conv_id, low, old, now):
                continue  # another process is mailing this one
            if await _mail_one(ctx, conv_id, recipient_id, low):
                mailed.append(conv_id)
    return mailed

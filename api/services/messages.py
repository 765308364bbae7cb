"""Messages between learners and mentors: who may write to whom, conversations, read marks,
blocking and reporting. Stored first, then pushed to both parties' realtime channels.

Who may write (issue 27):
- a learner to a mentor whose public profile they can see (an active mentor);
- anyone to someone who already wrote to them in the conversation (a mentor answers);
- a mentor first only to learners who booked one of their sessions or sent them a request;
- nobody with an unconfirmed e-mail address, nobody once either side blocked the other;
- admins write to nobody and read only reported conversations (``reported``).
A sender is limited to a burst per minute and a number per day (the shared rate limiter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.db import Database
from api.models import (
    Booking,
    Conversation,
    ConversationReport,
    DirectMessage,
    Request,
    Role,
    Session,
    User,
)
from api.ratelimit import RateLimiter
from api.schemas.messages import (
    ConversationList,
    ConversationOut,
    MessageOut,
    MessagePage,
    Party,
    ReadOut,
    ReportedConversation,
    ReportedConversationList,
    ReportOut,
)
from api.services.accounts import avatar_url, ensure_verified
from api.services.errors import Forbidden, Invalid, NotFound, RateLimited
from api.services import notifications
from api.services.notifications import user_channel

BURST_WINDOW_SECONDS = 60
DAY_SECONDS = 86_400
# The admins' view of a reported conversation: its latest messages, enough to judge it.
REPORT_MESSAGES = 200
MAX_CONVERSATIONS = 200


def pair(a: int, b: int) -> tuple[int, int]:
    """The conversation key of two users: (lower id, higher id)."""
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True)
class Side:
    """One party's view of a conversation row (its columns are named low_/high_)."""

    conv: Conversation
    user_id: int

    @property
    def is_low(self) -> bool:
        return self.conv.low_user_id == self.user_id

    @property
    def other_id(self) -> int:
        return self.conv.high_user_id if self.is_low else self.conv.low_user_id

    @property
    def read_id(self) -> int:
        return self.conv.low_read_id if self.is_low else self.conv.high_read_id

    @property
    def other_read_id(self) -> int:
        return self.conv.high_read_id if self.is_low else self.conv.low_read_id

    @property
    def blocked(self) -> bool:
        """This party blocked the other."""
        return self.conv.low_blocked if self.is_low else self.conv.high_blocked

    @property
    def either_blocked(self) -> bool:
        return self.conv.low_blocked or self.conv.high_blocked

    def column(self, name: str) -> str:
        return f"{'low' if self.is_low else 'high'}_{name}"


def party(user: User) -> Party:
    return Party(id=user.id, full_name=user.full_name, role=user.role.value, avatar_url=avatar_url(user))


def message_out(m: DirectMessage, read: bool) -> MessageOut:
    return MessageOut(
        id=m.id,
        conversation_id=m.conversation_id,
        sender_id=m.sender_id,
        body=m.body,
        created_at=m.created_at.isoformat(),
        read=read,
    )


def _out_for(side: Side, m: DirectMessage) -> MessageOut:
    """A message as ``side`` sees it: its own are read once the other's mark passed them."""
    return message_out(m, m.sender_id != side.user_id or m.id <= side.other_read_id)


async def _party_of(s: AsyncSession, conv_id: int, user_id: int) -> Side:
    """The caller's side of a conversation; 404 for anyone who is not a party."""
    conv = await s.get(Conversation, conv_id)
    if conv is None or user_id not in (conv.low_user_id, conv.high_user_id):
        raise NotFound.of("conversation")
    return Side(conv, user_id)


async def _may_start(s: AsyncSession, sender: User, recipient: User) -> None:
    """Who may write first (see the module docstring)."""
    if sender.role == Role.learner and recipient.role == Role.mentor:
        return  # an active mentor's profile is public
    if sender.role == Role.mentor and recipient.role == Role.learner:
        booked = exists().where(
            Booking.learner_id == recipient.id,
            Booking.session_id == Session.id,
            Session.mentor_id == sender.id,
        )
        requested = exists().where(
            Request.learner_id == recipient.id,
            or_(Request.mentor_id == sender.id, Request.decided_by_id == sender.id),
        )
        if await s.scalar(select(or_(booked, requested))):
            return
        raise Forbidden(
            "You can write first only to learners who booked you or sent you a request.", code="not_allowed"
        )
    raise Forbidden("Messages are between learners and mentors.", code="not_allowed")


async def _check_may_write(s: AsyncSession, ctx: Context, sender_id: int, to_user_id: int) -> None:
    if sender_id == to_user_id:
        raise Invalid("You cannot write to yourself.", fields={"to_user_id": "is you"})
    sender = await s.get(User, sender_id)
    recipient = await s.get(User, to_user_id)
    if sender is None or recipient is None or not recipient.is_active or recipient.role == Role.admin:
        raise NotFound.of("user")
    if sender.role == Role.admin:
        raise Forbidden("Admins read reported conversations; they do not write in them.", code="not_allowed")
    await ensure_verified(s, sender_id, ctx.settings)
    low, high = pair(sender_id, to_user_id)
    conv = await s.scalar(
        select(Conversation).where(Conversation.low_user_id == low, Conversation.high_user_id == high)
    )
    if conv is not None:
        if Side(conv, sender_id).either_blocked:
            raise Forbidden("This conversation is blocked.", code="blocked")
        answered = await s.scalar(
            select(exists().where(DirectMessage.conversation_id == conv.id, DirectMessage.sender_id == to_user_id))
        )
        if answered:
            return
    await _may_start(s, sender, recipient)


async def _rate_limit(ctx: Context, limiter: RateLimiter, sender_id: int) -> None:
    limits = (
        ("burst", ctx.settings.message_burst_limit, BURST_WINDOW_SECONDS),
        ("day", ctx.settings.message_daily_limit, DAY_SECONDS),
    )
    for name, limit, window in limits:
        verdict = await limiter.hit(f"messages:{name}:user:{sender_id}", limit, window)
        if not verdict.allowed:
            raise RateLimited("You are sending messages too fast; try again later.", retry_after=verdict.retry_after)


async def _conversation(s: AsyncSession, a: int, b: int) -> Conversation:
    low, high = pair(a, b)
    q = select(Conversation).where(Conversation.low_user_id == low, Conversation.high_user_id == high)
    conv = await s.scalar(q)
    if conv is not None:
        return conv
    try:
        async with s.begin_nested():  # two first messages at once: one row wins, the other reads it
            conv = Conversation(low_user_id=low, high_user_id=high)
            s.add(conv)
    except IntegrityError:
        conv = await s.scalar(q)
        assert conv is not None
    return conv


async def send(ctx: Context, limiter: RateLimiter, sender_id: int, to_user_id: int, body: str) -> MessageOut:
    """Store one message and push it to both parties' sockets (the sender's other tabs too)."""
    async with ctx.db.read() as s:
        await _check_may_write(s, ctx, sender_id, to_user_id)
    await _rate_limit(ctx, limiter, sender_id)
    async with ctx.db.write() as s:
        conv = await _conversation(s, sender_id, to_user_id)
        side = Side(conv, sender_id)
        if side.either_blocked:  # blocked between the checks and now
            raise Forbidden("This conversation is blocked.", code="blocked")
        m = DirectMessage(conversation_id=conv.id, sender_id=sender_id, body=body)
        s.add(m)
        await s.flush()
        conv.last_message_id, conv.last_message_at = m.id, m.created_at
        # Writing means having read what came before.
        setattr(conv, side.column("read_id"), m.id)
        sender = await s.get(User, sender_id)
        assert sender is not None
        out = message_out(m, read=False)
        event = {"type": "message", "data": {**out.model_dump(), "from": party(sender).model_dump()}}
    for uid in (to_user_id, sender_id):
        await ctx.broker.publish(user_channel(uid), event)
    return out


def _unread_counts(user_id: int) -> Any:
    """(conversation_id, unread) of every conversation of ``user_id`` with unread messages."""
    mine_low = and_(Conversation.low_user_id == user_id, DirectMessage.id > Conversation.low_read_id)
    mine_high = and_(Conversation.high_user_id == user_id, DirectMessage.id > Conversation.high_read_id)
    return (
        select(DirectMessage.conversation_id, func.count(DirectMessage.id))
        .join(Conversation, Conversation.id == DirectMessage.conversation_id)
        .where(or_(mine_low, mine_high), DirectMessage.sender_id != user_id)
        .group_by(DirectMessage.conversation_id)
    )


async def unread_total(db: Database, user_id: int) -> int:
    """Unread messages over all of this user's conversations (the nav bar's badge)."""
    async with db.read() as s:
        rows = (await s.execute(_unread_counts(user_id))).all()
    return sum(int(n) for _, n in rows)


def _conversation_out(side: Side, other: User, last: DirectMessage | None, unread: int) -> ConversationOut:
    return ConversationOut(
        id=side.conv.id,
        other_user=party(other),
        last_message=_out_for(side, last) if last is not None else None,
        unread=unread,
        other_read_id=side.other_read_id,
        blocked=side.blocked,
        can_write=not side.either_blocked and other.is_active,
    )


async def conversations(db: Database, user_id: int) -> ConversationList:
    """This user's conversations with at least one message, the latest first."""
    async with db.read() as s:
        convs = (
            await s.scalars(
                select(Conversation)
                .where(
                    or_(Conversation.low_user_id == user_id, Conversation.high_user_id == user_id),
                    Conversation.last_message_id.is_not(None),
                )
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(MAX_CONVERSATIONS)
            )
        ).all()
        sides = [Side(c, user_id) for c in convs]
        others = {u.id: u for u in await s.scalars(select(User).where(User.id.in_({x.other_id for x in sides})))}
        lasts = {
            m.id: m
            for m in await s.scalars(
                select(DirectMessage).where(DirectMessage.id.in_({c.last_message_id for c in convs}))
            )
        }
        unread = {cid: int(n) for cid, n in (await s.execute(_unread_counts(user_id))).all()}
    items = [
        _conversation_out(x, others[x.other_id], lasts.get(x.conv.last_message_id or 0), unread.get(x.conv.id, 0))
        for x in sides
    ]
    return ConversationList(items=items, unread=sum(unread.values()))


async def _one(s: AsyncSession, side: Side) -> ConversationOut:
    other = await s.get(User, side.other_id)
    assert other is not None
    last = await s.get(DirectMessage, side.conv.last_message_id) if side.conv.last_message_id else None
    unread = await s.scalar(
        select(func.count(DirectMessage.id)).where(
            DirectMessage.conversation_id == side.conv.id,
            DirectMessage.sender_id != side.user_id,
            DirectMessage.id > side.read_id,
        )
    )
    return _conversation_out(side, other, last, int(unread or 0))


async def conversation_with(db: Database, user_id: int, other_id: int) -> int | None:
    """The id of the conversation between these two users, if there is one."""
    low, high = pair(user_id, other_id)
    async with db.read() as s:
        return await s.scalar(
            select(Conversation.id).where(Conversation.low_user_id == low, Conversation.high_user_id == high)
        )


async def messages(db: Database, user_id: int, conv_id: int, *, before: int | None, limit: int) -> MessagePage:
    """A page of a conversation, oldest first: the latest ``limit`` messages before ``before``."""
    async with db.read() as s:
        side = await _party_of(s, conv_id, user_id)
        q = select(DirectMessage).where(DirectMessage.conversation_id == conv_id)
        if before is not None:
            q = q.where(DirectMessage.id < before)
        rows = list((await s.scalars(q.order_by(DirectMessage.id.desc()).limit(limit + 1))).all())
        head = await _one(s, side)
    has_more = len(rows) > limit
    page = rows[:limit][::-1]
    return MessagePage(conversation=head, items=[_out_for(side, m) for m in page], has_more=has_more)


async def mark_read(ctx: Context, user_id: int, conv_id: int) -> ReadOut:
    """Everything in the conversation so far is read; the other party gets a read receipt."""
    async with ctx.db.write() as s:
        side = await _party_of(s, conv_id, user_id)
        read_id = side.conv.last_message_id or 0
        moved = read_id > side.read_id
        if moved:
            setattr(side.conv, side.column("read_id"), read_id)
        quiet = side.either_blocked
    if moved and not quiet:
        receipt = {"conversation_id": conv_id, "reader_id": user_id, "read_id": read_id}
        for uid in (side.other_id, user_id):
            await ctx.broker.publish(user_channel(uid), {"type": "message.read", "data": receipt})
    return ReadOut(conversation_id=conv_id, read_id=read_id, unread=await unread_total(ctx.db, user_id))


async def set_blocked(db: Database, user_id: int, conv_id: int, blocked: bool) -> bool:
    """Block (or unblock) the other party: no messages either way, no notices."""
    async with db.write() as s:
        side = await _party_of(s, conv_id, user_id)
        setattr(side.conv, side.column("blocked"), blocked)
    return blocked


async def report(ctx: Context, user_id: int, conv_id: int, reason: str) -> ReportOut:
    """A party reports the conversation: admins can now read it (admin → Reports), and are told."""
    async with ctx.db.write() as s:
        await _party_of(s, conv_id, user_id)
        rep = ConversationReport(conversation_id=conv_id, reporter_id=user_id, reason=reason)
        s.add(rep)
        await s.flush()
        admins = (await s.scalars(select(User.id).where(User.role == Role.admin, User.is_active.is_(True)))).all()
        notes = [
            notifications.add(
                s, admin_id, "report.opened", "A conversation was reported", reason[:500], "/admin/reports"
            )
            for admin_id in admins
        ]
        out = ReportOut(id=rep.id, conversation_id=conv_id, created_at=rep.created_at.isoformat())
    await notifications.push(ctx.broker, notes)
    return out


async def reported(db: Database, *, limit: int = 50) -> ReportedConversationList:
    """Admins: reported conversations, the latest report first, each with its messages."""
    async with db.read() as s:
        reps = (await s.scalars(select(ConversationReport).order_by(ConversationReport.id.desc()).limit(limit))).all()
        convs = {
            c.id: c
            for c in await s.scalars(select(Conversation).where(Conversation.id.in_({r.conversation_id for r in reps})))
        }
        ids = {r.reporter_id for r in reps} | {u for c in convs.values() for u in (c.low_user_id, c.high_user_id)}
        users = {u.id: u for u in await s.scalars(select(User).where(User.id.in_(ids)))}
        items = []
        for r in reps:
            conv = convs[r.conversation_id]
            rows = (
                await s.scalars(
                    select(DirectMessage)
                    .where(DirectMessage.conversation_id == conv.id)
                    .order_by(DirectMessage.id.desc())
                    .limit(REPORT_MESSAGES)
                )
            ).all()
            items.append(
                ReportedConversation(
                    report_id=r.id,
                    conversation_id=conv.id,
                    reporter=party(users[r.reporter_id]),
                    reason=r.reason,
                    created_at=r.created_at.isoformat(),
                    parties=[party(users[conv.low_user_id]), party(users[conv.high_user_id])],
                    messages=[message_out(m, read=True) for m in reversed(rows)],
                )
            )
    return ReportedConversationList(items=items)

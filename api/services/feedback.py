"""Feedback on completed sessions, rating aggregates, public mentor profiles, follows."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.db import Database
from api.models import Booking, BookingStatus, Feedback, Follow, Role, Session, SessionStatus, User
from api.schemas.feedback import FeedbackCreate, FeedbackOut, FollowOut, MentorProfile
from api.schemas.sessions import Rating
from api.services import notifications
from api.services.accounts import avatar_url
from api.services.catalog import Viewer, mentor_ratings, to_out
from api.services.errors import Conflict, Forbidden, NotFound

PARTICIPANT = (BookingStatus.confirmed, BookingStatus.attended)


def to_out_feedback(f: Feedback) -> FeedbackOut:
    return FeedbackOut(
        id=f.id,
        session_id=f.session_id,
        author_id=f.author_id,
        rating=f.rating,
        comment=f.comment,
        created_at=f.created_at,
    )


async def rating_of(db: Database, session_id: int, author_id: int) -> int | None:
    """The rating this participant gave the session, if any (the room's end screen shows it
    instead of asking again)."""
    async with db.read() as s:
        rating = await s.scalar(
            select(Feedback.rating).where(Feedback.session_id == session_id, Feedback.author_id == author_id)
        )
    return int(rating) if rating is not None else None


def _already() -> Conflict:
    return Conflict("You already left feedback for this session.", code="already_reviewed")


async def create_feedback(ctx: Context, author: Viewer, data: FeedbackCreate) -> FeedbackOut:
    """One rating (1-5) and comment per participant of a completed session; the mentor is notified."""
    comment = data.comment.strip()
    try:
        async with ctx.db.write() as s:
            sess = await s.get(Session, data.session_id)
            if sess is None or sess.status == SessionStatus.draft:
                raise NotFound.of("session")
            booked = await s.scalar(
                select(Booking.id).where(
                    Booking.session_id == sess.id, Booking.learner_id == author.id, Booking.status.in_(PARTICIPANT)
                )
            )
            if booked is None:
                raise Forbidden("Only learners who took part in this session can review it.")
            if sess.status != SessionStatus.completed:
                raise Conflict("Feedback opens once the session is completed.", code="session_not_completed")
            if (
                await s.scalar(
                    select(Feedback.id).where(Feedback.session_id == sess.id, Feedback.author_id == author.id)
                )
                is not None
            ):
                raise _already()
            fb = Feedback(session_id=sess.id, author_id=author.id, rating=data.rating, comment=comment)
            s.add(fb)
            await s.flush()
            stars = "★" * data.rating + "☆" * (5 - data.rating)
            note = notifications.add(
                s,
                sess.mentor_id,
                "feedback.received",
                f"New feedback {stars}: {sess.title}",
                comment[:300],
                f"/sessions/{sess.id}",
            )
    except IntegrityError:
        raise _already() from None
    await notifications.push(ctx.broker, [note])
    return to_out_feedback(fb)


async def _active_mentor(s: AsyncSession, mentor_id: int) -> User:
    user = await s.get(User, mentor_id)
    if user is None or user.role != Role.mentor or not user.is_active:
        raise NotFound.of("mentor")
    return user


async def active_mentor(db: Database, mentor_id: int) -> User | None:
    """The mentor ``mentor_id`` if that is an active mentor's account, else None (a page that
    names a mentor, such as a request from their profile, falls back to naming none)."""
    async with db.read() as s:
        try:
            return await _active_mentor(s, mentor_id)
        except NotFound:
            return None


async def _followers(s: AsyncSession, mentor_id: int) -> int:
    return int(await s.scalar(select(func.count(Follow.id)).where(Follow.mentor_id == mentor_id)) or 0)


async def mentor_profile(db: Database, mentor_id: int, viewer: Viewer | None) -> MentorProfile:
    """Public profile: bio, rating over all their sessions, followers, upcoming sessions."""
    async with db.read() as s:
        user = await _active_mentor(s, mentor_id)
        rating = (await mentor_ratings(s, {mentor_id})).get(mentor_id)
        following = False
        if viewer is not None:
            following = (
                await s.scalar(select(Follow.id).where(Follow.mentor_id == mentor_id, Follow.learner_id == viewer.id))
                is not None
            )
        completed = (
            await s.scalar(
                select(func.count(Session.id)).where(
                    Session.mentor_id == mentor_id, Session.status == SessionStatus.completed
                )
            )
            or 0
        )
        upcoming = (
            await s.scalars(
                select(Session)
                .where(
                    Session.mentor_id == mentor_id, Session.status.in_((SessionStatus.scheduled, SessionStatus.live))
                )
                .order_by(Session.starts_at.asc())
                .limit(20)
            )
        ).all()
        followers = await _followers(s, mentor_id)
    rating = rating or Rating()
    return MentorProfile(
        id=user.id,
        full_name=user.full_name,
        avatar_url=avatar_url(user),
        bio=user.bio,
        domains=list(user.domains or []),
        skills=list(user.skills or []),
        rating=rating,
        followers=followers,
        following=following,
        completed_sessions=int(completed),
        upcoming=[to_out(x, user, rating) for x in upcoming],
    )


async def follow(db: Database, learner_id: int, mentor_id: int) -> FollowOut:
    """Follow a mentor (idempotent)."""
    try:
        async with db.write() as s:
            await _active_mentor(s, mentor_id)
            exists = await s.scalar(
                select(Follow.id).where(Follow.learner_id == learner_id, Follow.mentor_id == mentor_id)
            )
            if exists is None:
                s.add(Follow(learner_id=learner_id, mentor_id=mentor_id))
                await s.flush()
            n = await _followers(s, mentor_id)
    except IntegrityError:  # a concurrent identical follow won
        async with db.read() as s:
            n = await _followers(s, mentor_id)
    return FollowOut(mentor_id=mentor_id, following=True, followers=n)


async def unfollow(db: Database, learner_id: int, mentor_id: int) -> FollowOut:
    """Stop following (idempotent)."""
    async with db.write() as s:
        await _active_mentor(s, mentor_id)
        await s.execute(delete(Follow).where(Follow.learner_id == learner_id, Follow.mentor_id == mentor_id))
        n = await _followers(s, mentor_id)
    return FollowOut(mentor_id=mentor_id, following=False, followers=n)

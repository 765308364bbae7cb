"""Learner requests for custom sessions: ask, match mentors, propose (race-free), decline, cancel, expire.

A request goes to one mentor (``mentor_id``) or to every active mentor whose
domains include its domain; every one of those sees it in their list, and at
most ``settings.request_max_notified_mentors`` of them (picked at random) are
notified (``request.new``, stored and pushed) and get a ``{"type":
"request.new"}`` realtime message. Sending one needs a confirmed e-mail address
and is rate limited per learner (a burst and a daily allowance): each request
puts the learner's own text in front of other people.

A mentor's accept is a *proposal*: one of the learner's preferred times and a
price, set by a conditional ``UPDATE requests SET status = 'proposed' WHERE id
= ? AND status = 'open'`` (of two mentors at once exactly one wins, the other
gets 409 on SQLite and PostgreSQL alike). Nothing is charged: the learner
confirms (session, booking and charge in one transaction) or declines it, and
an unanswered proposal lapses (``api.services.request_proposals``).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import CurrentUser
from api.context import Context
from api.models import (
    AuditLog,
    Notification,
    Request,
    RequestStatus,
    Role,
    User,
)
from api.schemas.dates import parse_stored
from api.schemas.requests import (
    PersonBrief,
    ProposalOut,
    RequestAccept,
    RequestAccepted,
    RequestCreate,
    RequestOut,
    RequestPage,
    RequestQuery,
)
from api.ratelimit import RateLimiter
from api.services import accounts, notifications
from api.services.booking_horizon import within_horizon
from api.services.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited
from api.services.local_time import spoken
from api.services.settings_store import get_all as platform_settings

MAX_FANOUT = 1000  # mentors an open-to-all request is matched against
DAY_SECONDS = 86400
PASS_ACTION = "request.pass"  # a mentor declining an open-to-all request (it stays open for others)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_times(values: list[str]) -> list[datetime]:
    return [dt for dt in map(parse_stored, values or []) if dt is not None]


def _lower(tags: list[str] | None) -> list[str]:
    return [t.strip().lower() for t in (tags or []) if isinstance(t, str) and t.strip()]


def proposal_out(r: Request, names: dict[int, str]) -> ProposalOut | None:
    if (
        r.status != RequestStatus.proposed
        or r.decided_by_id is None
        or r.proposed_starts_at is None
        or r.proposal_expires_at is None
    ):
        return None
    return ProposalOut(
        mentor=PersonBrief(id=r.decided_by_id, full_name=names.get(r.decided_by_id, "")),
        title=r.proposed_title or r.topic,
        starts_at=r.proposed_starts_at,
        price_cents=r.proposed_price_cents or 0,
        currency="USD",
        expires_at=r.proposal_expires_at,
    )


def to_out(r: Request, names: dict[int, str]) -> RequestOut:
    return RequestOut(
        id=r.id,
        learner=PersonBrief(id=r.learner_id, full_name=names.get(r.learner_id, "")),
        mentor=PersonBrief(id=r.mentor_id, full_name=names.get(r.mentor_id, "")) if r.mentor_id else None,
        topic=r.topic,
        domain=r.domain,
        skills=list(r.skills or []),
        duration_min=r.duration_min,
        preferred_times=parse_times(r.preferred_times),
        description=r.description,
        status=r.status.value,
        session_id=r.session_id,
        decided_by_id=r.decided_by_id,
        proposal=proposal_out(r, names),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


async def _names(s: AsyncSession, rows: list[Request]) -> dict[int, str]:
    ids = (
        {r.learner_id for r in rows}
        | {r.mentor_id for r in rows if r.mentor_id}
        | {r.decided_by_id for r in rows if r.decided_by_id}
    )
    if not ids:
        return {}
    return {uid: name for uid, name in (await s.execute(select(User.id, User.full_name).where(User.id.in_(ids)))).all()}


async def _outs(s: AsyncSession, rows: list[Request]) -> list[RequestOut]:
    names = await _names(s, rows)
    return [to_out(r, names) for r in rows]


async def matching_mentors(s: AsyncSession, domain: str) -> list[int]:
    """Active mentors whose domains include ``domain`` (case-insensitive)."""
    want = domain.strip().lower()
    rows = (
        await s.execute(
            select(User.id, User.domains).where(User.role == Role.mentor, User.is_active.is_(True)).order_by(User.id)
        )
    ).all()
    return [uid for uid, domains in rows if want in _lower(domains)][:MAX_FANOUT]


async def _passed_by(s: AsyncSession, mentor_id: int) -> set[int]:
    rows = (
        await s.scalars(select(AuditLog.target).where(AuditLog.actor_id == mentor_id, AuditLog.action == PASS_ACTION))
    ).all()
    return {int(t.split(":", 1)[1]) for t in rows if t.startswith("request:")}


async def _mentor_domains(s: AsyncSession, mentor_id: int) -> list[str]:
    user = await s.get(User, mentor_id)
    return _lower(user.domains if user else [])


def _mentor_may_see(r: Request, mentor_id: int, domains: list[str]) -> bool:
    if r.mentor_id is not None:
        return r.mentor_id == mentor_id
    if r.decided_by_id == mentor_id:
        return True
    # Open-to-all requests of the mentor's domains, whatever their status now (so a
    # mentor who lost the race to accept gets 409, not 404); lists show open ones only.
    return r.domain.strip().lower() in domains


async def _visible(s: AsyncSession, request_id: int, user: CurrentUser) -> Request:
    """The request if ``user`` may see it, else 404 (existence is not revealed)."""
    r = await s.get(Request, request_id)
    if r is None:
        raise NotFound.of("request")
    if user.role == Role.admin.value or r.learner_id == user.id:
        return r
    if user.role == Role.mentor.value and _mentor_may_see(r, user.id, await _mentor_domains(s, user.id)):
        return r
    raise NotFound.of("request")


# ---------------------------------------------------------------- learner actions


async def _within_allowance(ctx: Context, limiter: RateLimiter, learner_id: int) -> None:
    """429 once the learner has sent their burst (per window) or their day's requests.

    Both windows are counted on every attempt that reaches here, refused ones included,
    so hammering past the limit does not open a new burst any sooner."""
    settings = ctx.settings
    for key, limit, window in (
        (f"request:burst:{learner_id}", settings.request_rate_burst, settings.request_rate_burst_window_seconds),
        (f"request:day:{learner_id}", settings.request_rate_daily, DAY_SECONDS),
    ):
        verdict = await limiter.hit(key, limit, window)
        if not verdict.allowed:
            raise RateLimited("You have sent too many requests; try again later.", retry_after=verdict.retry_after)


def notified(targets: list[int], cap: int) -> list[int]:
    """The mentors told about a request: all of them up to ``cap``, else a random ``cap``
    (random, so that the same lowest ids are not the ones pinged by every request)."""
    if len(targets) <= cap:
        return list(targets)
    return sorted(random.sample(targets, max(0, cap)))


async def create(ctx: Context, learner: CurrentUser, data: RequestCreate, limiter: RateLimiter) -> RequestOut:
    """A learner's request; matching mentors are notified in real time."""
    if learner.role != Role.learner.value:
        raise Forbidden("Only learners send requests.")
    async with ctx.db.read() as s:
        # A throwaway address must not put its text in front of every mentor of a domain.
        await accounts.ensure_verified(s, learner.id, ctx.settings)
    now = utcnow()
    times = sorted({t.astimezone(timezone.utc) for t in data.preferred_times})
    if not any(t > now for t in times):
        raise Invalid(
            "At least one preferred time must be in the future.",
            fields={"preferred_times": "at least one in the future"},
        )
    times = [t for t in times if t > now]  # a past time cannot be proposed: not shown to anyone
    for when in times:
        within_horizon(when, "preferred_times")
    # After the form's own mistakes (a past time costs nothing), before anything is written.
    await _within_allowance(ctx, limiter, learner.id)
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        if data.mentor_id is not None:
            mentor = await s.get(User, data.mentor_id)
            if mentor is None or mentor.role != Role.mentor or not mentor.is_active:
                raise Invalid("No such mentor.", fields={"mentor_id": "not an active mentor"})
            targets = [mentor.id]
        else:
            targets = notified(await matching_mentors(s, data.domain), ctx.settings.request_max_notified_mentors)
        seen: dict[str, str] = {}
        for t in data.skills:
            seen.setdefault(t.lower(), t)
        r = Request(
            learner_id=learner.id,
            mentor_id=data.mentor_id,
            topic=data.topic,
            domain=data.domain,
            skills=list(seen.values()),
            duration_min=data.duration_min,
            preferred_times=[t.isoformat() for t in times],
            description=data.description,
            status=RequestStatus.open,
        )
        s.add(r)
        await s.flush()
        for mid in targets:
            notes.append(
                notifications.add(
                    s,
                    mid,
                    "request.new",
                    f"New request: {r.topic}"[:200],
                    f"{learner.full_name} asks for {r.duration_min} min of {r.domain}.",
                    f"/mentor/requests#request-{r.id}",
                )
            )
        out = (await _outs(s, [r]))[0]
    payload = out.model_dump(mode="json")
    for mid in targets:
        await ctx.broker.publish(notifications.user_channel(mid), {"type": "request.new", "data": payload})
    await notifications.push(ctx.broker, notes)
    return out


async def cancel(ctx: Context, user: CurrentUser, request_id: int) -> RequestOut:
    """The learner withdraws their own open request (or one with a proposal pending)."""
    async with ctx.db.write() as s:
        r = await _visible(s, request_id, user)
        if r.learner_id != user.id:
            raise Forbidden("Only the learner who sent a request may cancel it.")
        result = await s.execute(
            update(Request)
            .where(Request.id == request_id, Request.status.in_((RequestStatus.open, RequestStatus.proposed)))
            .values(status=RequestStatus.cancelled, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
            raise Conflict("Only open requests can be cancelled.", code="request_not_open")
        r = await _reload(s, request_id)
        out = (await _outs(s, [r]))[0]
    return out


async def _reload(s: AsyncSession, request_id: int) -> Request:
    r = await s.scalar(select(Request).where(Request.id == request_id).execution_options(populate_existing=True))
    assert r is not None
    return r


# ---------------------------------------------------------------- mentor actions


def same_instant(a: datetime, b: datetime) -> bool:
    return abs((a - b).total_seconds()) < 1


async def accept(ctx: Context, mentor: CurrentUser, request_id: int, data: RequestAccept) -> RequestAccepted:
    """The mentor's proposal: one of the learner's preferred times and a price. Nothing is
    booked or charged until the learner confirms. Exactly one mentor wins (others 409)."""
    if mentor.role != Role.mentor.value:
        raise Forbidden("Only mentors accept requests.")
    now = utcnow()
    starts = data.starts_at.astimezone(timezone.utc)
    if starts <= now:
        raise Invalid("The start time must be in the future.", fields={"starts_at": "must be in the future"})
    within_horizon(starts)
    ttl = timedelta(hours=int((await platform_settings(ctx.db))["proposal_ttl_hours"]))
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        r = await _visible(s, request_id, mentor)
        # A proposal sells: the mentor needs a confirmed address, as to publish (docs/money.md).
        await accounts.ensure_verified(s, mentor.id, ctx.settings)
        if r.status != RequestStatus.open:
            raise Conflict("This request is no longer open.", code="request_not_open")
        if not any(same_instant(starts, t) for t in parse_times(r.preferred_times)):
            raise Invalid(
                "Propose one of the learner's preferred times.", fields={"starts_at": "one of the preferred times"}
            )
        # The race is decided here: one conditional update per request.
        result = await s.execute(
            update(Request)
            .where(
                Request.id == request_id,
                Request.status == RequestStatus.open,
                or_(Request.mentor_id.is_(None), Request.mentor_id == mentor.id),
            )
            .values(
                status=RequestStatus.proposed,
                decided_by_id=mentor.id,
                proposed_price_cents=data.price_cents,
                proposed_starts_at=starts,
                proposed_title=data.title or None,
                proposal_expires_at=min(now + ttl, starts),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
            raise Conflict("This request is no longer open.", code="request_not_open")
        r = await _reload(s, request_id)
        price = f"{data.price_cents / 100:.2f} USD" if data.price_cents else "free"
        learner = await s.get(User, r.learner_id)
        zone = learner.timezone if learner else None
        notes.append(
            notifications.add(
                s,
                r.learner_id,
                "request.proposed",
                f"Proposal: {r.topic}"[:200],
                f"{mentor.full_name} proposes {spoken(starts, zone)} for {price}. Confirm to book"
                f" (and pay) or decline, before {spoken(min(now + ttl, starts), zone)}.",
                f"/learner/requests#request-{r.id}",
            )
        )
        out = (await _outs(s, [r]))[0]
    await notifications.push(ctx.broker, notes)
    return RequestAccepted(request=out, session_id=None, booking_id=None)


async def decline(ctx: Context, mentor: CurrentUser, request_id: int) -> RequestOut:
    """Decline: a request to this mentor becomes ``declined`` (the learner is told); an
    open-to-all request stays open for the other mentors and leaves this mentor's list."""
    if mentor.role != Role.mentor.value:
        raise Forbidden("Only mentors decline requests.")
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        r = await _visible(s, request_id, mentor)
        if r.status != RequestStatus.open:
            raise Conflict("This request is no longer open.", code="request_not_open")
        if r.mentor_id == mentor.id:
            result = await s.execute(
                update(Request)
                .where(Request.id == request_id, Request.status == RequestStatus.open)
                .values(status=RequestStatus.declined, decided_by_id=mentor.id, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
                raise Conflict("This request is no longer open.", code="request_not_open")
            r = await _reload(s, request_id)
            notes.append(
                notifications.add(
                    s,
                    r.learner_id,
                    "request.declined",
                    f"Request declined: {r.topic}"[:200],
                    f"{mentor.full_name} cannot take this one. Try asking all mentors of {r.domain}.",
                    "/learner/requests",
                )
            )
        elif request_id not in await _passed_by(s, mentor.id):
            s.add(AuditLog(actor_id=mentor.id, action=PASS_ACTION, target=f"request:{request_id}", details={}))
        out = (await _outs(s, [r]))[0]
    await notifications.push(ctx.broker, notes)
    return out


# ---------------------------------------------------------------- reading


async def get(ctx: Context, user: CurrentUser, request_id: int) -> RequestOut:
    async with ctx.db.read() as s:
        r = await _visible(s, request_id, user)
        out = (await _outs(s, [r]))[0]
    if user.role == Role.mentor.value and r.decided_by_id != user.id:
        out.proposal = None  # another mentor's price is not for its competitors to see
    return out


async def list_for(ctx: Context, user: CurrentUser, query: RequestQuery, *, all_requests: bool = False) -> RequestPage:
    """Learner: their own. Mentor: sent to them, decided by them, and open ones of their
    domains (minus those they passed on). Admin (or ``all_requests``): every request."""
    q = select(Request)
    async with ctx.db.read() as s:
        if all_requests or user.role == Role.admin.value:
            pass
        elif user.role == Role.mentor.value:
            domains = await _mentor_domains(s, user.id)
            passed = await _passed_by(s, user.id)
            open_to_all = and_(
                Request.mentor_id.is_(None),
                Request.status == RequestStatus.open,
                func.lower(Request.domain).in_(domains or ["\x00"]),
            )
            if passed:
                open_to_all = and_(open_to_all, Request.id.notin_(passed))
            q = q.where(or_(Request.mentor_id == user.id, Request.decided_by_id == user.id, open_to_all))
        else:
            q = q.where(Request.learner_id == user.id)
        if query.status:
            q = q.where(Request.status == RequestStatus(query.status))
        total = await s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = list(
            (
                await s.scalars(
                    q.order_by(Request.id.desc()).limit(query.page_size).offset((query.page - 1) * query.page_size)
                )
            ).all()
        )
        items = await _outs(s, rows)
    return RequestPage(items=items, total=total, page=query.page, page_size=query.page_size)


# ---------------------------------------------------------------- scheduler


async def expire_due(ctx: Context, now: datetime | None = None) -> list[int]:
    """Open requests whose preferred times have all passed become ``expired``; learners are told."""
    now = now or utcnow()
    async with ctx.db.read() as s:
        rows = (
            await s.execute(select(Request.id, Request.preferred_times).where(Request.status == RequestStatus.open))
        ).all()
    due = [rid for rid, times in rows if all(t <= now for t in parse_times(times))]
    expired: list[int] = []
    notes: list[Notification] = []
    for rid in due:
        async with ctx.db.write() as s:
            result = await s.execute(
                update(Request)
                .where(Request.id == rid, Request.status == RequestStatus.open)
                .values(status=RequestStatus.expired, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
                continue  # someone else (another process, an accept) got there first
            r = await _reload(s, rid)
            notes.append(
                notifications.add(
                    s,
                    r.learner_id,
                    "request.expired",
                    f"Request expired: {r.topic}"[:200],
                    "All the times you proposed have passed. Send a new request with other times.",
                    "/learner/requests",
                )
            )
        expired.append(rid)
    await notifications.push(ctx.broker, notes)
    return expired


def serialize(r: Request, names: dict[int, str] | None = None) -> dict[str, Any]:
    return to_out(r, names or {}).model_dump(mode="json")


__all__ = ["accept", "cancel", "create", "decline", "expire_due", "get", "list_for", "outs", "reload", "visible"]

# For api.services.request_proposals (the learner's side of a proposal).
visible, reload, outs = _visible, _reload, _outs

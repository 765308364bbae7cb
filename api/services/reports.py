"""Learners' problem reports on past classes, and their resolution by an admin.

During the earnings hold after a class (``earnings_hold_hours``, see
``api.services.money.settlement``) the learner of an attended or no-show booking may
report a problem once. While the report is open the booking's earnings stay in
the mentor's pending balance whatever the clock says; an admin resolves it by
refunding the learner (the booking's charge reversed exactly) or releasing the
money to the mentor. Each resolution is one transaction with its journal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from api.context import Context
from api.models import (
    AuditLog,
    Booking,
    BookingReport,
    BookingStatus,
    Notification,
    ReportStatus,
    Role,
    Session,
    User,
)
from api.schemas.reports import LearnerReports, Reportable, ReportOut, ReportPage
from api.services import notifications
from api.services.money import charges
from api.services.errors import Conflict, NotFound

REPORTABLE = (BookingStatus.attended, BookingStatus.no_show)


def utcnow() -> datetime:
    return datetime.now(UTC)


Learner = aliased(User)
Mentor = aliased(User)


# A report with its booking, session and both names (statements are immutable: filtered per use).
REPORTS = (
    select(BookingReport, Booking, Session, Learner.full_name, Mentor.full_name)
    .join(Booking, Booking.id == BookingReport.booking_id)
    .join(Session, Session.id == BookingReport.session_id)
    .join(Learner, Learner.id == BookingReport.learner_id)
    .join(Mentor, Mentor.id == Session.mentor_id)
)


def _out(r: BookingReport, b: Booking, sess: Session, learner: str, mentor: str) -> ReportOut:
    return ReportOut(
        id=r.id,
        booking_id=b.id,
        session_id=sess.id,
        session_title=sess.title,
        learner_id=r.learner_id,
        learner_name=learner,
        mentor_id=sess.mentor_id,
        mentor_name=mentor,
        booking_status=b.status.value,
        amount_cents=b.price_cents,
        currency=b.currency,
        reason=r.reason,
        status=r.status.value,
        resolution_note=r.resolution_note,
        created_at=r.created_at,
        resolved_at=r.resolved_at,
    )


async def _one(ctx: Context, report_id: int) -> ReportOut:
    async with ctx.db.read() as s:
        row = (await s.execute(REPORTS.where(BookingReport.id == report_id))).first()
    if row is None:
        raise NotFound.of("report")
    r, b, sess, learner, mentor = row
    return _out(r, b, sess, learner, mentor)


async def create(ctx: Context, learner_id: int, booking_id: int, reason: str) -> ReportOut:
    """The learner reports a problem with a past booking, within the hold (one report per booking).

    404 for someone else's booking; 409 ``not_reportable`` (the class did not end with this
    booking attended or a no-show), ``report_window_closed`` (hold over, money released),
    ``already_reported``."""
    now = utcnow()
    notes: list[Notification] = []
    try:
        async with ctx.db.write() as s:
            b = await s.get(Booking, booking_id)
            if b is None or b.learner_id != learner_id:
                raise NotFound.of("booking")
            if b.status not in REPORTABLE:
                raise Conflict("Only a class that took place can be reported.", code="not_reportable")
            if await s.scalar(select(BookingReport.id).where(BookingReport.booking_id == booking_id)):
                raise Conflict("You already reported a problem with this class.", code="already_reported")
            if b.earnings_released_at is not None or b.earnings_release_at is None or b.earnings_release_at <= now:
                raise Conflict("The time to report a problem with this class is over.", code="report_window_closed")
            sess = await s.get(Session, b.session_id)
            assert sess is not None
            report = BookingReport(
                booking_id=b.id,
                session_id=b.session_id,
                learner_id=learner_id,
                reason=reason,
                status=ReportStatus.open,
                created_at=now,
            )
            s.add(report)
            await s.flush()
            notes.append(
                notifications.add(
                    s,
                    sess.mentor_id,
                    "report.opened",
                    f"Problem reported: {sess.title}"[:200],
                    "A learner reported a problem with this class; their payment stays on hold until "
                    "an admin resolves it.",
                    "/mentor/earnings",
                )
            )
            for admin_id in (
                await s.scalars(select(User.id).where(User.role == Role.admin, User.is_active.is_(True)))
            ).all():
                notes.append(
                    notifications.add(
                        s,
                        admin_id,
                        "report.opened",
                        f"Problem reported: {sess.title}"[:200],
                        reason[:500],
                        "/admin/payments",
                    )
                )
            report_id = report.id
    except IntegrityError:  # a concurrent report of the same booking won (unique booking_id)
        raise Conflict("You already reported a problem with this class.", code="already_reported") from None
    await notifications.push(ctx.broker, notes)
    return await _one(ctx, report_id)


async def resolve(
    ctx: Context, admin_id: int, report_id: int, action: Literal["refund", "release"], note: str = ""
) -> ReportOut:
    """An admin decides an open report: ``refund`` (the learner gets the booking's price back,
    the mentor nothing) or ``release`` (the mentor's share becomes available now).

    409 ``report_resolved`` if it was already decided."""
    now = utcnow()
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        report = await s.scalar(select(BookingReport).where(BookingReport.id == report_id).with_for_update())
        if report is None:
            raise NotFound.of("report")
        if report.status != ReportStatus.open:
            raise Conflict(f"This report was already resolved ({report.status.value}).", code="report_resolved")
        b = await s.scalar(select(Booking).where(Booking.id == report.booking_id).with_for_update())
        sess = await s.get(Session, report.session_id)
        assert b is not None and sess is not None
        if action == "refund":
            await charges.refund(s, b, f"report {report.id}: refunded")
            b.earnings_release_at = None  # nothing left to release
            report.status = ReportStatus.refunded
            learner_msg = (
                f"You get a full refund of {b.price_cents / 100:.2f} {b.currency}."
                if b.price_cents
                else "The report was upheld."
            )
            mentor_msg = "The learner was refunded; this booking pays nothing."
        else:
            await charges.release(s, b, f"report {report.id}: released")
            b.earnings_released_at = now
            report.status = ReportStatus.released
            learner_msg = "After review, the payment goes to the mentor."
            mentor_msg = "The payment for this booking is now available."
        report.resolution_note = note
        report.resolved_by_id = admin_id
        report.resolved_at = now
        s.add(
            AuditLog(
                actor_id=admin_id,
                action=f"report.{action}",
                target=f"report:{report.id}",
                details={"booking_id": b.id, "amount_cents": b.price_cents, "note": note[:500]},
            )
        )
        suffix = f" Note: {note}" if note else ""
        notes.append(
            notifications.add(
                s,
                report.learner_id,
                "report.resolved",
                f"Report resolved: {sess.title}"[:200],
                learner_msg + suffix,
                "/learner/sessions?view=past",
            )
        )
        notes.append(
            notifications.add(
                s,
                sess.mentor_id,
                "report.resolved",
                f"Report resolved: {sess.title}"[:200],
                mentor_msg + suffix,
                "/mentor/earnings",
            )
        )
    await notifications.push(ctx.broker, notes)
    return await _one(ctx, report_id)


async def list_all(ctx: Context, *, status: str | None = None, page: int = 1, page_size: int = 50) -> ReportPage:
    """Admins: reports, open ones first, newest first."""
    q = REPORTS
    if status:
        q = q.where(BookingReport.status == ReportStatus(status))
    async with ctx.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = (
            await s.execute(
                q.order_by((BookingReport.status == ReportStatus.open).desc(), BookingReport.id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            )
        ).all()
    return ReportPage(
        items=[_out(r, b, sess, ln, mn) for r, b, sess, ln, mn in rows], total=total, page=page, page_size=page_size
    )


async def for_learner(ctx: Context, learner_id: int) -> LearnerReports:
    """A learner's reports, and the past bookings they may still report (the hold is running)."""
    now = utcnow()
    async with ctx.db.read() as s:
        rows = (
            await s.execute(
                REPORTS.where(BookingReport.learner_id == learner_id).order_by(BookingReport.id.desc()).limit(200)
            )
        ).all()
        open_ = (
            await s.execute(
                select(Booking.id, Booking.session_id, Booking.earnings_release_at)
                .where(
                    Booking.learner_id == learner_id,
                    Booking.status.in_(REPORTABLE),
                    Booking.earnings_released_at.is_(None),
                    Booking.earnings_release_at > now,
                    Booking.id.notin_(select(BookingReport.booking_id).where(BookingReport.learner_id == learner_id)),
                )
                .order_by(Booking.id.desc())
                .limit(200)
            )
        ).all()
    return LearnerReports(
        items=[_out(r, b, sess, ln, mn) for r, b, sess, ln, mn in rows],
        reportable=[
            Reportable(booking_id=bid, session_id=sid, until=until) for bid, sid, until in open_ if until is not None
        ],
    )

"""A mentor's record: how often the classes they sold did not happen through them.

Derived from what is already stored, no counters (they would drift from the facts):

* ``sold_classes``: the mentor's concluded classes that had sold seats: held with a
  learner seated (a booking attended or no-show), cancelled after seats were sold
  (the ``session.cancel`` audit row :func:`api.services.catalog.cancel_session`
  writes, with the seats it refunded), or settled as not having taken place with
  learners seated (bookings refunded at or after the start; a learner can only cancel
  before it). Classes still to come are left out: their outcome is not known yet.
* ``cancelled_by_mentor``: of those, the ones the mentor cancelled themselves. An
  admin's cancellation, and so every cancellation by a deactivation (it cancels as the
  admin), is not the mentor's doing and is not counted.
* ``mentor_no_shows``: of those, the ones settlement cancelled (did not take place)
  while the mentor never connected to the room (no attendance interval of theirs).
  A class the mentor attended but no learner did is the learners' no-show, not theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import AttendanceInterval, AuditLog, Booking, BookingStatus, Session, SessionStatus

CANCEL_ACTION = "session.cancel"


def cancel_audit(actor_id: int, by_admin: bool, session_id: int, mentor_id: int, seats: int) -> AuditLog:
    """The row cancel_session writes: who cancelled (mentor or admin) and how many seats it refunded."""
    return AuditLog(
        actor_id=actor_id,
        action=CANCEL_ACTION,
        target=f"session:{session_id}",
        details={"by": "admin" if by_admin else "mentor", "mentor_id": mentor_id, "seats": seats},
    )


@dataclass(frozen=True)
class MentorRecord:
    sold_classes: int = 0
    cancelled_by_mentor: int = 0
    mentor_no_shows: int = 0

    def as_dict(self) -> dict[str, int | float | None]:
        """With the rates over sold classes; None (not 0 %) when nothing was sold yet."""
        sold = self.sold_classes
        return {
            "sold_classes": sold,
            "cancelled_by_mentor": self.cancelled_by_mentor,
            "mentor_no_shows": self.mentor_no_shows,
            "cancel_rate": round(self.cancelled_by_mentor / sold, 4) if sold else None,
            "no_show_rate": round(self.mentor_no_shows / sold, 4) if sold else None,
        }


async def records(s: AsyncSession, mentor_ids: Iterable[int]) -> dict[int, MentorRecord]:
    """Each listed mentor's record (a page of users at a time: a few queries, not one per mentor)."""
    ids = sorted(set(mentor_ids))
    if not ids:
        return {}
    held = (
        await s.execute(
            select(Session.mentor_id, Session.id)
            .join(Booking, Booking.session_id == Session.id)
            .where(
                Session.mentor_id.in_(ids),
                Session.status == SessionStatus.completed,
                Booking.status.in_((BookingStatus.attended, BookingStatus.no_show)),
            )
            .distinct()
        )
    ).all()
    cancelled = dict(
        (
            await s.execute(
                select(Session.id, Session.mentor_id).where(
                    Session.mentor_id.in_(ids), Session.status == SessionStatus.cancelled
                )
            )
        ).all()
    )
    by_cancel: dict[int, str] = {}  # session id -> "mentor" | "admin", only when seats were refunded
    unsettled: set[int] = set()  # cancelled by cancel_session, with or without seats
    if cancelled:
        targets = {f"session:{sid}": sid for sid in cancelled}
        rows = await s.scalars(
            select(AuditLog).where(AuditLog.action == CANCEL_ACTION, AuditLog.target.in_(list(targets)))
        )
        for row in rows.all():
            sid = targets[row.target]
            unsettled.add(sid)
            if int(row.details.get("seats", 0)) > 0:
                by_cancel[sid] = str(row.details.get("by", "admin"))
    cancelled_ids = list(cancelled)
    refunded_after_start = (
        set(
            (
                await s.scalars(
                    select(Booking.session_id)
                    .join(Session, Session.id == Booking.session_id)
                    .where(
                        Booking.session_id.in_(cancelled_ids),
                        Booking.status == BookingStatus.cancelled,
                        Booking.cancelled_at >= Session.starts_at,
                    )
                    .distinct()
                )
            ).all()
        )
        if cancelled_ids
        else set()
    )
    mentor_present = (
        set(
            (
                await s.scalars(
                    select(AttendanceInterval.session_id)
                    .join(Session, Session.id == AttendanceInterval.session_id)
                    .where(
                        AttendanceInterval.session_id.in_(cancelled_ids),
                        AttendanceInterval.user_id == Session.mentor_id,
                    )
                    .distinct()
                )
            ).all()
        )
        if cancelled_ids
        else set()
    )
    sold: dict[int, int] = dict.fromkeys(ids, 0)
    by_mentor: dict[int, int] = dict.fromkeys(ids, 0)
    no_show: dict[int, int] = dict.fromkeys(ids, 0)
    for mentor_id, _sid in held:
        sold[mentor_id] += 1
    for sid, mentor_id in cancelled.items():
        if sid in by_cancel:
            sold[mentor_id] += 1
            by_mentor[mentor_id] += by_cancel[sid] == "mentor"
        elif sid not in unsettled and sid in refunded_after_start:
            sold[mentor_id] += 1  # settled as not taken place, with learners seated
            no_show[mentor_id] += sid not in mentor_present
    return {m: MentorRecord(sold[m], by_mentor[m], no_show[m]) for m in ids}

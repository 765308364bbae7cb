"""Idempotent demo data: mentors, learners, sessions in the past and future, bookings, reviews.

Running it twice changes nothing: every object is keyed by a stable e-mail or title.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from api.db import Database
from api.migrate import upgrade_async
from api.broker import MemoryBroker
from api.context import Context
from api.errors import ApiError
from api.mailer import Mailer
from api.models import AttendanceInterval, BookingStatus, Feedback, Payout, Role, Session, SessionStatus, User
from api.models_scheduling import MentorAvailability
from api.security import hash_password
from api.services import bookings, session_state
from api.services.money import charges, earnings, ledger
from api.services.errors import DomainError
from api.services.settings_store import get_all as platform_settings
from api.settings import Settings

DEMO_PASSWORD = "peerlearn123"
ADMIN_EMAIL = "admin@peerlearn.local"
DEMO_ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Europe/London", "Australia/Adelaide")

MENTORS = [
    ("Ada Lovelace", "Programming", ["Python", "Algorithms", "Testing"]),
    ("Grace Hopper", "Programming", ["Compilers", "Go", "Debugging"]),
    ("Alan Turing", "Data Science", ["Machine Learning", "Statistics", "NumPy"]),
    ("Hedy Lamarr", "Data Science", ["SQL", "Pandas", "Visualisation"]),
    ("Frida Kahlo", "Design", ["Figma", "Colour Theory", "UX Research"]),
    ("Leonardo Vinci", "Design", ["Sketching", "Typography", "Prototyping"]),
    ("Marie Curie", "Languages", ["French", "Polish", "Pronunciation"]),
    ("Nelson Mandela", "Business", ["Negotiation", "Leadership", "Public Speaking"]),
    ("Ken Thompson", "Programming", ["C", "Unix", "Systems"]),
]
LEARNER_NAMES = [
    "Liam Park",
    "Olivia Chen",
    "Noah Silva",
    "Emma Rossi",
    "Ava Novak",
    "Lucas Meyer",
    "Mia Kim",
    "Ethan Haddad",
    "Sofia Costa",
    "Mason Wright",
    "Isla Brown",
    "Leo Garcia",
    "Zoe Martin",
    "Kai Tanaka",
    "Nora Jensen",
    "Omar Aziz",
    "Lena Weber",
    "Ivan Petrov",
    "Ana Lima",
    "Sam Okafor",
]
INTERESTS = ["Python", "Machine Learning", "Figma", "SQL", "French", "Leadership", "Go", "UX Research"]
TOPICS = {
    "Programming": ["Clean {s} for beginners", "{s} deep dive", "Pair programming: {s}", "{s} code review clinic"],
    "Data Science": ["Hands-on {s}", "{s} from zero", "{s} project workshop", "Office hours: {s}"],
    "Design": ["{s} essentials", "Portfolio review with {s}", "{s} in practice", "Critique night: {s}"],
    "Languages": ["Conversational {s}", "{s} grammar bootcamp", "{s} for travellers", "{s} exam prep"],
    "Business": ["{s} masterclass", "{s} role play", "{s} for new managers", "Q&A: {s}"],
}
COMMENTS = [
    "Clear and practical, thank you!",
    "Great pace and examples.",
    "Exactly what I needed.",
    "Very patient mentor.",
    "Good session, would book again.",
    "Helpful feedback on my work.",
]


def _email(name: str, domain: str = "peerlearn.local") -> str:
    return name.lower().replace(" ", ".") + "@" + domain


async def _demo_payouts(settings: Settings, db: Database, mentor_ids: list[int]) -> None:
    """Half of the available earnings paid out once for a few mentors (payout history)."""
    ctx = Context(db, MemoryBroker(), Mailer(outbox=settings.outbox_dir, sender=settings.mail_from), settings)
    minimum = int((await platform_settings(db))["min_payout_cents"])
    for mentor_id in mentor_ids:
        async with db.read() as s:
            if await s.scalar(select(func.count(Payout.id)).where(Payout.mentor_id == mentor_id)):
                continue
            available = await ledger.balance(s, ledger.mentor_available(mentor_id))
        amount = max(minimum, available // 2)
        if amount <= 0 or amount > available:
            continue
        try:
            await earnings.request_payout(ctx, mentor_id, amount, "USD", f"demo-payout-{mentor_id}")
        except (ApiError, DomainError):  # e.g. below the minimum payout: this mentor has none
            continue


async def load_demo(settings: Settings) -> str:
    """Load the demo data into the configured database; returns the logins to print."""
    await upgrade_async(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    rng = random.Random(42)
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    pw = hash_password(DEMO_PASSWORD)
    mentor_ids: list[int] = []
    try:
        platform = await platform_settings(db)
        fee_percent = float(platform["platform_fee_percent"])
        hold = timedelta(hours=int(platform["earnings_hold_hours"]))
        async with db.write() as s:
            users: dict[str, User] = {u.email: u for u in (await s.scalars(select(User))).all()}

            def ensure(email: str, **fields: object) -> User:
                if email in users:
                    return users[email]
                base: dict[str, object] = {"domains": [], "skills": [], "interests": [], "preferences": {}}
                base.update(fields)
                user = User(email=email, password_hash=pw, email_verified_at=now, **base)  # type: ignore[arg-type]
                s.add(user)
                users[email] = user
                return user

            ensure(ADMIN_EMAIL, full_name="Platform Admin", role=Role.admin)
            mentors = [
                ensure(
                    _email(n),
                    full_name=n,
                    role=Role.mentor,
                    domains=[d],
                    skills=sk,
                    bio=f"{n.split()[0]} mentors {d.lower()}: {', '.join(sk)}.",
                )
                for n, d, sk in MENTORS
            ]
            learners = [
                ensure(_email(n), full_name=n, role=Role.learner, interests=rng.sample(INTERESTS, 3))
                for n in LEARNER_NAMES
            ]
            await s.flush()
            mentor_ids = [m.id for m in mentors]
            # Weekday office hours in a few zones, so the 1:1 slot picker has something to offer.
            have_rules = set((await s.scalars(select(MentorAvailability.mentor_id))).all())
            for i, mentor in enumerate(mentors):
                if mentor.id in have_rules:
                    continue
                s.add(
                    MentorAvailability(
                        mentor_id=mentor.id,
                        time_zone=DEMO_ZONES[i % len(DEMO_ZONES)],
                        weekly=[
                            {"weekday": d, "start": start, "end": end}
                            for d in range(5)
                            for start, end in (("09:00", "12:00"), ("14:00", "17:00"))
                        ],
                        slot_minutes=60,
                        price_cents=(2500, 4000, 6000)[i % 3],  # not from rng: the rest of the demo stays as it was
                        currency="USD",
                        buffer_minutes=10,
                        min_notice_hours=12,
                        max_days_ahead=60,
                        days_off=[],
                    )
                )

            have = await s.scalar(select(func.count()).select_from(Session))
            if not have:
                sessions: list[Session] = []
                pasts: list[bool] = []
                for i in range(44):
                    mentor = mentors[i % len(mentors)]
                    domain = mentor.domains[0]
                    skill = mentor.skills[i % len(mentor.skills)]
                    title = rng.choice(TOPICS[domain]).format(s=skill)
                    past = i % 3 == 0
                    starts = now + (
                        timedelta(days=-(i % 20) - 1, hours=rng.randint(0, 8))
                        if past
                        else timedelta(days=i % 21, hours=rng.randint(2, 30))
                    )
                    capacity = rng.choice([1, 3, 5, 8, 10])
                    sess = Session(
                        mentor_id=mentor.id,
                        title=title,
                        domain=domain,
                        skills=[skill],
                        description=f"A live session on {skill} in {domain.lower()} with {mentor.full_name}. "
                        "Bring your questions; we work through real examples together.",
                        curriculum=[
                            f"Warm-up: where {skill} fits",
                            f"Core ideas of {skill}",
                            "Live exercise",
                            "Questions and next steps",
                        ],
                        price_cents=rng.choice([0, 1500, 2500, 4000, 6000]),
                        currency="USD",
                        capacity=capacity,
                        starts_at=starts,
                        duration_min=rng.choice([45, 60, 90]),
                        status=SessionStatus.draft if (not past and i % 11 == 5) else SessionStatus.scheduled,
                        talk_time={},
                    )
                    s.add(sess)
                    sessions.append(sess)
                    pasts.append(past)
                await s.flush()
                # Seats go through the booking service's seat-taking (conditional update + sandbox
                # charge in the ledger); past sessions then complete through the state machine with
                # everyone in the room, and earnings whose hold is over are released: the demo
                # ledger balances and follows the money rules.
                for sess, past in zip(sessions, pasts):
                    if sess.status == SessionStatus.draft:
                        continue
                    k = rng.randint(1, min(sess.capacity, 4)) if past else rng.randint(0, min(sess.capacity, 4))
                    if not past and sess.capacity > 1 and rng.random() < 0.5:
                        k = min(k, sess.capacity - 1)
                    seated = rng.sample(learners, k)
                    booked = [
                        await bookings.book_in(s, sess, learner.id, fee_percent, require_future=not past)
                        for learner in seated
                    ]
                    if past:
                        ended = sess.starts_at + timedelta(minutes=sess.duration_min)
                        await session_state.transition(s, sess.id, SessionStatus.completed, now=ended)
                        for uid, role in [(sess.mentor_id, "mentor"), *((lr.id, "learner") for lr in seated)]:
                            s.add(
                                AttendanceInterval(
                                    session_id=sess.id, user_id=uid, role=role, joined_at=sess.starts_at, left_at=ended
                                )
                            )
                        for b, learner in zip(booked, seated):
                            b.status = BookingStatus.attended
                            b.settled_at, b.earnings_release_at = ended, ended + hold
                            if ended + hold <= now:
                                await charges.release(s, b)
                                b.earnings_released_at = ended + hold
                            if rng.random() < 0.7:
                                s.add(
                                    Feedback(
                                        session_id=sess.id,
                                        author_id=learner.id,
                                        rating=rng.choice([4, 5, 5, 3, 5]),
                                        comment=rng.choice(COMMENTS),
                                    )
                                )
        if mentor_ids:
            await _demo_payouts(settings, db, mentor_ids[:5])
    finally:
        await db.dispose()
    lines = [
        "Demo data ready. Logins (password for all: %s):" % DEMO_PASSWORD,
        f"  admin    {ADMIN_EMAIL}",
        f"  mentor   {_email(MENTORS[0][0])}",
        f"  learner  {_email(LEARNER_NAMES[0])}",
        f"  ({len(MENTORS)} mentors and {len(LEARNER_NAMES)} learners in all: firstname.lastname@peerlearn.local)",
    ]
    return "\n".join(lines)

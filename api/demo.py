"""Idempotent demo data: mentors, learners, sessions in the past and future, bookings, reviews.

Running it twice changes nothing: every object is keyed by a stable e-mail or title.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from api.db import Database
from api.migrate import upgrade_async
from api.models import Booking, BookingStatus, Feedback, Role, Session, SessionStatus, User
from api.security import hash_password
from api.settings import Settings

DEMO_PASSWORD = "peerlearn123"
ADMIN_EMAIL = "admin@peerlearn.local"

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
    "Liam Park", "Olivia Chen", "Noah Silva", "Emma Rossi", "Ava Novak", "Lucas Meyer", "Mia Kim",
    "Ethan Haddad", "Sofia Costa", "Mason Wright", "Isla Brown", "Leo Garcia", "Zoe Martin",
    "Kai Tanaka", "Nora Jensen", "Omar Aziz", "Lena Weber", "Ivan Petrov", "Ana Lima", "Sam Okafor",
]
INTERESTS = ["Python", "Machine Learning", "Figma", "SQL", "French", "Leadership", "Go", "UX Research"]
TOPICS = {
    "Programming": ["Clean {s} for beginners", "{s} deep dive", "Pair programming: {s}", "{s} code review clinic"],
    "Data Science": ["Hands-on {s}", "{s} from zero", "{s} project workshop", "Office hours: {s}"],
    "Design": ["{s} essentials", "Portfolio review with {s}", "{s} in practice", "Critique night: {s}"],
    "Languages": ["Conversational {s}", "{s} grammar bootcamp", "{s} for travellers", "{s} exam prep"],
    "Business": ["{s} masterclass", "{s} role play", "{s} for new managers", "Q&A: {s}"],
}
COMMENTS = ["Clear and practical, thank you!", "Great pace and examples.", "Exactly what I needed.",
            "Very patient mentor.", "Good session, would book again.", "Helpful feedback on my work."]


def _email(name: str, domain: str = "peerlearn.local") -> str:
    return name.lower().replace(" ", ".") + "@" + domain


async def load_demo(settings: Settings) -> str:
    """Load the demo data into the configured database; returns the logins to print."""
    await upgrade_async(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    rng = random.Random(42)
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    pw = hash_password(DEMO_PASSWORD)
    try:
        async with db.write() as s:
            users: dict[str, User] = {
                u.email: u for u in (await s.scalars(select(User))).all()
            }

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
            mentors = [ensure(_email(n), full_name=n, role=Role.mentor, domains=[d], skills=sk,
                              bio=f"{n.split()[0]} mentors {d.lower()}: {', '.join(sk)}.")
                       for n, d, sk in MENTORS]
            learners = [ensure(_email(n), full_name=n, role=Role.learner,
                               interests=rng.sample(INTERESTS, 3)) for n in LEARNER_NAMES]
            await s.flush()

            have = await s.scalar(select(func.count()).select_from(Session))
            if not have:
                sessions: list[Session] = []
                for i in range(44):
                    mentor = mentors[i % len(mentors)]
                    domain = mentor.domains[0]
                    skill = mentor.skills[i % len(mentor.skills)]
                    title = rng.choice(TOPICS[domain]).format(s=skill)
                    past = i % 3 == 0
                    starts = now + (timedelta(days=-(i % 20) - 1, hours=rng.randint(0, 8)) if past
                                    else timedelta(days=i % 21, hours=rng.randint(2, 30)))
                    capacity = rng.choice([1, 3, 5, 8, 10])
                    sess = Session(
                        mentor_id=mentor.id, title=title, domain=domain, skills=[skill],
                        description=f"A live session on {skill} in {domain.lower()} with {mentor.full_name}. "
                                    "Bring your questions; we work through real examples together.",
                        curriculum=[f"Warm-up: where {skill} fits", f"Core ideas of {skill}",
                                    "Live exercise", "Questions and next steps"],
                        price_cents=rng.choice([0, 1500, 2500, 4000, 6000]), currency="USD",
                        capacity=capacity, starts_at=starts, duration_min=rng.choice([45, 60, 90]),
                        status=SessionStatus.completed if past else
                        (SessionStatus.draft if i % 11 == 5 else SessionStatus.scheduled),
                        talk_time={},
                    )
                    s.add(sess)
                    sessions.append(sess)
                await s.flush()
                for sess in sessions:
                    if sess.status == SessionStatus.draft:
                        continue
                    k = rng.randint(0, min(sess.capacity, 4)) if sess.status != SessionStatus.completed \
                        else rng.randint(1, min(sess.capacity, 4))
                    k = min(k, sess.capacity - (1 if sess.capacity > 1 and rng.random() < 0.5 else 0)) \
                        if sess.status == SessionStatus.scheduled else k
                    for learner in rng.sample(learners, k):
                        s.add(Booking(session_id=sess.id, learner_id=learner.id, price_cents=sess.price_cents,
                                      currency=sess.currency,
                                      status=BookingStatus.attended if sess.status == SessionStatus.completed
                                      else BookingStatus.confirmed))
                        sess.seats_taken += 1
                        if sess.status == SessionStatus.completed and rng.random() < 0.7:
                            s.add(Feedback(session_id=sess.id, author_id=learner.id,
                                           rating=rng.choice([4, 5, 5, 3, 5]), comment=rng.choice(COMMENTS)))
    finally:
        await db.dispose()
    lines = ["Demo data ready. Logins (password for all: %s):" % DEMO_PASSWORD,
             f"  admin    {ADMIN_EMAIL}",
             f"  mentor   {_email(MENTORS[0][0])}",
             f"  learner  {_email(LEARNER_NAMES[0])}",
             f"  ({len(MENTORS)} mentors and {len(LEARNER_NAMES)} learners in all: firstname.lastname@peerlearn.local)"]
    return "\n".join(lines)

"""Synthetic marketplace with known learner tastes, so recommender metrics mean something.

Learners carry latent tastes over skills (concentrated on one or two domains), a
hidden "style" vector and a level preference; mentors carry a matching hidden
style, a level and a quality. Sessions inherit their mentor's domain, skills,
style and level. Over ``days`` days learners book sessions that are open at that
moment, sampled from taste + style + quality + social proof (seats already
taken), then rate past sessions and follow mentors they return to.
Style and quality never appear in any text: only collaborative filtering can
learn them, while skills and level are visible to the content model.

``generate`` returns a :class:`TrainingData` (plus the hidden truth);
``populate`` writes one into the database for demos and API tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast
from datetime import datetime, timezone

import numpy as np

from api.recommender.data import BOOKING, RATING, TrainingData

DAY = 86400.0

DOMAINS: dict[str, list[str]] = {
    "Programming": ["Python", "Go", "Rust", "JavaScript", "Testing", "Algorithms", "Docker", "Git"],
    "Data Science": [
        "Machine Learning",
        "Statistics",
        "Pandas",
        "SQL",
        "Deep Learning",
        "Visualisation",
        "Time Series",
        "Experimentation",
    ],
    "Design": [
        "Figma",
        "Typography",
        "UX Research",
        "Colour Theory",
        "Prototyping",
        "Illustration",
        "Branding",
        "Accessibility",
    ],
    "Languages": ["Spanish", "French", "German", "Japanese", "Mandarin", "Pronunciation", "Grammar", "Conversation"],
    "Business": [
        "Negotiation",
        "Leadership",
        "Public Speaking",
        "Product Management",
        "Finance",
        "Marketing",
        "Sales",
        "Strategy",
    ],
    "Music": ["Guitar", "Piano", "Music Theory", "Songwriting", "Singing", "Production", "Drums", "Ear Training"],
    "Writing": [
        "Fiction",
        "Copywriting",
        "Technical Writing",
        "Poetry",
        "Editing",
        "Blogging",
        "Screenwriting",
        "Storytelling",
    ],
    "Wellbeing": ["Yoga", "Meditation", "Nutrition", "Fitness", "Sleep", "Stress Management", "Running", "Mindfulness"],
}
LEVELS = ["beginner", "intermediate", "advanced"]
TITLES = [
    "{s} for {l}s",
    "{l} {s} workshop",
    "Hands-on {s}",
    "{s} clinic ({l})",
    "Live {s} practice",
    "{s}: {l} deep dive",
    "Office hours: {s}",
    "{s} from first principles",
]
FILLER = [
    "live",
    "session",
    "questions",
    "examples",
    "practice",
    "together",
    "bring",
    "real",
    "project",
    "feedback",
    "exercises",
    "small",
    "group",
    "walk",
    "through",
    "notes",
]
FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Maya",
    "Omar",
    "Lena",
    "Ivan",
    "Sofia",
    "Kai",
    "Nora",
    "Leo",
    "Zoe",
    "Sam",
    "Ana",
    "Ravi",
    "Yuki",
    "Elif",
    "Jonas",
    "Priya",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Okafor",
    "Novak",
    "Rossi",
    "Kim",
    "Silva",
    "Meyer",
    "Chen",
    "Haddad",
    "Costa",
    "Jensen",
    "Aziz",
    "Petrov",
    "Lima",
    "Tanaka",
    "Weber",
]


@dataclass
class Truth:
    """The hidden world behind a synthetic dataset (for tests and sanity checks)."""

    skills: list[str]
    user_taste: np.ndarray  # (n_users, n_skills), rows sum to 1
    user_style: np.ndarray  # (n_users, style_dim)
    user_level: np.ndarray  # (n_users,) int
    mentor_style: np.ndarray  # (n_mentors, style_dim)
    mentor_quality: np.ndarray
    item_skill_idx: list[list[int]]
    item_level: np.ndarray


def generate(
    n_users: int = 1000,
    n_items: int = 300,
    *,
    n_mentors: int | None = None,
    days: float = 120.0,
    bookings_per_user: float = 8.0,
    seed: int = 0,
    now: float | None = None,
    style_dim: int = 3,
    cold_fraction: float = 0.05,
) -> tuple[TrainingData, Truth]:
    """A dataset of ``n_users`` learners and ``n_items`` sessions ending at ``now``.

    Sessions start up to three weeks after ``now`` too, so the catalogue has an open future.
    ``cold_fraction`` of learners never book (cold start; some of them declare interests).
    """
    rng = np.random.default_rng(seed)
    now = float(time.time() if now is None else now)
    t0 = now - days * DAY
    domains = list(DOMAINS)
    skills = [s for d in domains for s in DOMAINS[d]]
    skill_domain = np.array([i for i, d in enumerate(domains) for _ in DOMAINS[d]])
    n_skills, n_dom = len(skills), len(domains)
    n_mentors = n_mentors or max(4, n_items // 8)

    # --- mentors: a domain, 3-4 skills in it, a hidden style, a level and a quality
    m_dom = rng.integers(0, n_dom, n_mentors)
    m_skills = [rng.choice(np.flatnonzero(skill_domain == d), size=rng.integers(3, 5), replace=False) for d in m_dom]
    m_style = rng.normal(0, 1, (n_mentors, style_dim))
    m_level = rng.integers(0, 3, n_mentors)
    m_quality = rng.normal(0, 0.4, n_mentors)
    mentor_ids = np.arange(1, n_mentors + 1, dtype=np.int64) + 1_000_000
    mentor_names = {
        int(mid): f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}"
        + (f" {i // len(FIRST)}" if i >= len(FIRST) else "")
        for i, mid in enumerate(mentor_ids)
    }

    # --- sessions: created over the period, start 2-21 days later
    i_mentor = rng.integers(0, n_mentors, n_items)
    i_created = t0 + rng.uniform(-10, days, n_items) * DAY
    i_starts = i_created + rng.uniform(2, 21, n_items) * DAY
    i_skill_idx: list[list[int]] = []
    titles, texts, i_domain, i_skills = [], [], [], []
    i_level = np.empty(n_items, np.int64)
    for j in range(n_items):
        m = i_mentor[j]
        k = int(rng.integers(1, min(3, len(m_skills[m])) + 1))
        sk = [int(x) for x in rng.choice(m_skills[m], size=k, replace=False)]
        lvl = int(m_level[m]) if rng.random() < 0.8 else int(rng.integers(0, 3))
        i_level[j] = lvl
        i_skill_idx.append(sk)
        names = [skills[x] for x in sk]
        i_skills.append(names)
        i_domain.append(domains[m_dom[m]])
        title = TITLES[int(rng.integers(len(TITLES)))].format(s=names[0], l=LEVELS[lvl])
        titles.append(title[0].upper() + title[1:])
        words = " ".join(rng.choice(FILLER, size=6))
        texts.append(
            f"A {LEVELS[lvl]} session on {', '.join(names)} in {domains[m_dom[m]].lower()}. {words.capitalize()}."
        )

    # --- learners: tastes concentrated on one or two domains, a style, a level
    dom_pref = rng.dirichlet(np.full(n_dom, 0.25), n_users)
    taste = dom_pref[:, skill_domain] * rng.gamma(0.6, 1.0, (n_users, n_skills))
    taste /= taste.sum(1, keepdims=True) + 1e-12
    u_style = rng.normal(0, 1, (n_users, style_dim))
    u_level = rng.integers(0, 3, n_users)
    activity = rng.lognormal(np.log(bookings_per_user) - 0.5, 1.0, n_users)
    activity[rng.random(n_users) < cold_fraction] = 0
    n_events = rng.poisson(activity)
    user_ids = np.arange(1, n_users + 1, dtype=np.int64)

    interests: list[list[str]] = []
    for u in range(n_users):
        if rng.random() < 0.3:
            interests.append([])
            continue
        top = np.argsort(-taste[u])[:4]
        k = int(rng.integers(1, 4))
        picks = [skills[x] for x in rng.choice(top, size=min(k, len(top)), replace=False)]
        if rng.random() < 0.2:  # people also list things they never book
            picks[-1] = skills[int(rng.integers(n_skills))]
        interests.append(sorted(set(picks)))

    # item-side matrices for the affinity: skill mix, style, level, quality
    item_skill = np.zeros((n_items, n_skills), np.float32)
    for j, sk in enumerate(i_skill_idx):
        item_skill[j, sk] = 1.0 / len(sk)
    item_style = m_style[i_mentor]
    item_quality = m_quality[i_mentor]

    def affinity(us: np.ndarray, items: np.ndarray) -> np.ndarray:
        skill_fit = np.log(taste[us] @ item_skill[items].T + 1e-4)
        style_fit = u_style[us] @ item_style[items].T / np.sqrt(style_dim)
        level_fit = -0.6 * np.abs(u_level[us][:, None] - i_level[items][None, :])
        fit: np.ndarray = 1.4 * skill_fit + 1.0 * style_fit + level_fit + item_quality[items][None, :]
        return fit

    # --- bookings, day by day: Gumbel-max over the sessions open that day
    ev_user = np.repeat(np.arange(n_users), n_events)
    ev_time = t0 + rng.uniform(0, days, len(ev_user)) * DAY
    order = np.argsort(ev_time)
    ev_user, ev_time = ev_user[order], ev_time[order]
    seats = np.zeros(n_items, np.int64)
    booked: set[tuple[int, int]] = set()
    b_user: list[int] = []
    b_item: list[int] = []
    b_time: list[float] = []
    day_idx = np.floor((ev_time - t0) / DAY).astype(np.int64)
    for d in np.unique(day_idx):
        sel = np.flatnonzero(day_idx == d)
        t_day = t0 + (d + 0.5) * DAY
        open_items = np.flatnonzero((i_created <= t_day) & (i_starts > t_day))
        if len(open_items) == 0:
            continue
        us = ev_user[sel]
        logits = affinity(us, open_items) + 0.35 * np.log1p(seats[open_items])[None, :]
        logits += rng.gumbel(size=logits.shape)
        choice = open_items[np.argmax(logits, axis=1)]
        for u, j, t in zip(us, choice, ev_time[sel]):
            key = (int(u), int(j))
            if key in booked:
                continue
            booked.add(key)
            b_user.append(int(u))
            b_item.append(int(j))
            # the day's open set is taken at noon: keep the time inside the session's window
            b_time.append(float(min(max(t, i_created[j] + 60.0), i_starts[j] - 60.0)))
        np.add.at(seats, choice, 1)

    bu = np.array(b_user, np.int64)
    bi = np.array(b_item, np.int64)
    bt = np.array(b_time, np.float64)

    # --- ratings after past sessions; follows of mentors booked at least twice
    past = i_starts[bi] < now
    rated = past & (rng.random(len(bu)) < 0.6)
    r_idx = np.flatnonzero(rated)
    aff = np.array([affinity(np.array([bu[x]]), np.array([bi[x]]))[0, 0] for x in r_idx])
    z = (aff - aff.mean()) / (aff.std() + 1e-9) if len(aff) else aff
    ratings = np.clip(np.rint(3.6 + 1.1 * z + rng.normal(0, 0.6, len(z))), 1, 5).astype(np.int64)
    r_time = i_starts[bi[r_idx]] + rng.uniform(0.05, 2, len(r_idx)) * DAY
    r_time = np.minimum(r_time, now - 60)
    r_weight = np.where(ratings >= 4, 1.0, np.where(ratings <= 2, -0.75, 0.0)).astype(np.float32)

    pair_counts: dict[tuple[int, int], list[float]] = {}
    for u, j, t in zip(bu, bi, bt):
        pair_counts.setdefault((int(u), int(i_mentor[j])), []).append(float(t))
    f_user, f_mentor, f_time = [], [], []
    for (u, m), ts in pair_counts.items():
        if len(ts) >= 2 and rng.random() < 0.5:
            f_user.append(u)
            f_mentor.append(int(mentor_ids[m]))
            f_time.append(sorted(ts)[1])

    data = TrainingData(
        now=now,
        item_ids=np.arange(1, n_items + 1, dtype=np.int64),
        item_mentor=mentor_ids[i_mentor],
        item_domain=i_domain,
        item_skills=i_skills,
        item_title=titles,
        item_text=texts,
        item_created=i_created,
        item_starts=i_starts,
        item_valid=np.ones(n_items, bool),
        item_capacity=np.maximum(seats + rng.integers(0, 6, n_items), 1),
        item_seats=seats.copy(),
        mentor_names=mentor_names,
        user_ids=user_ids,
        user_interests=interests,
        inter_user=np.concatenate([bu, bu[r_idx]]),
        inter_item=np.concatenate([bi, bi[r_idx]]),
        inter_ts=np.concatenate([bt, r_time]),
        inter_weight=np.concatenate([np.ones(len(bu), np.float32), r_weight]),
        inter_kind=np.concatenate([np.full(len(bu), BOOKING, np.int8), np.full(len(r_idx), RATING, np.int8)]),
        follow_user=np.array(f_user, np.int64),
        follow_mentor=np.array(f_mentor, np.int64),
        follow_ts=np.array(f_time, np.float64),
        inter_rating=np.concatenate([np.zeros(len(bu), np.int8), ratings.astype(np.int8)]),
    )
    truth = Truth(
        skills=skills,
        user_taste=taste,
        user_style=u_style,
        user_level=u_level,
        mentor_style=m_style,
        mentor_quality=m_quality,
        item_skill_idx=i_skill_idx,
        item_level=i_level,
    )
    return data, truth


async def populate(
    db: object, data: TrainingData, *, password_hash: str, email_domain: str = "synth.peerlearn.local"
) -> dict[str, int]:
    """Write a synthetic dataset into the database (new users, sessions, bookings, feedback,
    follows), keeping its timestamps. Returns how many of each were written.

    The dataset's ids are replaced by database ids; emails are ``learner<N>@<email_domain>``
    and ``mentor<N>@<email_domain>``. Sessions before ``data.now`` are completed with
    attended bookings; later ones are scheduled.
    """
    from sqlalchemy import insert, select

    from api.models import (
        Booking,
        BookingStatus,
        Feedback,
        Follow,
        Role,
        Session,
        SessionStatus,
        User,
    )

    def ts(x: float) -> datetime:
        return datetime.fromtimestamp(float(x), timezone.utc)

    now = data.now
    async with db.write() as s:  # type: ignore[attr-defined]
        mentor_rows = [
            {
                "email": f"mentor{i}@{email_domain}",
                "password_hash": password_hash,
                "full_name": name,
                "role": Role.mentor,
                "email_verified_at": ts(now),
                "domains": [],
                "skills": [],
                "interests": [],
                "preferences": {},
                "bio": "",
                "created_at": ts(now - 200 * DAY),
            }
            for i, name in enumerate(data.mentor_names.values())
        ]
        learner_rows = [
            {
                "email": f"learner{i}@{email_domain}",
                "password_hash": password_hash,
                "full_name": f"Synth Learner {i}",
                "role": Role.learner,
                "email_verified_at": ts(now),
                "domains": [],
                "skills": [],
                "interests": list(data.user_interests[i]),
                "preferences": {},
                "bio": "",
                "created_at": ts(now - 200 * DAY),
            }
            for i in range(data.n_users)
        ]
        await s.execute(insert(User), mentor_rows + learner_rows)
        emails = {
            r[0]: r[1] for r in await s.execute(select(User.email, User.id).where(User.email.like(f"%@{email_domain}")))
        }
        mentor_db = {mid: emails[f"mentor{i}@{email_domain}"] for i, mid in enumerate(data.mentor_names)}
        learner_db = [emails[f"learner{i}@{email_domain}"] for i in range(data.n_users)]

        seats = np.bincount(data.inter_item[data.inter_kind == BOOKING], minlength=data.n_items)
        rows = []
        for j in range(data.n_items):
            past = data.item_starts[j] < now
            rows.append(
                {
                    "mentor_id": mentor_db[int(data.item_mentor[j])],
                    "title": data.item_title[j][:200],
                    "description": data.item_text[j],
                    "curriculum": [],
                    "domain": data.item_domain[j],
                    "skills": list(data.item_skills[j]),
                    "price_cents": int(500 * (j % 9)),
                    "currency": "USD",
                    "capacity": int(max(data.item_capacity[j], seats[j], 1)),
                    "seats_taken": int(seats[j]),
                    "starts_at": ts(data.item_starts[j]),
                    "duration_min": 60,
                    "talk_time": {},
                    "status": SessionStatus.completed if past else SessionStatus.scheduled,
                    "created_at": ts(data.item_created[j]),
                    "updated_at": ts(data.item_created[j]),
                }
            )
        session_db: list[int] = []
        for start in range(0, len(rows), 500):
            res = await s.execute(
                insert(Session).returning(Session.id, sort_by_parameter_order=True), rows[start : start + 500]
            )
            session_db.extend(int(x) for x in res.scalars().all())

        bmask = data.inter_kind == BOOKING
        brows = [
            {
                "session_id": session_db[int(j)],
                "learner_id": learner_db[int(u)],
                "price_cents": 0,
                "currency": "USD",
                "status": BookingStatus.attended if data.item_starts[j] < now else BookingStatus.confirmed,
                "created_at": ts(t),
            }
            for u, j, t in zip(data.inter_user[bmask], data.inter_item[bmask], data.inter_ts[bmask])
        ]
        for start in range(0, len(brows), 2000):
            await s.execute(insert(Booking), brows[start : start + 2000])
        rmask = np.flatnonzero(data.inter_kind == RATING)
        # RATING rows come with inter_rating (see TrainingData); indexing None fails as before.
        ratings = cast(np.ndarray, data.inter_rating)
        frows = [
            {
                "session_id": session_db[int(data.inter_item[x])],
                "author_id": learner_db[int(data.inter_user[x])],
                "rating": int(ratings[x]) or 4,
                "comment": "",
                "hidden": False,
                "created_at": ts(data.inter_ts[x]),
            }
            for x in rmask
        ]
        for start in range(0, len(frows), 2000):
            await s.execute(insert(Feedback), frows[start : start + 2000])
        folrows = [
            {"learner_id": learner_db[int(u)], "mentor_id": mentor_db[int(m)], "created_at": ts(t)}
            for u, m, t in zip(data.follow_user, data.follow_mentor, data.follow_ts)
        ]
        if folrows:
            await s.execute(insert(Follow), folrows)
    return {
        "learners": data.n_users,
        "mentors": len(mentor_db),
        "sessions": len(session_db),
        "bookings": len(brows),
        "feedback": len(frows),
        "follows": len(folrows),
    }

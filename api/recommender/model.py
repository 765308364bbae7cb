"""The hybrid recommender as numpy arrays: content TF-IDF, implicit ALS factors, popularity priors.

Pure computation, no I/O: ``fit`` builds a :class:`HybridModel` from a
:class:`TrainingData`; ``HybridModel.score_batch`` scores users against candidate
sessions; ``diversify`` re-ranks a list; ``explain`` writes the reason.
The same code serves one learner (a batch of one) and evaluates thousands.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from api.recommender.data import BOOKING, TrainingData

DAY = 86400.0
_WORD = re.compile(r"[a-z0-9][a-z0-9+#.]*[a-z0-9+#]|[a-z0-9]")
STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or the this to with we you your our "
    "will how what when who why bring session sessions live".split()
)
# A document's weighted terms (term -> weight; weights are fractional, so not a Counter).
Terms = Mapping[str, float]


@dataclass(frozen=True)
class Params:
    """Hyper-parameters; stored with every model version."""

    factors: int = 32
    reg: float = 0.1
    alpha: float = 15.0
    iterations: int = 8
    mentor_weight: float = 0.5  # a booking also counts this much towards its mentor
    follow_weight: float = 1.0
    half_life_days: float = 90.0  # feedback decay for profiles and ALS
    pop_half_life_days: float = 14.0
    max_features: int = 4096
    w_content: float = 1.2
    w_cf: float = 0.6
    w_pop: float = 0.35
    w_follow: float = 0.5
    max_per_mentor: int = 2
    mentor_penalty: float = 0.4
    domain_penalty: float = 0.15
    seed: int = 7

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Params":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


# --------------------------------------------------------------------------- text


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def tag(text: str) -> str:
    return "_".join(words(text)) or text.strip().lower()


def item_terms(domain: str, skills: list[str], title: str, text: str) -> dict[str, float]:
    """Weighted terms of a session: exact domain and skill tags count most."""
    c: defaultdict[str, float] = defaultdict(float)
    c["d:" + tag(domain)] += 3.0
    for w in words(domain):
        c[w] += 1.0
    for s in skills:
        c["s:" + tag(s)] += 3.0
        for w in words(s):
            c[w] += 1.0
    for w in words(title):
        c[w] += 1.0
    for w in words(text):
        c[w] += 0.5
    return c


def interest_terms(interests: list[str]) -> dict[str, float]:
    """An interest may name a skill or a domain: it matches both tags and its words."""
    c: defaultdict[str, float] = defaultdict(float)
    for it in interests:
        c["s:" + tag(it)] += 3.0
        c["d:" + tag(it)] += 3.0
        for w in words(it):
            c[w] += 1.0
    return c


@dataclass
class Csr:
    """A minimal row-compressed sparse matrix (no scipy): enough for TF-IDF rows."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_cols: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_rows), np.diff(self.indptr))

    def matvec(self, vec: np.ndarray) -> np.ndarray:
        """Row · vec for every row."""
        return np.bincount(self.row_ids(), weights=self.data * vec[self.indices], minlength=self.n_rows).astype(
            np.float32
        )

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position in ``rows``, column, value) of every stored entry of the given rows."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lens = ends - starts
        pos = np.repeat(np.arange(len(rows)), lens)
        offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        nz = np.repeat(starts, lens) + offs
        return pos, self.indices[nz], self.data[nz]

    def dense(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), self.n_cols), np.float32)
        pos, cols, vals = self.gather(rows)
        np.add.at(out, (pos, cols), vals)
        return out


class Vectorizer:
    """TF-IDF over weighted terms with a fixed vocabulary (rows L2-normalised)."""

    def __init__(self, vocab: dict[str, int], idf: np.ndarray) -> None:
        self.vocab = vocab
        self.idf = idf.astype(np.float32)

    @classmethod
    def fit(cls, docs: Sequence[Terms], max_features: int) -> "Vectorizer":
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        # Tags always stay; plain words compete for the remaining room by frequency.
        tags = sorted(t for t in df if t[:2] in ("d:", "s:"))
        plain = sorted((t for t in df if t[:2] not in ("d:", "s:") and df[t] > 1), key=lambda t: (-df[t], t))[
            : max(0, max_features - len(tags))
        ]
        terms = tags + sorted(plain)
        vocab = {t: i for i, t in enumerate(terms)}
        n = max(len(docs), 1)
        idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in terms], np.float32)
        return cls(vocab, idf)

    def transform(self, docs: Sequence[Terms]) -> Csr:
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for d in docs:
            cols = [(self.vocab[t], w) for t, w in d.items() if t in self.vocab]
            if cols:
                idx = np.array([c for c, _ in cols])
                val = np.array([w for _, w in cols], np.float32) * self.idf[idx]
                val /= np.linalg.norm(val) or 1.0
                indices.extend(idx.tolist())
                data.extend(val.tolist())
            indptr.append(len(indices))
        return Csr(np.array(indptr, np.int64), np.array(indices, np.int64), np.array(data, np.float32), len(self.vocab))

    def vector(self, terms: Terms) -> np.ndarray:
        out = np.zeros(len(self.vocab), np.float32)
        for t, w in terms.items():
            i = self.vocab.get(t)
            if i is not None:
                out[i] += w * self.idf[i]
        n = np.linalg.norm(out)
        return out / n if n else out


# --------------------------------------------------------------------------- ALS


def _scatter_cols(rows: np.ndarray, vals_t: np.ndarray, n: int) -> np.ndarray:
    """Sum the columns of ``vals_t`` (f × nnz) into ``n`` rows (n × f); ``rows`` sorted.

    Reducing along the contiguous axis is several times faster than along axis 0.
    """
    out = np.zeros((n, vals_t.shape[0]), np.float32)
    if len(rows):
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[rows[starts]] = np.add.reduceat(vals_t, starts, axis=1).T
    return out


def _cg_solve(
    other: np.ndarray, rows: np.ndarray, cols: np.ndarray, conf: np.ndarray, x: np.ndarray, reg: float, steps: int = 3
) -> np.ndarray:
    """A few conjugate-gradient steps on every row's implicit-ALS system at once
    (Hu, Koren & Volinsky 2008; CG as in Takács et al. 2011), warm-started from ``x``:
    (YᵀY + Yᵀ(C_u − I)Y + λI) x_u = YᵀC_u p_u, without forming the f × f matrices.
    ``rows`` must be sorted.
    """
    n, f = x.shape
    gram = other.T @ other + reg * np.eye(f, dtype=np.float32)
    y_t = np.ascontiguousarray(other[cols].T)  # f × nnz
    cm1 = conf - 1.0

    def matvec(v: np.ndarray) -> np.ndarray:
        t = np.einsum("ij,ji->i", v[rows], y_t) * cm1
        out: np.ndarray = v @ gram + _scatter_cols(rows, y_t * t, n)
        return out

    b = _scatter_cols(rows, y_t * conf, n)
    x = x.copy()
    r = b - matvec(x)
    d = r.copy()
    rs = (r * r).sum(axis=1)
    for _ in range(steps):
        ad = matvec(d)
        den = (d * ad).sum(axis=1)
        alpha = np.divide(rs, den, out=np.zeros_like(rs), where=den > 1e-12)
        x += alpha[:, None] * d
        r -= alpha[:, None] * ad
        rs_new = (r * r).sum(axis=1)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-12)
        d = r + beta[:, None] * d
        rs = rs_new
    return x


def implicit_als(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, n_cols: int, p: Params
) -> tuple[np.ndarray, np.ndarray]:
    """User and column factors from implicit feedback strengths ``vals`` (confidence 1 + αr)."""
    rng = np.random.default_rng(p.seed)
    conf = (1.0 + p.alpha * vals).astype(np.float32)
    by_row = np.lexsort((cols, rows))
    by_col = np.lexsort((rows, cols))
    x = rng.normal(0, 0.01, (n_rows, p.factors)).astype(np.float32)
    y = rng.normal(0, 0.01, (n_cols, p.factors)).astype(np.float32)
    for _ in range(p.iterations):
        x = _cg_solve(y, rows[by_row], cols[by_row], conf[by_row], x, p.reg)
        y = _cg_solve(x, cols[by_col], rows[by_col], conf[by_col], y, p.reg)
    return x, y


# --------------------------------------------------------------------------- model


@dataclass
class HybridModel:
    """Everything serving needs, as arrays; one trained version."""

    params: Params
    now: float
    vectorizer: Vectorizer
    item_ids: np.ndarray
    item_mentor: np.ndarray  # mentor user ids
    item_mentor_idx: np.ndarray  # index into mentor_ids
    item_domain: list[str]
    item_title: list[str]
    content: Csr  # (n_items, vocab)
    item_factors: np.ndarray  # (n_items, f)
    mentor_ids: np.ndarray
    mentor_factors: np.ndarray  # (n_mentors, f)
    gram: np.ndarray  # YᵀY over items and mentors, for fold-in
    item_pop: np.ndarray  # decayed recent bookings
    mentor_pop: np.ndarray  # decayed bookings per session of the mentor
    user_ids: np.ndarray
    user_factors: np.ndarray
    version: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_index = {int(i): n for n, i in enumerate(self.item_ids)}
        self.mentor_index = {int(m): n for n, m in enumerate(self.mentor_ids)}
        self.user_index = {int(u): n for n, u in enumerate(self.user_ids)}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    # ---- signals -----------------------------------------------------------
    def prior(self, items: np.ndarray) -> np.ndarray:
        """Popularity prior: the session's own recent bookings, then its mentor's track record."""
        mp = _mentor_rows(self.mentor_pop, self.item_mentor_idx[items])
        prior: np.ndarray = (np.log1p(self.item_pop[items]) + 0.5 * np.log1p(mp / 7.0)).astype(np.float32)
        return prior

    def fold_in(
        self, items: np.ndarray, weights: np.ndarray, mentors: np.ndarray, mentor_weights: np.ndarray
    ) -> np.ndarray:
        """A user's factors from their feedback, solved against the trained columns."""
        y = np.vstack([self.item_factors[items], self.mentor_factors[mentors]])
        w = np.concatenate([weights, mentor_weights]).astype(np.float32)
        if len(w) == 0:
            return np.zeros(self.params.factors, np.float32)
        conf = 1.0 + self.params.alpha * w
        a = self.gram + (y.T * (conf - 1)) @ y
        b = (y.T * conf).sum(axis=1)
        factors: np.ndarray = np.linalg.solve(a, b).astype(np.float32)
        return factors

    def cf_scores(self, user_vecs: np.ndarray, items: np.ndarray) -> np.ndarray:
        cols = self.item_factors[items] + _mentor_rows(self.mentor_factors, self.item_mentor_idx[items])
        scores: np.ndarray = user_vecs @ cols.T
        return scores

    def score_batch(
        self,
        profiles: np.ndarray,
        user_vecs: np.ndarray,
        has_history: np.ndarray,
        has_interests: np.ndarray,
        follows: list[set[int]],
        items: np.ndarray,
        item_dense: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Blend scores (B × len(items)) and each signal's contribution (for reasons).

        Each signal is standardised per user over the candidates, then weighted by what we
        know about the user: history → content + CF + prior; interests only → content +
        prior; nothing → prior alone (cold start).
        """
        p = self.params
        if item_dense is None:  # serving: sparse rows, a handful of profiles
            content = np.stack([self.content.matvec(pr)[items] for pr in profiles])
        else:
            content = profiles @ item_dense.T
        cf = self.cf_scores(user_vecs, items)
        prior = np.broadcast_to(self.prior(items), content.shape)
        mentors = self.item_mentor[items]
        follow = np.zeros_like(content)
        for b, fs in enumerate(follows):
            if fs:
                follow[b] = np.isin(mentors, list(fs))
        zc, zf, zp = _standardise(content), _standardise(cf), _standardise(prior)
        wc = np.where(has_history | has_interests, p.w_content, 0.0)[:, None]
        wf = np.where(has_history, p.w_cf, 0.0)[:, None]
        wp = np.where(has_history | has_interests, p.w_pop, 1.0)[:, None]
        parts = {"content": wc * zc, "cf": wf * zf, "prior": wp * zp, "follow": p.w_follow * follow}
        parts["score"] = parts["content"] + parts["cf"] + parts["prior"] + parts["follow"]
        parts["raw_content"] = content
        return parts

    def with_items(
        self, ids: list[int], mentors: list[int], domains: list[str], titles: list[str], terms: Sequence[Terms]
    ) -> "HybridModel":
        """A copy that also knows sessions published after training: content from the
        trained vocabulary, collaborative signal through their mentor only, no own bookings."""
        if not ids:
            return self
        extra = self.vectorizer.transform(terms)
        content = Csr(
            np.concatenate([self.content.indptr, extra.indptr[1:] + self.content.indptr[-1]]),
            np.concatenate([self.content.indices, extra.indices]),
            np.concatenate([self.content.data, extra.data]),
            self.content.n_cols,
        )
        m_idx = np.array([self.mentor_index.get(int(m), -1) for m in mentors], np.int64)
        n = len(ids)
        return HybridModel(
            params=self.params,
            now=self.now,
            vectorizer=self.vectorizer,
            item_ids=np.concatenate([self.item_ids, np.array(ids, np.int64)]),
            item_mentor=np.concatenate([self.item_mentor, np.array(mentors, np.int64)]),
            item_mentor_idx=np.concatenate([self.item_mentor_idx, m_idx]),
            item_domain=self.item_domain + list(domains),
            item_title=self.item_title + list(titles),
            content=content,
            item_factors=np.vstack([self.item_factors, np.zeros((n, self.params.factors), np.float32)]),
            mentor_ids=self.mentor_ids,
            mentor_factors=self.mentor_factors,
            gram=self.gram,
            item_pop=np.concatenate([self.item_pop, np.zeros(n, np.float32)]),
            mentor_pop=self.mentor_pop,
            user_ids=self.user_ids,
            user_factors=self.user_factors,
            version=self.version,
            meta=self.meta,
        )

    # ---- persistence ---------------------------------------------------------
    def save(self, path: Path) -> None:
        """Arrays to ``path`` (.npz, no pickle) and the rest to a JSON sidecar."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            item_ids=self.item_ids,
            item_mentor=self.item_mentor,
            item_mentor_idx=self.item_mentor_idx,
            c_indptr=self.content.indptr,
            c_indices=self.content.indices,
            c_data=self.content.data,
            item_factors=self.item_factors,
            mentor_ids=self.mentor_ids,
            mentor_factors=self.mentor_factors,
            gram=self.gram,
            item_pop=self.item_pop,
            mentor_pop=self.mentor_pop,
            user_ids=self.user_ids,
            user_factors=self.user_factors,
            idf=self.vectorizer.idf,
        )
        side = {
            "params": asdict(self.params),
            "now": self.now,
            "version": self.version,
            "vocab": sorted(self.vectorizer.vocab, key=self.vectorizer.vocab.__getitem__),
            "item_domain": self.item_domain,
            "item_title": self.item_title,
            "n_cols": self.content.n_cols,
            "meta": self.meta,
        }
        path.with_suffix(".json").write_text(json.dumps(side))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "HybridModel":
        side = json.loads(path.with_suffix(".json").read_text())
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        vec = Vectorizer({t: i for i, t in enumerate(side["vocab"])}, a["idf"])
        return cls(
            params=Params.from_dict(side["params"]),
            now=side["now"],
            vectorizer=vec,
            item_ids=a["item_ids"],
            item_mentor=a["item_mentor"],
            item_mentor_idx=a["item_mentor_idx"],
            item_domain=side["item_domain"],
            item_title=side["item_title"],
            content=Csr(a["c_indptr"], a["c_indices"], a["c_data"], side["n_cols"]),
            item_factors=a["item_factors"],
            mentor_ids=a["mentor_ids"],
            mentor_factors=a["mentor_factors"],
            gram=a["gram"],
            item_pop=a["item_pop"],
            mentor_pop=a["mentor_pop"],
            user_ids=a["user_ids"],
            user_factors=a["user_factors"],
            version=side["version"],
            meta=side["meta"],
        )


def _mentor_rows(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``table[idx]`` where ``idx`` names a trained mentor, zeros where it is -1 (a mentor who
    appeared after training). Never indexes an empty table: a model trained on an empty
    catalogue has no mentor rows at all, and its first new session must still be scored."""
    out = np.zeros((len(idx), *table.shape[1:]), table.dtype)
    known = (idx >= 0) & (idx < len(table))
    if known.any():
        out[known] = table[idx[known]]
    return out


def _standardise(x: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    return np.where(sd > 1e-9, (x - mu) / np.where(sd > 1e-9, sd, 1.0), 0.0).astype(np.float32)


def decay(now: float, ts: np.ndarray, half_life_days: float) -> np.ndarray:
    return np.power(0.5, np.maximum(now - ts, 0) / (half_life_days * DAY)).astype(np.float32)


def booking_velocity(data: TrainingData, p: Params) -> np.ndarray:
    """Recent bookings per day a session has been open: fresh sessions are not penalised
    for having had less time to fill (a raw count favours sessions about to start)."""
    book = data.inter_kind == BOOKING
    recent = np.bincount(
        data.inter_item[book],
        weights=decay(data.now, data.inter_ts[book], p.pop_half_life_days),
        minlength=data.n_items,
    )
    open_days = np.clip((data.now - data.item_created) / DAY, 1.0, p.pop_half_life_days)
    return (recent / open_days).astype(np.float32)


def fit(data: TrainingData, params: Params | None = None) -> HybridModel:
    """Fit content vectors, ALS factors and priors on ``data`` (as of ``data.now``)."""
    p = params or Params()
    docs = [
        item_terms(data.item_domain[j], data.item_skills[j], data.item_title[j], data.item_text[j])
        for j in range(data.n_items)
    ]
    vec = Vectorizer.fit(docs, p.max_features)
    content = vec.transform(docs)

    mentor_ids = np.unique(np.concatenate([data.item_mentor, data.follow_mentor])).astype(np.int64)
    mentor_idx = np.searchsorted(mentor_ids, data.item_mentor).astype(np.int64)
    n_u, n_i, n_m = data.n_users, data.n_items, len(mentor_ids)

    # Implicit feedback strengths: bookings and ratings on items (and their mentors), follows.
    w = data.inter_weight * decay(data.now, data.inter_ts, p.half_life_days)
    f_w = np.full(len(data.follow_user), p.follow_weight, np.float32)
    rows = np.concatenate([data.inter_user, data.inter_user, data.follow_user])
    cols = np.concatenate(
        [data.inter_item, n_i + mentor_idx[data.inter_item], n_i + np.searchsorted(mentor_ids, data.follow_mentor)]
    )
    vals = np.concatenate([w, p.mentor_weight * w, f_w]).astype(np.float32)
    key = rows * (n_i + n_m) + cols
    uniq, inv = np.unique(key, return_inverse=True)
    agg = np.maximum(np.bincount(inv, weights=vals), 0.05).astype(np.float32)
    r, c = uniq // (n_i + n_m), uniq % (n_i + n_m)
    if len(agg):
        uf, cf = implicit_als(r, c, agg, n_u, n_i + n_m, p)
    else:
        uf = np.zeros((n_u, p.factors), np.float32)
        cf = np.zeros((n_i + n_m, p.factors), np.float32)
    gram = cf.T @ cf + p.reg * np.eye(p.factors, dtype=np.float32)

    book = data.inter_kind == BOOKING
    item_pop = booking_velocity(data, p)
    m_book = np.bincount(
        mentor_idx[data.inter_item[book]],
        weights=decay(data.now, data.inter_ts[book], 4 * p.pop_half_life_days),
        minlength=n_m,
    )
    m_sessions = np.bincount(mentor_idx, minlength=n_m)
    mentor_pop = (m_book / np.maximum(m_sessions, 1)).astype(np.float32)

    return HybridModel(
        params=p,
        now=data.now,
        vectorizer=vec,
        item_ids=data.item_ids.astype(np.int64),
        item_mentor=data.item_mentor.astype(np.int64),
        item_mentor_idx=mentor_idx,
        item_domain=list(data.item_domain),
        item_title=list(data.item_title),
        content=content,
        item_factors=cf[:n_i],
        mentor_ids=mentor_ids,
        mentor_factors=cf[n_i:],
        gram=gram,
        item_pop=item_pop,
        mentor_pop=mentor_pop,
        user_ids=data.user_ids.astype(np.int64),
        user_factors=uf,
    )


# --------------------------------------------------------------------------- ranking


def diversify(scores: np.ndarray, mentors: np.ndarray, domains: list[str], k: int, p: Params) -> list[int]:
    """Greedy re-rank: each pick lowers later picks of the same mentor or domain; at most
    ``max_per_mentor`` per mentor (relaxed only if the list cannot be filled otherwise)."""
    n = len(scores)
    adj = scores.astype(np.float64).copy()
    taken = np.zeros(n, bool)
    _, m_code = np.unique(np.asarray(mentors), return_inverse=True)
    _, d_code = np.unique(np.asarray(domains, dtype=str), return_inverse=True) if n else (None, m_code)
    per_mentor = np.zeros(int(m_code.max()) + 1 if n else 0, np.int64)
    chosen: list[int] = []
    for _ in range(min(k, n)):
        cand = np.where(taken, -np.inf, adj)
        full = per_mentor[m_code] >= p.max_per_mentor
        if (~full & ~taken).any():
            cand = np.where(full, -np.inf, cand)
        j = int(np.argmax(cand))
        if not np.isfinite(cand[j]):
            break
        chosen.append(j)
        taken[j] = True
        per_mentor[m_code[j]] += 1
        adj[m_code == m_code[j]] -= p.mentor_penalty
        adj[d_code == d_code[j]] -= p.domain_penalty
    return chosen

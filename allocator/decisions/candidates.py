"""Which organic post to boost next: rank posts not yet boosted by predicted conversions per dollar.

The prediction uses what the account has learned (`sparkbandit learn`): the plan's [prior] (a new
creative's conversion rate per impression, Beta(alpha, beta); CPM `cpm`) and the organic coefficient
([model] organic_mean, organic_sd: the change in logit rate per standard deviation of log engagement rate,
(likes + comments + shares) / views). For post i with standardised log engagement x_i,

    rate_i = expit(logit(r) + b x_i),  r ~ Beta(alpha, beta),  b ~ Normal(organic_mean, organic_sd),

and conversions per dollar = rate_i x 1000 / cpm; its mean and 90% interval come from Monte Carlo draws, and
posts are ranked by the median (ties by engagement). Engagement
is standardised over the posts and the plan's creatives with organic data, as the hierarchical model does.
With the default organic prior N(0, 0.5) the ranking is by engagement but the intervals are wide: learn the
coefficient from past campaigns first.

Each post is matched to a running creative it would replace, most urgent first: an authorization ending
within `AUTH_WARNING_DAYS` days (the horizon of the authorization warnings), then a fatigued creative (its conversion rate over its last `FATIGUE_DAYS` days of
data below that of its first `FATIGUE_DAYS` with probability at least `FATIGUE_PROB`, by at least
`FATIGUE_DROP`), then one that is clearly losing (probability of best below `LOSING`).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from allocator.decisions.warnings import AUTH_WARNING_DAYS
from allocator.plan import CampaignPlan
from models import special
from models.errors import DataError
from models.observations import DailyObservations

LOSING = 0.05
FATIGUE_DAYS = 7
FATIGUE_PROB = 0.9
FATIGUE_DROP = 0.2
ENGAGEMENT_FLOOR = 1e-4  # a post with no engagement at all (the log needs a floor)
COLUMNS = ("post_id", "views", "likes", "comments", "shares")


@dataclass(frozen=True)
class Post:
    post_id: str
    creator: str
    views: float
    likes: float
    comments: float
    shares: float

    @property
    def engagement_rate(self) -> float:
        return (self.likes + self.comments + self.shares) / self.views


def read_posts(path: str | Path) -> list[Post]:
    """Organic posts CSV: post_id, views, likes, comments, shares[, creator]. DataError naming row and column."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(source, "", "file not found", "check the path") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(
            source,
            "header",
            f"column {missing[0]!r} is missing",
            "columns are post_id, views, likes, comments, shares[, creator]",
        )
    posts, seen = [], set()
    for i, row in enumerate(reader, start=2):
        pid = (row.get("post_id") or "").strip()
        if not pid:
            raise DataError(source, f"row {i}, column 'post_id'", "is empty", "give every post an id")
        if pid in seen:
            raise DataError(source, f"row {i}, column 'post_id'", f"{pid!r} appears twice", "list each post once")
        seen.add(pid)
        vals = []
        for col in COLUMNS[1:]:
            raw = (row.get(col) or "").strip().replace(",", "")
            try:
                v = float(raw)
            except ValueError:
                raise DataError(
                    source, f"row {i}, column {col!r}", f"{raw!r} is not a number", "write a plain number"
                ) from None
            if not np.isfinite(v) or v < 0:
                raise DataError(source, f"row {i}, column {col!r}", f"{raw!r} is negative", "correct the value")
            vals.append(v)
        if vals[0] <= 0:
            raise DataError(source, f"row {i}, column 'views'", "is 0", "a post needs views to be ranked")
        posts.append(Post(pid, (row.get("creator") or "").strip(), *vals))
    if not posts:
        raise DataError(source, "", "no rows", "add one row per organic post")
    return posts


def fatigue(
    impressions: np.ndarray, conversions: np.ndarray, rng: np.random.Generator, n_draws: int = 4000
) -> float | None:
    """The relative drop of a creative's conversion rate from its first FATIGUE_DAYS days with impressions to
    its last FATIGUE_DAYS, if it is at least FATIGUE_DROP with posterior probability FATIGUE_PROB (Beta(1, 1)
    posteriors of each window's rate); None otherwise or with fewer than 2 x FATIGUE_DAYS such days."""
    live = np.flatnonzero(np.asarray(impressions) > 0)
    if live.size < 2 * FATIGUE_DAYS:
        return None
    first, last = live[:FATIGUE_DAYS], live[-FATIGUE_DAYS:]
    n1, c1 = impressions[first].sum(), conversions[first].sum()
    n2, c2 = impressions[last].sum(), conversions[last].sum()
    r1 = rng.beta(1 + c1, 1 + n1 - c1, n_draws)
    r2 = rng.beta(1 + c2, 1 + n2 - c2, n_draws)
    if np.mean(r2 < (1 - FATIGUE_DROP) * r1) < FATIGUE_PROB:
        return None
    return float(1 - (c2 / n2) / (c1 / n1)) if c1 > 0 else None


@dataclass(frozen=True)
class Candidate:
    post: Post
    mean: float  # predicted conversions per currency unit
    low: float
    high: float
    replaces: str | None  # creative id
    why: str

    def to_json(self) -> dict:
        return {
            "post_id": self.post.post_id,
            "creator": self.post.creator,
            "engagement_rate": round(self.post.engagement_rate, 6),
            "conversions_per_dollar": round(self.mean, 6),
            "ci90": [round(self.low, 6), round(self.high, 6)],
            "replaces": self.replaces,
            "why": self.why,
        }


def rank_candidates(
    plan: CampaignPlan,
    posts: list[Post],
    daily: DailyObservations,
    date: dt.date,
    rng: np.random.Generator,
    n_draws: int = 4000,
) -> list[Candidate]:
    """Posts not yet boosted (not among the plan's creative ids), best predicted first."""
    from allocator.decisions.settings import conjugate_model, organic_rates

    boosted = set(plan.creative_ids)
    posts = [p for p in posts if p.post_id not in boosted]
    if not posts:
        return []
    pr, m = plan.prior, plan.model
    log_e = np.log(np.maximum([p.engagement_rate for p in posts], ENGAGEMENT_FLOOR))
    plan_rates = organic_rates(plan)
    ref = np.concatenate([log_e, np.log(np.maximum(plan_rates[np.isfinite(plan_rates)], ENGAGEMENT_FLOOR))])
    sd = ref.std() if ref.size > 1 and ref.std() > 0 else 1.0
    x = (log_e - ref.mean()) / sd
    base = rng.beta(pr.alpha, pr.beta, size=(n_draws, 1))
    coef = rng.normal(m.organic_mean, m.organic_sd, size=(n_draws, 1))
    rate = special.expit(special.logit(base) + coef * x[None, :])
    value = rate * 1000.0 / pr.cpm
    mean = value.mean(axis=0)
    lo, median, hi = np.quantile(value, [0.05, 0.5, 0.95], axis=0)
    # Ranked by the median, ties by engagement: the mean grows with |x| whatever the sign when the organic
    # coefficient is uncertain (a convex link), which would rank the least engaging posts high.
    order = np.lexsort((-log_e, -np.round(median, 12)))

    # Running creatives that could make room, most urgent first.
    slots: list[tuple[str, str, float]] = []  # (creative id, why, its posterior mean or -inf)
    post = conjugate_model(plan).fit(daily, plan.campaign.objective, n_draws=2000, rng=rng) if daily.n_days else None
    pbest = post.prob_best() if post is not None else np.full(len(plan.creatives), np.nan)
    pmean = post.mean() if post is not None else np.full(len(plan.creatives), np.nan)
    for _i, c in enumerate(plan.creatives):
        if c.status != "active":
            continue
        if c.auth_expires is not None and (c.auth_expires - date).days <= AUTH_WARNING_DAYS:
            slots.append((c.id, f"authorization of {c.label} ends {c.auth_expires.isoformat()}", -np.inf))
    for i, c in enumerate(plan.creatives):
        if c.status == "active" and c.id not in {s[0] for s in slots} and daily.n_days:
            drop = fatigue(daily.impressions[:, i], daily.conversions[:, i], rng)
            if drop is not None:
                why = f"{c.label} is fatigued (conversion rate down {drop:.0%} from its first {FATIGUE_DAYS} days)"
                slots.append((c.id, why, -np.inf))
    for i, c in enumerate(plan.creatives):
        if c.status == "active" and c.id not in {s[0] for s in slots} and pbest[i] < LOSING:
            slots.append((c.id, f"{c.label} is clearly losing (probability of best {pbest[i]:.1%})", float(pmean[i])))
    out = []
    for j in order:
        replaces, why = None, "add it (no running creative needs replacing)"
        # a losing creative is replaced only by a post predicted to do better than it
        for s, (cid, reason, cur) in enumerate(slots):
            if not np.isfinite(cur) or plan.campaign.objective != "conversions_per_dollar" or mean[j] > cur:
                replaces, why = cid, f"replace: {reason}"
                slots.pop(s)
                break
        out.append(Candidate(posts[j], float(mean[j]), float(lo[j]), float(hi[j]), replaces, why))
    return out

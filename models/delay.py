"""Attribution delay: the share F(a) of a day's final conversions reported by the time the day is a days old.

TikTok books a conversion on the day of the click, so each export restates the last days upwards as late
conversions arrive; the ledger keeps every version of every day. From those versions,

    F(a) = sum over days of the conversions known at age a / sum of the same days' final conversions,

(a ratio estimator over every creative-day whose final value is known and that was seen by age a), made
non-decreasing (pool-adjacent-violators) and ending at 1. Its uncertainty comes from a bootstrap over days
(the creatives of one day share its reporting).

Age, one definition everywhere (`delay_ages`): a day's age is the last day of data minus the day, in days, so
the newest day of data is age 0 and F(0) is the share of a day's conversions reported by the export that
first covers it. The estimate measures exactly that (a version's age is its import's last day minus the day),
the conjugate model, the hierarchical design and the simulator correct with it. Not the decision date minus the
day: the counts were read when the export was made, so a stale export (last day D-3 at a decision on D) holds
its newest day as it was at age 0, and counting it as age 3 would take it as 90% complete when it is ~50%.
In the daily routine (sync in the morning, yesterday the last day) the decision date is the last day + 1.

The same F corrects the conjugate model (`models.conjugate`): a day of age a counts n x F(a) effective
impressions, so the newest days no longer look worse than they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import ModelError

#: Smallest F(a) kept: the plan's delay_cdf must be > 0 (a day of age 0 must count for something).
MIN_CDF = 1e-3


def cdf_at(cdf: tuple[float, ...] | np.ndarray, age: np.ndarray) -> np.ndarray:
    """F(age) for ages >= 0 (integer array): cdf[age], 1 from the end of the list on."""
    cdf = np.asarray(cdf, dtype=np.float64)
    age = np.asarray(age)
    return np.where(age >= cdf.size, 1.0, cdf[np.clip(age, 0, cdf.size - 1)])


def delay_ages(n_days: int) -> np.ndarray:
    """The age of each of `n_days` consecutive days of data, oldest first: (n_days - 1, ..., 1, 0)."""
    return n_days - 1 - np.arange(n_days)


def effective_impressions(impressions: np.ndarray, cdf: tuple[float, ...] | np.ndarray | None) -> np.ndarray:
    """Impressions weighted by the share of their conversions reported so far: sum_d n[d] x F(age_d).

    impressions : (n_days, ...) by day, the last day the newest (age 0)
    Returns the sum over days, shape (...).
    """
    impressions = np.asarray(impressions, dtype=np.float64)
    if cdf is None or impressions.shape[0] == 0:
        return impressions.sum(axis=0)
    age = delay_ages(impressions.shape[0])
    w = cdf_at(cdf, age).reshape((-1,) + (1,) * (impressions.ndim - 1))
    return (impressions * w).sum(axis=0)


def _monotone(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for v, wt in zip(y, w):
        blocks.append([v, wt, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            tot = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / tot if tot > 0 else (v1 + v2) / 2, tot, c1 + c2])
    return np.concatenate([np.full(c, v) for v, _, c in blocks])


@dataclass(frozen=True)
class DelayFit:
    """The delay CDF over ages 0..window-1 (the last value 1.0), with bootstrap uncertainty.

    cdf, se, low, high : (window,) estimate, bootstrap sd and 90% interval per age
    days : creative-days with a known final value that went into the estimate
    conversions : their final conversions
    """

    cdf: np.ndarray
    se: np.ndarray
    low: np.ndarray
    high: np.ndarray
    days: int
    conversions: float

    def to_json(self) -> dict:
        def r(x: np.ndarray) -> list[float]:
            return [round(float(v), 4) for v in x]

        return {
            "delay_cdf": r(self.cdf),
            "se": r(self.se),
            "ci90": [r(self.low), r(self.high)],
            "days": self.days,
            "conversions": self.conversions,
        }


def _ratio(known: np.ndarray, final: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seen = np.isfinite(known)
    num = np.where(seen, known, 0.0).sum(axis=0)
    den = np.where(seen, final[:, None], 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan), den


def _finish(raw: np.ndarray, weight: np.ndarray) -> np.ndarray:
    # Ages never observed borrow from the next observed one (conservative: the later, larger share).
    raw = raw.copy()
    for a in range(raw.size - 1, -1, -1):
        if not np.isfinite(raw[a]):
            raw[a] = raw[a + 1] if a + 1 < raw.size else 1.0
    f = _monotone(np.clip(raw, 0.0, 1.0), np.maximum(weight, 1e-12))
    f = np.clip(f, MIN_CDF, 1.0)
    f[-1] = 1.0
    return f


def estimate_delay_cdf(
    known: np.ndarray,
    final: np.ndarray,
    day: np.ndarray | None = None,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
) -> DelayFit:
    """F(a) from restated counts.

    known : (n_units, window) conversions of each creative-day as known at age a (NaN where that age was
        never seen); the last column is the final value
    final : (n_units,) final conversions of each creative-day
    day : (n_units,) the calendar day of each unit (bootstrap cluster); default each unit its own
    """
    known = np.asarray(known, dtype=np.float64)
    final = np.asarray(final, dtype=np.float64)
    if known.ndim != 2 or known.shape[0] != final.shape[0]:
        raise ModelError("delay: known must be (n_units, window) with one final value per unit")
    if known.shape[0] == 0 or final.sum() <= 0:
        raise ModelError("delay: no conversions in days whose final value is known; ingest more exports")
    window = known.shape[1]
    raw, den = _ratio(known[:, :-1], final)
    raw = np.append(raw, 1.0)
    den = np.append(den, final.sum())
    cdf = _finish(raw, den)
    rng = np.random.default_rng(0) if rng is None else rng
    day = np.arange(final.size) if day is None else np.asarray(day)
    clusters, inv = np.unique(day, return_inverse=True)
    members = [np.flatnonzero(inv == c) for c in range(clusters.size)]
    boots = np.empty((n_boot, window))
    for b in range(n_boot):
        pick = np.concatenate([members[c] for c in rng.integers(0, clusters.size, clusters.size)])
        r, d = _ratio(known[pick, :-1], final[pick])
        boots[b] = _finish(np.append(r, 1.0), np.append(d, final[pick].sum()))
    return DelayFit(
        cdf,
        boots.std(axis=0, ddof=1),
        np.quantile(boots, 0.05, axis=0),
        np.quantile(boots, 0.95, axis=0),
        int(final.size),
        float(final.sum()),
    )


def versions_to_known(
    ages: list[np.ndarray], values: list[np.ndarray], final_age: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (known, final, keep) arrays of `estimate_delay_cdf` from each creative-day's versions.

    ages[u], values[u] : the ages at which unit u's versions were recorded and their conversions
    final_age : (n_units,) the oldest age at which each unit was seen (a later export that changed nothing
        adds no version but still shows the value stands)
    The value known at age a is the latest version recorded at an age <= a; units never seen at
    window - 1 days or older are not final and are dropped (keep False).
    """
    n = len(ages)
    known = np.full((n, window), np.nan)
    final = np.zeros(n)
    keep = np.asarray(final_age) >= window - 1
    for u in range(n):
        order = np.argsort(ages[u], kind="stable")
        a, v = np.asarray(ages[u])[order], np.asarray(values[u], dtype=np.float64)[order]
        if a.size == 0:
            keep[u] = False
            continue
        final[u] = v[-1]
        for age in range(window):
            upto = np.flatnonzero(a <= age)
            if upto.size and age <= final_age[u]:
                known[u, age] = v[upto[-1]]
        known[u, -1] = v[-1]
    return known[keep], final[keep], keep

"""Figures per policy with standard errors over replicates, and the result files.

- conversions, spend: totals per replicate (all campaigns), mean and standard error.
- CPA: total spend / total conversions over all replicates (a ratio of means, finite even when a replicate
  has no conversion); None in unit-cost mode without spend.
- regret: expected conversions lost against the oracle, summed over periods: each day the expected
  conversions of the day's budget all on the best creative minus those of the policy's budgets, each at the
  CPM its spend meets (the world's CPM noise and saturation in expectation, `Dynamics.spend_yield`).
- share_on_best: units on the true best creative / all units.
- p_correct_winner: share of campaigns whose declared winner (else final leader) is the true best.
- decision_day_mean: mean period at which a winner is first declared, over replicates that declared one.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from simulations.runner import StudyResult


def _mean_se(x: np.ndarray) -> tuple[float | None, float | None]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None, None
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None
    return float(x.mean()), se


def policy_summary(res: StudyResult, policy: str) -> dict[str, float | None]:
    r = res.policies[policy]
    conv, conv_se = _mean_se(r["conversions"])
    regret, regret_se = _mean_se(r["regret"])
    spend, spend_se = _mean_se(r["spend"])
    total_conv, total_spend = float(r["conversions"].sum()), float(r["spend"].sum())
    cpa = total_spend / total_conv if total_spend > 0 and total_conv > 0 else None
    units = float(r["units"].sum())
    share = float(r["units_on_best"].sum() / units) if units > 0 else None
    correct, correct_se = _mean_se(r["correct"])
    day, day_se = _mean_se(r["decision_day"])
    declared, _ = _mean_se(r["declared"])
    return {
        "conversions_mean": conv,
        "conversions_se": conv_se,
        "regret_mean": regret,
        "regret_se": regret_se,
        "spend_mean": spend if total_spend > 0 else None,
        "spend_se": spend_se if total_spend > 0 else None,
        "cpa_mean": cpa,
        "share_on_best": share,
        "p_correct_winner": correct,
        "p_correct_winner_se": correct_se,
        "declared_share": declared,
        "decision_day_mean": day,
        "decision_day_se": day_se,
        "model_fallbacks": int(np.nansum(r["fallbacks"])) if "fallbacks" in r else 0,
    }


JSON_KEYS = (
    "conversions_mean",
    "conversions_se",
    "regret_mean",
    "regret_se",
    "spend_mean",
    "cpa_mean",
    "share_on_best",
    "p_correct_winner",
    "decision_day_mean",
    "model_fallbacks",
)


def summary(res: StudyResult, full: bool = False) -> dict:
    """The documented JSON object of `sparkbandit simulate --json` (full=True adds SEs and shares)."""
    pols = {}
    for p in res.policies:
        s = policy_summary(res, p)
        pols[p] = {k: _clean(v) for k, v in s.items() if full or k in JSON_KEYS}
    return {"study": res.name, "replicates": res.replicates, "periods": res.periods, "policies": pols}


def _clean(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), 6)


def over_time(res: StudyResult, policy: str) -> dict[str, np.ndarray]:
    """Per period (shape (periods,)): mean cumulative regret and its SE, share of units on the best, mean
    probability of best of the true best creative."""
    r = res.policies[policy]
    cum = np.cumsum(r["regret_t"], axis=1)
    n = cum.shape[0]
    se = cum.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(cum.shape[1])
    units = r["units_t"].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(units > 0, r["units_on_best_t"].sum(axis=0) / units, np.nan)
    with np.errstate(invalid="ignore"):
        pb = (
            np.nanmean(r["prob_best_t"], axis=0)
            if np.isfinite(r["prob_best_t"]).any()
            else np.full(cum.shape[1], np.nan)
        )
    return {"regret": cum.mean(axis=0), "regret_se": se, "share_on_best": share, "prob_best": pb}


RESULT_COLUMNS = (
    "replicate",
    "policy",
    "conversions",
    "spend",
    "cpa",
    "regret",
    "share_on_best",
    "correct_winner",
    "declared",
    "decision_day",
)


def results_csv(res: StudyResult) -> str:
    """One row per replicate and policy."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RESULT_COLUMNS)

    def fmt(x: float, nd: int = 6) -> str:
        return "" if not np.isfinite(x) else f"{x:.{nd}g}"

    for p, r in res.policies.items():
        for i in range(res.replicates):
            conv, spend = r["conversions"][i], r["spend"][i]
            cpa = spend / conv if spend > 0 and conv > 0 else np.nan
            share = r["units_on_best"][i] / r["units"][i] if r["units"][i] > 0 else np.nan
            w.writerow(
                [
                    i,
                    p,
                    fmt(conv, 10),
                    fmt(spend, 10),
                    fmt(cpa),
                    fmt(r["regret"][i]),
                    fmt(share),
                    fmt(r["correct"][i]),
                    fmt(r["declared"][i]),
                    fmt(r["decision_day"][i]),
                ]
            )
    return buf.getvalue()

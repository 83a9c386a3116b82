"""The decision's warnings in words: Spark authorizations ending (one rule and one horizon,
`AUTH_WARNING_DAYS`, shared by `reallocate`, `status` and `candidates`), the learning phase (few first-week
conversions, out of reach at this budget), budget left unspent, nothing live.

The learning-phase test itself is `allocator.decisions.guardrails.in_learning_phase` (one rule for the
engine's holds, `status` and the simulator); `learning_state` measures its inputs.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from allocator.decisions.reasons import days as _days
from allocator.decisions.reasons import money
from allocator.plan import CampaignPlan, Creative
from models.observations import DailyObservations

AUTH_WARNING_DAYS = 7  # warn a week ahead: time enough to ask the creator for a new code


def learning_state(
    plan: CampaignPlan, daily: DailyObservations, date: dt.date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per creative: age in days of its ad group at `date` (0 = not started), conversions so far, and
    conversions in its first `learning_days` days. Age counts from the plan's `launched` date or else the
    first day with impressions."""
    n = len(plan.creatives)
    age = np.zeros(n, dtype=int)
    first_week = np.zeros(n)
    conv = daily.conversions.sum(axis=0) if daily.n_days else np.zeros(n)
    first = daily.first_live_index() if daily.n_days else np.full(n, -1)
    window = plan.guardrails.learning_days
    for i, c in enumerate(plan.creatives):
        start: dt.date | None = c.launched
        if start is None and first[i] >= 0:
            start = daily.dates[first[i]].astype(dt.date)
        if start is not None:
            age[i] = max((date - start).days, 0)
            if daily.n_days:
                d0 = np.datetime64(start, "D")
                keep = (daily.dates >= d0) & (daily.dates < d0 + np.timedelta64(window, "D"))
                first_week[i] = daily.conversions[keep, i].sum()
    return age, conv, first_week


def authorization_warning(c: Creative, date: dt.date, ahead: str = "period") -> str | None:
    """The warning about `c`'s Spark authorization on `date`, the one rule `reallocate` and `status` share:
    ended on or before `date` (it gets no budget), or ending within `AUTH_WARNING_DAYS` days; else None.

    `ahead` only words the days left: "period" for a decision (`date` is the day the budgets apply to:
    "N days after this period"), "today" for status ("in N days").
    """
    if c.auth_expires is None:
        return None
    days = (c.auth_expires - date).days
    if days <= 0:
        return (
            f"{c.label}: Spark authorization ended {c.auth_expires.isoformat()}; it gets no budget "
            "(ask the creator for a new code and add it to the plan)"
        )
    if days > AUTH_WARNING_DAYS:
        return None
    left = f"{_days(days)} after this period" if ahead == "period" else f"in {_days(days)}"
    return f"{c.label}: Spark authorization ends {c.auth_expires.isoformat()} ({left}); ask the creator to renew it"


def learning_out_of_reach(plan: CampaignPlan, daily: DailyObservations, live: np.ndarray) -> str | None:
    """The warning when, at this budget and CPA, an ad group cannot reach TikTok's learning-phase
    conversions in its learning days; it says what to do. None when it can (or nothing is live)."""
    g, camp = plan.guardrails, plan.campaign
    n_live = int(live.sum())
    if not n_live or g.learning_conversions <= 0 or g.learning_days <= 0 or camp.objective == "conversion_rate":
        return None
    spend = float(daily.spend.sum()) if daily.n_days else 0.0
    conv = float(daily.conversions.sum()) if daily.n_days else 0.0
    if conv >= 5:
        cpa, source = spend / conv, "the campaign's observed CPA"
    else:
        rate = plan.prior.alpha / (plan.prior.alpha + plan.prior.beta)
        cpa, source = plan.prior.cpm / (1000.0 * rate), "the prior's CPA (too few conversions yet)"
    per_group = camp.daily_budget / n_live
    expected = per_group * g.learning_days / cpa
    if expected >= g.learning_conversions:
        return None
    need = g.learning_conversions * cpa / g.learning_days
    fits = int(camp.daily_budget // need)
    cur = camp.currency
    fewer = (
        f"test at most {fits} creative{'s' if fits != 1 else ''} at a time"
        if fits >= 1
        else f"raise the daily budget to at least {money(need, cur)}"
    )
    return (
        f"learning phase out of reach: at {money(cpa, cur)} per conversion ({source}), "
        f"{money(per_group, cur)}/day per ad group ({n_live} live) brings about {expected:.0f} conversions in "
        f"{g.learning_days} days, short of the {g.learning_conversions} TikTok's learning phase needs "
        f"({money(need, cur)}/day per ad group). To act: {fewer}; pause clear losers early "
        "(guardrails.pause_below_prob_best); or set guardrails.hold_learning = false so budgets follow the "
        "results (TikTok's 'learning' label then stays, which does not stop delivery)"
    )

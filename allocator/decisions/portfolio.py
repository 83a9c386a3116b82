"""Hierarchical plans fitted together as one portfolio (shared hyperpriors, one fit) by `reallocate_many`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from allocator.decisions.allocation import History
from allocator.decisions.settings import decision_rng, hierarchical_model, organic_rates
from allocator.plan import CampaignPlan
from models.observations import DailyObservations
from models.posterior import Posterior


def before_date(daily: DailyObservations, date: dt.date) -> DailyObservations:
    """The results of the days before `date` (a decision never sees its own day)."""
    if daily.n_days and daily.dates[-1] >= np.datetime64(date, "D"):
        return daily.upto(np.datetime64(date, "D") - np.timedelta64(1, "D"))
    return daily


class _Fitted:
    """A hierarchical model whose fit is done (one campaign of a portfolio fit): `fit` returns its posterior."""

    name = "hierarchical"

    def __init__(self, post: Posterior) -> None:
        self.post = post

    def fit(
        self, daily: DailyObservations, objective: str, n_draws: int, rng: np.random.Generator, **kwargs: Any
    ) -> Posterior:
        return self.post


def portfolio_models(
    jobs: list[tuple[CampaignPlan, DailyObservations, dt.date, History | None]],
) -> list[Any]:
    """Per job, a `_Fitted` model when its plan is hierarchical and at least one other job's plan has the
    same `[model]`, `[prior]`, objective and draws (fitted together by `fit_portfolio`, seeded by the first
    plan's seed and date), else None (the job's own model)."""
    groups: dict[tuple[str, str, str, int], list[int]] = {}
    for k, (plan, daily, _date, _) in enumerate(jobs):
        if plan.campaign.model == "hierarchical" and daily.creative_ids == plan.creative_ids:
            key = (
                plan.model.model_dump_json(),
                plan.prior.model_dump_json(),
                plan.campaign.objective,
                plan.decision.draws,
            )
            groups.setdefault(key, []).append(k)
    out: list[Any] = [None] * len(jobs)
    for members in (m for m in groups.values() if len(m) > 1):
        first = jobs[members[0]][0]
        dailies = []
        for k in members:  # the data before each decision date, as `prepare` uses
            _, daily, date, _ = jobs[k]
            dailies.append(before_date(daily, date))
        model = hierarchical_model(first.model, first.prior)
        posts = model.fit_portfolio(
            dailies,
            [organic_rates(jobs[k][0]) for k in members],
            first.campaign.objective,
            first.decision.draws,
            decision_rng(first.campaign.seed, jobs[members[0]][2]),
        )
        for k, post in zip(members, posts, strict=True):
            post.diagnostics["portfolio_campaigns"] = len(members)
            out[k] = _Fitted(post)
    return out

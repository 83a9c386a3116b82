"""The plan's settings as the decision's parts take them: the model, the guardrails' rules, the day's
sharpening exponent and the decision's random generator (one mapping, used by the engine and the CLI)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from allocator.decisions.guardrails import GuardrailSettings
from allocator.decisions.policies import sharpen_exponent
from allocator.plan import CampaignPlan, Guardrails, ModelSettings, Prior
from models.conjugate import BetaPrior, ConjugateModel
from models.cost import CostModel
from models.observations import DailyObservations


def guardrail_settings(plan: CampaignPlan, resolution: float | None = 0.01) -> GuardrailSettings:
    return section_settings(plan.guardrails, plan.campaign.daily_budget, resolution)


def section_settings(g: Guardrails, total: float | np.ndarray, resolution: float | None = 0.01) -> GuardrailSettings:
    """A `[guardrails]` section as the budget rules take it (the one mapping: the engine's plans and the
    simulator's studies). `total` is the daily budget (one per campaign in a batch)."""
    return GuardrailSettings(
        total=total,
        min_budget=g.min_budget,
        max_budget=g.max_budget,
        max_change=g.max_change,
        exploration_floor=g.exploration_floor,
        resolution=resolution,
        spend_all=g.spend_all,
        pause_below_prob_best=g.pause_below_prob_best,
        pause_min_expected_loss=g.pause_min_expected_loss,
    )


def organic_rates(plan: CampaignPlan) -> np.ndarray:
    """Organic engagement rate per view of each plan creative, NaN where unknown. Shape (n_creatives,)."""
    return np.array(
        [(c.organic.engagement_rate() if c.organic is not None else None) or np.nan for c in plan.creatives],
        dtype=np.float64,
    )


def conjugate_model(plan: CampaignPlan) -> ConjugateModel:
    p = plan.prior
    cdf = plan.model.delay_cdf
    alpha, beta = p.conversion_params(plan.creatives)  # [prior.groups] by creator, else alpha and beta
    return ConjugateModel(
        BetaPrior(tuple(alpha), tuple(beta)) if p.groups else BetaPrior(p.alpha, p.beta),
        BetaPrior(p.click_alpha, p.click_beta),
        CostModel(p.cpm, p.cpm_weight),
        delay_cdf=None if cdf is None else tuple(cdf),
    )


def sharpen_today(plan: CampaignPlan, daily: DailyObservations, date: dt.date) -> float:
    """The exponent of `[policy] sharpen_to` for the budgets of `date`: 1 on the test's first day (the
    earliest `launched` or day of data), `sharpen_to` on `campaign.end`, linear in between."""
    s, end = plan.policy.sharpen_to, plan.campaign.end
    if s == 1.0 or end is None:
        return 1.0
    starts = [c.launched for c in plan.creatives if c.launched is not None]
    if daily.n_days:
        starts.append(daily.dates[0].astype(dt.date))
    start = min([*starts, date])
    span = (end - start).days
    return float(sharpen_exponent(s, 1.0 if span <= 0 else (date - start).days / span))


def build_model(plan: CampaignPlan, progressbar: bool = False):
    """The plan's model, ready to `fit(daily, objective, n_draws, rng)`. pymc is imported only for
    `model = "hierarchical"`, and only when it fits."""
    if plan.campaign.model == "conjugate":
        return conjugate_model(plan)
    return hierarchical_model(plan.model, plan.prior, organic_rate=organic_rates(plan), progressbar=progressbar)


def hierarchical_model(m: ModelSettings, p: Prior, **overrides):
    """The hierarchical model of a plan's (or a study's) `[model]` and `[prior]` sections; `overrides` are
    further `HierarchicalModel` fields (organic_rate, progressbar, delay_cdf, reuse_compiled, ...)."""
    from models.hierarchical import HierarchicalModel  # light: pymc is imported inside fit()

    settings = dict(
        method=m.method,
        sampler=m.sampler,
        draws=m.draws,
        tune=m.tune,
        chains=m.chains,
        target_accept=m.target_accept,
        fatigue=m.fatigue,
        delay_cdf=None if m.delay_cdf is None else tuple(m.delay_cdf),
        on_failure=m.on_failure,
        max_rhat=m.max_rhat,
        min_ess=m.min_ess,
        compile_dir=m.compile_dir,
        prior={"organic_mu": m.organic_mean, "organic_sd": m.organic_sd},
        prior_cpm=p.cpm,
        prior_cpm_weight=p.cpm_weight,
        conjugate_alpha=p.alpha,
        conjugate_beta=p.beta,
        click_alpha=p.click_alpha,
        click_beta=p.click_beta,
    )
    return HierarchicalModel(**{**settings, **overrides})


def decision_rng(seed: int, date: dt.date) -> np.random.Generator:
    """The generator of the decision for `date`, one rule for every path (CSV and ledger): re-deciding a
    date repeats it; each day draws afresh."""
    return np.random.default_rng([seed, date.toordinal()])

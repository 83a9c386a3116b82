"""The daily decision: plan + results -> tomorrow's budget per creative, with a reason for each.

`reallocate` is a pure function of the plan, the daily observations, the decision date and the budget
history; the CLI, the ledger and the simulator call it (the simulator through the batched pieces it is made
of: `models`, `allocator.decisions.policies`, `allocator.decisions.guardrails`, `allocator.decisions.stopping`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from allocator.decisions.guardrails import (
    Budgets,
    GuardrailSettings,
    Reason,
    apply_guardrails,
    clear_losers,
    in_learning_phase,
)
from allocator.decisions.policies import PolicyContext, sharpen_exponent, target_shares
from allocator.decisions.stopping import PhaseDecision, decide_phase, rule_applies
from allocator.plan import CampaignPlan, Creative, ModelSettings, Prior
from models.conjugate import BetaPrior, ConjugateModel
from models.cost import CostModel
from models.observations import DailyObservations
from models.posterior import SMALL, Posterior
from models.prob_best import scaled_beta_max

AUTH_WARNING_DAYS = 7  # warn a week ahead: time enough to ask the creator for a new code


@dataclass(frozen=True)
class History:
    """What is known of the budgets before the decision date.

    previous : budget in force on the day before the decision date, per plan creative (0 = not running).
    last_change : the date each creative's budget last changed (took effect), None when unknown.
    """

    previous: np.ndarray
    last_change: tuple[dt.date | None, ...]

    @classmethod
    def from_plan(cls, plan: CampaignPlan) -> History:
        """Budgets stated in the plan (`budget`, `last_change` per creative); unknown -> not running."""
        prev = np.array([c.budget or 0.0 for c in plan.creatives], dtype=np.float64)
        return cls(prev, tuple(c.last_change for c in plan.creatives))


@dataclass(frozen=True)
class CreativeDecision:
    id: str
    label: str
    status: str  # "running", "paused", "expired"
    budget: float
    previous_budget: float
    share: float
    prob_best: float | None
    mean: float
    ci90: tuple[float, float]
    expected_loss: float | None
    cpa_mean: float | None
    cpa_ci90: tuple[float | None, float | None]
    impressions: float
    clicks: float
    conversions: float
    spend: float
    days_live: int
    reason: str
    reason_code: str
    observed_cpa: float | None = None  # spend / conversions, as Ads Manager's "Cost per conversion"
    yesterday_spend: float = 0.0  # results of the day before the decision date
    yesterday_conversions: float = 0.0


@dataclass(frozen=True)
class Allocation:
    campaign: str
    date: dt.date
    currency: str
    daily_budget: float
    model: str
    policy: str
    objective: str
    phase: str
    winner: str | None
    leader: str | None
    value_remaining: float | None
    data_first: dt.date | None
    data_last: dt.date | None
    warnings: list[str]
    creatives: list[CreativeDecision]
    diagnostics: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The documented JSON object of `sparkbandit reallocate --json`."""

        def num(x: float | None, nd: int = 6) -> float | None:
            if x is None or not np.isfinite(x):
                return None
            return round(float(x), nd)

        return {
            "campaign": self.campaign,
            "date": self.date.isoformat(),
            "currency": self.currency,
            "daily_budget": self.daily_budget,
            "model": self.model,
            "policy": self.policy,
            "objective": self.objective,
            "phase": self.phase,
            "winner": self.winner,
            "warnings": list(self.warnings),
            "leader": self.leader,
            "value_remaining": num(self.value_remaining),
            "data_range": [
                None if self.data_first is None else self.data_first.isoformat(),
                None if self.data_last is None else self.data_last.isoformat(),
            ],
            "diagnostics": _jsonable(self.diagnostics),
            "creatives": [
                {
                    "id": c.id,
                    "name": c.label,
                    "status": c.status,
                    "budget": round(c.budget, 2),
                    "previous_budget": round(c.previous_budget, 2),
                    "share": num(c.share),
                    "prob_best": num(c.prob_best),
                    "mean": num(c.mean, 9),
                    "ci90": [num(c.ci90[0], 9), num(c.ci90[1], 9)],
                    "expected_loss": num(c.expected_loss, 9),
                    "cpa_mean": num(c.cpa_mean, 4),
                    "cpa_ci90": [num(c.cpa_ci90[0], 4), num(c.cpa_ci90[1], 4)],
                    "impressions": int(c.impressions),
                    "clicks": int(c.clicks),
                    "conversions": int(c.conversions),
                    "spend": round(c.spend, 2),
                    "days_live": c.days_live,
                    "reason": c.reason,
                    "reason_code": c.reason_code,
                    "observed_cpa": num(c.observed_cpa, 4),
                    "yesterday": {"spend": round(c.yesterday_spend, 2), "conversions": int(c.yesterday_conversions)},
                }
                for c in self.creatives
            ],
        }


def _jsonable(d: object) -> object:
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.floating, float)):
        return float(d) if np.isfinite(d) else None
    if isinstance(d, np.integer):
        return int(d)
    if isinstance(d, (str, int, bool)) or d is None:
        return d
    return str(d)


def guardrail_settings(plan: CampaignPlan, resolution: float | None = 0.01) -> GuardrailSettings:
    g = plan.guardrails
    return GuardrailSettings(
        total=plan.campaign.daily_budget,
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


def money(x: float | None, currency: str) -> str:
    """An amount as the CLI, reports and reasons show it: "$1,234.50" in USD, "1,234.50 EUR" otherwise."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"${x:,.2f}" if currency == "USD" else f"{x:,.2f} {currency}"


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


def decision_rng(seed: int, date: dt.date) -> np.random.Generator:
    """The generator of the decision for `date`, one rule for every path (CSV and ledger): re-deciding a
    date repeats it; each day draws afresh."""
    return np.random.default_rng([seed, date.toordinal()])


def reallocate(
    plan: CampaignPlan,
    daily: DailyObservations,
    date: dt.date,
    history: History | None = None,
    rng: np.random.Generator | None = None,
    model=None,
    fit_path: Path | None = None,
) -> Allocation:
    """Budgets for `date` from the results before it.

    Parameters
    ----------
    plan : CampaignPlan
    daily : DailyObservations
        Results over the plan's creatives (in plan order); days on or after `date` are ignored.
    date : datetime.date
        The day the new budgets apply to.
    history : History, optional
        Previous budgets and last-change dates; by default those stated in the plan.
    rng : numpy Generator, optional
        Defaults to `decision_rng(plan.campaign.seed, date)`, the rule the ledger path (`sparkbandit run`)
        uses too, so the same plan, data and date give the same budgets through either path.
    model : optional
        A fitted-on-demand model with `.fit(...)`; by default `build_model(plan)`.
    fit_path : Path, optional
        Where a sampling model saves its fit.
    """
    steps = _steps(plan, daily, date, history, rng, model, fit_path)
    next(steps)
    target, previous, live, held, settings, winner, losers = next(steps)
    out: Budgets = apply_guardrails(
        target[None, :],
        previous[None, :],
        live[None, :],
        held[None, :],
        settings,
        winner_phase=np.array([winner]),
        losers=losers[None, :],
    )
    return _finish(steps, (out.budgets[0], out.reasons[0], out.unspent[0]))


def reallocate_many(
    jobs: list[tuple[CampaignPlan, DailyObservations, dt.date, History | None]],
) -> list[Allocation]:
    """`reallocate` for many campaigns in one pass, with identical results.

    The per-campaign logic runs as in `reallocate`; the numeric core is batched across campaigns: the exact
    probability of best and expected loss of every conjugate posterior (`scaled_beta_max` on a stacked
    (n_campaigns, n_creatives) array per creative count) and the guardrails (`apply_guardrails` per group of
    campaigns with the same rules and creative count). Each campaign uses `decision_rng(seed, date)`, as `reallocate`.
    Hierarchical plans with equal `[model]`, `[prior]`, objective and draws are fitted together as one
    portfolio (shared hyperpriors, one fit; see `_portfolio_models`): their results are the portfolio's, not
    those of one fit per campaign.
    """
    fitted = _portfolio_models(jobs)
    gens = [
        _steps(plan, daily, date, history, None, model, None)
        for (plan, daily, date, history), model in zip(jobs, fitted, strict=True)
    ]
    posts: list[Posterior] = [next(g) for g in gens]
    by_size: dict[int, list[int]] = {}
    for k, post in enumerate(posts):
        if post.marginals is not None and 1 < post.n_creatives <= SMALL:
            by_size.setdefault(post.n_creatives, []).append(k)
    for members in by_size.values():
        m = [posts[k].marginals for k in members]
        p, e_max = scaled_beta_max(
            np.stack([x.alpha for x in m]), np.stack([x.beta for x in m]), np.stack([x.scale for x in m])
        )
        for row, k in enumerate(members):
            posts[k].set_exact(p[row], float(e_max[row]))
    args = [next(g) for g in gens]
    groups: dict[tuple, list[int]] = {}
    for k, (target, _, _, _, settings, _, _) in enumerate(args):
        groups.setdefault((settings, target.size), []).append(k)
    results: list[tuple] = [()] * len(gens)
    for (settings, _), members in groups.items():
        stack = [np.stack([args[k][j] for k in members]) for j in range(4)]
        out = apply_guardrails(
            *stack,
            settings,
            winner_phase=np.array([args[k][5] for k in members]),
            losers=np.stack([args[k][6] for k in members]),
        )
        for row, k in enumerate(members):
            results[k] = (out.budgets[row], out.reasons[row], out.unspent[row])
    return [_finish(g, r) for g, r in zip(gens, results)]


class _Fitted:
    """A hierarchical model whose fit is done (one campaign of a portfolio fit): `fit` returns its posterior."""

    name = "hierarchical"

    def __init__(self, post: Posterior) -> None:
        self.post = post

    def fit(self, daily, objective, n_draws, rng, **kwargs) -> Posterior:
        return self.post


def _portfolio_models(jobs) -> list:
    """Per job, a `_Fitted` model when its plan is hierarchical and at least one other job's plan has the
    same `[model]`, `[prior]`, objective and draws (fitted together by `fit_portfolio`, seeded by the first
    plan's seed and date), else None (the job's own model)."""
    groups: dict[tuple, list[int]] = {}
    for k, (plan, daily, _date, _) in enumerate(jobs):
        if plan.campaign.model == "hierarchical" and daily.creative_ids == plan.creative_ids:
            key = (
                plan.model.model_dump_json(),
                plan.prior.model_dump_json(),
                plan.campaign.objective,
                plan.decision.draws,
            )
            groups.setdefault(key, []).append(k)
    out: list = [None] * len(jobs)
    for members in (m for m in groups.values() if len(m) > 1):
        first = jobs[members[0]][0]
        dailies = []
        for k in members:  # the data before each decision date, as `_steps` uses
            _, daily, date, _ = jobs[k]
            if daily.n_days and daily.dates[-1] >= np.datetime64(date, "D"):
                daily = daily.upto(np.datetime64(date, "D") - np.timedelta64(1, "D"))
            dailies.append(daily)
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


def _finish(steps, budgets: tuple) -> Allocation:
    try:
        steps.send(budgets)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the decision steps did not finish")  # pragma: no cover


def _steps(plan, daily, date, history, rng, model, fit_path):
    """The decision as a generator: yields the live creatives' posterior (for batched exact answers), then
    the guardrail inputs, receives (budgets, reason codes, unspent) and returns the Allocation."""
    camp, g = plan.campaign, plan.guardrails
    ids = plan.creative_ids
    if daily.creative_ids != ids:
        raise ValueError("daily observations must be over the plan's creatives in plan order")
    if daily.n_days and daily.dates[-1] >= np.datetime64(date, "D"):
        daily = daily.upto(np.datetime64(date, "D") - np.timedelta64(1, "D"))
    history = History.from_plan(plan) if history is None else history
    rng = decision_rng(camp.seed, date) if rng is None else rng
    model = build_model(plan) if model is None else model
    n = len(ids)
    warnings: list[str] = []

    # --- who may receive budget
    status = ["running"] * n
    live = np.ones(n, dtype=bool)
    not_live_reason = [""] * n
    for i, c in enumerate(plan.creatives):
        if c.status == "paused":
            live[i], status[i], not_live_reason[i] = False, "paused", "paused in the plan"
        else:
            if c.auth_expires is not None and c.auth_expires <= date:
                live[i], status[i] = False, "expired"
                not_live_reason[i] = f"authorization ends {c.auth_expires.isoformat()}, before this period ends"
            auth = authorization_warning(c, date)
            if auth is not None:
                warnings.append(auth)

    # --- posterior and phase
    fit_kwargs = {"save_to": fit_path} if fit_path is not None and model.name == "hierarchical" else {}
    post: Posterior = model.fit(daily, camp.objective, n_draws=plan.decision.draws, rng=rng, **fit_kwargs)
    warnings.extend(post.diagnostics.get("warnings", []))
    days = int((daily.impressions.sum(axis=1) > 0).sum()) if daily.n_days else 0
    live_idx = np.flatnonzero(live)
    live_post = post.subset(live_idx)
    yield live_post  # a batch driver may fill in its exact answers here, for many campaigns at once
    phase: PhaseDecision = decide_phase(
        live_post,
        days,
        plan.decision.min_days,
        plan.decision.prob_best,
        plan.decision.value_remaining,
        stop=rule_applies(camp.policy, plan.decision.stop),
    )
    winner_id = None if phase.winner is None else ids[live_idx[phase.winner]]
    leader_id = None if phase.leader is None else ids[live_idx[phase.leader]]

    # --- policy target over the live creatives
    target = np.zeros(n)
    if live_idx.size:
        if phase.winner is not None:
            target[live_idx[phase.winner]] = 1.0
        else:
            ctx = PolicyContext(day=days, min_days=plan.decision.min_days, sharpen=sharpen_today(plan, daily, date))
            target[live_idx] = target_shares(camp.policy, live_post, ctx)
    prob_best = np.full(n, np.nan)
    loss = np.full(n, np.nan)
    post_mean = np.full(n, np.nan)
    if live_idx.size:
        prob_best[live_idx] = live_post.prob_best()
        loss[live_idx] = live_post.expected_loss()
        post_mean[live_idx] = live_post.mean()
    else:
        warnings.append(
            "no creative can receive budget today (every one is paused in the plan or its Spark "
            'authorization has ended): all budgets are 0; set a creative\'s status to "active" or add one '
            "with a new authorization code"
        )
    if leader_id is not None and winner_id is None and _tied(live_post, prob_best[live_idx]):
        leader_id = None  # launch day: four creatives at 25% have no leader

    # --- holds: days between changes and the learning phase
    age, conv_total, first_week = learning_state(plan, daily, date)
    learning = in_learning_phase(age, conv_total, g.learning_days, g.learning_conversions)
    held = np.zeros(n, dtype=bool)
    held_reason = [""] * n
    for i in range(len(plan.creatives)):
        if not live[i] or history.previous[i] <= 0:
            continue
        last = history.last_change[i]
        if last is not None and (date - last).days < g.min_days_between_changes:
            since = (date - last).days
            held[i] = True
            held_reason[i] = (
                f"held: changed {_days(since)} ago, TikTok advises {_days(g.min_days_between_changes)} between changes"
            )
        elif g.hold_learning and learning[i]:
            held[i] = True
            held_reason[i] = (
                f"held: in TikTok's learning phase (day {age[i]} of {g.learning_days}, "
                f"{conv_total[i]:.0f} of {g.learning_conversions} conversions); a budget change would restart it"
            )
    few = [
        f"{c.label} ({first_week[i]:.0f})"
        for i, c in enumerate(plan.creatives)
        if live[i] and age[i] >= g.learning_days and first_week[i] < g.learning_conversions
    ]
    if few:
        warnings.append(
            f"fewer than {g.learning_conversions} conversions in the first {g.learning_days} days (TikTok's "
            f"learning phase needs about {g.learning_conversions}; delivery and CPA may stay unstable): "
            + ", ".join(few)
        )
    learning_now = live & (age < g.learning_days)
    reach = _learning_out_of_reach(plan, daily, live) if (learning_now.any() or few) else None
    if reach:
        warnings.append(reach)

    settings = guardrail_settings(plan)
    losers = clear_losers(prob_best[None, :], loss[None, :], post_mean[None, :], live[None, :], settings)[0]
    budgets, codes, unspent = yield (target, history.previous, live, held, settings, phase.winner is not None, losers)
    if unspent > 0 and live_idx.size:
        if not g.spend_all:
            warnings.append(
                f"{money(float(unspent), camp.currency)} of the daily budget is left unspent: the creatives' "
                "targets ask for less within their step limits (guardrails.spend_all = false)"
            )
        else:
            warnings.append(
                f"{money(float(unspent), camp.currency)} of the daily budget cannot be spent within "
                "max_budget and the live creatives; raise guardrails.max_budget or add creatives"
            )

    # --- reasons in words
    cur = camp.currency
    totals = daily.totals() if daily.n_days else None
    mean = post.mean()
    ci = post.interval(0.9)
    cpa_mean, cpa_lo, cpa_hi = post.cpa_summary(0.9)
    days_live = daily.days_live() if daily.n_days else np.zeros(n, dtype=int)
    y_spend, y_conv = np.zeros(n), np.zeros(n)
    if daily.n_days and daily.dates[-1] == np.datetime64(date, "D") - np.timedelta64(1, "D"):
        y_spend, y_conv = daily.spend[-1], daily.conversions[-1]
    decisions = []
    for i, c in enumerate(plan.creatives):
        code = Reason(int(codes[i]))
        reason = _reason_text(
            code,
            c,
            target[i],
            budgets[i],
            history.previous[i],
            settings,
            cur,
            not_live_reason[i],
            held_reason[i],
            winner_id,
            prob_best[i],
            loss[i] / np.nanmax(post_mean) if live_idx.size and np.nanmax(post_mean) > 0 else 0.0,
        )
        st = status[i] if not live[i] else ("running" if budgets[i] > 0 else "paused")
        decisions.append(
            CreativeDecision(
                id=c.id,
                label=c.label,
                status=st,
                budget=float(budgets[i]),
                previous_budget=float(history.previous[i]),
                share=float(budgets[i] / camp.daily_budget),
                prob_best=None if np.isnan(prob_best[i]) else float(prob_best[i]),
                mean=float(mean[i]),
                ci90=(float(ci[i, 0]), float(ci[i, 1])),
                expected_loss=None if np.isnan(loss[i]) else float(loss[i]),
                cpa_mean=float(cpa_mean[i]) if np.isfinite(cpa_mean[i]) else None,
                cpa_ci90=(
                    float(cpa_lo[i]) if np.isfinite(cpa_lo[i]) else None,
                    float(cpa_hi[i]) if np.isfinite(cpa_hi[i]) else None,
                ),
                impressions=float(totals.impressions[i]) if totals else 0.0,
                clicks=float(totals.clicks[i]) if totals else 0.0,
                conversions=float(totals.conversions[i]) if totals else 0.0,
                spend=float(totals.spend[i]) if totals else 0.0,
                days_live=int(days_live[i]),
                reason=reason,
                reason_code=code.name.lower(),
                observed_cpa=(
                    float(totals.spend[i] / totals.conversions[i]) if totals and totals.conversions[i] > 0 else None
                ),
                yesterday_spend=float(y_spend[i]),
                yesterday_conversions=float(y_conv[i]),
            )
        )
    return Allocation(
        campaign=camp.name,
        date=date,
        currency=cur,
        daily_budget=camp.daily_budget,
        model=str(post.diagnostics.get("model", model.name)),
        policy=camp.policy,
        objective=camp.objective,
        phase=phase.phase,
        winner=winner_id,
        leader=leader_id,
        value_remaining=phase.value_remaining if live_idx.size and np.isfinite(phase.value_remaining) else None,
        data_first=None if not daily.n_days else daily.dates[0].astype(dt.date),
        data_last=None if not daily.n_days else daily.dates[-1].astype(dt.date),
        warnings=warnings,
        creatives=decisions,
        diagnostics={k: v for k, v in post.diagnostics.items() if k != "warnings"},
    )


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def _tied(post: Posterior, p: np.ndarray) -> bool:
    """True when the two highest probabilities of best are equal within their error: exactly equal for
    exact answers, within two Monte Carlo standard errors of the difference otherwise."""
    if p.size < 2:
        return False
    lo, hi = np.sort(p)[-2:]
    if post.marginals is not None:
        return hi - lo <= 1e-6
    n_draws = post.draws.shape[0]
    return hi - lo <= 2.0 * np.sqrt(max(lo + hi, 1e-12) / n_draws)


def _learning_out_of_reach(plan: CampaignPlan, daily: DailyObservations, live: np.ndarray) -> str | None:
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


def _reason_text(
    code: Reason,
    c: Creative,
    share: float,
    budget: float,
    previous: float,
    s: GuardrailSettings,
    cur: str,
    not_live: str,
    held: str,
    winner: str | None,
    prob_best: float = float("nan"),
    rel_loss: float = 0.0,
) -> str:
    """The reason for a creative's budget in words a marketer reads: what was done and which rule did it."""

    def fmt(x: float) -> str:
        return money(x, cur)

    target = share * s.total
    asks = f"the model suggests {fmt(target)} ({share:.0%})"
    if code == Reason.NOT_LIVE:
        return not_live
    if code == Reason.HELD:
        return held
    if code == Reason.PAUSED_LOSER:
        return (
            f"paused: clearly losing ({prob_best:.1%} chance of being best, expected {rel_loss:.0%} worse than "
            "the best); pausing one ad group does not restart the others' learning"
        )
    if code == Reason.PAUSED_TARGET:
        return f"paused: {asks}, nearer 0 than the {fmt(s.min_budget)} ad-group minimum"
    if code == Reason.PAUSED_CONFLICT:
        return "paused: the minimums of stronger creatives use the whole budget"
    if code == Reason.FLOOR:
        return f"kept at the {s.exploration_floor:.0%} exploration floor so it keeps being tested; {asks}"
    if code == Reason.MINIMUM:
        return f"raised to TikTok's {fmt(s.min_budget)} ad-group minimum; {asks}"
    if code == Reason.CAP:
        return f"capped at the {fmt(s.max_budget or 0)} maximum per creative; {asks}"
    if code in (Reason.STEP_UP, Reason.STEP_DOWN):
        up = code == Reason.STEP_UP
        limit = f"{'+' if up else '-'}{s.max_change:.0%} of yesterday's {fmt(previous)}"
        if (target > budget) == up or abs(target - budget) < 0.005:
            return f"{'raised' if up else 'lowered'} only as far as the step limit ({limit}); {asks}"
        # The limit binds, but the other way round from the target: the budget had to go somewhere.
        return f"{'raised to' if up else 'kept at'} the step limit ({limit}) to spend the whole budget; {asks}"
    if code == Reason.RELEASED:
        return f"raised from {fmt(previous)} despite the hold, so the whole budget is spent"
    if code == Reason.STEP_RELAXED:
        return (
            f"above the +{s.max_change:.0%} step limit so the whole budget is spent "
            "(set guardrails.spend_all = false to leave it unspent instead)"
        )
    if winner is not None:
        if c.id == winner:
            return "winner: budget moves to it"
        if previous > 0 and budget > previous * (1.0 - s.max_change) + 0.005:
            return (
                "winner declared elsewhere: stepping down; kept above its step limit only so the whole "
                "budget is spent (guardrails.spend_all = false leaves it unspent instead)"
            )
        return "winner declared elsewhere: stepping down"
    if abs(budget - target) <= max(0.01, 0.005 * s.total):
        return f"as the model suggests ({share:.0%} of the budget)"
    more = "more" if budget > target else "less"
    return f"{asks}; given {more} so the whole budget is spent within the limits"

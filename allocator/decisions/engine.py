"""The daily decision: plan + results -> tomorrow's budget per creative, with a reason for each.

`reallocate` is a pure function of the plan, the daily observations, the decision date and the budget
history, made of four explicit steps, each a named function:

1. `prepare`: who may receive budget, the posterior of the live creatives (`Prepared`);
2. `targets`: the stopping rule's phase, the policy's target shares, the holds and clear losers (`Targets`);
3. `budgets`: the guardrails, batched over campaigns (`BudgetRow` per campaign);
4. `explain`: the reasons in words (`allocator.decisions.reasons`) and the `Allocation`.

`reallocate_many` runs the same steps for many campaigns, batching the exact P(best) between 1 and 2 and
the guardrails in 3. The simulator calls the batched parts directly (`models`, `allocator.decisions.policies`,
`allocator.decisions.guardrails`, `allocator.decisions.stopping`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from allocator.decisions.allocation import Allocation, CreativeDecision, History
from allocator.decisions.guardrails import GuardrailSettings, apply_guardrails, clear_losers, held_masks
from allocator.decisions.policies import PolicyContext, target_shares
from allocator.decisions.portfolio import before_date, portfolio_models
from allocator.decisions.reasons import (
    NOT_LIVE_PAUSED,
    Reason,
    held_learning,
    held_recent,
    money,
    not_live_expired,
    reason_text,
    stop_text,
)
from allocator.decisions.settings import (
    build_model,
    decision_rng,
    guardrail_settings,
    sharpen_today,
)
from allocator.decisions.stopping import PhaseDecision, decide_phase, rule_applies
from allocator.decisions.warnings import (
    authorization_warning,
    learning_out_of_reach,
    learning_state,
)
from allocator.plan import CampaignPlan
from models.observations import DailyObservations
from models.posterior import SMALL, Posterior
from models.prob_best import scaled_beta_max


@dataclass
class Prepared:
    """Step 1's output: the decision's inputs, who may run, and the posterior of the live creatives.

    `live_post` may have its exact P(best) filled in by a batch driver (`reallocate_many`) before step 2.
    """

    plan: CampaignPlan
    daily: DailyObservations  # the days before the decision date only
    date: dt.date
    history: History
    model: Any
    post: Posterior
    live: np.ndarray  # (n_creatives,) bool
    live_idx: np.ndarray
    live_post: Posterior
    status: list[str]
    not_live_reason: list[str]
    warnings: list[str]
    days: int  # days with impressions


@dataclass(frozen=True)
class Targets:
    """Step 2's output: the phase, the policy's target shares and what the guardrails need besides them."""

    phase: PhaseDecision
    winner_id: str | None
    leader_id: str | None
    target: np.ndarray
    prob_best: np.ndarray  # NaN where not live
    loss: np.ndarray
    post_mean: np.ndarray
    held: np.ndarray
    held_reason: list[str]
    settings: GuardrailSettings
    losers: np.ndarray


@dataclass(frozen=True)
class BudgetRow:
    """Step 3's output for one campaign: budgets, reason codes (`Reason`), unspent remainder."""

    budgets: np.ndarray
    codes: np.ndarray
    unspent: float


def reallocate(
    plan: CampaignPlan,
    daily: DailyObservations,
    date: dt.date,
    history: History | None = None,
    rng: np.random.Generator | None = None,
    model: Any = None,
    fit_path: Path | None = None,
) -> Allocation:
    """Budgets for `date` from the results before it: `prepare`, `targets`, `budgets`, `explain`.

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
    prep = prepare(plan, daily, date, history, rng, model, fit_path)
    tgt = targets(prep)
    (row,) = budgets([(prep, tgt)])
    return explain(prep, tgt, row)


def reallocate_many(
    jobs: list[tuple[CampaignPlan, DailyObservations, dt.date, History | None]],
) -> list[Allocation]:
    """`reallocate` for many campaigns in one pass, with identical results.

    The steps run per campaign as in `reallocate`; the numeric core is batched across campaigns: the exact
    probability of best and expected loss of every conjugate posterior (`scaled_beta_max` on a stacked
    (n_campaigns, n_creatives) array per creative count, between `prepare` and `targets`) and the guardrails
    (`budgets`). Each campaign uses `decision_rng(seed, date)`, as `reallocate`.
    Hierarchical plans with equal `[model]`, `[prior]`, objective and draws are fitted together as one
    portfolio (shared hyperpriors, one fit; see `allocator.decisions.portfolio`): their results are the portfolio's, not
    those of one fit per campaign.
    """
    fitted = portfolio_models(jobs)
    preps = [
        prepare(plan, daily, date, history, None, model, None)
        for (plan, daily, date, history), model in zip(jobs, fitted, strict=True)
    ]
    _exact_prob_best([p.live_post for p in preps])
    tgts = [targets(p) for p in preps]
    rows = budgets(list(zip(preps, tgts, strict=True)))
    return [explain(p, t, r) for p, t, r in zip(preps, tgts, rows, strict=True)]


def _exact_prob_best(posts: list[Posterior]) -> None:
    """Fill in the exact P(best) and expected maximum of every small conjugate posterior, one stacked
    `scaled_beta_max` per creative count."""
    by_size: dict[int, list[int]] = {}
    for k, post in enumerate(posts):
        if post.marginals is not None and 1 < post.n_creatives <= SMALL:
            by_size.setdefault(post.n_creatives, []).append(k)
    for members in by_size.values():
        m = [x for x in (posts[k].marginals for k in members) if x is not None]  # all set, by the filter above
        p, e_max = scaled_beta_max(
            np.stack([x.alpha for x in m]), np.stack([x.beta for x in m]), np.stack([x.scale for x in m])
        )
        for row, k in enumerate(members):
            posts[k].set_exact(p[row], float(e_max[row]))


def prepare(
    plan: CampaignPlan,
    daily: DailyObservations,
    date: dt.date,
    history: History | None = None,
    rng: np.random.Generator | None = None,
    model: Any = None,
    fit_path: Path | None = None,
) -> Prepared:
    """Step 1: the data before `date`, who may receive budget (paused, authorization ended) with the
    authorization warnings, and the fitted posterior of the live creatives."""
    camp = plan.campaign
    ids = plan.creative_ids
    if daily.creative_ids != ids:
        raise ValueError("daily observations must be over the plan's creatives in plan order")
    daily = before_date(daily, date)
    history = History.from_plan(plan) if history is None else history
    rng = decision_rng(camp.seed, date) if rng is None else rng
    model = build_model(plan) if model is None else model
    n = len(ids)
    warnings: list[str] = []
    status = ["running"] * n
    live = np.ones(n, dtype=bool)
    not_live_reason = [""] * n
    for i, c in enumerate(plan.creatives):
        if c.status == "paused":
            live[i], status[i], not_live_reason[i] = False, "paused", NOT_LIVE_PAUSED
        else:
            if c.auth_expires is not None and c.auth_expires <= date:
                live[i], status[i] = False, "expired"
                not_live_reason[i] = not_live_expired(c.auth_expires.isoformat())
            auth = authorization_warning(c, date)
            if auth is not None:
                warnings.append(auth)
    fit_kwargs = {"save_to": fit_path} if fit_path is not None and model.name == "hierarchical" else {}
    post: Posterior = model.fit(daily, camp.objective, n_draws=plan.decision.draws, rng=rng, **fit_kwargs)
    warnings.extend(post.diagnostics.get("warnings", []))
    days = int((daily.impressions.sum(axis=1) > 0).sum()) if daily.n_days else 0
    live_idx = np.flatnonzero(live)
    return Prepared(
        plan,
        daily,
        date,
        history,
        model,
        post,
        live,
        live_idx,
        post.subset(live_idx),
        status,
        not_live_reason,
        warnings,
        days,
    )


def targets(prep: Prepared) -> Targets:
    """Step 2: the stopping rule's phase, the policy's target over the live creatives, the holds (days
    between changes, the learning phase) with their warnings, and the clear losers."""
    plan, daily, date, history = prep.plan, prep.daily, prep.date, prep.history
    camp, g = plan.campaign, plan.guardrails
    ids = plan.creative_ids
    n, live, live_idx, live_post, warnings = len(ids), prep.live, prep.live_idx, prep.live_post, prep.warnings
    phase = decide_phase(
        live_post,
        prep.days,
        plan.decision.min_days,
        plan.decision.prob_best,
        plan.decision.value_remaining,
        stop=rule_applies(camp.policy, plan.decision.stop),
    )
    winner_id = None if phase.winner is None else ids[live_idx[phase.winner]]
    leader_id = None if phase.leader is None else ids[live_idx[phase.leader]]
    target = np.zeros(n)
    prob_best = np.full(n, np.nan)
    loss = np.full(n, np.nan)
    post_mean = np.full(n, np.nan)
    if live_idx.size:
        if phase.winner is not None:
            target[live_idx[phase.winner]] = 1.0
        else:
            ctx = PolicyContext(
                day=prep.days, min_days=plan.decision.min_days, sharpen=sharpen_today(plan, daily, date)
            )
            target[live_idx] = target_shares(camp.policy, live_post, ctx)
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

    age, conv_total, first_week = learning_state(plan, daily, date)
    never = 10**9  # days since a change that never happened
    since = np.array([never if last is None else (date - last).days for last in history.last_change])
    recent, learning = held_masks(
        live, history.previous, since, age, conv_total, g.min_days_between_changes, g.hold_learning,
        g.learning_days, g.learning_conversions,
    )  # fmt: skip
    held = recent | learning
    held_reason = [
        held_recent(int(since[i]), g.min_days_between_changes)
        if recent[i]
        else held_learning(int(age[i]), g.learning_days, float(conv_total[i]), g.learning_conversions)
        if learning[i]
        else ""
        for i in range(n)
    ]
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
    reach = learning_out_of_reach(plan, daily, live) if (learning_now.any() or few) else None
    if reach:
        warnings.append(reach)
    settings = guardrail_settings(plan)
    losers = clear_losers(prob_best[None, :], loss[None, :], post_mean[None, :], live[None, :], settings)[0]
    return Targets(phase, winner_id, leader_id, target, prob_best, loss, post_mean, held, held_reason, settings, losers)


def budgets(jobs: list[tuple[Prepared, Targets]]) -> list[BudgetRow]:
    """Step 3: the guardrails (`apply_guardrails`), one batched call per group of campaigns with the same
    rules and creative count (one campaign is a batch of one)."""
    groups: dict[tuple[GuardrailSettings, int], list[int]] = {}
    for k, (_, t) in enumerate(jobs):
        groups.setdefault((t.settings, t.target.size), []).append(k)
    rows: list[BudgetRow | None] = [None] * len(jobs)
    for (settings, _), members in groups.items():
        out = apply_guardrails(
            np.stack([jobs[k][1].target for k in members]),
            np.stack([jobs[k][0].history.previous for k in members]),
            np.stack([jobs[k][0].live for k in members]),
            np.stack([jobs[k][1].held for k in members]),
            settings,
            winner_phase=np.array([jobs[k][1].phase.winner is not None for k in members]),
            losers=np.stack([jobs[k][1].losers for k in members]),
        )
        for row, k in enumerate(members):
            rows[k] = BudgetRow(out.budgets[row], out.reasons[row], float(out.unspent[row]))
    return [r for r in rows if r is not None]


def explain(prep: Prepared, tgt: Targets, row: BudgetRow) -> Allocation:
    """Step 4: the unspent-budget warning, each creative's reason in words (`reasons.reason_text`) and the
    `Allocation`."""
    plan, daily, date, history, post = prep.plan, prep.daily, prep.date, prep.history, prep.post
    camp, g = plan.campaign, plan.guardrails
    n, live, live_idx, warnings = len(plan.creatives), prep.live, prep.live_idx, prep.warnings
    budgets, codes, unspent = row.budgets, row.codes, row.unspent
    target, prob_best, loss, post_mean = tgt.target, tgt.prob_best, tgt.loss, tgt.post_mean
    settings, phase, winner_id = tgt.settings, tgt.phase, tgt.winner_id
    status, not_live_reason, held_reason = prep.status, prep.not_live_reason, tgt.held_reason
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
    stopped = stop_text(
        phase.reason or None,
        phase.leader_prob_best,
        phase.value_remaining,
        plan.decision.prob_best,
        plan.decision.value_remaining,
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
        reason = reason_text(
            code,
            c.id,
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
            stopped,
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
        model=str(post.diagnostics.get("model", prep.model.name)),
        policy=camp.policy,
        objective=camp.objective,
        phase=phase.phase,
        winner=winner_id,
        leader=tgt.leader_id,
        value_remaining=phase.value_remaining if live_idx.size and np.isfinite(phase.value_remaining) else None,
        data_first=None if not daily.n_days else daily.dates[0].astype(dt.date),
        data_last=None if not daily.n_days else daily.dates[-1].astype(dt.date),
        warnings=warnings,
        creatives=decisions,
        diagnostics={k: v for k, v in post.diagnostics.items() if k != "warnings"},
        stopped_by=phase.reason or None,
        stop_reason=stopped,
    )


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

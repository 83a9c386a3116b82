"""One policy on one (batched) world, day by day: the simulator's mirror of `allocator.decisions.engine`.

Each simulated day: the conjugate posterior of the reported data (`models.batch.BatchPosterior.from_counts`,
the engine's update) or the hierarchical model's (`simulations.hier_fits`), the stopping rule
(`allocator.decisions.stopping.decide_phase_batch`), the policy's target over the live creatives
(`allocator.decisions.policies`, or a simulator-only policy of `simulations.sim_policies`), the holds for the
days between changes and the learning phase, and the platform guardrails
(`allocator.decisions.guardrails.apply_guardrails`). Then the world delivers impressions and conversions.
Arrays have shape (n_replicates, n_creatives); the only Python loop is over days.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from allocator.decisions.guardrails import GuardrailSettings, apply_guardrails, clear_losers, held_masks
from allocator.decisions.policies import POLICIES, PolicyContext, sharpen, sharpen_exponent
from allocator.decisions.settings import section_settings
from allocator.decisions.stopping import PHASE_WINNER, decide_phase_batch, rule_applies
from models.batch import BatchPosterior, DrawsBatchPosterior
from models.beta_draws import DrawBuffers
from models.cost import CostModel
from simulations.hier_fits import _HierarchicalFits
from simulations.sim_policies import SIM_POLICIES, sim_policy
from simulations.study import Study
from simulations.world import (
    CampaignWorld,
    Dynamics,
    study_delay_cdf,
    study_prior,
)

# Per-replicate figures of one policy (arrays of shape (n_replicates,)), and per-day series (n_replicates, T).
SCALARS = (
    "conversions",
    "spend",
    "regret",
    "units",
    "units_on_best",
    "correct",
    "declared",
    "decision_day",
    "fallbacks",
)
SERIES = ("regret_t", "units_t", "units_on_best_t", "prob_best_t")


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Holds:
    min_days_between_changes: int = 0
    hold_learning: bool = False
    learning_days: int = 0
    learning_conversions: int = 0


def guardrails_for(study: Study, volume: float | np.ndarray) -> tuple[GuardrailSettings, Holds]:
    """The plan's guardrails for a simulated campaign. Unit-cost mode without [guardrails]: none at all (no
    minimum, floor, step limit or hold: the textbook Bernoulli bandit), budgets in whole impressions."""
    g = study.guardrails
    unit = study.world.unit_cost
    if g is None and unit:
        return GuardrailSettings(
            total=volume, min_budget=0.0, max_budget=None, max_change=1e12, exploration_floor=0.0, resolution=1.0
        ), Holds()
    if g is None:
        from allocator.plan import Guardrails

        g = Guardrails()
    settings = section_settings(g, volume, 1.0 if unit else 0.01)
    holds = Holds(g.min_days_between_changes, g.hold_learning, g.learning_days, g.learning_conversions)
    return settings, holds


def _one_hot(index: np.ndarray, n: int) -> np.ndarray:
    return (np.arange(n) == np.asarray(index)[:, None]).astype(np.float64)


# ------------------------------------------------------------------------------ one campaign
def policy_days(
    world: CampaignWorld,
    dyn: Dynamics,
    study: Study,
    policy: str,
    rng: np.random.Generator,
    record: bool = False,
    buffers: DrawBuffers | None = None,
) -> Generator[int, None, dict[str, np.ndarray]]:
    """Run `policy` on `world` for the study's periods, one day at a time: yields each period t after deciding
    and delivering it, then returns the figures (after the final posterior). `run_policy_on_world` runs it to
    the end; `simulations.runner.run_chunk` steps the policies of a chunk together, so that before each
    period (and the final posterior) it can set the standard normals that every policy's posterior draws of
    that day share (`DrawBuffers.common_normals`).

    `buffers` holds the posterior draws, reused from day to day (and from run to run when the caller passes
    the same one).

    Returns per-replicate arrays SCALARS (n_replicates,) and SERIES (n_replicates, periods); with `record`,
    also "budgets", "previous", "live", "held", "winner_phase", "reasons", "target", "impressions",
    "conversions", "reported", "cpm", "rate" per day, shape (periods, n_replicates, n_creatives) (for tests).
    """
    n_rep, k = world.shape
    periods = study.study.periods
    prior = study_prior(study)
    dec = study.decision
    settings, holds = guardrails_for(study, world.volume)
    n_draws = study.study.posterior_draws
    buffers = DrawBuffers() if buffers is None else buffers
    unit = world.unit_cost
    w_cpm = prior.cpm_weight
    rows = np.arange(n_rep)
    # The policies' prior: the study's, or one per row (cross-fitted priors of a history replay).
    pa = prior.alpha if world.prior_alpha is None else world.prior_alpha[:, None]
    pb = prior.beta if world.prior_beta is None else world.prior_beta[:, None]

    imps_obs = np.zeros((n_rep, k))
    conv_obs = np.zeros((n_rep, k))
    spend_obs = np.zeros((n_rep, k))
    window = 0 if dyn.delay_pmf is None else dyn.delay_pmf.size
    pending = np.zeros((max(window, 1), n_rep, k))
    prev = np.zeros((n_rep, k))
    last_change = np.full((n_rep, k), -(10**9))
    first_live = np.full((n_rep, k), -1)
    days_live = np.zeros((n_rep, k))
    cum_imps = np.zeros((n_rep, k))
    days_data = np.zeros(n_rep, dtype=int)
    # Delay correction of the conjugate posterior (models.conjugate): the last len(cdf) days' impressions
    # count n x F(age); kept in a ring buffer. Age as in models.delay.delay_ages: deciding day t, day t-1
    # (the newest day of data) is age 0.
    cdf = study_delay_cdf(study, dyn)
    n_cdf = 0 if cdf is None or cdf == (1.0,) else len(cdf)
    recent = np.zeros((max(n_cdf, 1), n_rep, k))
    miss = None if not n_cdf else 1.0 - np.asarray(cdf)

    def exposure(t: int) -> np.ndarray:
        """Effective impressions of days 0..t-1 at the end of day t-1."""
        if miss is None:
            return imps_obs
        deficit = sum(recent[(t - 1 - a) % n_cdf] * miss[a] for a in range(min(t, n_cdf)))
        return imps_obs - deficit

    # The CPM part of conversions_per_dollar: the engine's Gamma-Poisson cost model (None: unit cost).
    cost = None if unit else CostModel(prior_cpm=prior.cpm, prior_impressions=w_cpm)

    def conjugate(t: int, present: np.ndarray) -> BatchPosterior:
        """The conjugate posterior of the data reported by the end of day t-1 (the engine's update)."""
        return BatchPosterior.from_counts(
            pa, pb, conv_obs, exposure(t), present, n_draws, rng, cost, imps_obs, spend_obs, buffers
        )

    out: dict[str, np.ndarray] = {name: np.zeros(n_rep) for name in SCALARS}
    out["decision_day"] = np.full(n_rep, np.nan)
    out["declared"] = np.zeros(n_rep)
    series = {name: np.zeros((n_rep, periods)) for name in SERIES}
    declared_correct = np.zeros(n_rep)
    rec: dict[str, list] = {}
    flags = sim_policy(policy)
    oracle, per_unit = flags.knows_truth, flags.draws_per_unit
    fn = None if policy in SIM_POLICIES else POLICIES[policy]
    best = np.zeros(n_rep, dtype=int)
    hier = _HierarchicalFits(study, world, dyn, periods) if study.study.model == "hierarchical" and not oracle else None

    post: BatchPosterior | DrawsBatchPosterior
    for t in range(periods):
        # [policy] sharpen_to: 1 on the first period, sharpen_to on the last (the test's planned end)
        c_t = float(sharpen_exponent(study.policy.sharpen_to, t / max(periods - 1, 1)))
        present = np.broadcast_to(world.present(t), (n_rep, k))
        mult = dyn.rate_multiplier(t, days_live, cum_imps)
        rate = world.rates * mult
        # world.cpm is set whenever the world is not unit-cost
        value = rate if unit else rate * 1000.0 / (cast(np.ndarray, world.cpm) * dyn.cpm_multiplier(t))
        value = np.where(present, value, -np.inf)
        best = np.argmax(value, axis=1)
        best_value = value[rows, best]
        any_live = present.any(axis=1)

        if oracle:
            target = _one_hot(best, k)
            won = any_live.copy()
        else:
            conj = conjugate(t, present)
            if hier is not None:
                post, fell_back = hier.posterior(t, present, conj.scale, n_draws, rng)
                out["fallbacks"] += fell_back
            else:
                post = conj
            phase = decide_phase_batch(
                post, days_data, dec.min_days, dec.prob_best, dec.value_remaining, stop=rule_applies(policy, dec.stop)
            )
            won = phase.phase == PHASE_WINNER
            if per_unit:
                per_imp = replace(conj, n_draws=max(int(np.max(world.volume)), 1), buffers=None)
                shares = sharpen(per_imp.prob_best(), c_t)
            else:
                assert fn is not None  # every policy but the simulator-only ones is in POLICIES
                shares = fn(post, PolicyContext(day=days_data, min_days=dec.min_days, sharpen=c_t))
            shares = np.where(present, np.nan_to_num(np.asarray(shares, dtype=np.float64), nan=0.0), 0.0)
            target = np.where(won[:, None], _one_hot(np.maximum(phase.winner, 0), k), shares)
            series["prob_best_t"][:, t] = post.prob_best()[rows, best]
            newly = won & (out["declared"] == 0)
            out["decision_day"] = np.where(newly, t, out["decision_day"])
            declared_correct = np.where(newly, (phase.winner == best).astype(float), declared_correct)
            out["declared"] = np.where(newly, 1.0, out["declared"])

        age = np.where(first_live >= 0, t - first_live, 0)
        held_changed, held_learn = held_masks(
            present, prev, t - last_change, age, conv_obs, holds.min_days_between_changes, holds.hold_learning,
            holds.learning_days, holds.learning_conversions,
        )  # fmt: skip
        held = held_changed | held_learn
        losers = None
        if settings.pause_below_prob_best > 0 and not oracle:
            losers = clear_losers(*_loser_inputs(post, present), present, settings)
        decision = apply_guardrails(target, prev, present, held, settings, winner_phase=won, losers=losers)
        budgets = decision.budgets

        # --- delivery
        if unit:
            imps = np.rint(budgets)
            spend = np.zeros_like(imps) if world.spend_cpm is None else imps * world.spend_cpm / 1000.0
            cpm_today = None
        else:
            cpm_today = dyn.cpm_today(cast(np.ndarray, world.cpm), budgets, t, rng)
            imps = rng.poisson(budgets / cpm_today * 1000.0).astype(np.float64)
            spend = budgets
        conv = rng.binomial(imps.astype(np.int64), np.clip(rate, 0.0, 1.0)).astype(np.float64)
        if window:
            split = rng.multinomial(conv.astype(np.int64), cast(np.ndarray, dyn.delay_pmf))  # (n_rep, k, window)
            for d in range(window):
                pending[(t + d) % window] += split[:, :, d]
            reported = pending[t % window].copy()
            pending[t % window] = 0.0
        else:
            reported = conv
        if hier is not None:
            hier.record(t, imps, spend, split if window else conv[:, :, None])
        conv_obs += reported
        imps_obs += imps
        if n_cdf:
            recent[t % n_cdf] = imps
        spend_obs += spend

        # --- metrics. Regret: expected conversions of the whole day's budget on the best creative (the oracle's
        # allocation) minus those of the policy's budgets, each at the CPM its spend meets (noise and saturation
        # in expectation: `Dynamics.spend_yield`; 1 in unit-cost mode).
        total = budgets.sum(axis=1)
        got = budgets * np.where(present, value, 0.0)
        reference = total * np.where(any_live, best_value, 0.0)
        if not unit:
            got *= dyn.spend_yield(budgets)
            reference *= dyn.spend_yield(total)
        series["regret_t"][:, t] = reference - got.sum(axis=1)
        series["units_t"][:, t] = budgets.sum(axis=1)
        series["units_on_best_t"][:, t] = budgets[rows, best]
        out["conversions"] += conv.sum(axis=1)
        out["spend"] += spend.sum(axis=1)
        if oracle:
            series["prob_best_t"][:, t] = np.nan

        if record:
            for name, arr in (
                ("budgets", budgets),
                ("previous", prev),
                ("live", present),
                ("held", held),
                ("winner_phase", np.broadcast_to(won[:, None], (n_rep, k))),
                ("impressions", imps),
                ("conversions", conv),
                ("reported", reported),
                ("reasons", decision.reasons),
                ("target", target),
                ("cpm", cpm_today if cpm_today is not None else np.full((n_rep, k), np.nan)),
                ("rate", rate),
            ):
                rec.setdefault(name, []).append(np.array(arr))

        # --- state for tomorrow
        changed = np.abs(budgets - prev) > 1e-9
        last_change = np.where(changed, t, last_change)
        started = (imps > 0) & (first_live < 0)
        first_live = np.where(started, t, first_live)
        days_live += imps > 0
        cum_imps += imps
        days_data += (imps > 0).any(axis=1)
        prev = budgets
        yield t

    out["regret"] = series["regret_t"].sum(axis=1)
    out["units"] = series["units_t"].sum(axis=1)
    out["units_on_best"] = series["units_on_best_t"].sum(axis=1)
    if oracle:
        out["correct"] = np.full(n_rep, np.nan)
        out["declared"] = np.full(n_rep, np.nan)
    else:
        # The final leader: the posterior after the last day, over the creatives live in the last period.
        present = np.broadcast_to(world.present(periods - 1), (n_rep, k))
        post = conjugate(periods, present)
        if hier is not None:
            post, fell_back = hier.posterior(periods, present, post.scale, n_draws, rng)
            out["fallbacks"] += fell_back
        final_correct = (post.leader() == best).astype(float)
        out["correct"] = np.where(out["declared"] > 0, declared_correct, final_correct)
    out.update(series)
    if record:
        out.update({name: np.stack(v) for name, v in rec.items()})
    return out


def _to_the_end[**P, R](days: Callable[P, Generator[int, None, R]]) -> Callable[P, R]:
    """The function that runs the generator function `days` to its end and returns its return value."""

    @functools.wraps(days)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        steps = days(*args, **kwargs)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    return run


#: `policy_days` run to the end: the figures of `policy` on `world` (its own normals, one run alone).
run_policy_on_world = _to_the_end(policy_days)


def _loser_inputs(post, present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prob_best, expected_loss, mean), shape (n_replicates, n_creatives), for `clear_losers`: exact for
    the conjugate posterior as `allocator.decisions.engine` computes them (`scaled_beta_max` over the live
    creatives), so the simulator pauses the same creatives as `reallocate`; from the draws otherwise."""
    if not isinstance(post, BatchPosterior):
        return post.prob_best(), post.expected_loss(), post.mean()
    from models.prob_best import scaled_beta_max

    n_rep, k = post.shape
    p = np.zeros((n_rep, k))
    loss = np.full((n_rep, k), np.nan)
    mean = np.where(present, post.scale * post.alpha / (post.alpha + post.beta), np.nan)
    masks, group = np.unique(present, axis=0, return_inverse=True)
    for g, mask in enumerate(masks):
        rows, cols = np.flatnonzero(group.ravel() == g), np.flatnonzero(mask)
        if not cols.size:
            continue
        sub = np.ix_(rows, cols)
        pb, e_max = scaled_beta_max(post.alpha[sub], post.beta[sub], post.scale[sub])
        p[sub] = pb
        loss[sub] = np.maximum(np.asarray(e_max).reshape(-1, 1) - mean[sub], 0.0)
    return p, loss, mean

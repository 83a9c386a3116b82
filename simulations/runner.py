"""The study runner: every policy, every replicate, one day at a time.

Each simulated day mirrors `allocator.decisions.engine.reallocate`, batched over replicates (arrays of shape
(n_replicates, n_creatives)): the conjugate posterior of the reported data (`models.batch.BatchPosterior`),
the stopping rule (`allocator.decisions.stopping.decide_phase_batch`), the policy's target over the live creatives
(`allocator.decisions.policies`), holds for the days between changes and the learning phase, and the platform
guardrails (`allocator.decisions.guardrails.apply_guardrails`). Then the world delivers impressions and conversions.
There is no Python loop over impressions, draws or replicates; only over days (and past campaigns). With
study.model = "hierarchical" the posterior is the hierarchical model's instead, fitted per replicate
(`_HierarchicalFits`, `models.batch.DrawsBatchPosterior`): a loop over replicates, ~0.3 s a fit.

Reproducibility: replicates are cut into fixed chunks of `study.chunk_size`; chunk c draws its world from
SeedSequence(seed, spawn_key=(c, 0, campaign)) (the same world for every policy: common random numbers) and
its outcomes from SeedSequence(seed, spawn_key=(c, 1, crc32(policy), campaign)). Results therefore depend on
the seed and the chunk size only, not on how many workers run the chunks, nor where.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from allocator.decisions.guardrails import GuardrailSettings, apply_guardrails, clear_losers, in_learning_phase
from allocator.decisions.policies import POLICIES, PolicyContext, sharpen, sharpen_exponent
from allocator.decisions.stopping import PHASE_WINNER, decide_phase_batch, rule_applies
from models.batch import BatchPosterior, DrawsBatchPosterior
from models.cost import CostModel
from simulations.history import PastCampaign
from simulations.sim_policies import SIM_POLICIES, sim_policy
from simulations.study import Study
from simulations.world import (
    CampaignWorld,
    Dynamics,
    build_worlds,
    dynamics,
    stack_worlds,
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


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to run chunks: the validated study and the parsed history (if any)."""

    study: Study
    history: list[PastCampaign] | None = None
    batch: bool = True  # history replay: all campaigns in one padded batch (False: a loop, the reference)

    @property
    def replicates(self) -> int:
        return self.study.study.replicates

    @property
    def chunk_size(self) -> int:
        return self.study.study.chunk_size

    @property
    def n_chunks(self) -> int:
        return -(-self.replicates // self.chunk_size)

    def with_overrides(
        self, replicates: int | None = None, seed: int | None = None, model: str | None = None
    ) -> StudySpec:
        upd: dict = {}
        if replicates is not None:
            upd["replicates"] = replicates
        if seed is not None:
            upd["seed"] = seed
        if model is not None:
            upd["model"] = model
        if not upd:
            return self
        # validated again (e.g. thompson_per_impression needs the conjugate model)
        data = self.study.model_dump()
        data["study"].update(upd)
        return replace(self, study=type(self.study).model_validate(data))


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
    settings = GuardrailSettings(
        total=volume,
        min_budget=g.min_budget,
        max_budget=g.max_budget,
        max_change=g.max_change,
        exploration_floor=g.exploration_floor,
        resolution=1.0 if unit else 0.01,
        spend_all=g.spend_all,
        pause_below_prob_best=g.pause_below_prob_best,
        pause_min_expected_loss=g.pause_min_expected_loss,
    )
    holds = Holds(g.min_days_between_changes, g.hold_learning, g.learning_days, g.learning_conversions)
    return settings, holds


def _one_hot(index: np.ndarray, n: int) -> np.ndarray:
    return (np.arange(n) == np.asarray(index)[:, None]).astype(np.float64)


# ------------------------------------------------------------------------------ one campaign
def reported_by(lagged: np.ndarray, t: int) -> np.ndarray:
    """Conversions of days 0..t-1 reported by the end of day t-1, from `lagged` (days, ..., lags): the
    conversions of each day by report lag. Day d is t-1-d days old then, so its lags 0..t-1-d are in.
    Returns shape (t, ...)."""
    window = lagged.shape[-1]
    age = (t - 1) - np.arange(t)
    return np.cumsum(lagged[:t], axis=-1)[np.arange(t), ..., np.minimum(age, window - 1)]


def study_delay_cdf(study: Study, dyn: Dynamics) -> tuple[float, ...] | None:
    """The delay CDF F(age) every model of a study corrects with: `[model] delay_cdf`, else the world's true
    delay, else None (no delay). `delay_cdf = [1.0]` switches the correction off in a delayed world."""
    if study.model.delay_cdf is not None:
        return tuple(study.model.delay_cdf)
    if dyn.delay_pmf is not None:
        # reported within `lag` days; F(0) > 0 is required, and F is 1 from the window's end
        return tuple(np.clip(np.cumsum(dyn.delay_pmf) / dyn.delay_pmf.sum(), 1e-3, 1.0)[:-1]) + (1.0,)
    return None


class _HierarchicalFits:
    """The hierarchical model's posterior for every replicate of one campaign, refitted each day.

    Keeps the impressions, spend and conversions by day and report lag, so each day's fit sees what the
    engine would: each past day's conversions reported so far. One fit per replicate and day (the compiled
    model is reused: ~0.3 s a fit), so studies with it should be small. The model's attribution delay is the
    study's ``[model] delay_cdf``, else the world's true delay.
    """

    def __init__(self, study: Study, world: CampaignWorld, dyn: Dynamics, periods: int) -> None:
        from allocator.decisions.settings import hierarchical_model

        m = study.model
        cdf = study_delay_cdf(study, dyn) or (1.0,)
        self.model = hierarchical_model(
            m, study_prior(study), delay_cdf=cdf, on_failure="fallback", reuse_compiled=True
        )
        n_rep, k = world.shape
        window = 1 if dyn.delay_pmf is None else dyn.delay_pmf.size
        self.world = world
        self.imps = np.zeros((periods, n_rep, k))
        self.spend = np.zeros((periods, n_rep, k))
        self.lagged = np.zeros((periods, n_rep, k, window))  # conversions of day d reported after lag days
        self.dates = np.datetime64("2026-01-05", "D") + np.arange(periods)

    def record(self, t: int, imps: np.ndarray, spend: np.ndarray, lagged: np.ndarray) -> None:
        self.imps[t], self.spend[t], self.lagged[t] = imps, spend, lagged

    def reported(self, t: int) -> np.ndarray:
        """Conversions of days 0..t-1 reported by the end of day t-1, shape (t, n_replicates, n_creatives)."""
        return reported_by(self.lagged, t)

    def posterior(
        self, t: int, live: np.ndarray, scale: np.ndarray, n_draws: int, rng: np.random.Generator
    ) -> tuple[DrawsBatchPosterior, np.ndarray]:
        """The posterior of the objective before day t's delivery (data of days 0..t-1), and which
        replicates' fits fell back to the conjugate model."""
        import warnings

        from models.observations import DailyObservations

        n_rep, k = live.shape
        reported = self.reported(t)
        samples = np.empty((n_rep, n_draws, k))
        fell_back = np.zeros(n_rep, dtype=bool)
        organic = self.world.organic
        for r in range(n_rep):
            daily = DailyObservations(
                self.world.creative_ids,
                self.dates[:t],
                self.imps[:t, r],
                np.zeros((t, k)),
                reported[:, r],
                self.spend[:t, r],
            )
            model = replace(self.model, organic_rate=None if organic is None else organic[r])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                post = model.fit(daily, "conversion_rate", n_draws, rng)
            samples[r] = post.draws * scale[r]
            fell_back[r] = bool(post.diagnostics.get("fallback"))
        return DrawsBatchPosterior(samples, live), fell_back


def run_policy_on_world(
    world: CampaignWorld,
    dyn: Dynamics,
    study: Study,
    policy: str,
    rng: np.random.Generator,
    record: bool = False,
) -> dict[str, np.ndarray]:
    """Run `policy` on `world` for the study's periods.

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
        if not n_cdf:
            return imps_obs
        deficit = sum(recent[(t - 1 - a) % n_cdf] * miss[a] for a in range(min(t, n_cdf)))
        return imps_obs - deficit

    # The CPM part of conversions_per_dollar: the engine's Gamma-Poisson cost model (None: unit cost).
    cost = None if unit else CostModel(prior_cpm=prior.cpm, prior_impressions=w_cpm)

    def conjugate(t: int, present: np.ndarray) -> BatchPosterior:
        """The conjugate posterior of the data reported by the end of day t-1 (the engine's update)."""
        return BatchPosterior.from_counts(
            pa, pb, conv_obs, exposure(t), present, n_draws, rng, cost, imps_obs, spend_obs
        )

    out = {name: np.zeros(n_rep) for name in SCALARS}
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

    for t in range(periods):
        # [policy] sharpen_to: 1 on the first period, sharpen_to on the last (the test's planned end)
        c_t = float(sharpen_exponent(study.policy.sharpen_to, t / max(periods - 1, 1)))
        present = np.broadcast_to(world.present(t), (n_rep, k))
        mult = dyn.rate_multiplier(t, days_live, cum_imps)
        rate = world.rates * mult
        value = rate if unit else rate * 1000.0 / (world.cpm * dyn.cpm_multiplier(t))
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
                per_imp = replace(conj, n_draws=max(int(np.max(world.volume)), 1))
                shares = sharpen(per_imp.prob_best(), c_t)
            else:
                shares = fn(post, PolicyContext(day=days_data, min_days=dec.min_days, sharpen=c_t))
            shares = np.where(present, np.nan_to_num(np.asarray(shares, dtype=np.float64), nan=0.0), 0.0)
            target = np.where(won[:, None], _one_hot(np.maximum(phase.winner, 0), k), shares)
            series["prob_best_t"][:, t] = post.prob_best()[rows, best]
            newly = won & (out["declared"] == 0)
            out["decision_day"] = np.where(newly, t, out["decision_day"])
            declared_correct = np.where(newly, (phase.winner == best).astype(float), declared_correct)
            out["declared"] = np.where(newly, 1.0, out["declared"])

        age = np.where(first_live >= 0, t - first_live, 0)
        held = present & (prev > 0) & (t - last_change < holds.min_days_between_changes)
        if holds.hold_learning:
            held |= (
                present & (prev > 0) & in_learning_phase(age, conv_obs, holds.learning_days, holds.learning_conversions)
            )
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
            cpm_today = dyn.cpm_today(world.cpm, budgets, t, rng)
            imps = rng.poisson(budgets / cpm_today * 1000.0).astype(np.float64)
            spend = budgets
        conv = rng.binomial(imps.astype(np.int64), np.clip(rate, 0.0, 1.0)).astype(np.float64)
        if window:
            split = rng.multinomial(conv.astype(np.int64), dyn.delay_pmf)  # (n_rep, k, window)
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

        # --- metrics (regret in expected conversions: units x (best value - value))
        gap = np.where(present, best_value[:, None] - value, 0.0)
        series["regret_t"][:, t] = (budgets * gap).sum(axis=1)
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


# ------------------------------------------------------------------------------ chunks
def chunk_bounds(spec: StudySpec, chunk: int) -> tuple[int, int]:
    lo = chunk * spec.chunk_size
    return lo, min(lo + spec.chunk_size, spec.replicates)


def _policy_key(name: str) -> int:
    return zlib.crc32(name.encode())


#: Largest batch of history rows (campaigns x replicates) simulated at once: bounds memory (the posterior
#: draws of a batch are rows x posterior_draws x creatives float32).
MAX_BATCH_ROWS = 20_000


def run_chunk(
    spec: StudySpec,
    chunk: int,
    on_policy: Callable[[], None] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run every policy of the study on replicates of chunk `chunk`; metrics summed over campaigns.

    Returns {policy: {name: array}} with SCALARS of shape (n,) and SERIES of shape (n, periods), n the
    chunk's replicates. "correct" is the share of campaigns whose declared winner (else final leader) is the
    true best; "declared" the share of campaigns with a winner; "decision_day" the mean over those.

    History replay runs all past campaigns together (`spec.batch`, the default): padded to the largest
    creative count with a mask (`simulations.world.stack_worlds`), per-row budgets in the guardrails, in
    batches of at most MAX_BATCH_ROWS rows; batch g's outcomes come from SeedSequence(seed, spawn_key=(chunk,
    1, crc32(policy), g)). `spec.batch = False` loops over campaigns instead (the reference it is tested
    against: the same results within standard errors). thompson_per_impression always loops (its draws per
    budget unit would multiply by the batch).
    """
    study = spec.study
    lo, hi = chunk_bounds(spec, chunk)
    n_rep = hi - lo
    seed = study.study.seed
    dyn = dynamics(study)
    world_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk, 0)))
    worlds = build_worlds(study, spec.history, n_rep, world_rng)
    prior = study.prior
    if getattr(prior, "from_history", False) and spec.history:
        from simulations.history import cross_fit_priors

        alpha, beta, _ = cross_fit_priors(spec.history, prior.folds, seed)
        worlds = [
            replace(w, prior_alpha=np.full(n_rep, a), prior_beta=np.full(n_rep, b))
            for w, a, b in zip(worlds, alpha, beta)
        ]
    results: dict[str, dict[str, np.ndarray]] = {}
    per = max(1, MAX_BATCH_ROWS // max(n_rep, 1))
    for policy in study.study.policies:
        # thompson_per_impression draws once per budget unit: batched, that is rows x the largest volume
        batched = (
            spec.batch and study.world.history is not None and len(worlds) > 1 and not sim_policy(policy).draws_per_unit
        )
        groups = [worlds[i : i + per] for i in range(0, len(worlds), per)] if batched else [[w] for w in worlds]
        acc = _Accumulator()
        for g, members in enumerate(groups):
            ss = np.random.SeedSequence(seed, spawn_key=(chunk, 1, _policy_key(policy), g))
            world = stack_worlds(members) if batched else members[0]
            out = run_policy_on_world(world, dyn, study, policy, np.random.default_rng(ss))
            acc.add(out, len(members), n_rep)
        results[policy] = acc.result()
        if on_policy is not None:  # progress within a chunk (a hierarchical chunk can take many minutes)
            on_policy()
    return results


class _Accumulator:
    """Metrics of many campaigns, summed (counts) or averaged over campaigns ignoring NaN (shares, days),
    from runs of one or several campaigns each (rows campaign-major)."""

    SUMS = (
        "conversions",
        "spend",
        "regret",
        "units",
        "units_on_best",
        "regret_t",
        "units_t",
        "units_on_best_t",
        "fallbacks",
    )
    MEANS = ("correct", "declared", "decision_day", "prob_best_t")

    def __init__(self) -> None:
        self.sums: dict[str, np.ndarray] = {}
        self.nansum: dict[str, np.ndarray] = {}
        self.count: dict[str, np.ndarray] = {}
        self.single: dict[str, np.ndarray] | None = None
        self.runs = 0

    def add(self, out: dict[str, np.ndarray], n_campaigns: int, n_rep: int) -> None:
        self.runs += n_campaigns
        if self.runs == 1:
            self.single = {k: v for k, v in out.items() if k in SCALARS or k in SERIES}
        for name in self.SUMS:
            x = out[name].reshape((n_campaigns, n_rep) + out[name].shape[1:]).sum(axis=0)
            self.sums[name] = self.sums.get(name, 0) + x
        for name in self.MEANS:
            x = out[name].reshape((n_campaigns, n_rep) + out[name].shape[1:])
            self.nansum[name] = self.nansum.get(name, 0) + np.nansum(x, axis=0)
            self.count[name] = self.count.get(name, 0) + np.isfinite(x).sum(axis=0)

    def result(self) -> dict[str, np.ndarray]:
        if self.runs == 1 and self.single is not None:
            return self.single
        out = {name: np.asarray(v, dtype=np.float64) for name, v in self.sums.items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            for name in self.MEANS:
                out[name] = np.where(self.count[name] > 0, self.nansum[name] / np.maximum(self.count[name], 1), np.nan)
        return out


# ------------------------------------------------------------------------------ the study
@dataclass
class StudyResult:
    """All replicates of every policy: {policy: {name: array}} with SCALARS (replicates,) and SERIES
    (replicates, periods), replicates in order."""

    name: str
    replicates: int
    periods: int
    unit_cost: bool
    policies: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # CPU time of the chunks, summed over the processes that ran them


def _timed_chunk(
    spec: StudySpec,
    chunk: int,
    on_policy: Callable[[], None] | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    import time

    t0 = time.process_time()
    out = run_chunk(spec, chunk, on_policy)
    return out, time.process_time() - t0


def _merge(spec: StudySpec, timed: list[tuple[dict[str, dict[str, np.ndarray]], float]]) -> StudyResult:
    s = spec.study.study
    parts = [p for p, _ in timed]
    res = StudyResult(
        s.name, spec.replicates, s.periods, spec.study.world.unit_cost, cpu_seconds=float(sum(c for _, c in timed))
    )
    for policy in s.policies:
        res.policies[policy] = {
            name: np.concatenate([p[policy][name] for p in parts], axis=0) for name in parts[0][policy]
        }
    return res


def run_study(
    spec: StudySpec,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StudyResult:
    """Run all chunks: in this process (workers=1), in a local process pool (workers > 1), or on a Dask
    distributed cluster at `scheduler` (dask.distributed is imported only then). The numbers are the same
    in every case. `progress(done, total)` is called after each chunk (in this process: after each policy of
    each chunk, counting chunk-policies)."""
    n = spec.n_chunks
    parts: list[dict | None] = [None] * n
    done = 0

    def tick() -> None:
        if progress is not None:
            progress(done, n)

    if scheduler is not None:
        try:
            from dask.distributed import Client, as_completed
        except ImportError:
            from models.errors import SparkBanditError

            raise SparkBanditError(
                "--scheduler needs dask.distributed; install it with: pip install 'sparkbandit[dask]'"
            ) from None

        with Client(scheduler, set_as_default=False, timeout="20s") as client:
            spec_f = client.scatter(spec, broadcast=True)
            futures = {client.submit(_timed_chunk, spec_f, c, pure=False): c for c in range(n)}
            for fut in as_completed(futures, loop=client.loop):
                parts[futures[fut]] = fut.result()
                done += 1
                tick()
    elif workers > 1 and n > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures import as_completed as cf_completed

        # forkserver, not fork: the caller may have threads (a progress bar, a Dask client), and forking a
        # multi-threaded process can deadlock. The server imports the simulator once; workers fork from it.
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["simulations.runner"])
        else:
            ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(workers, n), mp_context=ctx, initializer=_ignore_sigint)
        try:
            futures = {pool.submit(_timed_chunk, spec, c): c for c in range(n)}
            for fut in cf_completed(futures):
                parts[futures[fut]] = fut.result()
                done += 1
                tick()
        except BaseException:
            # Ctrl-C (or any failure): stop now rather than after the running chunks (a chunk can take
            # minutes): cancel what has not started and end the workers.
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
    else:
        # In this process the progress counts policies within chunks too: `progress(done, total)` then
        # counts chunk-policies (total = chunks x policies), so a single long chunk still moves the bar.
        n_pol = len(spec.study.study.policies)
        steps = 0

        def step() -> None:
            nonlocal steps
            steps += 1
            if progress is not None:
                progress(steps, n * n_pol)

        for c in range(n):
            parts[c] = _timed_chunk(spec, c, step)
    return _merge(spec, parts)  # type: ignore[arg-type]


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


def _ignore_sigint() -> None:
    """Pool workers ignore Ctrl-C: the terminal sends it to the whole process group, and the parent alone
    decides to stop (ending the workers), so no worker prints its own traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool) -> None:
    """Cancel pending chunks and end the pool's worker processes (SIGTERM, then SIGKILL after 1 s)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=1.0)


def load_spec(path) -> StudySpec:
    """Read a study file (and its history CSV, if any) into a StudySpec."""
    from simulations.history import read_history
    from simulations.study import load_study

    loaded = load_study(path)
    hp = loaded.history_path
    history = None if hp is None else read_history(hp)
    study = loaded.study
    if history is not None and study.world.history_money and any(p.spend is None for p in history):
        # no spend to drive a money world: replay impressions (unit-cost mode)
        data = study.model_dump()
        data["world"]["history_money"] = False
        study = type(study).model_validate(data)
    return StudySpec(study, history)

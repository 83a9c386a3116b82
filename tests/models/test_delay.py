"""Attribution delay: F(a) from restatements, and the delay-corrected conjugate model."""

from __future__ import annotations

import numpy as np

from models.conjugate import BetaPrior, ConjugateModel
from models.delay import (
    cdf_at,
    effective_impressions,
    estimate_delay_cdf,
    versions_to_known,
)
from models.observations import DailyObservations
from simulations.study import load_study
from simulations.world import dynamics


def test_cdf_at_and_effective_impressions_exact():
    cdf = (0.5, 0.8, 1.0)
    np.testing.assert_array_equal(cdf_at(cdf, np.array([0, 1, 2, 3, 10])), [0.5, 0.8, 1.0, 1.0, 1.0])
    imps = np.array([[100.0, 10.0], [200.0, 20.0], [300.0, 30.0], [400.0, 40.0]])  # the last day is age 0
    got = effective_impressions(imps, cdf)
    np.testing.assert_allclose(got, [100 + 200 + 300 * 0.8 + 400 * 0.5, 10 + 20 + 24 + 20])
    np.testing.assert_array_equal(effective_impressions(imps, None), imps.sum(axis=0))


def test_conjugate_posterior_with_fractional_counts_is_exact():
    dates = np.datetime64("2026-11-01") + np.arange(3)
    imps = np.array([[1000.0, 2000.0], [1000.0, 2000.0], [1000.0, 2000.0]])
    conv = np.array([[3.0, 5.0], [2.0, 4.0], [1.0, 1.0]])
    daily = DailyObservations(("a", "b"), dates, imps, imps * 0.01, conv, imps * 0.007)
    cdf = (0.4, 0.9, 1.0)
    post = ConjugateModel(BetaPrior(1.0, 5000.0), delay_cdf=cdf).fit(
        daily, "conversion_rate", n_draws=100, rng=np.random.default_rng(0)
    )
    n_eff = np.array([1000 * (1 + 0.9 + 0.4), 2000 * (1 + 0.9 + 0.4)])
    c = conv.sum(axis=0)
    np.testing.assert_allclose(post.marginals.alpha, 1.0 + c)
    np.testing.assert_allclose(post.marginals.beta, 5000.0 + n_eff - c)
    plain = ConjugateModel(BetaPrior(1.0, 5000.0)).fit(
        daily, "conversion_rate", n_draws=100, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(plain.marginals.beta, 5000.0 + imps.sum(axis=0) - c)


def _restatements(pmf: np.ndarray, n_days: int, n_creatives: int, rng: np.random.Generator):
    """Each creative-day's conversions split by report lag, seen at every age: known[u, a] = reported by
    age a (cumulative), as a daily export pipeline records them."""
    window = pmf.size
    conv = rng.poisson(15.0, size=n_days * n_creatives)
    lagged = rng.multinomial(conv, pmf)  # (units, window)
    known = np.cumsum(lagged, axis=1).astype(float)
    day = np.repeat(np.arange(n_days), n_creatives)
    return known, conv.astype(float), day, window


def test_delay_cdf_recovered_from_simulated_restatements():
    pmf = dynamics(load_study("configs/studies/delay.toml").study).delay_pmf  # geometric, half-life 1.5
    truth = np.cumsum(pmf)
    rng = np.random.default_rng(11)
    known, final, day, window = _restatements(pmf, 60, 5, rng)
    fit = estimate_delay_cdf(known, final, day, n_boot=300, rng=np.random.default_rng(1))
    assert fit.cdf.shape == (window,) and fit.cdf[-1] == 1.0
    assert np.all(np.diff(fit.cdf) >= 0)
    inner = slice(0, window - 1)
    assert np.all(np.abs(fit.cdf[inner] - truth[inner]) < 3 * fit.se[inner])
    # The bootstrap sd matches the binomial sd of a share of ~4,500 conversions: sqrt(F (1 - F) / N).
    binom = np.sqrt(truth[inner] * (1 - truth[inner]) / final.sum())
    assert np.all((fit.se[inner] > 0.5 * binom) & (fit.se[inner] < 2.5 * binom))
    assert np.all((fit.low <= fit.cdf) & (fit.cdf <= fit.high))


def test_versions_to_known_uses_the_latest_version_by_each_age():
    # Unit 0: versions at ages 0 (2), 2 (5), final seen at age 8; unit 1 never seen old enough: dropped.
    known, final, keep = versions_to_known(
        [np.array([0, 2]), np.array([0])], [np.array([2.0, 5.0]), np.array([1.0])], np.array([8, 2]), window=4
    )
    assert keep.tolist() == [True, False]
    np.testing.assert_array_equal(known, [[2.0, 2.0, 5.0, 5.0]])
    np.testing.assert_array_equal(final, [5.0])


def test_recent_day_bias_removed_in_the_delay_world():
    """The delay.toml world: 10 days at a constant rate, conversions reported with its 7-day delay. The
    plain conjugate posterior mean reads the rate low; with the world's F it is unbiased."""
    pmf = dynamics(load_study("configs/studies/delay.toml").study).delay_pmf
    window = pmf.size
    cdf = tuple(np.cumsum(pmf)[:-1]) + (1.0,)
    rate, n_days, n_rep, imps = 3e-4, 10, 400, 20_000.0
    rng = np.random.default_rng(3)
    conv = rng.binomial(int(imps), rate, size=(n_rep, n_days))
    lagged = rng.multinomial(conv, pmf)  # (rep, day, lag)
    age = n_days - 1 - np.arange(n_days)
    reported = np.array(
        [[lagged[r, d, : min(age[d], window - 1) + 1].sum() for d in range(n_days)] for r in range(n_rep)], dtype=float
    )
    dates = np.datetime64("2026-11-01") + np.arange(n_days)
    means = {True: [], False: []}
    for r in range(n_rep):
        daily = DailyObservations(
            ("x", "y"),
            dates,
            np.full((n_days, 2), imps),
            np.zeros((n_days, 2)),
            np.stack([reported[r], reported[r]], axis=1),
            np.full((n_days, 2), 100.0),
        )
        for corrected in (True, False):
            m = ConjugateModel(BetaPrior(1.0, 1.0), delay_cdf=cdf if corrected else None)
            means[corrected].append(m.fit(daily, "conversion_rate", 16, np.random.default_rng(0)).mean()[0])
    for corrected in (True, False):
        x = np.asarray(means[corrected])
        se = x.std(ddof=1) / np.sqrt(n_rep)
        if corrected:
            assert abs(x.mean() - rate) < 3 * se
        else:
            assert x.mean() < rate - 5 * se


def test_one_age_definition_in_the_conjugate_model_the_hierarchical_design_and_the_simulator():
    """The newest day of data is age 0 (models.delay.delay_ages) for the conjugate correction, the
    hierarchical design and the simulator: exact F per day, and simulated days replayed through the
    engine with the world's delay CDF give the simulator's budgets to the cent."""
    from allocator.plan import Campaign, CampaignPlan, Creative, Decision, Guardrails, ModelSettings, Prior
    from models.delay import delay_ages
    from models.hierarchical.design import _design
    from simulations.world import study_delay_cdf
    from tests.simulations.helpers import MONEY, run_one, study
    from tests.support.replay import replay_matches_engine

    np.testing.assert_array_equal(delay_ages(4), [3, 2, 1, 0])
    cdf = (0.5, 0.8, 1.0)
    dates = np.datetime64("2026-11-01") + np.arange(4)
    imps = np.array([[100.0], [200.0], [300.0], [400.0]])
    daily = DailyObservations(("a",), dates, imps, imps * 0.01, np.ones((4, 1)), imps * 0.007)
    design = _design([daily], [None], "none", cdf)
    # the design merges days with the same F: ages 3 and 2 (F = 1), age 1 (0.8), age 0 (0.5)
    got = sorted(zip(design.cell_delay.tolist(), design.cell_impressions.tolist()))
    assert got == [(0.5, 400), (0.8, 300), (1.0, 300)]
    post = ConjugateModel(BetaPrior(1.0, 5000.0), delay_cdf=cdf).fit(
        daily, "conversion_rate", n_draws=10, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(post.marginals.beta, 5000.0 + (100 + 200 + 0.8 * 300 + 0.5 * 400) - 4.0, rtol=1e-12)

    g = {"min_days_between_changes": 0, "learning_days": 0, "hold_learning": False, "exploration_floor": 0.05}
    s = study(MONEY, study={"periods": 9}, guardrails=g, decision={"min_days": 100}, world={"delay": {"window": 3}})
    world_cdf = study_delay_cdf(s, dynamics(s))
    assert world_cdf is not None and len(world_cdf) == 3 and world_cdf[0] < 0.9
    r = run_one(s, "greedy", n_rep=3)
    ids = tuple(f"creative-{i + 1}" for i in range(4))
    plan = CampaignPlan(
        campaign=Campaign(name="sim", daily_budget=500.0, policy="greedy"),
        prior=Prior(),  # the study has none: the plan's default, as the simulator uses
        guardrails=Guardrails(**g),
        decision=Decision(min_days=100),
        model=ModelSettings(delay_cdf=list(world_cdf)),
        creatives=[Creative(id=i) for i in ids],
    )
    replay_matches_engine(plan, r)

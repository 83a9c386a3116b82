"""Conjugate Beta-Binomial model: exact posterior means, draws, seeding, daily vs totals."""

from __future__ import annotations

import numpy as np
import pytest

from models.conjugate import BetaPrior, ConjugateModel
from models.cost import CostModel
from models.observations import DailyObservations, Observations

IDS = ("a", "b", "c")
IMPS = np.array([120_000.0, 90_000.0, 0.0])
CLICKS = np.array([1300.0, 800.0, 0.0])
CONV = np.array([30.0, 12.0, 0.0])
SPEND = np.array([900.0, 700.0, 0.0])


def obs() -> Observations:
    return Observations(IDS, IMPS, CLICKS, CONV, SPEND)


def test_conversion_rate_posterior_mean_exact():
    model = ConjugateModel(conversion_prior=BetaPrior(2.0, 8000.0))
    post = model.fit(obs(), "conversion_rate", n_draws=10, rng=np.random.default_rng(0))
    np.testing.assert_allclose(post.mean(), (2.0 + CONV) / (2.0 + 8000.0 + IMPS), rtol=1e-14)
    a, b = model.rate_params(obs(), "conversions")
    np.testing.assert_array_equal(a, 2.0 + CONV)
    np.testing.assert_array_equal(b, 8000.0 + IMPS - CONV)


def test_conversions_per_dollar_is_rate_times_impressions_per_dollar():
    cost = CostModel(prior_cpm=7.0, prior_impressions=1000.0)
    model = ConjugateModel(conversion_prior=BetaPrior(1.0, 5000.0), cost=cost)
    post = model.fit(obs(), "conversions_per_dollar", n_draws=10, rng=np.random.default_rng(0))
    shape0, rate0 = 1000.0, 1000.0 * 7.0 / 1000.0
    ipd = (shape0 + IMPS) / (rate0 + SPEND)
    np.testing.assert_allclose(cost.impressions_per_dollar(obs()), ipd, rtol=1e-14)
    np.testing.assert_allclose(post.mean(), (1.0 + CONV) / (5001.0 + IMPS) * ipd, rtol=1e-14)
    # A creative with no data: prior rate times the prior 1000 / CPM impressions per dollar.
    assert post.mean()[2] == pytest.approx(1 / 5001 * 1000 / 7.0, rel=1e-14)
    np.testing.assert_allclose(post.marginals.scale, ipd, rtol=1e-14)


def test_click_rate_objective():
    model = ConjugateModel(click_prior=BetaPrior(1.0, 99.0))
    post = model.fit(obs(), "click_rate", n_draws=10, rng=np.random.default_rng(0))
    np.testing.assert_allclose(post.mean(), (1.0 + CLICKS) / (100.0 + IMPS), rtol=1e-14)
    np.testing.assert_array_equal(post.marginals.scale, np.ones(3))
    assert post.objective == "click_rate"
    assert post.cpa_draws.shape == (10, 3)


@pytest.mark.parametrize("objective", ["conversions_per_dollar", "conversion_rate", "click_rate"])
def test_draws_mean_within_4_se(objective):
    n_draws = 20_000
    post = ConjugateModel().fit(obs(), objective, n_draws=n_draws, rng=np.random.default_rng(11))
    assert post.draws.shape == (n_draws, 3)
    m = post.marginals
    a, b, s = m.alpha, m.beta, m.scale
    sd = s * np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    se = sd / np.sqrt(n_draws)
    assert np.all(np.abs(post.draws.mean(axis=0) - post.mean()) <= 4 * se)


def test_seeded_rng_gives_identical_draws():
    p1 = ConjugateModel().fit(obs(), n_draws=500, rng=np.random.default_rng(42))
    p2 = ConjugateModel().fit(obs(), n_draws=500, rng=np.random.default_rng(42))
    p3 = ConjugateModel().fit(obs(), n_draws=500, rng=np.random.default_rng(43))
    np.testing.assert_array_equal(p1.draws, p2.draws)
    np.testing.assert_array_equal(p1.cpa_draws, p2.cpa_draws)
    assert not np.array_equal(p1.draws, p3.draws)


def test_daily_observations_equal_totals():
    rng = np.random.default_rng(3)
    imps = rng.integers(1000, 20000, size=(6, 3)).astype(float)
    clicks = np.floor(imps * 0.01)
    conv = np.floor(imps * 0.0003)
    spend = imps / 125.0
    dates = np.arange("2026-11-01", "2026-11-07", dtype="datetime64[D]")
    daily = DailyObservations(IDS, dates, imps, clicks, conv, spend)
    totals = Observations(IDS, imps.sum(0), clicks.sum(0), conv.sum(0), spend.sum(0))
    pd_ = ConjugateModel().fit(daily, n_draws=300, rng=np.random.default_rng(5))
    pt = ConjugateModel().fit(totals, n_draws=300, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(pd_.draws, pt.draws)
    np.testing.assert_array_equal(pd_.mean(), pt.mean())
    assert pd_.creative_ids == IDS


def test_invalid_prior_and_objective():
    with pytest.raises(ValueError, match="must be > 0"):
        BetaPrior(0.0, 1.0)
    with pytest.raises(KeyError):
        ConjugateModel().fit(obs(), "clicks_per_dollar")

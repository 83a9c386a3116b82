"""Posterior: summaries from exact marginals and from draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.posterior import Posterior, ScaledBeta
from models.prob_best import prob_best_scaled_beta
from tests.support.prob_best_reference import quad_prob_best

ALPHA = np.array([11.0, 25.0, 18.0])
BETA = np.array([40_000.0, 52_000.0, 47_000.0])
SCALE = np.array([120.0, 95.0, 130.0])


def post(n_draws: int = 50_000, seed: int = 1, marginals: bool = True) -> Posterior:
    rng = np.random.default_rng(seed)
    draws = rng.beta(ALPHA, BETA, size=(n_draws, 3)) * SCALE
    m = ScaledBeta(ALPHA, BETA, SCALE) if marginals else None
    return Posterior(("a", "b", "c"), "conversions_per_dollar", draws, marginals=m)


def test_mean_exact_and_from_draws():
    p = post()
    np.testing.assert_allclose(p.mean(), SCALE * ALPHA / (ALPHA + BETA), rtol=1e-14)
    q = post(marginals=False)
    sd = SCALE * np.sqrt(ALPHA * BETA / ((ALPHA + BETA) ** 2 * (ALPHA + BETA + 1)))
    assert np.all(np.abs(q.mean() - p.mean()) <= 4 * sd / np.sqrt(q.draws.shape[0]))


def test_interval_is_exact_beta_quantiles():
    iv = post().interval(0.9)
    assert iv.shape == (3, 2)
    np.testing.assert_allclose(iv[:, 0], stats.beta.ppf(0.05, ALPHA, BETA) * SCALE, rtol=1e-10)
    np.testing.assert_allclose(iv[:, 1], stats.beta.ppf(0.95, ALPHA, BETA) * SCALE, rtol=1e-10)
    np.testing.assert_allclose(post().quantile(0.3), stats.beta.ppf(0.3, ALPHA, BETA) * SCALE, rtol=1e-10)
    # From draws: each empirical quantile within 4 standard errors of the exact one; the standard error of
    # the sample q-quantile of N draws is sqrt(q (1 - q) / N) / f(x_q), f the density there.
    n = 50_000
    for col, q in ((0, 0.05), (1, 0.95)):
        x = stats.beta.ppf(q, ALPHA, BETA)
        se = SCALE * np.sqrt(q * (1 - q) / n) / stats.beta.pdf(x, ALPHA, BETA)
        assert np.all(np.abs(post(n, marginals=False).interval(0.9)[:, col] - iv[:, col]) < 4 * se)


def test_expected_loss_non_negative_and_zero_for_dominant():
    p = post()
    assert np.all(p.expected_loss() >= 0)
    draws = np.column_stack([np.full(100, 5.0), np.linspace(0.0, 4.0, 100)])
    d = Posterior(("x", "y"), "conversion_rate", draws)
    loss = d.expected_loss()
    assert loss[0] == 0.0
    assert loss[1] == pytest.approx(5.0 - 2.0)


def test_value_remaining_and_leader():
    draws = np.array([[2.0, 1.0], [2.0, 3.0], [2.0, 1.5], [2.0, 1.0]])
    d = Posterior(("x", "y"), "conversion_rate", draws)
    assert d.leader() == 0  # best in 3 of 4 draws
    # ratios (best - lead) / lead: 0, 0.5, 0, 0 -> quantile 1.0 = 0.5, quantile 0.5 = 0
    assert d.value_remaining(1.0) == pytest.approx(0.5)
    assert d.value_remaining(0.5) == 0.0
    single = Posterior(("x",), "conversion_rate", draws[:, :1])
    assert single.value_remaining() == 0.0 and single.leader() == 0


def test_leader_ties_broken_by_mean():
    draws = np.array([[1.0, 0.0], [0.0, 3.0]])
    assert Posterior(("x", "y"), "r", draws).leader() == 1


def test_subset():
    p = post(n_draws=100)
    s = p.subset([2, 0])
    assert s.creative_ids == ("c", "a")
    np.testing.assert_array_equal(s.draws, p.draws[:, [2, 0]])
    np.testing.assert_allclose(s.mean(), p.mean()[[2, 0]])
    ref = quad_prob_best(ALPHA[[2, 0]], BETA[[2, 0]], SCALE[[2, 0]])
    np.testing.assert_allclose(s.prob_best(), ref, atol=1e-4)


def test_prob_best_methods():
    p = post(n_draws=100_000)
    exact = quad_prob_best(ALPHA, BETA, SCALE)
    np.testing.assert_allclose(p.prob_best("exact"), exact, atol=1e-4)
    np.testing.assert_array_equal(p.prob_best("auto"), p.prob_best("exact"))
    assert p.prob_best("exact").sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(p.prob_best("exact"), prob_best_scaled_beta(ALPHA, BETA, SCALE), atol=1e-4)
    mc = p.prob_best("mc")
    se = np.sqrt(exact * (1 - exact) / 100_000)
    assert np.all(np.abs(mc - exact) <= 4 * se + 1e-12)
    q = post(n_draws=100, marginals=False)
    np.testing.assert_array_equal(q.prob_best("auto"), q.prob_best("mc"))
    with pytest.raises(ValueError, match="exact probability of best needs independent scaled-Beta marginals"):
        q.prob_best("exact")
    with pytest.raises(ValueError, match="unknown method 'bayes'"):
        p.prob_best("bayes")


def test_draws_shape_checked():
    with pytest.raises(ValueError, match=r"draws must have shape \(n_draws, 2\)"):
        Posterior(("x", "y"), "r", np.zeros((10, 3)))

"""Empirical-Bayes priors: exact marginal likelihoods, recovery of a known Beta, CPM moments, CV."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from models.empirical_bayes import (
    beta_binomial_loglik,
    beta_binomial_logpmf,
    cross_validate,
    fit_beta_binomial,
    fit_cpm,
    fold_of,
    method_of_moments,
    pct,
)
from models.errors import ModelError


@pytest.mark.parametrize(
    "k, n, a, b", [(0, 1, 1.0, 1.0), (1, 1, 1.0, 1.0), (2, 5, 0.5, 3.0), (3, 10, 2.0, 7.5), (7, 40, 1.3, 20.0)]
)
def test_marginal_likelihood_matches_a_direct_computation(k, n, a, b):
    # P(k | n) = C(n, k) integral p^k (1 - p)^(n - k) Beta(p; a, b) dp, by quadrature.
    direct, _ = integrate.quad(
        lambda p: math.comb(n, k) * p**k * (1 - p) ** (n - k) * stats.beta.pdf(p, a, b), 0, 1, epsabs=1e-14
    )
    assert float(beta_binomial_logpmf(k, n, a, b)) == pytest.approx(math.log(direct), rel=1e-9)


def test_marginal_likelihood_exact_small_cases():
    # Uniform prior: P(k | n) = 1 / (n + 1) for every k.
    assert np.exp(beta_binomial_logpmf(np.arange(4), 3, 1.0, 1.0)) == pytest.approx(np.full(4, 0.25))
    # Beta(1, 1), n = 2: the two creatives (0 of 2, 2 of 2) have likelihood 1/3 each.
    assert beta_binomial_loglik(np.array([0, 2]), np.array([2, 2]), 1.0, 1.0) == pytest.approx(2 * math.log(1 / 3))
    # Beta(2, 3), k = 1 of n = 2: C(2,1) B(3, 4) / B(2, 3) = 2 * (1/60) / (1/12) = 0.4.
    assert math.exp(beta_binomial_logpmf(1, 2, 2.0, 3.0)) == pytest.approx(0.4)
    # The sum over k of the pmf is 1.
    assert np.exp(beta_binomial_logpmf(np.arange(31), 30, 0.7, 4.2)).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        beta_binomial_logpmf(np.arange(31), 30, 0.7, 4.2),
        stats.betabinom.logpmf(np.arange(31), 30, 0.7, 4.2),
        rtol=1e-10,
    )


def test_fit_is_the_maximum_of_the_marginal_likelihood():
    rng = np.random.default_rng(2)
    n = rng.integers(20_000, 200_000, 200).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(4.0, 12_000.0, 200)).astype(float)
    fit = fit_beta_binomial(k, n)
    best = beta_binomial_loglik(k, n, fit.alpha, fit.beta)
    assert fit.log_likelihood == pytest.approx(best)
    for da, db in [(1.02, 1.0), (0.98, 1.0), (1.0, 1.02), (1.0, 0.98), (1.02, 1.02)]:
        assert beta_binomial_loglik(k, n, fit.alpha * da, fit.beta * db) < best
    # The method-of-moments start is in the neighbourhood of the optimum.
    a0, b0 = method_of_moments(k, n)
    assert 0.5 < a0 / fit.alpha < 2 and 0.5 < (a0 / (a0 + b0)) / fit.mean < 1.5


def test_recovers_a_known_beta_within_two_standard_errors():
    """A simulated account of 3,000 past creatives with rates from Beta(3, 10,000)."""
    rng = np.random.default_rng(7)
    n = rng.integers(50_000, 300_000, 3000).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(3.0, 10_000.0, 3000)).astype(float)
    fit = fit_beta_binomial(k, n)
    assert abs(fit.alpha - 3.0) < 2 * fit.se_alpha
    assert abs(fit.beta - 10_000.0) < 2 * fit.se_beta
    assert abs(fit.mean - 3.0 / 10_003.0) < 2 * fit.se_mean
    assert not fit.at_bound and fit.spread_lr > 100


def test_standard_errors_cover_the_truth_at_the_nominal_rate():
    # 60 accounts of 400 creatives: the 2-SE interval of alpha covers 3 in ~95% of them (binomial sd 2.8%).
    rng = np.random.default_rng(8)
    hits = 0
    for _ in range(60):
        n = rng.integers(50_000, 300_000, 400).astype(float)
        k = rng.binomial(n.astype(int), rng.beta(3.0, 10_000.0, 400)).astype(float)
        fit = fit_beta_binomial(k, n)
        hits += abs(fit.alpha - 3.0) < 2 * fit.se_alpha
    assert 0.85 <= hits / 60 <= 1.0


def test_no_spread_reaches_the_bound_and_words():
    fit = fit_beta_binomial(np.array([5.0, 5, 5, 5]), np.array([1000.0, 1000, 1000, 1000]))
    assert fit.at_bound and fit.mean == pytest.approx(0.005, rel=1e-3)
    assert not np.isfinite(fit.se_alpha)
    f = fit_beta_binomial(np.array([30.0, 80, 10, 55, 41]), np.array([1e5, 1e5, 1e5, 1e5, 1e5]))
    lo, hi = f.quantile([0.05, 0.95])
    assert f.words() == (
        f"a new creative is expected to convert at {pct(f.mean)} (90% of creatives between {pct(lo)} and {pct(hi)})"
    )
    assert pct(0.0031) == "0.31%" and pct(0.000312) == "0.031%" and pct(0.012) == "1.2%"


def test_fit_rejects_what_it_cannot_learn_from():
    with pytest.raises(ModelError, match="at least 2 past creatives"):
        fit_beta_binomial(np.array([1.0]), np.array([100.0]))
    with pytest.raises(ModelError, match="no events"):
        fit_beta_binomial(np.array([0.0, 0.0]), np.array([100.0, 100.0]))


def test_cpm_prior_from_moments():
    # Impressions per dollar 1000 / cpm with cpm in {5, 8}: mean 162.5 -> cpm 6.154; shape = mean^2 / var.
    imps = np.array([1e6, 1e6, 1e6, 1e6])
    spend = np.array([5000.0, 8000.0, 5000.0, 8000.0])
    fit = fit_cpm(imps, spend)
    lam = imps / spend
    assert fit.cpm == pytest.approx(1000 / lam.mean())
    assert fit.cpm_weight == pytest.approx(lam.mean() ** 2 / (lam.var(ddof=1) - np.mean(lam / spend)))


def test_folds_are_balanced_and_cross_validation_prefers_the_truth():
    assert sorted(np.bincount(list(fold_of([f"c{i}" for i in range(23)], 5, np.random.default_rng(0)).values()))) == [
        4,
        4,
        5,
        5,
        5,
    ]
    rng = np.random.default_rng(9)
    camp = np.repeat([f"camp{i}" for i in range(200)], 5)
    n = rng.integers(50_000, 200_000, camp.size).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(3.0, 10_000.0, camp.size)).astype(float)
    cv = cross_validate(camp, k, n, current=(1.0, 5000.0), folds=5, rng=np.random.default_rng(0))
    assert cv["folds"] == 5 and cv["creatives"] == camp.size
    assert cv["gain"] == pytest.approx(cv["lpd_learned"] - cv["lpd_current"])
    assert cv["better"] and cv["gain"] > 2 * cv["gain_se"] > 0
    # Scoring the true prior as the "current" one: no significant gain left.
    same = cross_validate(camp, k, n, current=(3.0, 10_000.0), folds=5, rng=np.random.default_rng(0))
    assert abs(same["gain"]) < 3 * same["gain_se"]


def test_cross_validation_scores_each_campaign_with_a_prior_fitted_without_its_fold():
    # learn's check, computed directly: fold j's creatives are scored by the Beta fitted on the other folds.
    rng = np.random.default_rng(4)
    camp = np.repeat([f"camp{i}" for i in range(30)], 3)
    n = rng.integers(20_000, 100_000, camp.size).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(3.0, 10_000.0, camp.size)).astype(float)
    fold_by = fold_of(camp.tolist(), 5, np.random.default_rng(0))
    f = np.array([fold_by[c] for c in camp])

    def lpd(k: np.ndarray, leak: bool = False) -> float:
        out = np.empty(k.size)
        for j in range(5):
            train = np.ones(k.size, bool) if leak else f != j
            fit = fit_beta_binomial(k[train], n[train])
            out[f == j] = beta_binomial_logpmf(k[f == j], n[f == j], fit.alpha, fit.beta)
        return float(out.mean())

    for counts in (k, np.where(camp == "camp7", 10 * k, k)):  # also with one campaign's counts far off
        cv = cross_validate(camp, counts, n, current=(1.0, 5000.0), folds=5, rng=np.random.default_rng(0))
        assert cv["lpd_learned"] == pytest.approx(lpd(counts), rel=1e-12)
        # A prior that saw the held-out fold scores it differently: the check above can tell.
        assert cv["lpd_learned"] != pytest.approx(lpd(counts, leak=True), rel=1e-6)

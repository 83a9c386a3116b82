"""models.beta_draws: the simulator's Beta draws have the right distributions, reuse their buffers, and count
the best creative as an argmax does."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.batch import BatchPosterior, batch_posterior
from models.beta_draws import WILSON_HILFERTY_MIN, DrawBuffers, beta_draws, count_best, gamma_draws, standard_normal


@pytest.mark.parametrize("n", [1, 2, 7, 20_001])
def test_standard_normal_fills_any_size_with_normals(n):
    z = np.full(n, np.nan, dtype=np.float32)
    standard_normal(np.random.default_rng(n), z)
    assert np.all(np.isfinite(z)) and np.all(np.abs(z) < 6.0)  # Box-Muller from 24-bit uniforms: |z| <= 5.77
    if n > 1000:
        assert stats.kstest(z, stats.norm.cdf).pvalue > 1e-3


@pytest.mark.parametrize("shape", [0.3, 0.7, 1.0, 3.0, 29.0, 31.0, 400.0, 2e5])
def test_gamma_draws_distribution(shape):
    draws = gamma_draws(np.full(4, shape), 5000, np.random.default_rng(4)).ravel()
    assert draws.dtype == np.float32 and np.all(draws > 0)
    assert stats.kstest(draws, stats.gamma(shape).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    "a, b",
    [
        (31.0, 5000.0),  # one normal per draw (both shapes >= 30)
        (300.0, 60_000.0),
        (4e4, 2e8),
        (45.0, 35.0),
        (5.0, 20_000.0),  # an exact Gamma for a, Wilson-Hilferty for b
        (1.0, 1.0),  # both exact
        (0.5, 40.0),
        (2.0, 3.0),
    ],
)
def test_beta_draws_distribution(a, b):
    x = beta_draws(np.full((2, 1), a), np.full((2, 1), b), np.ones((2, 1), bool), 10_000, np.random.default_rng(5))
    assert x.shape == (2, 1, 10_000) and x.dtype == np.float32
    assert stats.kstest(x.ravel(), stats.beta(a, b).cdf).pvalue > 1e-3


def test_one_normal_draws_have_the_distribution_of_two_wilson_hilferty_gammas():
    """Paulson's inverse (one normal per draw) against the ratio of two Wilson-Hilferty Gammas it replaces,
    at the smallest shapes it is used for (where the approximation differs most from the Beta)."""
    rng = np.random.default_rng(6)
    a, b, n = WILSON_HILFERTY_MIN, 40.0, 200_000
    one = beta_draws(np.full((1, 1), a), np.full((1, 1), b), np.ones((1, 1), bool), n, rng).ravel()
    ga, gb = gamma_draws(np.array([a]), n, rng).ravel(), gamma_draws(np.array([b]), n, rng).ravel()
    assert stats.ks_2samp(one, ga / (ga + gb)).pvalue > 1e-3


def test_scale_and_creatives_not_live():
    live = np.array([[True, False, True]])
    a, b, s = np.array([[40.0, 1.0, 3.0]]), np.array([[4000.0, 1.0, 9000.0]]), np.array([[150.0, 2.0, 170.0]])
    x = beta_draws(a, b, live, 20_000, np.random.default_rng(7), scale=s)
    assert np.all(np.isneginf(x[0, 1]))
    sd = s * np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    mean = s * a / (a + b)
    assert np.all(np.abs(x[0, [0, 2]].mean(axis=1) - mean[0, [0, 2]]) < 4 * sd[0, [0, 2]] / np.sqrt(20_000))


def test_count_best_is_the_argmax_count_with_ties_to_the_first():
    rng = np.random.default_rng(8)
    x = rng.integers(0, 3, size=(6, 4, 50)).astype(np.float32)  # many ties
    x[2, 1] = -np.inf
    want = np.stack([np.bincount(row, minlength=4) for row in np.argmax(x.transpose(0, 2, 1), axis=2)])
    np.testing.assert_array_equal(count_best(x), want)


def test_buffers_are_reused_and_stale_draws_refused():
    bufs = DrawBuffers()
    live = np.ones((3, 2), bool)
    first = beta_draws(np.full((3, 2), 50.0), np.full((3, 2), 900.0), live, 64, np.random.default_rng(9), bufs)
    again = beta_draws(np.full((3, 2), 60.0), np.full((3, 2), 800.0), live, 64, np.random.default_rng(9), bufs)
    assert np.shares_memory(first, again)
    rng = np.random.default_rng(10)
    p1 = BatchPosterior(np.full((3, 2), 50.0), np.full((3, 2), 900.0), np.ones((3, 2)), live, 64, rng, bufs)
    pb = p1.prob_best()
    p2 = BatchPosterior(np.full((3, 2), 60.0), np.full((3, 2), 800.0), np.ones((3, 2)), live, 64, rng, bufs)
    p2.prob_best()
    np.testing.assert_array_equal(p1.prob_best(), pb)  # answers already computed stay valid
    with pytest.raises(RuntimeError, match="overwritten"):
        p1.value_remaining()


def test_shared_buffers_give_the_same_answers_as_own_arrays():
    a, b = np.array([[40.0, 45.0, 3.0]]), np.array([[4000.0, 4100.0, 500.0]])
    own = batch_posterior(a, b, n_draws=512, rng=np.random.default_rng(11))
    shared = batch_posterior(a, b, n_draws=512, rng=np.random.default_rng(11))
    shared = BatchPosterior(shared.alpha, shared.beta, shared.scale, shared.live, 512, shared.rng, DrawBuffers())
    np.testing.assert_array_equal(own.draws, shared.draws)
    np.testing.assert_array_equal(own.prob_best(), shared.prob_best())
    np.testing.assert_array_equal(own.value_remaining(), shared.value_remaining())

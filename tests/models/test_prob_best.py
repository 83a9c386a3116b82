"""Probability of being best: exact integration against independent computations and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from models.prob_best import (
    _scaled_beta_max_betainc,
    cumulative_rule,
    prob_best_mc,
    prob_best_scaled_beta,
    scaled_beta_max,
)
from tests.support.prob_best_reference import fine_grid_reference, quad_prob_best


def evan_miller_b_beats_a(a_a: float, b_a: float, a_b: int, b_b: float) -> float:
    """P(X_B > X_A) for X ~ Beta, closed form for integer alpha_B (Evan Miller, 'Formulas for Bayesian
    A/B testing'): sum_{i<a_B} B(a_A+i, b_B+b_A) / ((b_B+i) B(1+i, b_B) B(a_A, b_A))."""
    i = np.arange(int(a_b))
    log_terms = (
        special.betaln(a_a + i, b_b + b_a) - np.log(b_b + i) - special.betaln(1 + i, b_b) - special.betaln(a_a, b_a)
    )
    return float(np.exp(special.logsumexp(log_terms)))


QUAD_CASES = [
    # (alpha, beta, scale)
    ([3.0, 5.0], [2000.0, 2500.0], [1.0, 1.0]),
    ([13.0, 21.0, 8.0], [40000.0, 52000.0, 30000.0], [120.0, 95.0, 140.0]),
    ([2.0, 2.5, 3.0, 1.5], [5.0, 4.0, 6.0, 3.0], [1.0, 1.2, 0.9, 1.1]),
    ([51.0, 60.0, 45.0, 55.0], [250000.0, 260000.0, 240000.0, 245000.0], [130.0, 128.0, 133.0, 129.0]),
]


# The panel rules (the default wherever alpha, beta >= 1) measure ~1e-9 against adaptive quadrature; the
# product's requirement is 1e-6. The reversed-hazard grid (kept for unbounded densities) measures 5e-6..6e-5
# with 96 points per creative, the allocator's old requirement 1e-4, and converges as the grid is refined.
ACCURACY = 1e-6
GRID_ACCURACY = 1e-4


@pytest.mark.parametrize("alpha,beta,scale", QUAD_CASES)
def test_exact_matches_quadrature(alpha, beta, scale):
    a, b, s = np.array(alpha), np.array(beta), np.array(scale)
    ref = quad_prob_best(alpha, beta, scale)
    assert ref.sum() == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(prob_best_scaled_beta(a, b, s), ref, atol=ACCURACY)
    np.testing.assert_allclose(scaled_beta_max(a, b, s)[0], ref, atol=ACCURACY)
    np.testing.assert_allclose(prob_best_scaled_beta(a, b, s, points_per_creative=96), ref, atol=GRID_ACCURACY)
    # Refining the grid converges to the quadrature: the integral is right, only the resolution is coarse.
    fine = prob_best_scaled_beta(a, b, s, points_per_creative=2000)
    np.testing.assert_allclose(fine, ref, atol=1e-6)


@pytest.mark.parametrize("alpha,beta,scale", QUAD_CASES)
def test_two_quadratures_agree(alpha, beta, scale):
    # Panels with CDFs integrated from densities, the composite rule on the exact incomplete Beta function
    # and the reversed-hazard grid are independent methods.
    a, b, s = np.array(alpha), np.array(beta), np.array(scale)
    p, e_max = scaled_beta_max(a, b, s)
    q, e_max_betainc = (x[0] for x in _scaled_beta_max_betainc(a[None], b[None], s[None]))
    np.testing.assert_allclose(q, p, atol=GRID_ACCURACY)
    assert e_max == pytest.approx(float(e_max_betainc), rel=1e-4)
    np.testing.assert_allclose(prob_best_scaled_beta(a, b, s, points_per_creative=96), p, atol=GRID_ACCURACY)


def test_small_alpha_near_zero_matches_quadrature():
    # alpha between 1 and 3 (one or two conversions on a fractional prior): densities like u^0.5 at 0, where
    # an interpolating polynomial is poor unless the panels step geometrically towards the support's end.
    rng = np.random.default_rng(11)
    for _ in range(6):
        n = int(rng.integers(2, 5))
        alpha = rng.uniform(1.0, 1.6, n) + rng.integers(0, 2, n)
        beta = rng.uniform(3000, 9000, n) + rng.integers(0, 20000, n)
        scale = rng.uniform(50.0, 150.0, n)
        ref = quad_prob_best(alpha, beta, scale)
        np.testing.assert_allclose(prob_best_scaled_beta(alpha, beta, scale), ref, atol=ACCURACY)


def test_left_skewed_creatives_match_quadrature_closely():
    # Large alpha with beta between 1.3 and 4 (rates near the top of their scale): the lower tail reaches
    # 10-30 sd below the mean, so the panels must step that far (EDGE_Z from -30); cut at -8 sd they left 1-3e-8,
    # and starting every CDF at the smallest lower tail without those cuts 2.5e-7. The panels measure ~1e-9.
    rng = np.random.default_rng(23)
    for _ in range(6):
        n = int(rng.integers(2, 5))
        alpha = rng.uniform(30.0, 4000.0, n)
        beta = rng.uniform(1.3, 4.0, n)
        ref = quad_prob_best(alpha, beta, np.ones(n))
        np.testing.assert_allclose(scaled_beta_max(alpha, beta)[0], ref, atol=2e-9)  # measured 3e-11


def test_creative_whose_scale_lies_below_the_others_lower_tails():
    # Its whole mass lies below where the others begin (u > 1 at the first edge): F = 1 there, it never wins;
    # the incomplete Beta function at u > 1 is nan and once made the whole campaign nan.
    alpha = np.array([35.5, 2183.4, 125.3, 215.9])
    beta = np.array([2.59, 1.04, 3.48, 1.01])
    scale = np.array([1.69, 0.72, 0.67, 1.85])
    p, e_max = scaled_beta_max(alpha, beta, scale)
    assert np.isfinite(p).all() and np.isfinite(e_max)
    np.testing.assert_allclose(p, quad_prob_best(alpha, beta, scale), atol=ACCURACY)
    assert p[1] == 0.0 and p[2] == 0.0


def test_batched_rows_equal_single_campaigns():
    # Rows of different shapes in one batch: the padding of `_distinct` (empty panels) must not count.
    a = np.array([[31.0, 40, 35], [1.0, 1.0, 1.0], [2.5, 300.0, 2.0]])
    b = np.array([[150e3, 160e3, 155e3], [5000.0, 5000.0, 5000.0], [5000.0, 1.5e6, 9000.0]])
    s = np.array([[125.0, 118, 130], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    p, e_max = scaled_beta_max(a, b, s)
    for row in range(3):
        q, e = scaled_beta_max(a[row], b[row], s[row])
        np.testing.assert_allclose(p[row], q, atol=1e-13)
        assert e_max[row] == pytest.approx(float(e), rel=1e-12)
    np.testing.assert_allclose(p[1], [1 / 3, 1 / 3, 1 / 3], atol=1e-12)


def test_cumulative_rule_integrates_polynomials_exactly():
    x, w, cum = cumulative_rule(6)
    for degree in range(6):
        exact = (x ** (degree + 1) - (-1.0) ** (degree + 1)) / (degree + 1)
        np.testing.assert_allclose(cum @ x**degree, exact, atol=1e-13)
    np.testing.assert_allclose(cum[np.argmax(x)] @ np.ones(6), x.max() + 1.0, atol=1e-13)
    assert w.sum() == pytest.approx(2.0, abs=1e-14)


@pytest.mark.parametrize(
    "a_a,b_a,a_b,b_b",
    [(11.0, 4000.0, 15, 4100.0), (3.5, 900.0, 2, 1200.0), (40.0, 60.0, 45, 55.0), (1.0, 1.0, 1, 1.0)],
)
def test_two_betas_match_evan_miller_closed_form(a_a, b_a, a_b, b_b):
    got = prob_best_scaled_beta(np.array([a_a, a_b]), np.array([b_a, b_b]))
    ref = evan_miller_b_beats_a(a_a, b_a, a_b, b_b)
    assert got[1] == pytest.approx(ref, abs=ACCURACY)
    grid = prob_best_scaled_beta(np.array([a_a, a_b]), np.array([b_a, b_b]), points_per_creative=96)
    assert grid[1] == pytest.approx(ref, abs=GRID_ACCURACY)
    assert got.sum() == pytest.approx(1.0, abs=1e-12)
    fine = prob_best_scaled_beta(np.array([a_a, a_b]), np.array([b_a, b_b]), points_per_creative=2000)
    assert fine[1] == pytest.approx(ref, abs=1e-6)


def test_two_uniforms_exact_half():
    np.testing.assert_allclose(prob_best_scaled_beta(np.ones(2), np.ones(2)), [0.5, 0.5], atol=1e-9)


def test_uniform_versus_scaled_uniform():
    # X_0 ~ U(0, 1), X_1 ~ U(0, 2): P(X_0 > X_1) = 1/4 exactly (the density ends at the scale).
    got = prob_best_scaled_beta(np.ones(2), np.ones(2), np.array([1.0, 2.0]))
    np.testing.assert_allclose(got, [0.25, 0.75], atol=1e-6)
    np.testing.assert_allclose(
        scaled_beta_max(np.ones(2), np.ones(2), np.array([1.0, 2.0]))[0], [0.25, 0.75], atol=1e-6
    )


def test_single_and_empty():
    np.testing.assert_array_equal(prob_best_scaled_beta(np.array([3.0]), np.array([7.0])), [1.0])
    assert prob_best_scaled_beta(np.array([]), np.array([])).shape == (0,)
    assert prob_best_mc(np.zeros((10, 0))).shape == (0,)


def test_dominated_creative_gets_zero():
    # Creative 2's 1 - 1e-12 quantile sits far below the others' lower tails.
    alpha = np.array([200.0, 210.0, 5.0])
    beta = np.array([100000.0, 100000.0, 100000.0])
    p = prob_best_scaled_beta(alpha, beta)
    assert p[2] < 1e-12
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_symmetry_identical_creatives():
    for n in (2, 3, 7, 50):
        p = prob_best_scaled_beta(np.full(n, 12.0), np.full(n, 30000.0), np.full(n, 110.0))
        np.testing.assert_allclose(p, 1.0 / n, atol=1e-9)


def test_monte_carlo_agrees_within_4_se():
    rng = np.random.default_rng(20261125)
    alpha = np.array([20.0, 26.0, 23.0, 18.0])
    beta = np.array([90000.0, 95000.0, 99000.0, 80000.0])
    scale = np.array([120.0, 110.0, 125.0, 118.0])
    exact = prob_best_scaled_beta(alpha, beta, scale)
    n_draws = 200_000
    draws = rng.beta(alpha, beta, size=(n_draws, 4)) * scale
    mc = prob_best_mc(draws)
    se = np.sqrt(exact * (1 - exact) / n_draws)
    assert np.all(np.abs(mc - exact) <= 4 * se + 1e-12)
    assert mc.sum() == pytest.approx(1.0)


def test_mc_counts_argmax_exactly():
    draws = np.array([[1.0, 2.0, 0.0], [3.0, 2.0, 1.0], [0.0, 0.5, 0.6], [0.0, 2.0, 1.0]])
    np.testing.assert_array_equal(prob_best_mc(draws), [0.25, 0.5, 0.25])


def test_beta_below_one_is_finite_and_right():
    # X_1 ~ Beta(1, 0.5): F_1(x) = 1 - sqrt(1 - x), so P(U(0,1) > X_1) = 1 - 2/3 = 1/3.
    p = prob_best_scaled_beta(np.array([1.0, 1.0]), np.array([1.0, 0.5]))
    np.testing.assert_allclose(p, [1 / 3, 2 / 3], atol=1e-3)


def test_thousand_creatives_vs_fine_reference():
    # 1,000 creatives with spread-out rates: a realistic portfolio where a few dozen can still win.
    rng = np.random.default_rng(7)
    n = 1000
    imps = rng.uniform(1_000_000, 2_000_000, n)
    rate = rng.lognormal(np.log(2e-4), 1.0, n)
    conv = rng.binomial(imps.astype(int), rate).astype(float)
    alpha, beta = 1.0 + conv, 5000.0 + imps - conv
    scale = rng.uniform(110.0, 140.0, n)
    p = prob_best_scaled_beta(alpha, beta, scale)
    ref = fine_grid_reference(alpha, beta, scale)
    assert ref.sum() == pytest.approx(1.0, abs=1e-6)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.abs(p - ref).max() <= 1e-4


@pytest.mark.slow
def test_thousand_contested_creatives():
    # Hundreds of creatives can win: the region of the maximum is found first, then integrated.
    rng = np.random.default_rng(7)
    n = 1000
    conv = rng.poisson(30, n).astype(float)
    imps = rng.uniform(120_000, 180_000, n)
    alpha, beta = 1.0 + conv, 5000.0 + imps - conv
    scale = rng.uniform(110.0, 140.0, n)
    p = prob_best_scaled_beta(alpha, beta, scale)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.abs(p - fine_grid_reference(alpha, beta, scale)).max() <= 1e-4


beta_params = st.tuples(st.floats(0.5, 400.0), st.floats(1.5, 400.0), st.floats(0.1, 10.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(beta_params, min_size=2, max_size=6), st.randoms(use_true_random=False))
def test_permutation_equivariance_and_sum(params, rnd):
    alpha, beta, scale = (np.array(v) for v in zip(*params))
    p = prob_best_scaled_beta(alpha, beta, scale)
    assert np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-6)
    perm = np.arange(len(params))
    rnd.shuffle(perm)
    q = prob_best_scaled_beta(alpha[perm], beta[perm], scale[perm])
    np.testing.assert_allclose(q, p[perm], atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(beta_params, min_size=2, max_size=5), st.floats(1e-3, 1e3))
def test_scale_invariance(params, k):
    alpha, beta, scale = (np.array(v) for v in zip(*params))
    p = prob_best_scaled_beta(alpha, beta, scale)
    np.testing.assert_allclose(prob_best_scaled_beta(alpha, beta, scale * k), p, atol=1e-9)

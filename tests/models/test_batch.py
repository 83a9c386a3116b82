"""models.batch: the batched posterior agrees with the single-campaign Posterior."""

from __future__ import annotations

import numpy as np
import pytest

from allocator.decisions.stopping import PHASE_EXPLORE, PHASE_OPTIMIZE, PHASE_WINNER, decide_phase, decide_phase_batch
from models.batch import BatchPosterior, DrawsBatchPosterior, batch_posterior
from models.posterior import Posterior, ScaledBeta
from models.prob_best import prob_best_scaled_beta

A = np.array([[3.0, 5.0, 8.0, 4.0], [40.0, 55.0, 61.0, 20.0]])
B = np.array([[20000.0, 21000.0, 19000.0, 30000.0], [150000.0, 160000.0, 150000.0, 90000.0]])
S = np.array([[150.0, 160.0, 140.0, 170.0], [180.0, 160.0, 170.0, 150.0]])


def test_prob_best_matches_exact_within_monte_carlo_error():
    n_draws = 20000
    post = batch_posterior(A, B, S, n_draws=n_draws, rng=np.random.default_rng(1))
    p = post.prob_best()
    for row in range(A.shape[0]):
        exact = prob_best_scaled_beta(A[row], B[row], S[row])
        se = np.sqrt(exact * (1 - exact) / n_draws) + 1e-9
        assert np.all(np.abs(p[row] - exact) < 4 * se + 1e-4), (p[row], exact)
    assert np.allclose(p.sum(axis=1), 1.0)


def test_mean_and_quantile_are_exact():
    post = batch_posterior(A, B, S)
    single = Posterior(tuple("abcd"), "x", np.zeros((1, 4)), marginals=ScaledBeta(A[1], B[1], S[1]))
    assert np.allclose(post.mean()[1], single.mean())
    assert np.allclose(post.quantile(0.9)[1], single.quantile(0.9))
    q = np.array([[0.5], [0.9]])
    assert np.allclose(post.quantile(q)[1], single.quantile(0.9))


def test_creatives_not_live_are_excluded():
    live = np.array([[True, False, True, False], [False, False, True, False]])
    post = batch_posterior(A, B, S, live=live, n_draws=512, rng=np.random.default_rng(2))
    p = post.prob_best()
    assert np.all(p[~live] == 0)
    assert p[1].tolist() == [0.0, 0.0, 1.0, 0.0]  # the only live creative is best for sure
    assert np.all(np.isneginf(post.mean()[~live]))
    assert post.leader()[1] == 2
    assert post.value_remaining()[1] == 0.0
    none = batch_posterior(A[:1], B[:1], S[:1], live=np.zeros((1, 4), bool))
    assert none.prob_best().sum() == 0 and none.leader()[0] == -1


def test_value_remaining_close_to_posterior():
    rng = np.random.default_rng(3)
    post = batch_posterior(A, B, S, n_draws=100_000, rng=rng)
    for row in range(2):
        m = ScaledBeta(A[row], B[row], S[row])
        draws = rng.beta(A[row], B[row], size=(100_000, 4)) * S[row]
        single = Posterior(tuple("abcd"), "x", draws, marginals=m)
        assert post.leader()[row] == single.leader()
        # Two independent estimates of the 0.95 quantile from 100,000 draws each: their difference within 4
        # standard errors, sqrt(q (1 - q) / N) / f(x_q) each, with 1 / f(x_q) estimated from the draws as
        # (Q(q + d) - Q(q - d)) / (2 d) (Siddiqui's estimator).
        lead = draws[:, single.leader()]
        ratio = (draws.max(axis=1) - lead) / lead
        q, d = 0.95, 0.01
        se = np.sqrt(q * (1 - q) / 100_000) * (np.quantile(ratio, q + d) - np.quantile(ratio, q - d)) / (2 * d)
        assert abs(post.value_remaining()[row] - single.value_remaining()) < 4 * np.sqrt(2) * se


def test_decide_phase_batch_matches_decide_phase():
    # Row 0: a clear winner; row 1: a close race; day below min_days in row 2.
    a = np.array([[200.0, 20.0, 25.0], [50.0, 52.0, 49.0], [200.0, 20.0, 25.0]])
    b = np.array([[1e6, 1e6, 1e6], [1e6, 1e6, 1e6], [1e6, 1e6, 1e6]])
    s = np.ones_like(a)
    post = BatchPosterior(a, b, s, np.ones_like(a, bool), 4000, np.random.default_rng(5))
    day = np.array([10, 10, 3])
    got = decide_phase_batch(post, day, 7, 0.95, 0.01)
    assert got.phase.tolist() == [PHASE_WINNER, PHASE_OPTIMIZE, PHASE_EXPLORE]
    assert got.winner.tolist() == [0, -1, -1]
    for row in range(3):
        rng = np.random.default_rng(6)
        single = Posterior(
            tuple("abc"), "x", rng.beta(a[row], b[row], size=(4000, 3)), marginals=ScaledBeta(a[row], b[row], s[row])
        )
        ref = decide_phase(single, int(day[row]), 7, 0.95, 0.01)
        assert ("explore", "optimize", "winner")[got.phase[row]] == ref.phase
        assert got.leader[row] == ref.leader


def test_draws_batch_posterior_gives_the_same_answers_from_the_same_draws():
    live = np.array([[True, True, True, False], [True, True, True, True]])
    post = batch_posterior(A, B, S, live=live, n_draws=4000, rng=np.random.default_rng(3))
    raw = np.where(live[:, None, :], post.draws, 1.0).astype(np.float64)  # masked values must not matter
    dp = DrawsBatchPosterior(raw, live)
    assert dp.shape == post.shape and dp.n_draws == 4000
    np.testing.assert_array_equal(dp.prob_best(), post.prob_best())
    np.testing.assert_allclose(dp.value_remaining(0.95), post.value_remaining(0.95), rtol=1e-6)
    np.testing.assert_allclose(dp.expected_loss(), post.expected_loss(), rtol=1e-5)
    # moments from draws agree with the exact ones within Monte Carlo error (sd / sqrt(4000) ~ 1.6% sd)
    sd = S * np.sqrt(A * B / ((A + B) ** 2 * (A + B + 1)))
    assert np.all(np.abs(dp.mean()[live] - post.mean()[live]) < 4 * sd[live] / np.sqrt(4000))
    q = dp.quantile(0.9)
    assert np.all(np.isneginf(q[~live]))
    # the 0.9 quantile's Monte Carlo se: sqrt(0.9 x 0.1 / 4000) / density ~ 0.027 sd (near-normal): 4.5 se
    assert np.all(np.abs(q[live] - post.quantile(0.9)[live]) < 0.12 * sd[live])
    per_row = dp.quantile(np.array([[0.5], [0.9]]))
    np.testing.assert_allclose(per_row[0, live[0]], dp.quantile(0.5)[0, live[0]])
    np.testing.assert_allclose(per_row[1], q[1])
    assert np.array_equal(dp.leader(), post.leader())


def test_decide_phase_batch_or_rule_and_stop_switch():
    # Row 0: clear winner (probability branch); row 1: near-equal creatives measured precisely (value
    # remaining branch); row 2: a close race with little data (neither).
    a = np.array([[200.0, 20.0], [100_000.0, 100_050.0], [50.0, 52.0]])
    b = np.array([[1e6, 1e6], [1e8, 1e8], [1e6, 1e6]])
    s = np.ones_like(a)
    post = BatchPosterior(a, b, s, np.ones_like(a, bool), 4000, np.random.default_rng(7))
    got = decide_phase_batch(post, 10, 7, 0.95, 0.01)
    assert got.phase.tolist() == [PHASE_WINNER, PHASE_WINNER, PHASE_OPTIMIZE]
    assert got.winner.tolist() == [0, int(got.leader[1]), -1]
    assert got.leader_prob_best[1] < 0.95 and got.value_remaining[1] < 0.01
    assert np.isinf(got.value_remaining[0])  # not needed: decided by the probability of best
    off = decide_phase_batch(post, 10, 7, 0.95, 0.01, stop=False)
    assert off.phase.tolist() == [PHASE_OPTIMIZE] * 3 and off.winner.tolist() == [-1, -1, -1]


def test_from_counts_is_the_engine_conjugate_update():
    """BatchPosterior.from_counts gives exactly the Beta and CPM parameters of the engine's ConjugateModel."""
    from models.conjugate import BetaPrior, ConjugateModel
    from models.cost import CostModel
    from models.observations import Observations

    rng = np.random.default_rng(7)
    imps = rng.integers(1_000, 200_000, size=(3, 4)).astype(float)
    conv = rng.binomial(imps.astype(int), 0.004).astype(float)
    spend = imps * rng.uniform(0.004, 0.012, size=imps.shape)
    cost = CostModel(prior_cpm=9.0, prior_impressions=2_000.0)
    model = ConjugateModel(conversion_prior=BetaPrior(1.5, 4000.0), cost=cost)
    live = np.ones(imps.shape, dtype=bool)
    post = BatchPosterior.from_counts(1.5, 4000.0, conv, imps, live, 64, rng, cost, imps, spend)
    for row in range(imps.shape[0]):
        obs = Observations(tuple("abcd"), imps[row], np.zeros(4), conv[row], spend[row])
        single = model.fit(obs, n_draws=16, rng=rng).marginals
        np.testing.assert_array_equal(post.alpha[row], single.alpha)
        np.testing.assert_array_equal(post.beta[row], single.beta)
        np.testing.assert_allclose(post.scale[row], single.scale, rtol=1e-15)
    rate_only = BatchPosterior.from_counts(1.0, 99.0, conv, imps, live)
    np.testing.assert_array_equal(rate_only.alpha, 1.0 + conv)
    np.testing.assert_array_equal(rate_only.beta, 99.0 + imps - conv)
    np.testing.assert_array_equal(rate_only.scale, np.ones(imps.shape))


def test_from_counts_floors_the_failures_at_zero_and_needs_spend_with_a_cost_model():
    conv = np.array([[5.0, 2.0]])
    exposure = np.array([[4.2, 10.0]])  # delay-corrected impressions a little below the conversions
    post = BatchPosterior.from_counts(1.0, 50.0, conv, exposure, np.ones((1, 2), dtype=bool))
    np.testing.assert_array_equal(post.beta, [[50.0, 58.0]])
    with pytest.raises(ValueError, match="needs impressions and spend"):
        from models.cost import CostModel

        BatchPosterior.from_counts(1.0, 50.0, conv, exposure, np.ones((1, 2), dtype=bool), cost=CostModel())


def test_quantile_rows_is_numpys_linear_quantile():
    from models.batch import _quantile_rows

    rng = np.random.default_rng(12)
    for n in (1, 2, 5, 256, 257):
        x = rng.standard_exponential((4, n))
        for q in (0.0, 0.3, 0.95, 1.0):
            np.testing.assert_allclose(_quantile_rows(x, q), np.quantile(x, q, axis=1), rtol=1e-12)
    # an infinite ratio (a leader drawn at 0) above the quantile's order statistics does not matter; at them,
    # the quantile is infinite (numpy's interpolation gives NaN there)
    x = np.array([[1.0, 2.0, 3.0, np.inf], [1.0, 2.0, np.inf, np.inf]])
    np.testing.assert_array_equal(_quantile_rows(x, 0.5), [2.5, np.inf])

"""Policies: valid shares for every policy, exact formulas, and the stopping rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.decisions.policies import POLICIES, PolicyContext, target_shares, top_two_thompson
from allocator.decisions.stopping import decide_phase, rule_applies
from models.posterior import Posterior, ScaledBeta

ALPHA = np.array([11.0, 25.0, 18.0, 9.0])
BETA = np.array([40_000.0, 52_000.0, 47_000.0, 41_000.0])
SCALE = np.array([120.0, 95.0, 130.0, 125.0])


def post(alpha=ALPHA, beta=BETA, scale=SCALE, n_draws=2000, seed=0) -> Posterior:
    rng = np.random.default_rng(seed)
    draws = rng.beta(alpha, beta, size=(n_draws, len(alpha))) * scale
    ids = tuple(f"c{i}" for i in range(len(alpha)))
    return Posterior(ids, "conversions_per_dollar", draws, marginals=ScaledBeta(alpha, beta, scale))


class BatchStub:
    """A batch of campaigns: every method returns (n_campaigns, n_creatives)."""

    def __init__(self, p: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> None:
        self.p, self.m, self.spread = p, mean, spread
        self.n_creatives = p.shape[1]

    def prob_best(self) -> np.ndarray:
        return self.p

    def mean(self) -> np.ndarray:
        return self.m

    def quantile(self, q) -> np.ndarray:
        return self.m + self.spread * np.asarray(q)


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("day", [0, 3, 10])
def test_every_policy_gives_shares(name, day):
    s = target_shares(name, post(), PolicyContext(day=day, min_days=7))
    assert s.shape == (4,)
    assert np.all(s >= 0)
    assert s.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_on_a_batch(name):
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=6)
    p[0] = [1.0, 0, 0, 0, 0]  # one campaign with a sure winner
    stub = BatchStub(p, rng.uniform(1, 2, (6, 5)), rng.uniform(0, 1, (6, 5)))
    ctx = PolicyContext(day=np.array([0, 2, 7, 8, 20, 3]), min_days=7)
    s = np.asarray(POLICIES[name](stub, ctx))
    assert s.shape == (6, 5)
    assert np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, atol=1e-12)


def test_thompson_is_prob_best():
    p = post()
    np.testing.assert_array_equal(POLICIES["thompson"](p, PolicyContext()), p.prob_best())


def test_top_two_thompson_matches_simulation_of_the_draw_procedure():
    rng = np.random.default_rng(2016)
    p = np.array([0.5, 0.3, 0.15, 0.05])
    stub = BatchStub(p[None, :], np.zeros((1, 4)), np.zeros((1, 4)))
    beta = 0.5
    shares = top_two_thompson(stub, PolicyContext(), beta=beta)[0]
    # Simulate: draw I ~ p; with prob beta play I, else redraw J ~ p until J != I and play J.
    n = 400_000
    first = rng.choice(4, size=n, p=p)
    keep = rng.random(n) < beta
    second = first.copy()
    todo = ~keep
    while todo.any():
        second[todo] = rng.choice(4, size=todo.sum(), p=p)
        todo &= second == first
    played = np.where(keep, first, second)
    freq = np.bincount(played, minlength=4) / n
    se = np.sqrt(shares * (1 - shares) / n)
    assert np.all(np.abs(freq - shares) <= 4 * se)
    # And the closed form: beta p_i + (1 - beta) p_i sum_{j != i} p_j / (1 - p_j).
    odds = p / (1 - p)
    np.testing.assert_allclose(shares, beta * p + (1 - beta) * p * (odds.sum() - odds), atol=1e-12)


def test_top_two_thompson_sure_winner():
    stub = BatchStub(np.array([[0.0, 1.0, 0.0]]), np.zeros((1, 3)), np.zeros((1, 3)))
    np.testing.assert_allclose(top_two_thompson(stub, PolicyContext(), beta=0.5)[0], [0.25, 0.5, 0.25])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=8).filter(lambda v: sum(v) > 1e-3))
def test_top_two_thompson_valid_for_any_prob_best(raw):
    p = np.array(raw) / sum(raw)
    stub = BatchStub(p[None, :], np.zeros((1, p.size)), np.zeros((1, p.size)))
    s = top_two_thompson(stub, PolicyContext())[0]
    assert np.all(s >= 0) and s.sum() == pytest.approx(1.0)


def test_greedy_and_ucb_one_hot():
    p = post()
    best_mean = int(np.argmax(p.mean()))
    np.testing.assert_array_equal(POLICIES["greedy"](p, PolicyContext()), np.eye(4)[best_mean])
    q = 1 - 1 / (30 + 2)
    best_q = int(np.argmax(p.quantile(q)))
    np.testing.assert_array_equal(POLICIES["ucb"](p, PolicyContext(day=30)), np.eye(4)[best_q])
    stub = BatchStub(
        np.full((2, 3), 1 / 3),
        np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]),
        np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
    )
    out = POLICIES["ucb"](stub, PolicyContext(day=np.array([5, 5])))
    np.testing.assert_array_equal(out, [[1.0, 0, 0], [0, 0, 1.0]])


def test_explore_then_commit():
    p = post()
    uniform = np.full(4, 0.25)
    greedy = POLICIES["greedy"](p, PolicyContext())
    for day in range(7):
        np.testing.assert_array_equal(POLICIES["explore_then_commit"](p, PolicyContext(day, 7)), uniform)
    for day in (7, 8, 30):
        np.testing.assert_array_equal(POLICIES["explore_then_commit"](p, PolicyContext(day, 7)), greedy)


def test_decide_phase():
    close = post(n_draws=4000)
    d = decide_phase(close, day=3, min_days=7, prob_best=0.95, value_remaining=0.01)
    assert d.phase == "explore" and d.winner is None and d.leader == close.leader()
    d = decide_phase(close, day=10, min_days=7, prob_best=0.95, value_remaining=0.01)
    assert d.phase == "optimize" and d.winner is None
    # A clear winner: creative 1 has far more conversions per dollar.
    clear = post(
        alpha=np.array([400.0, 900.0, 420.0]), beta=np.array([1e6, 1e6, 1e6]), scale=np.ones(3) * 100, n_draws=4000
    )
    d = decide_phase(clear, day=10, min_days=7, prob_best=0.95, value_remaining=0.01)
    assert d.phase == "winner" and d.winner == 1 and d.leader == 1 and d.reason == "prob_best"
    assert d.leader_prob_best > 0.999
    # OR rule: the probability branch alone declares it, whatever the value-remaining threshold.
    d = decide_phase(clear, day=10, min_days=7, prob_best=0.95, value_remaining=1e-9)
    assert d.phase == "winner" and d.winner == 1 and d.reason == "prob_best"
    d = decide_phase(clear, day=6, min_days=7, prob_best=0.95, value_remaining=0.01)
    assert d.phase == "explore" and d.winner is None


def test_decide_phase_value_remaining_branch():
    """Near-equal creatives measured precisely: no P(best) reaches 0.95, but the others cannot be worth 1%
    more than the leader, so the leader wins on the value remaining (the branch an AND rule never takes)."""
    a = np.array([100_000.0, 100_050.0])
    tied = post(alpha=a, beta=np.array([1e8, 1e8]), scale=np.ones(2), n_draws=4000)
    d = decide_phase(tied, day=10, min_days=7, prob_best=0.95, value_remaining=0.01)
    assert d.leader_prob_best < 0.95
    assert d.phase == "winner" and d.reason == "value_remaining" and d.winner == d.leader
    assert d.value_remaining < 0.01
    # The 95th percentile of the relative gap: sd of the difference ~ sqrt(2) / sqrt(1e5) = 0.45%.
    assert 0.002 < d.value_remaining < 0.008
    d = decide_phase(tied, day=10, min_days=7, prob_best=0.95, value_remaining=0.001)
    assert d.phase == "optimize" and d.winner is None and d.value_remaining >= 0.001
    d = decide_phase(tied, day=6, min_days=7, prob_best=0.95, value_remaining=0.01)
    assert d.phase == "explore"


def test_stop_false_never_declares_a_winner():
    clear = post(
        alpha=np.array([400.0, 900.0, 420.0]), beta=np.array([1e6, 1e6, 1e6]), scale=np.ones(3) * 100, n_draws=4000
    )
    d = decide_phase(clear, day=30, min_days=7, prob_best=0.95, value_remaining=0.01, stop=False)
    assert d.phase == "optimize" and d.winner is None and d.leader == 1


def test_uniform_is_fixed_horizon_and_ab_test_stops():
    assert rule_applies("ab_test") and rule_applies("thompson")
    assert not rule_applies("uniform")
    assert not rule_applies("thompson", stop=False)
    p = post()
    np.testing.assert_array_equal(POLICIES["ab_test"](p, PolicyContext()), np.full(4, 0.25))


def test_sharpen_exact_and_exponent_schedule():
    from allocator.decisions.policies import sharpen, sharpen_exponent

    p = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(sharpen(p, 2.0), np.array([0.25, 0.09, 0.04]) / 0.38)
    np.testing.assert_array_equal(sharpen(p, 1.0), p)
    batch = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    got = sharpen(batch, np.array([1.0, 3.0]))
    np.testing.assert_allclose(got[0], batch[0])
    np.testing.assert_allclose(got[1], np.array([0.001, 0.001, 0.512]) / 0.514)
    # no underflow: tiny shares raised to a power still leave a distribution
    np.testing.assert_allclose(sharpen(np.array([1e-200, 1e-250]), 5.0), [1.0, 0.0], atol=1e-200)
    assert sharpen_exponent(3.0, 0.0) == 1.0 and sharpen_exponent(3.0, 1.0) == 3.0
    assert sharpen_exponent(3.0, 0.5) == 2.0 and sharpen_exponent(3.0, 2.0) == 3.0


def test_thompson_family_is_sharpened_and_others_are_not():
    from allocator.decisions.policies import sharpen

    p = post()
    ctx = PolicyContext(day=10, min_days=7, sharpen=3.0)
    np.testing.assert_allclose(POLICIES["thompson"](p, ctx), sharpen(p.prob_best(), 3.0))
    plain = POLICIES["top_two_thompson"](p, PolicyContext(day=10, min_days=7))
    np.testing.assert_allclose(POLICIES["top_two_thompson"](p, ctx), sharpen(plain, 3.0))
    for name in ("uniform", "ab_test", "greedy", "ucb", "explore_then_commit"):
        np.testing.assert_array_equal(POLICIES[name](p, ctx), POLICIES[name](p, PolicyContext(10, 7)))

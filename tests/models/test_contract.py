"""One posterior contract (issue 11, item 2): every posterior serves the policies, and one stopping rule serves
a single campaign and a batch alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.decisions.stopping import (
    PHASE_EXPLORE,
    PHASE_OPTIMIZE,
    PHASE_WINNER,
    _BatchOfOne,
    decide_phase,
    decide_phase_batch,
)
from models.batch import BatchPosterior, DrawsBatchPosterior
from models.contract import PolicyPosterior, StoppingPosterior
from models.posterior import Posterior, ScaledBeta

CODES = {"explore": PHASE_EXPLORE, "optimize": PHASE_OPTIMIZE, "winner": PHASE_WINNER}


def _single(alpha, beta, seed=0) -> Posterior:
    a = np.asarray(alpha, dtype=float)
    return Posterior(
        tuple(f"c{i}" for i in range(a.size)),
        "conversion_rate",
        marginals=ScaledBeta(a, np.asarray(beta, dtype=float), np.ones(a.size)),
        draws=np.random.default_rng(seed).beta(a, beta, size=(4000, a.size)),
    )


def test_every_posterior_implements_the_contract():
    one = _single([3.0, 5.0], [900.0, 900.0])
    batch = BatchPosterior(np.ones((2, 3)), np.full((2, 3), 99.0), np.ones((2, 3)), np.ones((2, 3), dtype=bool))
    draws = DrawsBatchPosterior(np.random.default_rng(1).random((2, 16, 3)), np.ones((2, 3), dtype=bool))
    for post in (one, batch, draws):
        assert isinstance(post, PolicyPosterior)
    for post in (batch, draws, _BatchOfOne(one)):
        assert isinstance(post, StoppingPosterior)


@settings(max_examples=60, deadline=None)
@given(
    conv=st.lists(st.integers(0, 60), min_size=1, max_size=5),
    day=st.integers(0, 14),
    prob_best=st.sampled_from([0.8, 0.95, 0.99]),
    value_remaining=st.sampled_from([1e-6, 0.01, 0.2, 5.0]),
    stop=st.booleans(),
)
def test_single_campaign_is_a_batch_of_one(conv, day, prob_best, value_remaining, stop):
    """decide_phase equals decide_phase_batch on the same campaign, field by field, in every branch."""
    alpha = 1.0 + np.asarray(conv, dtype=float)
    beta = 1.0 + 10_000.0 - np.asarray(conv, dtype=float)
    post = _single(alpha, beta, seed=len(conv) + day)
    d = decide_phase(post, day, 7, prob_best, value_remaining, stop)
    b = decide_phase_batch(_BatchOfOne(post), day, 7, prob_best, value_remaining, stop)
    assert CODES[d.phase] == int(b.phase[0])
    assert d.leader == int(b.leader[0])
    assert d.leader_prob_best == pytest.approx(float(b.leader_prob_best[0]), abs=0.0)
    assert (d.winner if d.winner is not None else -1) == int(b.winner[0])
    if d.phase == "winner":
        assert d.reason in ("prob_best", "value_remaining")
        assert (d.reason == "prob_best") == (d.leader_prob_best >= prob_best)
        if d.reason == "value_remaining":
            assert d.value_remaining < value_remaining
    if not np.isnan(d.value_remaining):
        assert d.value_remaining == float(b.value_remaining[0])


def test_both_branches_of_the_or_rule_on_a_single_campaign():
    clear = _single([200.0, 20.0], [100_000.0, 100_000.0])
    d = decide_phase(clear, day=10, min_days=7, prob_best=0.95, value_remaining=0.01)
    assert (d.phase, d.winner, d.reason) == ("winner", 0, "prob_best")
    assert np.isnan(d.value_remaining)  # not needed: P(best) decided
    equal = _single([500.0, 500.0], [100_000.0, 100_000.0])
    d = decide_phase(equal, day=10, min_days=7, prob_best=0.95, value_remaining=0.5)
    assert d.phase == "winner" and d.reason == "value_remaining" and d.value_remaining < 0.5
    d = decide_phase(equal, day=10, min_days=7, prob_best=0.95, value_remaining=1e-9)
    assert d.phase == "optimize" and d.value_remaining > 0

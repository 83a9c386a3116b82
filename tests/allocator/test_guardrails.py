"""Guardrails: invariants for any input (hypothesis) and exact cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.decisions.guardrails import GuardrailSettings, Reason, apply_guardrails

CENT = 0.01
TOL = 1e-6


def run(target, previous, live=None, held=None, winner=False, **kw):
    target = np.atleast_2d(np.asarray(target, float))
    n = target.shape[1]
    previous = np.atleast_2d(np.asarray(previous, float))
    live = np.ones((1, n), bool) if live is None else np.atleast_2d(live)
    held = np.zeros((1, n), bool) if held is None else np.atleast_2d(held)
    s = GuardrailSettings(**{"total": 500.0, **kw})
    out = apply_guardrails(target, previous, live, held, s, winner_phase=np.array([winner]))
    return out.budgets[0], out.reasons[0], float(out.unspent[0])


def test_equal_targets_split_equally_in_cents():
    b, r, unspent = run([0.2] * 5, [0] * 5)
    assert b.tolist() == [100.0] * 5
    assert (r == Reason.TARGET).all() and unspent == 0


def test_projection_is_nearest_feasible_vector():
    # Target 400/50/50 with a 120 cap: the cap binds and the excess spreads equally (Euclidean projection).
    b, r, _ = run([0.8, 0.1, 0.1], [0, 0, 0], max_budget=200.0, exploration_floor=0.0)
    assert b.tolist() == [200.0, 150.0, 150.0]
    assert r[0] == Reason.CAP


def test_rounding_keeps_total_exact():
    b, _, _ = run([1 / 3, 1 / 3, 1 / 3], [0, 0, 0], total=100.0)
    assert np.isclose(b.sum(), 100.0, atol=1e-9)
    assert sorted(np.round(b, 2).tolist()) == [33.33, 33.33, 33.34]


def test_step_limits_bind_both_ways():
    b, r, _ = run([0.9, 0.05, 0.05], [100, 200, 200])
    assert b[0] == 150.0 and r[0] == Reason.STEP_UP
    assert b[1] == b[2] == 175.0  # the total forces the rest to stay above their step-down floor (100)


def test_held_creative_keeps_budget():
    b, r, _ = run([0.9, 0.05, 0.05], [100, 200, 200], held=[False, True, False])
    assert b[1] == 200.0 and r[1] == Reason.HELD
    assert b.sum() == pytest.approx(500.0)


def test_not_live_gets_zero_and_others_share():
    b, r, _ = run([0.5, 0.5, 0.0], [0, 0, 0], live=[True, False, True], exploration_floor=0.05)
    assert b[1] == 0 and r[1] == Reason.NOT_LIVE
    assert b.sum() == pytest.approx(500.0)


def test_tiny_target_is_paused_not_raised_when_no_floor():
    b, r, _ = run([0.97, 0.02, 0.01], [0, 0, 0], total=100.0, exploration_floor=0.0)
    assert b.tolist() == [100.0, 0.0, 0.0]
    assert (r[1:] == Reason.PAUSED_TARGET).all()


def test_floors_above_total_pause_weakest():
    # Five creatives at the $20 minimum need $100; with $80 to spend the weakest is paused.
    b, r, _ = run([0.24, 0.22, 0.2, 0.18, 0.16], [0] * 5, total=80.0, exploration_floor=0.0)
    assert b.tolist() == [20.0, 20.0, 20.0, 20.0, 0.0]
    assert r[4] == Reason.PAUSED_CONFLICT


def test_winner_phase_drops_floor_and_steps_losers_down():
    b, r, _ = run([1, 0, 0, 0], [125, 125, 125, 125], winner=True)
    assert b[0] == 187.5 and r[0] == Reason.STEP_UP
    assert np.allclose(b[1:], 104.17, atol=0.01)
    assert b.sum() == pytest.approx(500.0)


def test_running_creative_pauses_only_near_minimum():
    # Previous 30: the step-down floor (15) is below the 20 minimum, so pausing is allowed.
    b, _, _ = run([0.99, 0.01], [470, 30], winner=True, total=500.0, max_change=0.5)
    assert b[1] == 0.0 and b[0] == 500.0
    # Previous 100: it may only step down to 50.
    b, r, _ = run([0.99, 0.01], [400, 100], winner=True, total=500.0)
    assert b[1] == 50.0 and r[1] == Reason.STEP_DOWN


def test_caps_that_cannot_spend_report_unspent():
    b, _, unspent = run([0.5, 0.5], [0, 0], max_budget=200.0, exploration_floor=0.0)
    assert b.tolist() == [200.0, 200.0] and unspent == pytest.approx(100.0)


def test_step_limit_relaxed_to_spend_total():
    # One creative expired: the two left cannot absorb its budget within +50%, so the step rule gives way.
    b, r, _ = run([0.5, 0.5, 0], [100, 100, 300], live=[True, True, False])
    assert b.tolist() == [250.0, 250.0] + [0.0]
    assert (r[:2] == Reason.STEP_RELAXED).all()


def test_batch_rows_are_independent():
    rng = np.random.default_rng(3)
    t = rng.dirichlet(np.ones(4), size=50)
    prev = rng.choice([0.0, 50.0, 120.0, 200.0], size=(50, 4))
    live = rng.random((50, 4)) > 0.1
    held = rng.random((50, 4)) > 0.8
    s = GuardrailSettings(total=400.0)
    batch = apply_guardrails(t, prev, live, held, s)
    for i in range(50):
        one = apply_guardrails(t[i : i + 1], prev[i : i + 1], live[i : i + 1], held[i : i + 1], s)
        assert np.array_equal(one.budgets[0], batch.budgets[i])


# ---------------------------------------------------------------------------- invariants (hypothesis)
@st.composite
def cases(draw):
    n = draw(st.integers(1, 8))
    total = draw(st.sampled_from([60.0, 100.0, 250.0, 500.0, 1234.56, 5000.0]))
    weights = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    previous = draw(
        st.lists(st.one_of(st.just(0.0), st.floats(20, 2000).map(lambda x: round(x, 2))), min_size=n, max_size=n)
    )
    live = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    held = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    max_budget = draw(st.one_of(st.none(), st.sampled_from([50.0, 150.0, 400.0, 1000.0])))
    s = GuardrailSettings(
        total=total,
        min_budget=draw(st.sampled_from([0.0, 20.0, 50.0])),
        max_budget=max_budget,
        max_change=draw(st.sampled_from([0.2, 0.5, 1.0])),
        exploration_floor=draw(st.sampled_from([0.0, 0.05, 0.1])),
    )
    winner = draw(st.booleans())
    return np.array([weights]), np.array([previous]), np.array([live]), np.array([held]), s, winner


@settings(max_examples=300, deadline=None)
@given(cases())
def test_invariants(case):
    target, previous, live, held, s, winner = case
    out = apply_guardrails(target, previous, live, held, s, winner_phase=np.array([winner]))
    b, r = out.budgets[0], out.reasons[0]
    prev, lv, hd = previous[0], live[0], held[0] & live[0] & (previous[0] > 0)
    # Never above the total; spent exactly unless reported unspent.
    assert b.sum() <= s.total + TOL
    assert b.sum() + out.unspent[0] == pytest.approx(s.total, abs=1e-6)
    # Whole cents.
    assert np.allclose(b * 100, np.round(b * 100), atol=1e-6)
    # Not live -> 0.
    assert (b[~lv] == 0).all()
    # Running creatives at or above the minimum (or held at a previous budget), at or below the cap.
    running = b > 0
    assert ((b[running] >= s.min_budget - TOL) | (hd[running] & np.isclose(b[running], prev[running]))).all()
    if s.max_budget is not None:
        assert ((b[running] <= s.max_budget + TOL) | hd[running]).all()
    # Held creatives keep their budget unless released to respect the total.
    kept = hd & (r != Reason.PAUSED_CONFLICT) & (r != Reason.RELEASED)
    assert np.allclose(b[kept], prev[kept])
    # Released only to spend the total, and then only upwards.
    rel = r == Reason.RELEASED
    assert (hd[rel]).all() and (b[rel] >= prev[rel] - CENT).all()
    # Step limits hold unless relaxed to spend the total, capped, paused near the minimum, or forced by floors.
    was = (prev > 0) & lv & ~hd & running
    up_ok = b <= prev * (1 + s.max_change) + CENT
    floor = max(s.min_budget, 0.0 if winner else s.exploration_floor * s.total)
    relaxed = r == Reason.STEP_RELAXED
    assert (up_ok | relaxed | (b <= floor + CENT))[was].all()
    down_ok = b >= prev * (1 - s.max_change) - CENT
    capped = s.max_budget is not None and True
    assert (down_ok | (capped & (b >= (s.max_budget or np.inf) - CENT)))[was].all()
    # A running creative is paused only where its step-down floor reaches below the minimum (or by conflict).
    stopped = (prev > 0) & lv & ~hd & ~running
    assert ((prev * (1 - s.max_change) <= s.min_budget) | (r == Reason.PAUSED_CONFLICT))[stopped].all()


def test_exploration_floor_keeps_every_live_creative_running():
    # Greedy on day 0 puts everything on one creative: the 5% floor ($25) keeps the other four exploring.
    b, r, _ = run([1.0, 0, 0, 0, 0], [0] * 5, exploration_floor=0.05)
    assert b.tolist() == [400.0, 25.0, 25.0, 25.0, 25.0]
    assert (r[1:] == Reason.FLOOR).all()


def test_rounding_passes_remainders_past_a_creative_at_its_bound():
    # Three creatives at a 100.005 step cap cannot take their half cents; the fourth takes them all.
    b, _, unspent = run([0.3, 0.3, 0.3, 0.1], [66.67, 66.67, 66.67, 0], total=400.0, exploration_floor=0.0)
    assert unspent == 0 and b.sum() == pytest.approx(400.0)


def test_held_creatives_released_when_nothing_else_can_spend():
    # Every live creative is held and one expired: the strongest held one takes the expired budget.
    b, r, unspent = run(
        [0.7, 0.2, 0.1, 0.0],
        [112.5, 20, 20, 47.5],
        live=[True, True, True, False],
        held=[True, True, True, False],
        total=200.0,
    )
    assert unspent == 0 and b.sum() == pytest.approx(200.0)
    assert b[0] == 160.0 and r[0] == Reason.RELEASED
    assert b[1] == 20.0 and b[2] == 20.0 and (r[1:3] == Reason.HELD).all()


def test_held_masks_is_the_one_hold_rule():
    """Changed 1 day ago (min 3): held as recent; in the learning phase: held as learning (only when not
    recent, and only with hold_learning); not live or unfunded: never held."""
    from allocator.decisions.guardrails import held_masks

    live = np.array([True, True, True, False, True])
    previous = np.array([10.0, 10.0, 10.0, 10.0, 0.0])
    since = np.array([1, 10**9, 5, 1, 1])
    age = np.array([2, 2, 9, 2, 2])
    conv = np.array([0.0, 10.0, 10.0, 0.0, 0.0])
    recent, learning = held_masks(live, previous, since, age, conv, 3, True, 7, 50)
    np.testing.assert_array_equal(recent, [True, False, False, False, False])
    np.testing.assert_array_equal(learning, [False, True, False, False, False])
    _, off = held_masks(live, previous, since, age, conv, 3, False, 7, 50)
    assert not off.any()
    batch_recent, batch_learning = held_masks(
        np.stack([live, live]), np.stack([previous, previous]), np.stack([since, since]), age, conv, 3, True, 7, 50
    )
    np.testing.assert_array_equal(batch_recent[1], recent)
    np.testing.assert_array_equal(batch_learning[0], learning)

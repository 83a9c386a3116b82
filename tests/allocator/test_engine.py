"""The daily decision: expiry, holds, learning phase, winner, reasons and the JSON shape."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from allocator.decisions.allocation import History
from allocator.decisions.engine import reallocate
from allocator.plan import CampaignPlan
from models.observations import DailyObservations

D0 = dt.date(2026, 11, 1)


def make_plan(**over) -> CampaignPlan:
    creatives = over.pop("creatives", [{"id": f"c{i}", "budget": 100.0} for i in range(5)])
    data = {
        "campaign": {"name": "t", "daily_budget": 500.0, **over.pop("campaign", {})},
        "creatives": creatives,
        **over,
    }
    return CampaignPlan.model_validate(data)


def make_daily(plan: CampaignPlan, rates, days=10, imps=15000.0, seed=0) -> DailyObservations:
    rng = np.random.default_rng(seed)
    n = len(plan.creatives)
    imp = np.full((days, n), imps)
    conv = rng.binomial(imp.astype(int), np.asarray(rates)).astype(float)
    dates = np.arange(np.datetime64(D0), np.datetime64(D0) + np.timedelta64(days, "D"))
    return DailyObservations(plan.creative_ids, dates, imp, imp * 0.01, conv, imp * 0.007)


def test_no_data_splits_evenly_and_explores():
    plan = make_plan(creatives=[{"id": f"c{i}"} for i in range(4)])
    alloc = reallocate(plan, DailyObservations.empty(plan.creative_ids), D0)
    assert [c.budget for c in alloc.creatives] == [125.0] * 4
    assert alloc.phase == "explore" and alloc.winner is None
    assert all(c.prob_best == pytest.approx(0.25, abs=1e-6) for c in alloc.creatives)


def test_total_spent_and_json_shape():
    plan = make_plan()
    alloc = reallocate(plan, make_daily(plan, [1e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4]), D0 + dt.timedelta(10))
    js = alloc.to_json()
    assert sum(c["budget"] for c in js["creatives"]) == pytest.approx(500.0)
    for key in [
        "campaign",
        "date",
        "currency",
        "daily_budget",
        "model",
        "policy",
        "objective",
        "phase",
        "winner",
        "warnings",
        "creatives",
    ]:
        assert key in js
    for key in [
        "id",
        "status",
        "budget",
        "previous_budget",
        "share",
        "prob_best",
        "mean",
        "ci90",
        "expected_loss",
        "impressions",
        "clicks",
        "conversions",
        "spend",
        "reason",
    ]:
        assert key in js["creatives"][0]
    assert sum(c["prob_best"] for c in js["creatives"]) == pytest.approx(1.0, abs=5 * 0.5e-6)  # rounded to 6 places
    # Step limits: nobody moves more than 50% from 100.
    assert all(50 - 1e-9 <= c["budget"] <= 150 + 1e-9 for c in js["creatives"])


def test_data_on_or_after_decision_date_is_ignored():
    plan = make_plan()
    daily = make_daily(plan, [2e-4] * 5, days=10)
    a = reallocate(plan, daily, D0 + dt.timedelta(5))
    b = reallocate(plan, daily.upto(np.datetime64(D0 + dt.timedelta(4))), D0 + dt.timedelta(5))
    assert [c.budget for c in a.creatives] == [c.budget for c in b.creatives]
    assert a.data_last == D0 + dt.timedelta(4)


def test_expired_authorization_gets_zero_and_warning():
    creatives = [{"id": f"c{i}", "budget": 100.0} for i in range(5)]
    creatives[0]["auth_expires"] = D0 + dt.timedelta(10)
    creatives[1]["auth_expires"] = D0 + dt.timedelta(12)
    plan = make_plan(creatives=creatives, guardrails={"max_change": 1.0})
    alloc = reallocate(plan, make_daily(plan, [2e-4] * 5), D0 + dt.timedelta(10))
    c0, c1 = alloc.creatives[0], alloc.creatives[1]
    assert c0.budget == 0 and c0.status == "expired" and c0.reason_code == "not_live"
    assert c1.budget > 0
    assert any("c0" in w and "ended" in w for w in alloc.warnings)
    assert any("c1" in w and "ends" in w for w in alloc.warnings)
    assert sum(c.budget for c in alloc.creatives) == pytest.approx(500.0)


def test_recent_change_is_held():
    creatives = [{"id": f"c{i}", "budget": 100.0, "last_change": D0 + dt.timedelta(9)} for i in range(5)]
    plan = make_plan(creatives=creatives)
    alloc = reallocate(plan, make_daily(plan, [1e-4, 1e-4, 1e-4, 1e-4, 5e-4]), D0 + dt.timedelta(10))
    assert all(c.budget == 100.0 and c.reason_code == "held" for c in alloc.creatives)
    assert "changed 1 day ago" in alloc.creatives[0].reason


def test_learning_phase_holds_young_ad_groups():
    plan = make_plan()
    alloc = reallocate(plan, make_daily(plan, [1e-4, 1e-4, 1e-4, 1e-4, 5e-4], days=3), D0 + dt.timedelta(3))
    assert all(c.reason_code == "held" and "learning phase" in c.reason for c in alloc.creatives)
    plan = make_plan(guardrails={"hold_learning": False})
    alloc = reallocate(plan, make_daily(plan, [1e-4, 1e-4, 1e-4, 1e-4, 5e-4], days=3), D0 + dt.timedelta(3))
    assert not any(c.reason_code == "held" for c in alloc.creatives)


def test_winner_declared_and_budget_moves_within_step_limit():
    plan = make_plan(decision={"min_days": 7})
    daily = make_daily(plan, [1e-4, 1e-4, 1e-4, 1e-4, 4e-4], days=10, imps=40000.0)
    alloc = reallocate(plan, daily, D0 + dt.timedelta(10))
    assert alloc.phase == "winner" and alloc.winner == "c4"
    assert alloc.creatives[4].budget == 150.0
    assert alloc.creatives[4].reason_code == "step_up"
    # Same data before min_days: no winner.
    early = reallocate(plan, daily.upto(np.datetime64(D0 + dt.timedelta(5))), D0 + dt.timedelta(6))
    assert early.phase == "explore" and early.winner is None


def test_history_overrides_plan_budgets():
    plan = make_plan()
    hist = History(np.array([200.0, 50.0, 50.0, 100.0, 100.0]), (None,) * 5)
    alloc = reallocate(plan, make_daily(plan, [2e-4] * 5), D0 + dt.timedelta(10), history=hist)
    assert [c.previous_budget for c in alloc.creatives] == [200.0, 50.0, 50.0, 100.0, 100.0]


def test_seed_reproducible():
    plan = make_plan()
    daily = make_daily(plan, [1e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4])
    a = reallocate(plan, daily, D0 + dt.timedelta(10)).to_json()
    b = reallocate(plan, daily, D0 + dt.timedelta(10)).to_json()
    assert a == b


@pytest.mark.parametrize("policy", ["thompson", "top_two_thompson", "uniform", "greedy", "ucb", "explore_then_commit"])
def test_every_policy_spends_total(policy):
    plan = make_plan(campaign={"policy": policy}, guardrails={"exploration_floor": 0.0})
    alloc = reallocate(plan, make_daily(plan, [1e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4]), D0 + dt.timedelta(10))
    assert sum(c.budget for c in alloc.creatives) == pytest.approx(500.0)
    assert all(c.budget == 0 or c.budget >= 20 for c in alloc.creatives)


def test_reallocate_many_equals_reallocate_one_by_one():
    from allocator.decisions.engine import reallocate_many

    jobs = []
    for k in range(12):
        creatives = [{"id": f"c{i}", "budget": 100.0} for i in range(5 if k % 3 else 4)]
        if k % 4 == 0:
            creatives[0]["auth_expires"] = D0 + dt.timedelta(10)
        plan = make_plan(
            creatives=creatives,
            campaign={"seed": k, "daily_budget": 100.0 * len(creatives)},
            guardrails={"max_change": 0.5 + 0.1 * (k % 2)},
        )
        rates = np.linspace(1e-4, 1e-4 + 5e-5 * (k % 5), len(creatives))
        jobs.append((plan, make_daily(plan, rates, seed=k, imps=15000.0 * (1 + k % 3)), D0 + dt.timedelta(10), None))
    many = reallocate_many(jobs)
    for (plan, daily, date, hist), got in zip(jobs, many):
        one = reallocate(plan, daily, date, history=hist)
        assert got.to_json() == one.to_json()
    assert {a.phase for a in many} >= {"optimize"}


def test_reallocate_many_fits_hierarchical_plans_as_one_portfolio():
    """Hierarchical plans with the same model settings share one fit (the fast path); a conjugate plan among
    them is decided as by `reallocate`."""
    from allocator.decisions.engine import reallocate_many

    jobs = []
    for k in range(3):
        model = "conjugate" if k == 2 else "hierarchical"
        plan = make_plan(campaign={"seed": k, "model": model})
        jobs.append((plan, make_daily(plan, [1e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4], seed=k), D0 + dt.timedelta(10), None))
    many = reallocate_many(jobs)
    for a in many[:2]:
        assert a.diagnostics["portfolio_campaigns"] == 2 and a.diagnostics["method"] == "laplace_is", a.diagnostics
        assert sum(c.budget for c in a.creatives) == pytest.approx(500.0)
    assert many[2].to_json() == reallocate(*jobs[2][:3]).to_json()


def test_hierarchical_plan_settings_reach_the_model():
    from allocator.decisions.settings import build_model

    plan = make_plan(
        campaign={"model": "hierarchical"},
        model={"draws": 3000, "target_accept": 0.97, "organic_mean": 0.4, "organic_sd": 0.2, "on_failure": "stop"},
    )
    m = build_model(plan)
    assert (m.draws, m.tune, m.chains, m.target_accept, m.on_failure) == (3000, 1000, 2, 0.97, "stop")
    assert m.prior == {"organic_mu": 0.4, "organic_sd": 0.2}
    assert m.reuse_compiled is False  # one fit per process: constants compile faster
    defaults = build_model(make_plan(campaign={"model": "hierarchical"}))
    assert (defaults.draws, defaults.target_accept, defaults.min_ess, defaults.max_rhat) == (2000, 0.99, 400.0, 1.01)
    with pytest.raises(ValueError, match="organic_sd"):
        make_plan(campaign={"model": "hierarchical"}, model={"organic_sd": 0.0})


@pytest.mark.parametrize(
    "policy, stop, phase",
    [
        ("ab_test", True, "winner"),
        ("thompson", True, "winner"),
        ("uniform", True, "optimize"),
        ("thompson", False, "optimize"),
    ],
)
def test_stopping_rule_by_policy_and_decision_stop(policy, stop, phase):
    # Creative c4 converts 10x better: the rule declares it unless the policy or [decision] stop forbids.
    plan = make_plan(campaign={"policy": policy}, decision={"stop": stop})
    alloc = reallocate(plan, make_daily(plan, [1e-4, 1e-4, 1e-4, 1e-4, 1e-3]), D0 + dt.timedelta(10))
    assert alloc.phase == phase
    assert alloc.winner == ("c4" if phase == "winner" else None)


def test_sharpen_today_rises_from_one_to_sharpen_to_at_the_planned_end():
    from allocator.decisions.settings import sharpen_today

    plan = make_plan(campaign={"end": D0 + dt.timedelta(20)}, policy={"sharpen_to": 5.0})
    daily = make_daily(plan, [1e-4] * 5)  # data from D0
    assert sharpen_today(plan, daily, D0) == 1.0
    assert sharpen_today(plan, daily, D0 + dt.timedelta(10)) == pytest.approx(3.0)
    assert sharpen_today(plan, daily, D0 + dt.timedelta(20)) == 5.0
    assert sharpen_today(plan, daily, D0 + dt.timedelta(30)) == 5.0
    assert sharpen_today(make_plan(), daily, D0 + dt.timedelta(10)) == 1.0


def test_sharpen_to_needs_the_planned_end():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="policy.sharpen_to: needs the planned end of the test"):
        make_plan(policy={"sharpen_to": 3.0})


def test_sharpened_thompson_puts_more_on_the_leader_on_the_last_day():
    base = make_plan(
        guardrails={"exploration_floor": 0.0, "max_change": 10.0, "min_days_between_changes": 0, "hold_learning": False}
    )
    daily = make_daily(base, [1e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4])
    date = D0 + dt.timedelta(10)
    sharp = make_plan(
        campaign={"end": date},
        policy={"sharpen_to": 4.0},
        guardrails={
            "exploration_floor": 0.0,
            "max_change": 10.0,
            "min_days_between_changes": 0,
            "hold_learning": False,
        },
        decision={"stop": False},
    )
    plain = reallocate(make_plan(guardrails=sharp.guardrails.model_dump(), decision={"stop": False}), daily, date)
    got = reallocate(sharp, daily, date)
    lead = int(np.argmax([c.prob_best for c in plain.creatives]))
    assert got.creatives[lead].share > plain.creatives[lead].share


def test_one_authorization_rule_for_reallocate_and_status():
    from allocator.decisions.warnings import AUTH_WARNING_DAYS, authorization_warning

    ends = [D0 + dt.timedelta(days=d) for d in (0, 1, AUTH_WARNING_DAYS, AUTH_WARNING_DAYS + 1)]
    plan = make_plan(creatives=[{"id": f"c{i}", "budget": 100.0, "auth_expires": e} for i, e in enumerate(ends)])
    c = plan.creatives
    assert authorization_warning(c[0], D0) == (
        f"c0: Spark authorization ended {ends[0].isoformat()}; it gets no budget "
        "(ask the creator for a new code and add it to the plan)"
    )
    assert authorization_warning(c[1], D0) == (
        f"c1: Spark authorization ends {ends[1].isoformat()} (1 day after this period); ask the creator to renew it"
    )
    assert authorization_warning(c[2], D0, ahead="today") == (
        f"c2: Spark authorization ends {ends[2].isoformat()} (in 7 days); ask the creator to renew it"
    )
    assert authorization_warning(c[3], D0) is None
    # reallocate warns on exactly that rule: the first three, not the fourth
    warned = [w for w in reallocate(plan, DailyObservations.empty(plan.creative_ids), D0).warnings if "Spark" in w]
    assert warned == [authorization_warning(x, D0) for x in c[:3]]


def test_learning_phase_rule():
    from allocator.decisions.guardrails import in_learning_phase

    age = np.array([0, 1, 6, 7, 3])
    conv = np.array([0, 10, 49, 0, 50])
    # not started, learning, learning (day 6 of 7, 49 of 50), out by age, out by conversions
    assert in_learning_phase(age, conv, 7, 50).tolist() == [False, True, True, False, False]


def test_stopping_branch_shown_in_phase_line_and_json():
    """The OR rule names its branch: P(best) for a clear winner, value remaining for near-equal creatives."""
    from allocator.presentation.render import phase_line

    plan = make_plan(decision={"min_days": 7})
    alloc = reallocate(
        plan, make_daily(plan, [1e-4, 1e-4, 1e-4, 1e-4, 4e-4], days=10, imps=40000.0), D0 + dt.timedelta(10)
    )
    assert alloc.stopped_by == "prob_best"
    p = alloc.creatives[4].prob_best
    assert alloc.stop_reason == f"stopped by P(best): {p:.1%} >= 95%"
    assert f"; winner: c4 (stopped by P(best): {p:.1%} >= 95%)" in phase_line(alloc)
    js = alloc.to_json()
    assert js["stopped_by"] == "prob_best" and js["stop_reason"] == alloc.stop_reason

    # Two equal creatives never reach P(best) 0.999; a 50% value-remaining threshold ends the test.
    plan = make_plan(
        creatives=[{"id": f"c{i}", "budget": 100.0} for i in range(2)],
        campaign={"daily_budget": 200.0},
        decision={"min_days": 7, "prob_best": 0.999, "value_remaining": 0.5},
    )
    alloc = reallocate(plan, make_daily(plan, [2e-4, 2e-4], days=10, imps=40000.0), D0 + dt.timedelta(10))
    assert alloc.phase == "winner" and alloc.stopped_by == "value_remaining"
    assert alloc.value_remaining is not None and alloc.value_remaining < 0.5
    assert alloc.stop_reason == f"stopped by value remaining: {alloc.value_remaining:.2%} < 50%"
    assert alloc.to_json()["stopped_by"] == "value_remaining"

    # No winner: no branch.
    early = reallocate(plan, make_daily(plan, [2e-4, 2e-4], days=3), D0 + dt.timedelta(3))
    assert early.stopped_by is None and early.to_json()["stop_reason"] is None

"""The 14-day scripted run against the fake TikTok account (sync, reallocate, apply each morning)."""

from __future__ import annotations

from simulations.tiktok_loop import scripted_run


def test_fourteen_days_push_once_per_decision_and_ledger_equals_the_api(tmp_path):
    run = scripted_run(tmp_path, days=14, seed=7)
    assert len(run.days) == 14
    groups = {c.id: c.adgroup_id for c in run.loaded.plan.creatives}
    previous = {cid: 40.0 for cid in groups}  # the account's budgets before day 1
    changed_days = 0
    for day in run.days:
        changed = {groups[cid] for cid, b in day.budgets.items() if abs(b - previous[cid]) > 0.005}
        # each budget that changed is sent exactly once for its decision, nothing else is sent
        assert day.pushed == {g: 1 for g in changed}, day.date
        assert day.resent_on_second_apply == 0, day.date
        assert day.status_pushes == 0  # every creative stays at or above the minimum here
        changed_days += bool(changed)
        previous = day.budgets
    assert changed_days >= 3  # the run really moved budget
    assert sum(d.restated for d in run.days) > 0  # late conversions restated synced days
    # the account delivered on the budgets pushed: each day's spend is 90-100% of that day's decided budget
    from allocator.storage.ledger import Ledger

    with Ledger.open(run.loaded.ledger_path) as ledger:
        daily = ledger.daily(run.loaded.plan)
    assert daily.n_days == 14
    for d, day in enumerate(run.days):
        for j, cid in enumerate(run.loaded.plan.creative_ids):
            assert 0.9 * day.budgets[cid] - 0.01 <= daily.spend[d, j] <= day.budgets[cid] + 0.01, (day.date, cid)
    assert run.ledger_totals.keys() == run.api_totals.keys()
    for cid, api in run.api_totals.items():
        ours = run.ledger_totals[cid]
        assert {f: ours[f] for f in ("impressions", "clicks", "conversions")} == {
            f: api[f] for f in ("impressions", "clicks", "conversions")
        }, cid
        assert round(ours["spend"] * 100) == round(api["spend"] * 100), cid

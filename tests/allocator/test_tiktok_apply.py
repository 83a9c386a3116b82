"""`apply` against the in-process fake account: batches, partial failure and re-run, idempotence, lock."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from allocator.plan import load_plan
from allocator.storage.ledger import Ledger
from allocator.storage.pushes import pushes
from allocator.workflows.apply import apply, in_lock
from allocator.workflows.daily import reallocate_from_ledger
from allocator.workflows.sync import sync
from models.errors import ApplyRefused, PlanError, TikTokAPIError
from tests.support.tiktok import (
    ADVERTISER,
    ad_id,
    adgroup_id,
    client,
    make_fake,
    stat,
    write_plan,
)

DAY = dt.date(2026, 11, 11)
MORNING = dt.datetime(2026, 11, 11, 8, 0, tzinfo=dt.UTC)


def _setup(tmp_path, n=3, **kw):
    loaded = write_plan(tmp_path, n, **kw)
    fake = make_fake(n)
    for k in range(10):
        d = (dt.date(2026, 11, 1) + dt.timedelta(days=k)).isoformat()
        for i in range(n):
            fake.stats[(ad_id(i), d)] = stat(f"{30 + 5 * i:.2f}", str(4000 + 500 * i), str(40 + 3 * i), str(i % 4))
    with client(fake) as c:
        sync(loaded, c, DAY)
    return loaded, fake


def _posts(fake, endpoint):
    return fake.sent(endpoint)


def test_apply_today_sends_budget_and_twice_sends_nothing(tmp_path):
    loaded, fake = _setup(tmp_path)
    alloc = reallocate_from_ledger(loaded, DAY)
    with client(fake) as c:
        preview = apply(loaded, c, now=MORNING)
    assert not _posts(fake, "adgroup/budget/update/")  # without --yes nothing is sent
    assert preview.mode == "budget" and not preview.sent
    with client(fake) as c:
        res = apply(loaded, c, yes=True, now=MORNING)
    sent = _posts(fake, "adgroup/budget/update/")
    assert len(sent) == 1 and "scheduled_budget" not in sent[0]
    expected = {adgroup_id(i): round(a.budget, 2) for i, a in enumerate(alloc.creatives) if abs(a.budget - 50) > 0.005}
    assert {e["adgroup_id"]: e["budget"] for e in sent[0]["budget"]} == expected
    assert {g: fake.adgroups[g].budget for g in expected} == expected
    assert not res.failed and res.calls == 1
    with Ledger.open(loaded.ledger_path) as ledger:
        recorded = pushes(ledger, loaded.plan, DAY)
    assert [(p.adgroup_id, p.kind, p.value, p.result, p.request_id) for p in recorded] == [
        (g, "budget", f"{b:.2f}", "ok", "fake-000004") for g, b in expected.items()
    ]  # after report, 2 x adgroup/get
    assert {p.decision_run_id for p in recorded} == {alloc.diagnostics["ledger"]["run_id"]}
    with client(fake) as c:
        again = apply(loaded, c, yes=True, now=MORNING)
    assert len(_posts(fake, "adgroup/budget/update/")) == 1  # nothing sent the second time
    assert again.calls == 0 and not any(ch.pending for ch in again.changes)


def test_future_day_goes_as_scheduled_budget(tmp_path):
    loaded, fake = _setup(tmp_path)
    alloc = reallocate_from_ledger(loaded, DAY + dt.timedelta(days=1))
    with client(fake) as c:
        res = apply(loaded, c, yes=True, now=MORNING)
    assert res.mode == "scheduled_budget"
    sent = _posts(fake, "adgroup/budget/update/")
    assert len(sent) == 1 and "budget" not in sent[0]
    assert [e["budget"] for e in sent[0]["scheduled_budget"]] == [round(a.budget, 2) for a in alloc.creatives]
    assert {g.budget for g in fake.adgroups.values()} == {50.0}  # today's budgets untouched
    fake.midnight()
    assert [fake.adgroups[adgroup_id(i)].budget for i in range(3)] == [round(a.budget, 2) for a in alloc.creatives]
    with client(fake) as c:
        apply(loaded, c, yes=True, now=MORNING)  # the ledger knows it was scheduled: nothing sent again
    assert len(_posts(fake, "adgroup/budget/update/")) == 1


def test_more_than_20_ad_groups_batched_partial_failure_and_rerun(tmp_path):
    n = 25
    loaded, fake = _setup(tmp_path, n, floor=0.03)
    reallocate_from_ledger(loaded, DAY)
    fake.refuse(adgroup_id(3))
    with client(fake) as c:
        res = apply(loaded, c, yes=True, now=MORNING)
    to_send = [ch for ch in res.changes if ch.budget_kind]
    assert len(to_send) == n
    calls = _posts(fake, "adgroup/budget/update/")
    assert all(len(b["budget"]) <= 20 for b in calls)
    # 20 refused as a batch, then one by one (19 ok, 1 refused), then the last 5
    assert [len(b["budget"]) for b in calls] == [20] + [1] * 20 + [5]
    assert res.failed
    failed = [ch for ch in res.changes if ch.failed]
    assert [ch.adgroup_id for ch in failed] == [adgroup_id(3)]
    assert (
        failed[0]
        .outcome[0]
        .startswith(
            f"budget {failed[0].new_budget:.2f}: refused (TikTok API "
            f"adgroup/budget/update/: code 40002 (adgroup {adgroup_id(3)} cannot be "
            "modified)"
        )
    )
    with Ledger.open(loaded.ledger_path) as ledger:
        recorded = pushes(ledger, loaded.plan, DAY)
    assert sum(p.result == "ok" for p in recorded) == n - 1
    assert [p.adgroup_id for p in recorded if p.result == "failed"] == [adgroup_id(3)]
    # re-run while still refused: only the missing one is sent
    with client(fake) as c:
        rerun = apply(loaded, c, yes=True, now=MORNING)
    assert [b["budget"] for b in _posts(fake, "adgroup/budget/update/")[len(calls) :]] == [
        [{"adgroup_id": adgroup_id(3), "budget": round(failed[0].new_budget, 2)}]
    ]
    assert rerun.failed
    fake.refused.clear()
    with client(fake) as c:
        fixed = apply(loaded, c, yes=True, now=MORNING)
    assert not fixed.failed and fixed.calls == 1
    assert fake.adgroups[adgroup_id(3)].budget == round(failed[0].new_budget, 2)
    with client(fake) as c:
        assert apply(loaded, c, yes=True, now=MORNING).calls == 0


def test_budget_zero_disables_and_coming_back_enables(tmp_path):
    loaded, fake = _setup(tmp_path)
    text = loaded.path.read_text().replace('id = "c2"\n', 'id = "c2"\nstatus = "paused"\n')
    loaded.path.write_text(text)
    loaded = load_plan(loaded.path)
    alloc = reallocate_from_ledger(loaded, DAY)
    zero = [adgroup_id(i) for i, a in enumerate(alloc.creatives) if a.budget == 0]
    assert adgroup_id(2) in zero and len(zero) < 3
    with client(fake) as c:
        apply(loaded, c, yes=True, now=MORNING)
    assert all(e["adgroup_id"] not in zero for b in _posts(fake, "adgroup/budget/update/") for e in b["budget"])
    assert _posts(fake, "adgroup/status/update/") == [
        {"advertiser_id": ADVERTISER, "adgroup_ids": zero, "operation_status": "DISABLE"}
    ]
    assert [g for g, x in fake.adgroups.items() if x.operation_status == "DISABLE"] == zero
    # back in the plan with a larger budget: the next day's decision gives it a budget; apply sends it, then ENABLE
    loaded.path.write_text(
        text.replace('status = "paused"\n', "").replace("daily_budget = 100.0", "daily_budget = 300.0")
    )
    loaded = load_plan(loaded.path)
    alloc = reallocate_from_ledger(loaded, DAY + dt.timedelta(days=1))
    back = [adgroup_id(i) for i, a in enumerate(alloc.creatives) if a.budget > 0 and adgroup_id(i) in zero]
    assert adgroup_id(2) in back
    with client(fake) as c:
        apply(loaded, c, yes=True, now=MORNING + dt.timedelta(days=1))
    last = _posts(fake, "adgroup/budget/update/")[-1]["budget"]
    assert {"adgroup_id": adgroup_id(2), "budget": round(alloc.creatives[2].budget, 2)} in last
    assert _posts(fake, "adgroup/status/update/")[-1] == {
        "advertiser_id": ADVERTISER,
        "adgroup_ids": back,
        "operation_status": "ENABLE",
    }
    assert fake.adgroups[adgroup_id(2)].operation_status == "ENABLE"


def test_lock_window_refuses_and_sends_nothing(tmp_path):
    loaded, fake = _setup(tmp_path, time_zone="America/New_York")
    reallocate_from_ledger(loaded, DAY)
    late = dt.datetime(2026, 11, 11, 4, 57, tzinfo=dt.UTC)  # 23:57 on Nov 10 in New York
    assert in_lock(late, "America/New_York") and not in_lock(late, "UTC")
    assert not in_lock(dt.datetime(2026, 11, 11, 5, 0, tzinfo=dt.UTC), "America/New_York")  # 00:00 is open
    assert in_lock(dt.datetime(2026, 11, 11, 23, 55, tzinfo=dt.UTC), "UTC")
    with client(fake) as c, pytest.raises(ApplyRefused) as e:
        apply(loaded, c, yes=True, now=late)
    assert str(e.value) == (
        "it is 23:57 in America/New_York: TikTok refuses budget changes from 23:55 to 00:00; run "
        "apply again after midnight (nothing was sent)"
    )
    assert not _posts(fake, "adgroup/budget/update/")
    with client(fake) as c:
        assert apply(loaded, c, now=late).mode == "scheduled_budget"  # the preview still works


def test_past_decision_refused(tmp_path):
    loaded, fake = _setup(tmp_path)
    reallocate_from_ledger(loaded, DAY)
    with client(fake) as c, pytest.raises(ApplyRefused) as e:
        apply(loaded, c, yes=True, now=MORNING + dt.timedelta(days=1))
    assert str(e.value) == (
        f"the decision is for 2026-11-11, a day already past (today is 2026-11-12 in UTC); run "
        f"sparkbandit reallocate --plan {loaded.path} for today, then apply"
    )


def test_token_expired_mid_way_records_what_was_sent(tmp_path):
    loaded, fake = _setup(tmp_path, 25, floor=0.03)
    reallocate_from_ledger(loaded, DAY)
    fake.fail_next("adgroup/budget/update/", 50000, "System error", times=1)  # the first batch: retried
    # then the second batch meets an expired token: the first batch is recorded, the error raised
    calls = []

    def answer_with_expiry(method, path, token, params, body, _orig=fake.answer):
        calls.append(path)
        if path.endswith("adgroup/budget/update/") and len(calls) > 3:
            return {"code": 40102, "message": "Access token has expired", "request_id": "r-exp", "data": {}}
        return _orig(method, path, token, params, body)

    fake.answer = answer_with_expiry
    with client(fake) as c, pytest.raises(TikTokAPIError) as e:
        apply(loaded, c, yes=True, now=MORNING)
    assert str(e.value) == (
        "TikTok API adgroup/budget/update/: code 40102 (Access token has expired) (request id "
        "r-exp); the access token has expired; create a new one and set TIKTOK_ACCESS_TOKEN (or "
        "TIKTOK_ACCESS_TOKEN_FILE)"
    )
    with Ledger.open(loaded.ledger_path) as ledger:
        recorded = pushes(ledger, loaded.plan, DAY)
    assert sum(p.result == "ok" for p in recorded) == 20
    assert sum(p.result == "failed" for p in recorded) == 5
    assert math.isclose(
        sum(fake.adgroups[adgroup_id(i)].budget for i in range(20)),
        sum(float(p.value) for p in recorded if p.result == "ok"),
    )


def test_creative_without_adgroup_refused(tmp_path):
    loaded, fake = _setup(tmp_path)
    loaded.path.write_text(loaded.path.read_text().replace(f'adgroup_id = "{adgroup_id(1)}"\n', ""))
    loaded = load_plan(loaded.path)
    reallocate_from_ledger(loaded, DAY)
    with client(fake) as c, pytest.raises(PlanError) as e:
        apply(loaded, c, now=MORNING)
    assert str(e.value) == (
        f"{loaded.path}: creatives[2].adgroup_id: missing; add the creative's ad group id (quoted; "
        "sparkbandit init lists them) so apply can set its budget"
    )

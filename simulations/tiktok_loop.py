"""A scripted run of the daily TikTok routine against the fake account: sync, reallocate, apply, day by day.

Each morning (07:00 in the account's time zone) the routine syncs the days before today, decides today's
budgets and applies them (then applies again, which must send nothing); during the day the fake account
delivers on the budgets it has, with conversions reported late (so synced days are restated); at midnight
scheduled budgets take effect. The record says what was pushed per decision and compares the ledger with
the account's own totals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from allocator.inputs.tiktok_api import Credentials, TikTokClient
from allocator.plan import LoadedPlan, load_plan
from allocator.storage.ledger import Ledger
from allocator.workflows.apply import apply
from allocator.workflows.daily import reallocate_from_ledger
from allocator.workflows.sync import sync
from simulations.fake_tiktok import FakeTikTok

TOKEN = "scripted-run-token"
ADVERTISER = "7000000000000000099"


@dataclass(frozen=True)
class LoopDay:
    date: dt.date
    synced_rows: int
    restated: int
    budgets: dict[str, float]  # creative id -> decided budget
    pushed: dict[str, int]  # ad group id -> budget entries sent for this decision
    status_pushes: int
    resent_on_second_apply: int  # POSTs of the second apply of the same decision (must be 0)


@dataclass(frozen=True)
class LoopRun:
    days: list[LoopDay]
    ledger_totals: dict[str, dict[str, float]]  # creative id -> field -> total
    api_totals: dict[str, dict[str, float]]
    loaded: LoadedPlan
    fake: FakeTikTok


def scripted_run(
    folder: str | Path, days: int = 14, *, seed: int = 7, n: int = 4, start: dt.date = dt.date(2026, 11, 2)
) -> LoopRun:
    """Run the routine for `days` days plus a final morning sync, in `folder` (plan and ledger)."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    fake = FakeTikTok(ADVERTISER, TOKEN)
    cvr = [0.010, 0.015, 0.022, 0.030][:n] + [0.015] * max(0, n - 4)
    text = f'''[campaign]
name = "scripted run"
daily_budget = {40.0 * n}

[tiktok]
advertiser_id = "{ADVERTISER}"
time_zone = "Europe/London"
'''
    for i in range(n):
        a, g = f"{1800000000000000100 + i}", f"{1790000000000000100 + i}"
        fake.add_ad(a, g, f"Spark {i}", budget=40.0, cvr=cvr[i], ctr=0.012, cpm=7.0)
        text += (
            f'\n[[creatives]]\nid = "spark-{i}"\nad_id = "{a}"\nadgroup_id = "{g}"\nlaunched = {start.isoformat()}\n'
        )
    plan_path = folder / "plan.toml"
    plan_path.write_text(text)
    loaded = load_plan(plan_path)
    creds = Credentials(TOKEN, "https://fake.invalid/open_api/v1.3")
    record: list[LoopDay] = []

    def client() -> TikTokClient:
        return TikTokClient(creds, transport=fake.transport(), sleep=lambda s: None, rng=rng)

    def posts() -> int:
        return sum(m == "POST" for m, _, _ in fake.calls)

    for k in range(days + 1):
        day = start + dt.timedelta(days=k)
        morning = dt.datetime.combine(day, dt.time(7, 0)).replace(tzinfo=dt.UTC)  # London = UTC in November
        with client() as c:
            res = sync(loaded, c, day, now=morning)
        if k == days:
            break
        alloc = reallocate_from_ledger(loaded, day)
        before = len(fake.calls)
        with client() as c:
            apply(loaded, c, yes=True, now=morning)
        pushed: dict[str, int] = {}
        statuses = 0
        for _method, endpoint, body in fake.calls[before:]:
            if endpoint == "adgroup/budget/update/":
                for e in body.get("budget", []) + body.get("scheduled_budget", []):
                    pushed[e["adgroup_id"]] = pushed.get(e["adgroup_id"], 0) + 1
            elif endpoint == "adgroup/status/update/":
                statuses += len(body["adgroup_ids"])
        p0 = posts()
        with client() as c:
            apply(loaded, c, yes=True, now=morning)
        record.append(
            LoopDay(
                day,
                res.rows,
                res.ingest.restated,
                {a.id: a.budget for a in alloc.creatives},
                pushed,
                statuses,
                posts() - p0,
            )
        )
        fake.simulate_day(day, rng)
        fake.midnight()
    last = start + dt.timedelta(days=days - 1)
    with Ledger.open(loaded.ledger_path) as ledger:
        daily = ledger.daily(loaded.plan)
    ledger_totals = {
        cid: {f: float(getattr(daily, f)[:, j].sum()) for f in ("impressions", "clicks", "conversions", "spend")}
        for j, cid in enumerate(loaded.plan.creative_ids)
    }
    by_ad = {c.ad_id: c.id for c in loaded.plan.creatives}
    api = {by_ad[a]: t for a, t in fake.totals(last).items()}
    return LoopRun(record, ledger_totals, api, loaded, fake)

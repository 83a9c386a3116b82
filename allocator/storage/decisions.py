"""Decisions in the ledger: recording a reallocation (superseding an earlier one for the same date), reading
decisions back, and the budgets in force before a date (`History`) that the next decision starts from."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from allocator.storage.results import import_mark
from allocator.storage.schema import utc_now

if TYPE_CHECKING:
    from allocator.decisions.allocation import Allocation, History
    from allocator.plan import CampaignPlan, LoadedPlan
    from allocator.storage.ledger import Ledger

BUDGET_TOLERANCE = 0.005  # budgets are in cents: a smaller difference is not a change


@dataclass(frozen=True)
class DecisionRecord:
    """One recorded decision. `allocation` is `Allocation.to_json()` as it was recorded."""

    run_id: str
    date: dt.date
    decided_at: str
    plan_path: str
    plan_sha256: str
    phase: str
    winner: str | None
    import_mark: int
    superseded_by: str | None
    superseded_at: str | None
    allocation: dict

    @property
    def in_force(self) -> bool:
        return self.superseded_by is None

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "date": self.date.isoformat(),
            "decided_at": self.decided_at,
            "plan_path": self.plan_path,
            "plan_sha256": self.plan_sha256,
            "phase": self.phase,
            "winner": self.winner,
            "superseded_by": self.superseded_by,
            "superseded_at": self.superseded_at,
            "allocation": self.allocation,
        }


def record_decision(ledger: Ledger, loaded: LoadedPlan, alloc: Allocation, run_id: str | None = None) -> DecisionRecord:
    """Record `alloc` (inside a write transaction). An earlier decision in force for the same date is
    kept but marked superseded by this one."""
    plan = loaded.plan
    run_id = run_id or uuid.uuid4().hex
    now = utc_now()
    cid = ledger.sync_plan(plan)
    refs = ledger.creative_refs(cid)
    data = alloc.to_json()
    date = alloc.date.isoformat()
    ledger.conn.execute(
        """UPDATE decisions SET superseded_by = ?, superseded_at = ?
           WHERE campaign_id = ? AND date = ? AND superseded_by IS NULL""",
        (run_id, now, cid, date),
    )
    mark = import_mark(ledger, cid)
    first, last = data["data_range"]
    decision_id = ledger.insert(
        """INSERT INTO decisions (run_id, campaign_id, date, decided_at, plan_path, plan_sha256, model,
             policy, phase, winner, leader, data_first, data_last, import_mark, warnings, allocation)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            run_id,
            cid,
            date,
            now,
            str(loaded.path),
            loaded.sha256,
            alloc.model,
            alloc.policy,
            alloc.phase,
            alloc.winner,
            alloc.leader,
            first,
            last,
            mark,
            json.dumps(list(alloc.warnings)),
            json.dumps(data, allow_nan=False),
        ),
    )
    ledger.conn.executemany(
        """INSERT INTO decision_creatives (decision_id, creative_ref, status, budget, previous_budget, share,
             prob_best, mean, ci90_low, ci90_high, expected_loss, cpa_mean, cpa_ci90_low, cpa_ci90_high,
             impressions, clicks, conversions, spend, reason, reason_code)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                decision_id,
                refs[c["id"]],
                c["status"],
                c["budget"],
                c["previous_budget"],
                c["share"],
                c["prob_best"],
                c["mean"],
                c["ci90"][0],
                c["ci90"][1],
                c["expected_loss"],
                c["cpa_mean"],
                c["cpa_ci90"][0],
                c["cpa_ci90"][1],
                c["impressions"],
                c["clicks"],
                c["conversions"],
                c["spend"],
                c["reason"],
                c["reason_code"],
            )
            for c in data["creatives"]
        ],
    )
    return DecisionRecord(
        run_id, alloc.date, now, str(loaded.path), loaded.sha256, alloc.phase, alloc.winner, mark, None, None, data
    )


def decisions(
    ledger: Ledger, plan: CampaignPlan, *, include_superseded: bool = False, before: dt.date | None = None
) -> list[DecisionRecord]:
    """Decisions of the campaign by date (then time of decision), those in force only by default."""
    cid = ledger.campaign_id(plan)
    if cid is None:
        return []
    sql = """SELECT run_id, date, decided_at, plan_path, plan_sha256, phase, winner, import_mark,
                    superseded_by, superseded_at, allocation
             FROM decisions WHERE campaign_id = ?"""
    args: list = [cid]
    if not include_superseded:
        sql += " AND superseded_by IS NULL"
    if before is not None:
        sql += " AND date < ?"
        args.append(before.isoformat())
    sql += " ORDER BY date, decided_at, id"
    with ledger.errors():
        rows = ledger.conn.execute(sql, args).fetchall()
    return [
        DecisionRecord(
            r[0],
            dt.date.fromisoformat(r[1]),
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            int(r[7]),
            r[8],
            r[9],
            json.loads(r[10]),
        )
        for r in rows
    ]


def latest_decision(ledger: Ledger, plan: CampaignPlan) -> DecisionRecord | None:
    found = decisions(ledger, plan)
    return found[-1] if found else None


def history(ledger: Ledger, plan: CampaignPlan, date: dt.date) -> History:
    """Budgets in force before `date` and the dates they last changed, from the decisions in force dated
    before `date`. A budget that differs from the one before it is a change on that decision's date;
    before any decision (and for creatives no decision covered) the plan's budgets and dates hold."""
    from allocator.decisions.allocation import History

    base = History.from_plan(plan)
    previous = base.previous.copy()
    last_change = list(base.last_change)
    index = {cid: i for i, cid in enumerate(plan.creative_ids)}
    cid = ledger.campaign_id(plan)
    if cid is None:
        return base
    with ledger.errors():
        rows = ledger.conn.execute(
            """SELECT d.date, c.creative_id, dc.budget
               FROM decisions d
               JOIN decision_creatives dc ON dc.decision_id = d.id
               JOIN creatives c ON c.id = dc.creative_ref
               WHERE d.campaign_id = ? AND d.superseded_by IS NULL AND d.date < ?
               ORDER BY d.date""",
            (cid, date.isoformat()),
        ).fetchall()
    for day, creative, budget in rows:
        i = index.get(creative)
        if i is None:
            continue
        if abs(budget - previous[i]) > BUDGET_TOLERANCE:
            last_change[i] = dt.date.fromisoformat(day)
        previous[i] = budget
    return History(previous, tuple(last_change))

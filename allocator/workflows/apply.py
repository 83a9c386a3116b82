"""`sparkbandit apply`: push a recorded decision's budgets to TikTok, ad group by ad group.

One creative = one Spark Ad in its own ad group (`adgroup_id` in the plan), so a creative's budget is its ad
group's daily budget. For the decision of DAY (default: the latest in force):

- the current budgets and statuses are read (`GET adgroup/get/`);
- a decision for a future day is sent as `scheduled_budget` (takes effect at 00:00 in the account's time
  zone), one for today as `budget` (now); a decision for a past day is refused;
- a budget of 0 disables the ad group (`POST adgroup/status/update/`, DISABLE) rather than sending 0 (below
  TikTok's minimum); an ad group coming back gets its budget, then ENABLE. TikTok has no scheduled status, so
  a status change takes effect when sent;
- budgets go in calls of at most 20 ad groups; a call that TikTok refuses for a reason other than the token
  or permissions is split into single ad groups, so one refused ad group does not hold back the others;
- every push (sent or refused) is recorded in the ledger (`allocator.storage.pushes`) as soon as its call returns.
  What the ledger shows as sent for that day, or what TikTok already has, is not sent again: applying the
  same decision twice sends nothing, and a re-run after a partial failure sends only what is missing;
- nothing is sent inside 23:55-00:00 in the account's time zone, when TikTok refuses budget changes.

Without `yes` nothing is sent: the changes are only listed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from allocator.inputs.tiktok_api import PUSH_BATCH, TikTokClient
from allocator.plan import LoadedPlan
from allocator.storage.decisions import DecisionRecord
from allocator.storage.ledger import Ledger
from allocator.storage.pushes import Push, already_pushed, effective_plan, pushes, record_pushes
from allocator.workflows.sync import require_tiktok
from models.errors import ApplyRefused, LedgerError, PlanError, TikTokAPIError

LOCK_START = dt.time(23, 55)  # TikTok refuses budget changes from 23:55 to 00:00 (account time zone)
FATAL_CODES = frozenset({40001, 40102, 40105})  # token or permission: no point trying ad groups one by one
TOLERANCE = 0.005  # budgets are in cents


@dataclass
class Change:
    """What `apply` does to one ad group."""

    creative_id: str
    label: str
    adgroup_id: str
    current_budget: float | None
    current_status: str | None
    new_budget: float
    new_status: str  # ENABLE | DISABLE
    reason: str
    budget_kind: str | None = None  # "budget" | "scheduled_budget" when a budget is to be sent
    status_change: str | None = None  # "ENABLE" | "DISABLE" when a status is to be sent
    outcome: list[str] = field(default_factory=list)  # what happened, per push
    failed: bool = False
    request_ids: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.budget_kind is not None or self.status_change is not None

    def to_json(self) -> dict:
        return {
            "creative_id": self.creative_id,
            "name": self.label,
            "adgroup_id": self.adgroup_id,
            "current_budget": self.current_budget,
            "current_status": self.current_status,
            "new_budget": self.new_budget,
            "new_status": self.new_status,
            "reason": self.reason,
            "send_budget": self.budget_kind,
            "send_status": self.status_change,
            "outcome": list(self.outcome),
            "failed": self.failed,
            "request_ids": list(self.request_ids),
        }


@dataclass
class ApplyResult:
    decision: DecisionRecord
    mode: str  # "budget" (today) | "scheduled_budget" (a future day)
    today: dt.date
    sent: bool
    changes: list[Change]
    warnings: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.changes)

    def to_json(self) -> dict:
        return {
            "decision": {"run_id": self.decision.run_id, "date": self.decision.date.isoformat()},
            "mode": self.mode,
            "today": self.today.isoformat(),
            "sent": self.sent,
            "failed": self.failed,
            "calls": self.calls,
            "changes": [c.to_json() for c in self.changes],
            "warnings": list(self.warnings),
        }


def in_lock(now: dt.datetime, time_zone: str) -> bool:
    """True from 23:55 to midnight in the account's time zone."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(zoneinfo.ZoneInfo(time_zone)).time() >= LOCK_START


def _decision(ledger: Ledger, loaded: LoadedPlan, date: dt.date | None) -> DecisionRecord:
    decisions = ledger.decisions(loaded.plan)
    if date is not None:
        decisions = [d for d in decisions if d.date == date]
    if not decisions:
        what = f"for {date.isoformat()}" if date is not None else "yet"
        raise LedgerError(
            f"ledger {loaded.ledger_path}: no decision recorded {what}; run sparkbandit reallocate --plan "
            f"{loaded.path}" + ("" if date is None else f" --date {date.isoformat()}")
        )
    return decisions[-1]


def apply(
    loaded: LoadedPlan,
    client: TikTokClient,
    date: dt.date | None = None,
    *,
    yes: bool = False,
    now: dt.datetime | None = None,
) -> ApplyResult:
    """List (and with `yes`, send) the changes that bring TikTok's ad groups to the decision for `date`.

    Raises
    ------
    PlanError
        No `[tiktok]` section, or a creative of the decision without `adgroup_id`.
    LedgerError
        No ledger or no decision for the date.
    ApplyRefused
        A decision for a past day, or `yes` inside the 23:55-00:00 lock.
    TikTokAPIError
        Reading the ad groups failed, an ad group is missing or not on a daily budget, or the token was
        refused while sending (pushes sent before that are recorded).
    """
    tk = require_tiktok(loaded)
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    today = now.astimezone(zoneinfo.ZoneInfo(tk.time_zone)).date()
    warnings = effective_plan(loaded)
    plan = loaded.plan
    with Ledger.open(loaded.ledger_path, create=False) as ledger:
        decision = _decision(ledger, loaded, date)
        done = already_pushed(pushes(ledger, plan, decision.date))
    if decision.date < today:
        raise ApplyRefused(
            f"the decision is for {decision.date.isoformat()}, a day already past (today is {today.isoformat()} in "
            f"{tk.time_zone}); run sparkbandit reallocate --plan {loaded.path} for today, then apply"
        )
    mode = "scheduled_budget" if decision.date > today else "budget"
    if yes and in_lock(now, tk.time_zone):
        raise ApplyRefused(
            f"it is {now.astimezone(zoneinfo.ZoneInfo(tk.time_zone)):%H:%M} in {tk.time_zone}: TikTok refuses budget "
            "changes from 23:55 to 00:00; run apply again after midnight (nothing was sent)"
        )
    index = {c.id: (j, c) for j, c in enumerate(plan.creatives)}
    wanted = []
    for entry in decision.allocation.get("creatives", []):
        found = index.get(entry["id"])
        if found is None:
            warnings.append(f"creative {entry['id']!r} of the decision is no longer in the plan; left alone")
            continue
        j, c = found
        if not c.adgroup_id:
            raise PlanError(
                str(loaded.path),
                f"creatives[{j + 1}].adgroup_id",
                "missing",
                "add the creative's ad group id (quoted; sparkbandit init lists them) so apply can set its budget",
            )
        wanted.append((c, c.adgroup_id, float(entry["budget"]), entry.get("reason", "")))
    current = client.adgroups(tk.advertiser_id, [adgroup for _, adgroup, _, _ in wanted])
    changes = []
    for c, adgroup, budget, reason in wanted:
        g = current.get(adgroup)
        if g is None:
            raise TikTokAPIError(
                f"TikTok API adgroup/get/: ad group {adgroup} ({c.label}) not found in advertiser "
                f"{tk.advertiser_id}; check adgroup_id in the plan and [tiktok] advertiser_id"
            )
        if g.get("budget_mode") not in (None, "BUDGET_MODE_DAY", "BUDGET_MODE_DYNAMIC_DAILY_BUDGET"):
            raise TikTokAPIError(
                f"TikTok API adgroup/get/: ad group {adgroup} ({c.label}) has budget_mode "
                f"{g.get('budget_mode')}; sparkbandit sets daily ad-group budgets: give the ad group a daily "
                "budget (and the campaign no Campaign Budget Optimization)"
            )
        cur_budget = None if g.get("budget") is None else float(g["budget"])
        cur_status = g.get("operation_status")
        status = "ENABLE" if budget > TOLERANCE else "DISABLE"
        ch = Change(c.id, c.label, adgroup, cur_budget, cur_status, budget, status, reason)
        if status == "ENABLE":
            value = f"{budget:.2f}"
            same_now = cur_budget is not None and abs(cur_budget - budget) <= TOLERANCE
            sent_before = done.get((adgroup, mode)) == value
            if not sent_before and not (mode == "budget" and same_now):
                ch.budget_kind = mode
        if cur_status != status:
            ch.status_change = status
        changes.append(ch)
    result = ApplyResult(decision, mode, today, yes, changes, warnings)
    if yes:
        _send(loaded, client, result)
    return result


def _send(loaded: LoadedPlan, client: TikTokClient, result: ApplyResult) -> None:
    """Budgets, then ENABLE, then DISABLE, in calls of at most 20; each call's pushes recorded at once."""
    tk = loaded.plan.tiktok
    assert tk is not None
    calls_before = client.calls
    d = result.decision
    with Ledger.open(loaded.ledger_path, create=False) as ledger:
        with ledger.write():
            cid = ledger.sync_plan(loaded.plan)

        def record(items: list[tuple[Change, str, str]], answer, error: TikTokAPIError | None) -> None:
            rows = []
            for ch, kind, value in items:
                if error is None:
                    ch.outcome.append(f"{kind} {value}: ok")
                    if answer.request_id:
                        ch.request_ids.append(answer.request_id)
                else:
                    ch.failed = True
                    ch.outcome.append(f"{kind} {value}: refused ({error})")
                rows.append(
                    Push(
                        d.run_id,
                        d.date,
                        ch.creative_id,
                        ch.adgroup_id,
                        kind,
                        value,
                        answer.request_id if error is None else error.request_id,
                        "ok" if error is None else "failed",
                        None if error is None else str(error),
                    )
                )
            with ledger.write():
                record_pushes(ledger, cid, rows)

        def push(items: list[tuple[Change, str, str]], call) -> None:
            try:
                answer = call([(ch, v) for ch, _, v in items])
            except TikTokAPIError as e:
                if e.code in FATAL_CODES or e.code is None:
                    record(items, None, e)
                    raise
                if len(items) > 1:  # find the ad group TikTok refuses; send the others
                    for item in items:
                        push([item], call)
                    return
                record(items, None, e)
                return
            record(items, answer, None)

        budget_items = [(ch, ch.budget_kind, f"{ch.new_budget:.2f}") for ch in result.changes if ch.budget_kind]
        scheduled = result.mode == "scheduled_budget"
        for k in range(0, len(budget_items), PUSH_BATCH):
            push(
                budget_items[k : k + PUSH_BATCH],
                lambda batch: client.update_budgets(
                    tk.advertiser_id, [(ch.adgroup_id, float(v)) for ch, v in batch], scheduled=scheduled
                ),
            )
        for status in ("ENABLE", "DISABLE"):
            # an ad group whose budget push failed is not re-enabled with its old budget
            items = [("status", ch) for ch in result.changes if ch.status_change == status and not ch.failed]
            group = [(ch, "status", status) for _, ch in items]
            for k in range(0, len(group), PUSH_BATCH):
                push(
                    group[k : k + PUSH_BATCH],
                    lambda batch, s=status: client.update_status(
                        tk.advertiser_id, [ch.adgroup_id for ch, _ in batch], s
                    ),
                )
    result.calls = client.calls - calls_before

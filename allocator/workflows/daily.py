"""The daily routine over the ledger: decide from it, say where the campaign stands, and report.

- `reallocate_from_ledger`: results and budget history from the ledger -> `engine.reallocate` -> the decision
  recorded (one transaction; re-deciding a date supersedes that date's decision).
- `campaign_status`: phase, winner, budgets in force and the warnings a person should act on today.
- `write_report`: PNG plots and an offline index.html.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from allocator.decisions.allocation import Allocation, History
from allocator.decisions.engine import reallocate
from allocator.decisions.guardrails import in_learning_phase
from allocator.decisions.settings import build_model, conjugate_model, decision_rng
from allocator.decisions.warnings import authorization_warning, learning_state
from allocator.plan import LoadedPlan
from allocator.presentation.outputs import fit_file, write_folder_atomic
from allocator.presentation.report import REPORT_FILES, Report, html_page, plots
from allocator.storage.decisions import DecisionRecord
from allocator.storage.ledger import Ledger
from allocator.storage.schema import BUSY_TIMEOUT
from models.errors import LedgerError
from models.observations import DailyObservations


def _no_data(loaded: LoadedPlan) -> LedgerError:
    return LedgerError(
        f"ledger {loaded.ledger_path} has no results for campaign {loaded.plan.campaign.name!r}; import an "
        f"export first (sparkbandit ingest --plan {loaded.path} FILE...) or give --date"
    )


def reallocate_from_ledger(
    loaded: LoadedPlan,
    date: dt.date | None = None,
    dry_run: bool = False,
    *,
    busy_timeout: float = BUSY_TIMEOUT,
    before_record: Callable[[Allocation], None] | None = None,
) -> Allocation:
    """Decide the budgets for `date` from the ledger's results and decisions, and record the decision.

    Parameters
    ----------
    loaded : LoadedPlan
    date : datetime.date, optional
        The day the budgets apply to; default the day after the last day with results.
    dry_run : bool
        Decide but record nothing (the ledger is not created either).
    before_record : callable, optional
        Writes the outputs the user asked for (``reallocate --out``); called with the decision inside the
        write transaction, before it is recorded, so an output that fails (raises) records nothing.

    The previous budgets and last-change dates come from the decisions in force before `date` (see
    `Ledger.history`), so step limits, days between changes and learning-phase holds carry over days.
    Reading, deciding and recording happen in one write transaction: a concurrent ingest cannot slip in
    between, and a run killed mid-way records nothing.
    """
    plan = loaded.plan
    path = loaded.ledger_path
    if not path.exists() and (dry_run or date is None):
        if date is None:
            raise _no_data(loaded)
        alloc = _decide(loaded, DailyObservations.empty(plan.creative_ids), date, History.from_plan(plan), [], False)
        if before_record is not None:
            before_record(alloc)
        return alloc
    with Ledger.open(path, busy_timeout=busy_timeout) as ledger:
        scope = ledger.read() if dry_run else ledger.write()
        with scope:
            pending_notes = _land_pending(ledger, plan, dry_run)
            daily = ledger.daily(plan)
            if date is None:
                if not daily.n_days:
                    raise _no_data(loaded)
                date = daily.dates[-1].astype(dt.date) + dt.timedelta(days=1)
            history = ledger.history(plan, date)
            notes = []
            earlier = [d for d in ledger.decisions(plan) if d.date == date]
            if earlier:
                notes.append(
                    f"{'would replace' if dry_run else 'replaces'} the decision for {date.isoformat()} made at "
                    f"{earlier[-1].decided_at} (run {earlier[-1].run_id[:8]}), which the ledger keeps as superseded"
                )
            alloc = _decide(loaded, daily, date, history, notes, recorded=not dry_run)
            alloc.warnings.extend(pending_notes + notes)
            if before_record is not None:
                before_record(alloc)
            if not dry_run:
                ledger.record_decision(loaded, alloc, run_id=alloc.diagnostics["ledger"]["run_id"])
    return alloc


def _land_pending(ledger: Ledger, plan, dry_run: bool) -> list[str]:
    """Store pending rows whose creative the plan now has (issue 12: nothing lost); lines for the user."""
    from allocator.storage.summaries import landed_line

    if dry_run:
        held = ledger.pending(plan)
        return [
            f"the ledger holds {n} pending row{'s' if n != 1 else ''} for {label!r}; run without --dry-run "
            "(or ingest) to store those the plan now places"
            for label, n in held.items()
        ]
    landed, still = ledger.land_pending(plan)
    out = [landed_line(label, n, cid) for label, (n, cid) in landed.items()]
    out += [
        f"the ledger holds {n} pending row{'s' if n != 1 else ''} for {label!r}, which is not in the plan; "
        "add it to [[creatives]] (or check the id) to use them"
        for label, n in still.items()
    ]
    return out


def _decide(
    loaded: LoadedPlan, daily: DailyObservations, date: dt.date, history: History, notes: list[str], recorded: bool
) -> Allocation:
    import uuid

    plan = loaded.plan
    fit_path = None
    if plan.campaign.model == "hierarchical":
        fit_path = fit_file(loaded)  # as `sparkbandit reallocate --data`
    alloc = reallocate(
        plan,
        daily,
        date,
        history=history,
        rng=decision_rng(plan.campaign.seed, date),
        model=build_model(plan),
        fit_path=fit_path,
    )
    last = alloc.data_last
    yesterday = date - dt.timedelta(days=1)
    if last is None:
        alloc.warnings.append(f"no results before {date.isoformat()}: budgets follow the prior and the guardrails")
    elif last < yesterday:
        gap = (yesterday - last).days
        alloc.warnings.append(
            f"results end {last.isoformat()}, {gap} day{'s' if gap != 1 else ''} before {yesterday.isoformat()}; "
            "ingest the latest export before deciding"
        )
    alloc.diagnostics["ledger"] = {
        "path": str(loaded.ledger_path),
        "run_id": uuid.uuid4().hex,
        "notes": notes,
        "recorded": recorded,
    }
    return alloc


# ---------------------------------------------------------------------- status
@dataclass(frozen=True)
class CampaignStatus:
    campaign: str
    date: dt.date
    ledger: str
    currency: str
    phase: str | None
    winner: str | None
    leader: str | None
    data_first: dt.date | None
    data_last: dt.date | None
    last_decision: DecisionRecord | None
    budgets: list[dict]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = self.last_decision
        return {
            "campaign": self.campaign,
            "date": self.date.isoformat(),
            "ledger": self.ledger,
            "currency": self.currency,
            "phase": self.phase,
            "winner": self.winner,
            "leader": self.leader,
            "data_range": [
                None if self.data_first is None else self.data_first.isoformat(),
                None if self.data_last is None else self.data_last.isoformat(),
            ],
            "last_decision": None
            if d is None
            else {"run_id": d.run_id, "date": d.date.isoformat(), "decided_at": d.decided_at},
            "budgets": self.budgets,
            "budget_by_kind": self.budget_by_kind(),
            "warnings": list(self.warnings),
        }

    def budget_by_kind(self) -> dict[str, float]:
        """Total budget in force on Spark and on non-Spark creatives (DOMAIN.md: track them separately;
        a Spark ad's engagement goes to the creator's post, so the two are not like for like)."""
        out = {"spark": 0.0, "non_spark": 0.0}
        for b in self.budgets:
            out["spark" if b["spark"] else "non_spark"] += float(b["budget"])
        return out


def campaign_status(loaded: LoadedPlan, today: dt.date | None = None) -> CampaignStatus:
    """Where the campaign stands on `today` (default: the UTC date), from the plan and the ledger.

    Warnings: authorizations ending within `AUTH_WARNING_DAYS` (or ended; `authorization_warning`), creatives in the learning phase, no results
    for yesterday, results restated or added since the last decision, no decision yet.
    """
    plan = loaded.plan
    today = today or dt.datetime.now(dt.UTC).date()
    with Ledger.open(loaded.ledger_path, create=False) as ledger, ledger.read():
        daily = ledger.daily(plan)
        last = ledger.latest_decision(plan)
        changed = ledger.changed_since(plan, last.import_mark) if last is not None else None
    warnings: list[str] = []
    labels = {c.id: c.label for c in plan.creatives}
    spark = {c.id: c.spark for c in plan.creatives}
    for c in plan.creatives:
        auth = authorization_warning(c, today, ahead="today") if c.status == "active" else None
        if auth is not None:
            warnings.append(auth)
    g = plan.guardrails
    if daily.n_days:
        age, conv, _ = learning_state(plan, daily.upto(np.datetime64(today, "D") - np.timedelta64(1, "D")), today)
        learning = in_learning_phase(age, conv, g.learning_days, g.learning_conversions)
        for i, c in enumerate(plan.creatives):
            expired = c.auth_expires is not None and c.auth_expires <= today
            if c.status == "active" and not expired and learning[i]:
                held = "; its budget is held" if g.hold_learning else ""
                warnings.append(
                    f"{c.label}: learning phase (day {age[i]} of {g.learning_days}, {conv[i]:.0f} of "
                    f"{g.learning_conversions} conversions){held}"
                )
    yesterday = today - dt.timedelta(days=1)
    data_first = daily.dates[0].astype(dt.date) if daily.n_days else None
    data_last = daily.dates[-1].astype(dt.date) if daily.n_days else None
    if data_last is None:
        warnings.append(f"no results in the ledger; import an export (sparkbandit ingest --plan {loaded.path} FILE)")
    elif data_last < yesterday:
        warnings.append(
            f"no results for yesterday ({yesterday.isoformat()}): the ledger ends {data_last.isoformat()}; "
            "ingest today's export"
        )
    if last is None:
        warnings.append(f"no decision recorded yet; run sparkbandit reallocate --plan {loaded.path}")
    elif changed is not None:
        if changed.restated_rows:
            warnings.append(
                f"{changed.restated_rows} result{'s' if changed.restated_rows != 1 else ''} restated since the "
                f"last decision ({last.date.isoformat()}), days {changed.restated_first} to "
                f"{changed.restated_last}; re-run reallocate to use them"
            )
        if changed.new_rows and data_last is not None and last.date <= data_last:
            warnings.append(
                f"results through {data_last.isoformat()} are newer than the last decision "
                f"({last.date.isoformat()}); run sparkbandit reallocate --plan {loaded.path}"
            )
    budgets = []
    if last is not None:
        for c in last.allocation.get("creatives", []):
            budgets.append(
                {
                    "id": c["id"],
                    "name": labels.get(c["id"], c.get("name", c["id"])),
                    "spark": spark.get(c["id"], True),  # a creative no longer in the plan: the plan's default
                    "status": c["status"],
                    "budget": c["budget"],
                    "prob_best": c["prob_best"],
                    "reason": c["reason"],
                }
            )
    return CampaignStatus(
        campaign=plan.campaign.name,
        date=today,
        ledger=str(loaded.ledger_path),
        currency=plan.campaign.currency,
        phase=None if last is None else last.phase,
        winner=None if last is None else last.winner,
        leader=None if last is None else last.allocation.get("leader"),
        data_first=data_first,
        data_last=data_last,
        last_decision=last,
        budgets=budgets,
        warnings=warnings,
    )


# ---------------------------------------------------------------------- history
def decision_history(loaded: LoadedPlan, include_superseded: bool = False) -> list[DecisionRecord]:
    """The campaign's decisions by date, from the ledger."""
    with Ledger.open(loaded.ledger_path, create=False) as ledger:
        return ledger.decisions(loaded.plan, include_superseded=include_superseded)


# ---------------------------------------------------------------------- report
def write_report(loaded: LoadedPlan, out: str | Path, today: dt.date | None = None) -> Report:
    """Write prob_best.png, budgets.png, cpa_posterior.png and index.html into the folder `out`.

    The page needs no network: images by relative path, inline CSS, no scripts. It opens with the budgets to
    set today, then a table per creative (spend, conversions, observed and estimated CPA, P(best), budget,
    reason). The folder is written whole or not at all (`allocator.presentation.outputs.write_folder_atomic`); an
    existing `out` may hold only an earlier report's files.
    """
    plan = loaded.plan
    out = Path(out)
    status = campaign_status(loaded, today)
    with Ledger.open(loaded.ledger_path, create=False) as ledger, ledger.read():
        decisions = ledger.decisions(plan)
        daily = ledger.daily(plan)
    # Posterior of each creative's CPA now (conjugate model: exact and fast), from the results before today.
    upto = daily.upto(np.datetime64(status.date, "D") - np.timedelta64(1, "D")) if daily.n_days else daily
    post = conjugate_model(plan).fit(
        upto, plan.campaign.objective, n_draws=plan.decision.draws, rng=np.random.default_rng(plan.campaign.seed)
    )

    def fill(folder: Path) -> list[Path]:
        cpa_rows = plots(loaded, decisions, upto, post, folder)
        (folder / "index.html").write_text(html_page(loaded, status, decisions, cpa_rows, upto), encoding="utf-8")
        return [out / name for name in REPORT_FILES[1:]]

    images = write_folder_atomic(out, fill, REPORT_FILES)
    return Report(out, out / "index.html", tuple(images))

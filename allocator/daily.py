"""The daily routine over the ledger: decide from it, say where the campaign stands, and report.

- `reallocate_from_ledger`: results and budget history from the ledger -> `engine.reallocate` -> the decision
  recorded (one transaction; re-deciding a date supersedes that date's decision).
- `campaign_status`: phase, winner, budgets in force and the warnings a person should act on today.
- `write_report`: PNG plots and an offline index.html.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from allocator.engine import (
    Allocation,
    History,
    authorization_warning,
    build_model,
    conjugate_model,
    decision_rng,
    learning_state,
    money,
    reallocate,
)
from allocator.guardrails import in_learning_phase
from allocator.ledger import BUSY_TIMEOUT, DecisionRecord, Ledger
from allocator.outputs import fit_file, write_folder_atomic
from allocator.plan import LoadedPlan
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
    from allocator.ledger import landed_line

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


def series(loaded: LoadedPlan, decisions: list[DecisionRecord]) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    """Decision dates and, per plan creative, budget and probability best (NaN where unknown).

    Returns dates (n_decisions,), budgets and prob_best of shape (n_decisions, n_creatives).
    """
    ids = loaded.plan.creative_ids
    index = {cid: j for j, cid in enumerate(ids)}
    budgets = np.full((len(decisions), len(ids)), np.nan)
    prob = np.full((len(decisions), len(ids)), np.nan)
    for k, d in enumerate(decisions):
        for c in d.allocation.get("creatives", []):
            j = index.get(c["id"])
            if j is None:
                continue
            budgets[k, j] = c["budget"]
            prob[k, j] = np.nan if c["prob_best"] is None else c["prob_best"]
    return [d.date for d in decisions], budgets, prob


# ---------------------------------------------------------------------- report
@dataclass(frozen=True)
class Report:
    out: Path
    index: Path
    images: tuple[Path, ...]


REPORT_FILES = ("index.html", "prob_best.png", "budgets.png", "cpa_posterior.png")


def _legend_outside(ax) -> None:
    """The legend beside the axes, never over a line (the winner threshold, the minimum)."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def write_report(loaded: LoadedPlan, out: str | Path, today: dt.date | None = None) -> Report:
    """Write prob_best.png, budgets.png, cpa_posterior.png and index.html into the folder `out`.

    The page needs no network: images by relative path, inline CSS, no scripts. It opens with the budgets to
    set today, then a table per creative (spend, conversions, observed and estimated CPA, P(best), budget,
    reason). The folder is written whole or not at all (`allocator.outputs.write_folder_atomic`); an
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
        cpa_rows = _plots(loaded, decisions, upto, post, folder)
        (folder / "index.html").write_text(_html(loaded, status, decisions, cpa_rows, upto), encoding="utf-8")
        return [out / name for name in REPORT_FILES[1:]]

    images = write_folder_atomic(out, fill, REPORT_FILES)
    return Report(out, out / "index.html", tuple(images))


def _plots(loaded: LoadedPlan, decisions: list[DecisionRecord], daily: DailyObservations, post, folder: Path) -> list:
    """The three PNGs into `folder`; returns the CPA summary rows (label, mean, 5%, median, 95%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = loaded.plan
    dates, budgets, prob = series(loaded, decisions)
    labels = [c.label for c in plan.creatives]
    cur = plan.campaign.currency

    def save(fig, name: str) -> None:
        fig.savefig(folder / name, dpi=110, bbox_inches="tight")
        plt.close(fig)

    # probability best over time
    fig, ax = plt.subplots(figsize=(9, 4))
    if dates:
        for j, label in enumerate(labels):
            ax.plot(dates, prob[:, j], marker="o", ms=3, label=label)
        ax.axhline(
            plan.decision.prob_best, color="grey", ls="--", lw=1, label=f"winner at {plan.decision.prob_best:.0%}"
        )
        _legend_outside(ax)
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "no decisions yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("probability best")
    ax.set_title(f"{plan.campaign.name}: probability each creative is best")
    save(fig, "prob_best.png")

    # budget per creative over time
    fig, ax = plt.subplots(figsize=(9, 4))
    if dates:
        for j, label in enumerate(labels):
            ax.step(dates, budgets[:, j], where="post", marker="o", ms=3, label=label)
        ax.axhline(plan.guardrails.min_budget, color="grey", ls=":", lw=1, label="ad-group minimum")
        _legend_outside(ax)
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "no decisions yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(f"daily budget ({cur})")
    ax.set_title(f"{plan.campaign.name}: budget per creative")
    save(fig, "budgets.png")

    cpa = post.cpa_draws
    fig, ax = plt.subplots(figsize=(9, 4))
    cpa_rows = []
    if cpa is not None and np.isfinite(cpa).any():
        finite = np.where(np.isfinite(cpa), cpa, np.nan)
        has_data = daily.conversions.sum(axis=0) > 0 if daily.n_days else np.zeros(len(labels), bool)
        ref = finite[:, has_data] if has_data.any() else finite
        lo, hi = np.nanquantile(ref, 0.005), np.nanquantile(ref, 0.995)
        bins = np.linspace(lo, hi, 60)
        for j, label in enumerate(labels):
            ax.hist(finite[:, j], bins=bins, histtype="step", density=True, lw=1.5, label=label)
            q = np.nanquantile(finite[:, j], [0.05, 0.5, 0.95])
            cpa_rows.append((label, float(np.nanmean(finite[:, j])), *map(float, q)))
        _legend_outside(ax)
    else:
        ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"cost per conversion ({cur})")
    ax.set_yticks([])
    ax.set_title(f"{plan.campaign.name}: model's CPA per creative (conjugate posterior)")
    save(fig, "cpa_posterior.png")
    return cpa_rows


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em} th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} tr.win td{background:#eef8ee}
.warn{background:#fff6e0;border-left:4px solid #e0a000;padding:4px 10px;margin:3px 0}
img{max-width:100%;border:1px solid #eee;margin:6px 0} .muted{color:#777;font-size:.85em}
.today{background:#eef4ff;border:1px solid #b8cdf0;padding:4px 14px 10px;margin:1em 0}
.today h2{border:none;margin-top:.6em} .today td{font-size:1.1em}
"""


def _html(
    loaded: LoadedPlan,
    status: CampaignStatus,
    decisions: list[DecisionRecord],
    cpa_rows: list,
    daily: DailyObservations,
) -> str:
    e = html.escape
    plan = loaded.plan
    cur = plan.campaign.currency
    labels = [c.label for c in plan.creatives]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(plan.campaign.name)}: sparkbandit report</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(plan.campaign.name)}</h1>",
        f"<p class='muted'>Report for {status.date.isoformat()}, written {e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))} "
        f"from {e(str(loaded.ledger_path.name))}. Daily budget {money(plan.campaign.daily_budget, cur)}, "
        f"model {e(plan.campaign.model)}, policy {e(plan.campaign.policy)}.</p>",
        "__TODAY__",
        "<h2>Status</h2>",
        f"<p>Phase: <b>{e(status.phase or 'no decision yet')}</b>. Winner: <b>{e(_label(plan, status.winner) or 'none yet')}</b>. "
        f"Leader: {e(_label(plan, status.leader) or '-')}. Results: "
        f"{status.data_first or '-'} to {status.data_last or '-'}.</p>",
    ]
    at = parts.index("__TODAY__")
    parts[at : at + 1] = _today_box(plan, status) + _creative_table(plan, status, cpa_rows, daily)
    parts += [f"<div class='warn'>{e(w)}</div>" for w in status.warnings]
    parts += [
        "<h2>Probability best</h2><img src='prob_best.png' alt='probability best per creative over time'>",
        "<h2>Budgets</h2><img src='budgets.png' alt='budget per creative over time'>",
        "<h2>Cost per conversion now</h2><img src='cpa_posterior.png' alt='posterior CPA per creative'>",
    ]
    if cpa_rows:
        parts.append(
            "<p class='muted'>The model's cost per conversion: mean and 90% interval of the posterior "
            "(not TikTok's observed cost per conversion, which is in the table above).</p>"
        )
        parts.append(
            "<table><tr><th class='l'>creative</th><th>mean CPA</th><th>5%</th><th>median</th><th>95%</th></tr>"
        )
        for label, mean, lo, med, hi in cpa_rows:
            parts.append(
                f"<tr><td class='l'>{e(label)}</td><td>{money(mean, cur)}</td><td>{money(lo, cur)}</td>"
                f"<td>{money(med, cur)}</td><td>{money(hi, cur)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Decisions</h2>")
    if not decisions:
        parts.append("<p>No decisions recorded yet.</p>")
    else:
        head = "".join(f"<th>{e(label)}<br><span class='muted'>budget / P(best)</span></th>" for label in labels)
        parts.append(f"<table><tr><th class='l'>date</th><th class='l'>phase</th><th class='l'>winner</th>{head}</tr>")
        ids = plan.creative_ids
        for d in reversed(decisions):
            by_id = {c["id"]: c for c in d.allocation.get("creatives", [])}
            cells = []
            for cid in ids:
                c = by_id.get(cid)
                if c is None:
                    cells.append("<td>-</td>")
                    continue
                p = "-" if c["prob_best"] is None else f"{c['prob_best']:.0%}"
                cells.append(f"<td title='{e(c['reason'])}'>{money(c['budget'], cur)} / {p}</td>")
            cls = " class='win'" if d.winner else ""
            parts.append(
                f"<tr{cls}><td class='l'>{d.date.isoformat()}</td><td class='l'>{e(d.phase)}</td>"
                f"<td class='l'>{e(_label(plan, d.winner) or '')}</td>{''.join(cells)}</tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _today_box(plan, status: CampaignStatus) -> list[str]:
    """The first thing on the page: the budget to type into Ads Manager for each creative."""
    e = html.escape
    cur = plan.campaign.currency
    d = status.last_decision
    if d is None:
        return [
            "<div class='today'><h2>Budgets to set today</h2><p>No decision recorded yet: run "
            "<code>sparkbandit reallocate --plan PLAN</code>.</p></div>"
        ]
    when = "today" if d.date == status.date else f"from {d.date.isoformat()} (the latest decision)"
    rows = []
    for c in d.allocation.get("creatives", []):
        prev = c.get("previous_budget")
        change = ""
        if prev is not None and abs(c["budget"] - prev) > 0.005:
            change = f"<span class='muted'>was {money(prev, cur)}</span>"
        elif prev is not None:
            change = "<span class='muted'>unchanged</span>"
        rows.append(
            f"<tr><td class='l'>{e(_label(plan, c['id']) or c['id'])}</td>"
            f"<td><b>{money(c['budget'], cur)}</b></td><td class='l'>{change}</td></tr>"
        )
    stale = (
        ""
        if d.date == status.date
        else (f"<p class='muted'>No decision for {status.date.isoformat()} yet; these are the budgets in force.</p>")
    )
    return [
        f"<div class='today'><h2>Budgets to set {e(when)}</h2>{stale}<table>"
        "<tr><th class='l'>creative</th><th>daily budget</th><th class='l'></th></tr>",
        *rows,
        "</table></div>",
    ]


def _creative_table(plan, status: CampaignStatus, cpa_rows: list, daily: DailyObservations) -> list[str]:
    """Per creative: kind (Spark or not), spend, conversions, observed CPA (spend / conversions, as Ads
    Manager shows it), the model's CPA, P(best), budget and reason of the latest decision; with both kinds
    in the plan, a second table of each kind's totals."""
    e = html.escape
    cur = plan.campaign.currency
    totals = daily.totals() if daily.n_days else None
    model_cpa = {row[0]: row[1] for row in cpa_rows}
    by_id = (
        {}
        if status.last_decision is None
        else {c["id"]: c for c in status.last_decision.allocation.get("creatives", [])}
    )
    out = [
        "<h2>Creatives</h2><table><tr><th class='l'>creative</th><th class='l'>kind</th><th>spend</th>"
        "<th>conversions</th>"
        "<th>observed CPA<br><span class='muted'>spend / conv.</span></th>"
        "<th>estimated CPA<br><span class='muted'>model mean</span></th><th>P(best)</th><th>budget</th>"
        "<th class='l'>reason</th></tr>"
    ]
    for i, c in enumerate(plan.creatives):
        spend = float(totals.spend[i]) if totals else 0.0
        conv = float(totals.conversions[i]) if totals else 0.0
        observed = money(spend / conv, cur) if conv > 0 else "-"
        d = by_id.get(c.id, {})
        p = d.get("prob_best")
        out.append(
            f"<tr><td class='l'>{e(c.label)}</td><td class='l'>{kind(c.spark)}</td><td>{money(spend, cur)}</td>"
            f"<td>{conv:,.0f}</td>"
            f"<td>{observed}</td><td>{money(model_cpa.get(c.label), cur)}</td>"
            f"<td>{'-' if p is None else format(p, '.1%')}</td>"
            f"<td>{money(d.get('budget'), cur)}</td><td class='l'>{e(d.get('reason', ''))}</td></tr>"
        )
    out.append("</table>")
    if len({c.spark for c in plan.creatives}) > 1:  # both kinds: their totals apart, never pooled
        out.append(
            "<h2>Spark and non-Spark</h2><table><tr><th class='l'>kind</th><th>creatives</th><th>spend</th>"
            "<th>conversions</th><th>observed CPA</th><th>budget</th></tr>"
        )
        for flag in (True, False):
            idx = [i for i, c in enumerate(plan.creatives) if c.spark == flag]
            spend = float(sum(totals.spend[i] for i in idx)) if totals else 0.0
            conv = float(sum(totals.conversions[i] for i in idx)) if totals else 0.0
            budget = sum(float(by_id.get(plan.creatives[i].id, {}).get("budget") or 0.0) for i in idx)
            out.append(
                f"<tr><td class='l'>{kind(flag)}</td><td>{len(idx)}</td><td>{money(spend, cur)}</td>"
                f"<td>{conv:,.0f}</td><td>{money(spend / conv, cur) if conv > 0 else '-'}</td>"
                f"<td>{money(budget, cur) if by_id else '-'}</td></tr>"
            )
        out.append("</table>")
    return out


def kind(spark: bool) -> str:
    """How status and the report name a creative's kind."""
    return "Spark" if spark else "non-Spark"


def _label(plan, creative_id: str | None) -> str | None:
    if creative_id is None:
        return None
    for c in plan.creatives:
        if c.id == creative_id:
            return c.label
    return creative_id

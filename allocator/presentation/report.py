"""The report's pages: PNG plots of P(best), budgets and the CPA posterior, and an offline index.html.

`workflows.daily.write_report` gathers the ledger's decisions and results and the campaign status, and
writes the folder atomically; this module only draws and formats.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from allocator.decisions.reasons import money
from allocator.plan import LoadedPlan
from allocator.storage.decisions import DecisionRecord
from models.observations import DailyObservations

if TYPE_CHECKING:
    from allocator.workflows.daily import CampaignStatus


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


@dataclass(frozen=True)
class Report:
    out: Path
    index: Path
    images: tuple[Path, ...]


REPORT_FILES = ("index.html", "prob_best.png", "budgets.png", "cpa_posterior.png")


def _legend_outside(ax) -> None:
    """The legend beside the axes, never over a line (the winner threshold, the minimum)."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def plots(loaded: LoadedPlan, decisions: list[DecisionRecord], daily: DailyObservations, post, folder: Path) -> list:
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
    days = np.array(dates, dtype="datetime64[D]")  # matplotlib's date axis takes datetime64 as it takes dates
    fig, ax = plt.subplots(figsize=(9, 4))
    if dates:
        for j, label in enumerate(labels):
            ax.plot(days, prob[:, j], marker="o", ms=3, label=label)
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
            ax.step(days, budgets[:, j], where="post", marker="o", ms=3, label=label)
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
        bins = np.linspace(lo, hi, 60).tolist()
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


def html_page(
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

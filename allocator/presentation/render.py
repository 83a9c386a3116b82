"""Human output of a decision: a rich table, the phase line and the warnings."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

from allocator.decisions.allocation import Allocation
from allocator.decisions.reasons import money

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod


def console_for(stream=None) -> Console:
    """A console that fits where it prints: on a terminal its width; elsewhere (a file, a pipe, cron mail)
    wide enough that no table wraps, and without colour codes."""
    from rich.console import Console  # rich only when a table is printed: `--format csv` never loads it

    stream = stream or sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False, soft_wrap=False)
    return Console(file=stream, highlight=False, soft_wrap=True, width=100_000, color_system=None)


def _label_of(alloc: Allocation, creative_id: str | None) -> str | None:
    for c in alloc.creatives:
        if c.id == creative_id:
            return c.label
    return creative_id


def print_allocation(alloc: Allocation, console: Console | None = None) -> None:
    """Print the decision table, the phase/winner line and warnings (to stdout; warnings to stderr too)."""
    from rich.table import Table

    console = console or console_for()
    cur = alloc.currency
    title = (
        f"{alloc.campaign}: budgets for {alloc.date.isoformat()}  "
        f"({money(alloc.daily_budget, cur)}/day, {alloc.policy}, {alloc.model} model)"
    )
    yday = (alloc.date - dt.timedelta(days=1)).isoformat()
    table = Table(title=title, title_justify="left", show_lines=False)
    columns: list[tuple[str, JustifyMethod]] = [
        ("creative", "left"),
        ("days", "right"),
        ("spend", "right"),
        ("conv.", "right"),
        ("CPA observed", "right"),
        ("CPA model (90%)", "right"),
        (f"yesterday {yday[5:]}", "right"),
        ("P(best)", "right"),
        ("budget", "right"),
        ("reason", "left"),
    ]
    for col, just in columns:
        table.add_column(col, justify=just, overflow="fold")
    for c in alloc.creatives:
        cpa = "-"
        if c.cpa_mean is not None:
            lo, hi = c.cpa_ci90
            cpa = f"{money(c.cpa_mean, cur)} ({money(lo, cur)}-{money(hi, cur)})"
        yesterday = f"{money(c.yesterday_spend, cur)}, {c.yesterday_conversions:,.0f} conv."
        pb = "-" if c.prob_best is None else f"{c.prob_best:.1%}"
        arrow = f"{money(c.previous_budget, cur)} -> {money(c.budget, cur)}"
        style = "bold green" if alloc.winner == c.id else ("dim" if c.budget == 0 else "")
        table.add_row(
            c.label,
            str(c.days_live),
            money(c.spend, cur),
            f"{c.conversions:,.0f}",
            money(c.observed_cpa, cur),
            cpa,
            yesterday,
            pb,
            arrow,
            c.reason,
            style=style,
        )
    console.print(table)
    console.print(
        "CPA observed = spend / conversions (Ads Manager's cost per conversion); CPA model = the "
        "posterior mean and 90% interval, which also counts conversions not yet reported"
    )
    console.print(f"{phase_line(alloc)}")
    diag = alloc.diagnostics
    if diag.get("model") == "hierarchical" or "max_rhat" in diag:
        console.print(f"diagnostics: {diagnostics_line(diag)}")
    for w in alloc.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    sys.stdout.flush()


def phase_line(alloc: Allocation) -> str:
    """ "phase: optimize; leader: Aria unboxing (value remaining 4.1%); data ..." with creatives by name."""
    if alloc.data_first is None or alloc.data_last is None:  # set together, from the data's range
        data = "no results yet (prior only)"
    else:
        data = f"data {alloc.data_first.isoformat()} to {alloc.data_last.isoformat()}"
    line = f"phase: {alloc.phase}"
    if alloc.winner is not None:
        line += f"; winner: {_label_of(alloc, alloc.winner)}"
        if alloc.stop_reason:
            line += f" ({alloc.stop_reason})"  # which branch of the stopping rule fired
    elif alloc.leader is not None:
        vr = alloc.value_remaining
        line += f"; leader: {_label_of(alloc, alloc.leader)}"
        if vr is not None:
            line += f" (value remaining {vr:.1%})"
    elif any(c.prob_best is not None for c in alloc.creatives):
        line += "; no leader yet (the creatives are tied)"
    return f"{line}; {data}"


ALLOCATION_COLUMNS = [
    "date",
    "creative_id",
    "name",
    "status",
    "days_live",
    "spend",
    "conversions",
    "observed_cpa",
    "model_cpa",
    "model_cpa_lo90",
    "model_cpa_hi90",
    "yesterday_spend",
    "yesterday_conversions",
    "prob_best",
    "previous_budget",
    "budget",
    "reason",
]


def allocation_csv(alloc: Allocation) -> str:
    """The table of `print_allocation` as CSV (`reallocate --format csv`): plain numbers, no currency signs."""
    import csv
    import io

    def num(x: float | None, nd: int) -> str:
        return "" if x is None else f"{x:.{nd}f}"

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ALLOCATION_COLUMNS)
    for c in alloc.creatives:
        w.writerow(
            [
                alloc.date.isoformat(),
                c.id,
                c.label,
                c.status,
                c.days_live,
                f"{c.spend:.2f}",
                f"{c.conversions:.0f}",
                num(c.observed_cpa, 2),
                num(c.cpa_mean, 2),
                num(c.cpa_ci90[0], 2),
                num(c.cpa_ci90[1], 2),
                f"{c.yesterday_spend:.2f}",
                f"{c.yesterday_conversions:.0f}",
                num(c.prob_best, 4),
                f"{c.previous_budget:.2f}",
                f"{c.budget:.2f}",
                c.reason,
            ]
        )
    return buf.getvalue()


def diagnostics_line(diag: dict) -> str:
    """The hierarchical fit's diagnostics in one line, e.g. ``nutpie, gate passed, max R-hat 1.004 (rate),
    min bulk ESS 612 (creative_sd), 0 divergences, 8.1 s``."""
    parts = [str(diag.get("sampler", "?")), f"gate {diag.get('gate', '?')}"]
    if diag.get("fallback"):
        parts[-1] += " (conjugate fallback)"
    if diag.get("method") == "laplace_is" and diag.get("pareto_k") is not None:  # the fast path's gate
        parts.append(f"Pareto k {diag['pareto_k']:.2f}, importance ESS {diag.get('ess', 0):.0f}")
    if "max_rhat" in diag:
        parts.append(
            f"max R-hat {diag['max_rhat']:.3f}" + (f" ({diag['max_rhat_var']})" if "max_rhat_var" in diag else "")
        )
    if "min_ess_bulk" in diag:
        var = f" ({diag['min_ess_var']})" if "min_ess_var" in diag else ""
        parts.append(f"min bulk ESS {diag['min_ess_bulk']:.0f}{var}")
    if "divergences" in diag:
        parts.append(f"{diag['divergences']} divergences")
    if "sampling_seconds" in diag:
        parts.append(f"{diag['sampling_seconds']:.1f} s")
    return ", ".join(parts)

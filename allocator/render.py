"""Human output of a decision: a rich table, the phase line and the warnings."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from allocator.engine import Allocation, money


def print_allocation(alloc: Allocation, console: Console | None = None) -> None:
    """Print the decision table, the phase/winner line and warnings (to stdout; warnings to stderr too)."""
    console = console or Console(highlight=False, soft_wrap=False)
    cur = alloc.currency
    title = (
        f"{alloc.campaign}: budgets for {alloc.date.isoformat()}  "
        f"({money(alloc.daily_budget, cur)}/day, {alloc.policy}, {alloc.model} model)"
    )
    table = Table(title=title, title_justify="left", show_lines=False)
    for col, just in [
        ("creative", "left"),
        ("days", "right"),
        ("spend", "right"),
        ("conv.", "right"),
        ("CPA (90% interval)", "right"),
        ("P(best)", "right"),
        ("budget", "right"),
        ("reason", "left"),
    ]:
        table.add_column(col, justify=just, overflow="fold")
    for c in alloc.creatives:
        cpa = "-"
        if c.cpa_mean is not None:
            lo, hi = c.cpa_ci90
            cpa = f"{money(c.cpa_mean, cur)} ({money(lo, cur)}-{money(hi, cur)})"
        pb = "-" if c.prob_best is None else f"{c.prob_best:.1%}"
        arrow = f"{money(c.previous_budget, cur)} -> {money(c.budget, cur)}"
        style = "bold green" if alloc.winner == c.id else ("dim" if c.budget == 0 else "")
        table.add_row(
            c.label, str(c.days_live), money(c.spend, cur), f"{c.conversions:,.0f}", cpa, pb, arrow, c.reason,
            style=style,
        )
    console.print(table)
    if alloc.data_first is None:
        data = "no results yet (prior only)"
    else:
        data = f"data {alloc.data_first.isoformat()} to {alloc.data_last.isoformat()}"
    line = f"phase: {alloc.phase}"
    if alloc.winner is not None:
        line += f"; winner: {alloc.winner}"
    elif alloc.leader is not None:
        vr = alloc.value_remaining
        line += f"; leader: {alloc.leader}"
        if vr is not None:
            line += f" (value remaining {vr:.1%})"
    console.print(f"{line}; {data}")
    diag = alloc.diagnostics
    if diag.get("model") == "hierarchical" or "max_rhat" in diag:
        console.print(
            "diagnostics: "
            + ", ".join(
                f"{k}={diag[k]:.3g}" if isinstance(diag[k], float) else f"{k}={diag[k]}"
                for k in ("sampler", "max_rhat", "min_ess_bulk", "divergences", "sampling_seconds", "gate")
                if k in diag
            )
        )
    for w in alloc.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    sys.stdout.flush()

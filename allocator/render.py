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
        console.print(f"diagnostics: {diagnostics_line(diag)}")
    for w in alloc.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    sys.stdout.flush()


def diagnostics_line(diag: dict) -> str:
    """The hierarchical fit's diagnostics in one line, e.g. ``nutpie, gate passed, max R-hat 1.004 (rate),
    min bulk ESS 612 (creative_sd), 0 divergences, 8.1 s``."""
    parts = [str(diag.get("sampler", "?")), f"gate {diag.get('gate', '?')}"]
    if diag.get("fallback"):
        parts[-1] += " (conjugate fallback)"
    if diag.get("method") == "laplace_is" and diag.get("pareto_k") is not None:  # the fast path's gate
        parts.append(f"Pareto k {diag['pareto_k']:.2f}, importance ESS {diag.get('ess', 0):.0f}")
    if "max_rhat" in diag:
        parts.append(f"max R-hat {diag['max_rhat']:.3f}" + (f" ({diag['max_rhat_var']})" if "max_rhat_var" in diag else ""))
    if "min_ess_bulk" in diag:
        var = f" ({diag['min_ess_var']})" if "min_ess_var" in diag else ""
        parts.append(f"min bulk ESS {diag['min_ess_bulk']:.0f}{var}")
    if "divergences" in diag:
        parts.append(f"{diag['divergences']} divergences")
    if "sampling_seconds" in diag:
        parts.append(f"{diag['sampling_seconds']:.1f} s")
    return ", ".join(parts)

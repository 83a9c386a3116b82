"""Ledger commands of the `sparkbandit` CLI: ingest, history, status, report.

Thin click commands over `allocator.storage.ledger` and `allocator.workflows.daily`; `allocator.cli.main` registers them lazily.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from allocator.cli.main import fail, format_option, json_alias_option, output_format, run_guarded
from allocator.decisions.reasons import money

PLAN_OPTION = click.option(
    "--plan", "plan_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Campaign plan (TOML)."
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")


def _load(plan_path: Path):
    from allocator.plan import load_plan

    return run_guarded(load_plan, plan_path)


def _console():
    from allocator.presentation.render import console_for

    return console_for()


def _csv(header: list[str], rows: list[list]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


# ---------------------------------------------------------------------------- ingest
INGEST_EPILOG = """Examples:

\b
  sparkbandit ingest --plan plan.toml exports/2026-11-25.csv
  sparkbandit ingest --plan plan.toml exports/*.csv --json
"""


@click.command("ingest", epilog=INGEST_EPILOG)
@PLAN_OPTION
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@JSON_OPTION
def ingest(plan_path: Path, files: tuple[Path, ...], as_json: bool) -> None:
    """Import FILE... (native CSV or TikTok exports) into the plan's ledger.

    All files or none: a bad row anywhere imports nothing. A file imported before changes nothing; a newer
    export that restates days replaces their values (the ledger keeps the earlier ones). Rows for creatives
    that are not in the plan are reported, not stored.
    """
    from allocator.storage.ledger import ingest_files

    loaded = _load(plan_path)
    summary = run_guarded(ingest_files, loaded, list(files))
    if not as_json:  # in JSON they are the "notes" list
        for note in summary.notes():
            click.echo(note, err=True)
    for w in summary.warnings():
        click.echo(f"warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
        return
    for f in summary.files:
        if f.status == "already imported":
            held = sum(f.pending.values())
            click.echo(
                f"{f.path}: already imported at {f.imported_at}; nothing changed"
                + (f" ({held} row{'s' if held != 1 else ''} still pending)" if held else "")
            )
        else:
            span = f"{f.first_date} to {f.last_date}" if f.first_date else "no days"
            click.echo(
                f"{f.path}: {f.format}, {f.rows} rows ({span}): {f.added} added, {f.restated} restated, "
                f"{f.unchanged} unchanged"
                + (f", {sum(f.unknown.values())} not in the plan (kept as pending)" if f.unknown else "")
                + (f", {f.older} older than the stored values" if f.older else "")
            )
    click.echo(
        f"ledger {summary.ledger}: {summary.added} added, {summary.restated} restated, {summary.unchanged} unchanged"
    )


# ---------------------------------------------------------------------------- history
HISTORY_EPILOG = """Examples:

\b
  sparkbandit history --plan plan.toml
  sparkbandit history --plan plan.toml --last 7
  sparkbandit history --plan plan.toml --all --json
"""


@click.command("history", epilog=HISTORY_EPILOG)
@PLAN_OPTION
@click.option("--all", "include_superseded", is_flag=True, help="Also show decisions replaced by a re-run.")
@click.option("--last", type=click.IntRange(min=1), help="Only the last N decisions.")
@format_option()
@json_alias_option()
def history(plan_path: Path, include_superseded: bool, last: int | None, fmt: str | None, as_json: bool) -> None:
    """Decisions over time: phase, winner, and budget and probability best per creative."""
    from rich.table import Table

    from allocator.workflows.daily import decision_history

    fmt = output_format(fmt, as_json)
    loaded = _load(plan_path)
    decisions = run_guarded(decision_history, loaded, include_superseded)
    if last is not None:
        decisions = decisions[-last:]
    if fmt == "csv":
        labels = {c.id: c.label for c in loaded.plan.creatives}
        rows = [
            [
                d.date.isoformat(),
                d.phase,
                d.winner or "",
                c["id"],
                labels.get(c["id"], c.get("name", c["id"])),
                f"{c['budget']:.2f}",
                "" if c["prob_best"] is None else f"{c['prob_best']:.4f}",
                "yes" if d.in_force else "no",
            ]
            for d in decisions
            for c in d.allocation.get("creatives", [])
        ]
        click.echo(
            _csv(["date", "phase", "winner", "creative_id", "name", "budget", "prob_best", "in_force"], rows), nl=False
        )
        return
    if fmt == "json":
        click.echo(
            json.dumps({"campaign": loaded.plan.campaign.name, "decisions": [d.to_json() for d in decisions]}, indent=2)
        )
        return
    plan = loaded.plan
    cur = plan.campaign.currency
    if not decisions:
        click.echo(f"no decisions recorded in {loaded.ledger_path}; run sparkbandit reallocate --plan {plan_path}")
        return
    table = Table(title=f"{plan.campaign.name}: decisions", title_justify="left")
    table.add_column("date", no_wrap=True)
    table.add_column("phase", no_wrap=True)
    table.add_column("winner")
    for c in plan.creatives:
        table.add_column(c.label, justify="right")
    if include_superseded:
        table.add_column("replaced", no_wrap=True)
    for d in decisions:
        by_id = {c["id"]: c for c in d.allocation.get("creatives", [])}
        cells = []
        for c in plan.creatives:
            got = by_id.get(c.id)
            if got is None:
                cells.append("-")
            else:
                p = "" if got["prob_best"] is None else f" ({got['prob_best']:.0%})"
                cells.append(money(got["budget"], cur) + p)
        winner = next((c.label for c in plan.creatives if c.id == d.winner), d.winner or "")
        row = [d.date.isoformat(), d.phase, winner, *cells]
        if include_superseded:
            row.append("" if d.in_force else "yes")
        table.add_row(*row)
    _console().print(table)
    click.echo("budget (probability best) per creative; budgets apply from the date shown")


# ---------------------------------------------------------------------------- status
STATUS_EPILOG = """Examples:

\b
  sparkbandit status --plan plan.toml
  sparkbandit status --plan plan.toml --json
"""


@click.command("status", epilog=STATUS_EPILOG)
@PLAN_OPTION
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]), help="Today's date (default: the UTC date).")
@format_option()
@json_alias_option()
def status(plan_path: Path, date_: dt.datetime | None, fmt: str | None, as_json: bool) -> None:
    """Phase, winner, budgets in force and warnings: authorizations ending, learning phase, missing or
    restated results."""
    from allocator.presentation.report import kind
    from allocator.storage.pushes import stored_authorizations
    from allocator.workflows.daily import campaign_status

    fmt = output_format(fmt, as_json)
    loaded = _load(plan_path)
    auths, notes = run_guarded(stored_authorizations, loaded)  # TikTok's authorization ends (from sync) win
    st = run_guarded(campaign_status, loaded, None if date_ is None else date_.date())
    st.warnings[:0] = notes
    if fmt == "csv":  # the budgets in force; warnings to stderr
        for w in st.warnings:
            click.echo(f"warning: {w}", err=True)
        rows = [
            [
                b["id"],
                b["name"],
                b["status"],
                f"{b['budget']:.2f}",
                "" if b["prob_best"] is None else f"{b['prob_best']:.4f}",
                b["reason"],
                "true" if b["spark"] else "false",  # last: the earlier columns keep their places
            ]
            for b in st.budgets
        ]
        click.echo(_csv(["creative_id", "name", "status", "budget", "prob_best", "reason", "spark"], rows), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps({**st.to_json(), "authorizations": auths}, indent=2))
        return
    cur = st.currency
    winner = next((c.label for c in loaded.plan.creatives if c.id == st.winner), st.winner)
    leader = next((c.label for c in loaded.plan.creatives if c.id == st.leader), st.leader)
    click.echo(f"{st.campaign} on {st.date.isoformat()} (ledger {st.ledger})")
    click.echo(f"  results:  {st.data_first or '-'} to {st.data_last or '-'}")
    if st.last_decision is None:
        click.echo("  decision: none yet")
    else:
        d = st.last_decision
        click.echo(f"  decision: budgets for {d.date.isoformat()} (decided {d.decided_at})")
        click.echo(f"  phase:    {st.phase}; winner: {winner or 'none yet'}; leader: {leader or '-'}")
        for b in st.budgets:
            p = "" if b["prob_best"] is None else f", P(best) {b['prob_best']:.0%}"
            click.echo(f"    {b['name']}: {money(b['budget'], cur)} ({kind(b['spark'])}, {b['status']}{p})")
        if len({b["spark"] for b in st.budgets}) > 1:  # both kinds: their totals apart (DOMAIN.md)
            by = st.budget_by_kind()
            click.echo(f"  by kind:  Spark {money(by['spark'], cur)}; non-Spark {money(by['non_spark'], cur)}")
    for a in auths:
        click.echo(
            f"  authorization {a['creative_id']}: {a['auth_status'] or '-'}, ends {a['auth_end_time']} UTC "
            f"(expires {a['expires']}; read from TikTok {a['fetched_at']})"
        )
    for w in st.warnings:
        click.echo(f"warning: {w}")


# ---------------------------------------------------------------------------- report
REPORT_EPILOG = """Examples:

\b
  sparkbandit report --plan plan.toml --out report/
  open report/index.html
"""


@click.command("report", epilog=REPORT_EPILOG)
@PLAN_OPTION
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write into.")
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]), help="Today's date (default: the UTC date).")
def report(plan_path: Path, out: Path, date_: dt.datetime | None) -> None:
    """Write PNG plots (probability best, budgets, posterior CPA) and an index.html readable offline."""
    from allocator.storage.pushes import effective_plan
    from allocator.workflows.daily import write_report

    loaded = _load(plan_path)
    if out.exists() and not out.is_dir():
        fail(f"{out} is a file; give a folder for the report")
    for note in run_guarded(effective_plan, loaded):  # TikTok's authorization ends (from sync) win
        click.echo(f"warning: {note}", err=True)
    rep = run_guarded(write_report, loaded, out, None if date_ is None else date_.date())
    click.echo(f"report written to {rep.index} ({len(rep.images)} plots)")

"""The `sparkbandit` command line: thin click commands over pure functions.

Commands live in several modules and are imported only when run (a lazy group), so `sparkbandit --help`
imports neither numpy-heavy code nor pymc. Library errors (`SparkBanditError`) become one line on stderr and
exit code 2; anything else is an internal error (exit 1).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from allocator.presentation.outputs import fit_file, write_atomic

if TYPE_CHECKING:
    from allocator.decisions.allocation import Allocation

# name -> (module, attribute, one-line help shown by `sparkbandit --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("allocator.cli.main", "validate", "Check a campaign plan (and its data) without deciding anything."),
    "reallocate": ("allocator.cli.main", "reallocate", "Compute tomorrow's budget per creative from the results."),
    "ingest": ("allocator.cli.ledger", "ingest", "Import exports into the plan's ledger (idempotent)."),
    "history": ("allocator.cli.ledger", "history", "Decisions over time from the ledger."),
    "status": ("allocator.cli.ledger", "status", "Phase, winner and warnings for today."),
    "report": ("allocator.cli.ledger", "report", "Write PNG plots and an offline index.html."),
    "diagnose": ("allocator.cli.diagnose", "diagnose", "ArviZ summary of the latest hierarchical fit."),
    "sync": ("allocator.cli.tiktok", "sync", "Pull daily results from the TikTok API into the ledger."),
    "apply": ("allocator.cli.tiktok", "apply", "Push the decided budgets to the ad groups on TikTok."),
    "init": ("allocator.cli.tiktok", "init", "Write a starter plan from an export or the TikTok API."),
    "simulate": ("simulations.cli", "simulate", "Run a simulation study of policies offline."),
    "learn": ("allocator.cli.learn", "learn", "Learn priors (and the attribution delay) from past campaigns."),
    "candidates": ("allocator.cli.candidates", "candidates", "Rank organic posts to boost next."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _available(name: str) -> bool:
    module = COMMANDS[name][0]
    if module == "allocator.cli.main":
        return True
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, no traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def run_guarded(fn, *args, **kwargs):
    """Call fn; a SparkBanditError becomes one line and exit 2."""
    from models.errors import SparkBanditError

    try:
        return fn(*args, **kwargs)
    except SparkBanditError as e:
        fail(str(e), e.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sparkbandit")
def main() -> None:
    """sparkbandit: test TikTok Spark Ads in parallel and move budget to the winners.

    \b
    Examples:
      sparkbandit validate configs/example_plan.toml
      sparkbandit reallocate --plan configs/example_plan.toml
      sparkbandit sync --plan plan.toml && sparkbandit reallocate --plan plan.toml && sparkbandit apply --plan plan.toml --yes
      sparkbandit simulate configs/studies/realistic.toml --replicates 500
    """


# ---------------------------------------------------------------------------- validate
@main.command(epilog="Examples:\n\n  sparkbandit validate configs/example_plan.toml")
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
def validate(plan: Path) -> None:
    """Check PLAN (and the data file it names) and print a one-line summary."""
    from allocator.plan import load_plan

    loaded = run_guarded(load_plan, plan)
    p = loaded.plan
    active = sum(c.status == "active" for c in p.creatives)
    msg = (
        f"{plan}: ok: campaign {p.campaign.name!r}, {len(p.creatives)} creatives ({active} active), "
        f"{p.campaign.currency} {p.campaign.daily_budget:,.2f}/day, model {p.campaign.model}, "
        f"policy {p.campaign.policy}"
    )
    if loaded.data_path is not None:
        from allocator.inputs.importer import read_results

        res = run_guarded(read_results, loaded.data_path, p)
        msg += f"; data {loaded.data_path.name}: {res.daily.n_days} days"
        for label, count in res.unknown.items():
            click.echo(f"warning: {loaded.data_path}: {count} rows for {label!r}, which is not in the plan", err=True)
        for w in res.warnings:
            click.echo(f"warning: {w}", err=True)
    click.echo(msg)


# ---------------------------------------------------------------------------- reallocate
def load_inputs(plan_path: Path, data: Path | None):
    """(LoadedPlan, DailyObservations, warnings, source) from --data, the plan's data, or the ledger."""
    from allocator.plan import load_plan

    loaded = load_plan(plan_path)
    path = data if data is not None else loaded.data_path
    if path is not None:
        from allocator.inputs.importer import read_results

        res = read_results(path, loaded.plan)
        warnings = [
            f"{path}: {count} rows for {label!r}, which is not in the plan (add it to [[creatives]] or check the id)"
            for label, count in res.unknown.items()
        ] + list(res.warnings)
        return loaded, res.daily, warnings, ("csv", path)
    return loaded, None, [], ("ledger", loaded.ledger_path)


REALLOCATE_EPILOG = """Examples:

\b
  sparkbandit reallocate --plan configs/example_plan.toml
  sparkbandit reallocate --plan plan.toml --data export.csv --out budgets.csv
  sparkbandit reallocate --plan plan.toml --out adgroups.csv --format adgroups
  sparkbandit reallocate --plan plan.toml --date 2026-11-26 --json
  sparkbandit reallocate --plan a.toml --plan b.toml
  sparkbandit reallocate --plan plans/ --format csv
"""


def format_option(default: str = "table", sheets: bool = False):
    """`--format table|csv|json` for a command that prints a table (`--json` stays as an alias); with `sheets`,
    also `adgroups`: the ad-group sheet for a bulk edit in Ads Manager (`reallocate`)."""
    choices = ["table", "csv", "json", *(["adgroups"] if sheets else [])]
    more = (
        (
            " or the ad-group sheet for a bulk edit in Ads Manager (adgroups: written to --out, else printed; "
            "--out gets the per-creative CSV otherwise)"
        )
        if sheets
        else ""
    )
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=None,
        help=f"Output: a table (default; plain full-width text when not on a terminal), CSV or JSON{more}.",
    )


def _adgroups_sheet(plan_path: Path, alloc) -> str:
    from allocator.plan import load_plan
    from allocator.presentation.sheets import adgroups_csv

    return adgroups_csv(load_plan(plan_path), alloc)


def json_alias_option():
    return click.option("--json", "as_json", is_flag=True, help="Same as --format json.")


def output_format(fmt: str | None, as_json: bool) -> str:
    """The format from --format and the --json alias (which must not contradict each other)."""
    if as_json and fmt not in (None, "json"):
        fail(f"--json and --format {fmt} contradict each other; give one of them")
    return "json" if as_json else (fmt or "table")


@main.command(epilog=REALLOCATE_EPILOG)
@click.option(
    "--plan",
    "plan_paths",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Campaign plan (TOML). Repeat it, or give a folder (its *.toml, sorted), to decide many plans in one run.",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results CSV (native or TikTok export); default: the plan's data, else the ledger.",
)
@click.option(
    "--date",
    "date_",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Day the new budgets apply to (default: the day after the last data).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the budgets as CSV (atomically; with the ledger the decision is recorded only once "
    "the file is written).",
)
@format_option(sheets=True)
@json_alias_option()
@click.option("--dry-run", is_flag=True, help="With the ledger: decide, but record nothing.")
def reallocate(
    plan_paths: tuple[Path, ...],
    data: Path | None,
    date_: dt.datetime | None,
    out: Path | None,
    fmt: str | None,
    as_json: bool,
    dry_run: bool,
) -> None:
    """Compute tomorrow's budget per creative with the plan's model, policy and guardrails."""
    from allocator.presentation.outputs import BUDGET_FORMATS
    from models.errors import SparkBanditError

    if len(plan_paths) > 1 or plan_paths[0].is_dir():
        _reallocate_plans(plan_paths, data, date_, out, fmt, as_json, dry_run)
        return
    plan_path = plan_paths[0]
    sheet = fmt == "adgroups"  # the ad-group sheet goes to --out; stdout then shows the table (or --json)
    fmt = ("json" if as_json else "table" if out is not None else "adgroups") if sheet else output_format(fmt, as_json)

    def write_outputs(alloc) -> None:
        # Called before the decision is recorded (inside the ledger's transaction): a file that cannot be
        # written leaves the ledger as it was.
        if out is not None:
            write_atomic(out, _adgroups_sheet(plan_path, alloc) if sheet else BUDGET_FORMATS["csv"](alloc))

    try:
        alloc = _reallocate(plan_path, data, None if date_ is None else date_.date(), dry_run, write_outputs)
    except SparkBanditError as e:
        fail(str(e), e.exit_code)
        return
    if fmt == "adgroups":
        click.echo(_adgroups_sheet(plan_path, alloc), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(alloc.to_json(), indent=2))
    elif fmt == "csv":
        from allocator.presentation.render import allocation_csv

        click.echo(allocation_csv(alloc), nl=False)
    else:
        from allocator.presentation.render import print_allocation

        print_allocation(alloc)
        if out is not None:
            click.echo(f"budgets written to {out}")


def _reallocate(plan_path: Path, data: Path | None, date: dt.date | None, dry_run: bool, write_outputs=None):
    from allocator.decisions.engine import reallocate as decide

    loaded, daily, warnings, (kind, source) = load_inputs(plan_path, data)
    if kind == "ledger":
        return _reallocate_ledger(loaded, date, dry_run, write_outputs)
    date = _decision_date(daily, date)
    fit_path = None
    if loaded.plan.campaign.model == "hierarchical":
        fit_path = fit_file(loaded)
    alloc = decide(loaded.plan, daily, date, fit_path=fit_path)
    alloc.warnings[:0] = warnings
    if write_outputs is not None:
        write_outputs(alloc)
    return alloc


def _reallocate_ledger(loaded, date: dt.date | None, dry_run: bool, write_outputs=None):
    """Decide from the ledger and record the decision (unless `dry_run`), as `reallocate` with one plan."""
    from allocator.storage.pushes import effective_plan
    from allocator.workflows.daily import reallocate_from_ledger

    notes = effective_plan(loaded)  # Spark authorization ends read by `sync` win over auth_expires
    alloc = reallocate_from_ledger(loaded, date, dry_run=dry_run, before_record=write_outputs)
    alloc.warnings[:0] = notes
    return alloc


def _decision_date(daily, date: dt.date | None) -> dt.date:
    """`date`, else the day after the last day of data (today when there is none)."""
    if date is not None:
        return date
    return (daily.dates[-1].astype(dt.date) + dt.timedelta(days=1)) if daily.n_days else dt.date.today()


def expand_plans(paths: tuple[Path, ...]) -> list[Path]:
    """The plan files of `--plan` in order, a folder replaced by its *.toml files sorted by name."""
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.glob("*.toml")) if p.is_dir() else [p])
    return out


def decide_plans(paths: list[Path], date: dt.date | None, dry_run: bool) -> list[tuple[Path, object]]:
    """(plan path, Allocation or the SparkBanditError that stopped it) per plan, in order.

    Plans whose results come from a CSV (conjugate model) are decided together by `reallocate_many` (the
    probability of best and the guardrails batched across plans; each plan's result equals deciding it
    alone). Hierarchical plans are decided one by one, each with its own fit file, as with one plan (the
    portfolio fit of `reallocate_many` would make one plan's result depend on the others). Ledger plans are
    decided and recorded one by one, each in its own ledger transaction, exactly as with one plan.
    """
    from allocator.decisions.engine import reallocate as decide
    from allocator.decisions.engine import reallocate_many
    from models.errors import SparkBanditError

    results: dict[int, object] = {}
    batch: list[tuple[int, Any, Any, dt.date, list[str]]] = []  # (index, LoadedPlan, DailyObservations, ...)
    for k, path in enumerate(paths):
        try:
            loaded, daily, warnings, (kind, _) = load_inputs(path, None)
            if kind == "ledger":
                results[k] = _reallocate_ledger(loaded, date, dry_run)
            elif loaded.plan.campaign.model == "hierarchical":
                alloc = decide(loaded.plan, daily, _decision_date(daily, date), fit_path=fit_file(loaded))
                alloc.warnings[:0] = warnings
                results[k] = alloc
            else:
                batch.append((k, loaded, daily, _decision_date(daily, date), warnings))
        except SparkBanditError as e:
            results[k] = e
    if batch:
        try:
            allocs: list[Allocation | SparkBanditError] = list(
                reallocate_many([(loaded.plan, daily, day, None) for _, loaded, daily, day, _ in batch])
            )
        except SparkBanditError:
            # One plan's data stopped the batch: decide each alone so that only that plan fails.
            allocs = []
            for _, loaded, daily, day, _ in batch:
                try:
                    allocs.append(decide(loaded.plan, daily, day))
                except SparkBanditError as e:
                    allocs.append(e)
        for (k, _, _, _, warnings), outcome in zip(batch, allocs, strict=True):
            if not isinstance(outcome, SparkBanditError):
                outcome.warnings[:0] = warnings
            results[k] = outcome
    return [(path, results[k]) for k, path in enumerate(paths)]


def plan_line(path: Path, alloc) -> str:
    """One line of `reallocate` with many plans: plan, campaign, date, total budget, phase, winner/leader."""
    names = {c.id: c.label for c in alloc.creatives}
    total = sum(c.budget for c in alloc.creatives)
    line = (
        f"{path}: campaign {alloc.campaign!r}, {alloc.date.isoformat()}, total {alloc.currency} {total:,.2f}, "
        f"phase: {alloc.phase}"
    )
    if alloc.winner is not None:
        line += f"; winner: {names.get(alloc.winner, alloc.winner)}"
    elif alloc.leader is not None:
        line += f"; leader: {names.get(alloc.leader, alloc.leader)}"
    else:
        line += "; no leader yet"
    return line


def _reallocate_plans(
    plan_paths: tuple[Path, ...],
    data: Path | None,
    date_: dt.datetime | None,
    out: Path | None,
    fmt: str | None,
    as_json: bool,
    dry_run: bool,
) -> None:
    """`reallocate` with several plans (or a folder): one line per plan and a summary; per-plan errors at the
    end, one line each, exit 2 if any plan failed."""
    from models.errors import SparkBanditError

    if data is not None:
        fail("--data names the results of one plan; with several plans each plan's own data (or ledger) is used")
    if out is not None:
        fail("--out writes one plan's budgets; with several plans use --format csv (one CSV with a plan column)")
    if fmt == "adgroups":
        fail("--format adgroups is the sheet of one plan; run it per plan")
    fmt = output_format(fmt, as_json)
    paths = expand_plans(plan_paths)
    if not paths:
        fail(f"{', '.join(map(str, plan_paths))}: no *.toml plans in the folder; give plan files or a folder of them")
    done = decide_plans(paths, None if date_ is None else date_.date(), dry_run)
    ok: list[tuple[Path, Any]] = [(p, a) for p, a in done if not isinstance(a, SparkBanditError)]  # Allocations
    failed = [(p, e) for p, e in done if isinstance(e, SparkBanditError)]
    if fmt == "json":
        click.echo(json.dumps([{"plan": str(p), **a.to_json()} for p, a in ok], indent=2))
    elif fmt == "csv":
        import csv
        import io

        from allocator.presentation.render import ALLOCATION_COLUMNS, allocation_csv

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["plan", *ALLOCATION_COLUMNS])
        for p, a in ok:
            for row in list(csv.reader(io.StringIO(allocation_csv(a))))[1:]:
                w.writerow([str(p), *row])
        click.echo(buf.getvalue(), nl=False)
    else:
        for p, a in ok:
            click.echo(plan_line(p, a))
        n_warn = sum(len(a.warnings) for _, a in ok)
        click.echo(
            f"{len(paths)} plans: {len(ok)} decided, {len(failed)} failed"
            + (f"; {n_warn} warnings (on stderr)" if n_warn else "")
        )
    for p, a in ok:
        for w_ in a.warnings:
            click.echo(f"warning: {p}: {w_}", err=True)
    for p, e in failed:
        msg = str(e)
        click.echo(f"error: {msg if msg.startswith(str(p)) else f'{p}: {msg}'}", err=True)
    if failed:
        sys.exit(2)


if __name__ == "__main__":
    main()

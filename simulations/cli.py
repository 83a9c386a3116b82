"""`sparkbandit simulate`: run a simulation study of policies offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from allocator.cli.main import fail, format_option, json_alias_option, output_format, run_guarded

SIMULATE_EPILOG = """Examples:

\b
  sparkbandit simulate configs/studies/realistic.toml
  sparkbandit simulate configs/studies/delay.toml --replicates 1000 --workers 2 --out out/delay
  sparkbandit simulate configs/studies/bernoulli.toml --seed 7 --json
  sparkbandit simulate study.toml --replicates 100000 --scheduler tcp://10.0.0.5:8786
"""


def _fmt(x: float | None, spec: str, se: float | None = None) -> str:
    if x is None:
        return "-"
    text = format(x, spec)
    if se is not None:
        text += " ± " + format(se, spec)
    return text


def print_summary(res, full: dict) -> None:
    from rich.table import Table

    unit = res.unit_cost
    table = Table(title=f"{res.name}: {res.replicates} replicates x {res.periods} periods", title_justify="left")
    for col in (
        "policy",
        "conversions",
        "regret",
        "spend" if not unit else "impressions",
        "CPA",
        "on best",
        "P(correct)",
        "winner day",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for policy, s in full["policies"].items():
        r = res.policies[policy]
        volume = s["spend_mean"] if not unit else float(r["units"].mean())
        table.add_row(
            policy,
            _fmt(s["conversions_mean"], ",.1f", s["conversions_se"]),
            _fmt(s["regret_mean"], ",.1f", s["regret_se"]),
            _fmt(volume, ",.0f"),
            _fmt(s["cpa_mean"], ",.2f"),
            _fmt(s["share_on_best"], ".1%"),
            _fmt(s["p_correct_winner"], ".1%"),
            _fmt(s["decision_day_mean"], ".1f"),
        )
    from allocator.presentation.render import console_for

    console = console_for()
    console.print(table)
    console.print("± one standard error over replicates; regret in expected conversions lost against the oracle")
    fell_back = {p: s["model_fallbacks"] for p, s in full["policies"].items() if s.get("model_fallbacks")}
    if fell_back:
        console.print(
            "hierarchical fits that failed the diagnostics gate and used the conjugate posterior: "
            + ", ".join(f"{p} {int(n)}" for p, n in fell_back.items())
        )


def _run(
    study: Path,
    replicates: int | None,
    seed: int | None,
    model: str | None,
    workers: int,
    scheduler: str | None,
    show_progress: bool,
    force: bool = False,
):
    from pydantic import ValidationError

    from allocator.plan import pydantic_error
    from simulations.runner import load_spec, run_study
    from simulations.study import Study, check_size

    try:
        spec = load_spec(study).with_overrides(replicates=replicates, seed=seed, model=model)
    except ValidationError as e:
        raise pydantic_error(str(study), e, Study) from None
    size = check_size(spec.study, str(study), spec.replicates, 1 if scheduler else workers, force)
    if size.seconds > 30:
        # Say up front what a long study costs: a log or a cron mail shows it even without a terminal.
        click.echo(f"simulating {spec.replicates:,} replicates: estimated {size.describe()}", err=True)
    if not show_progress:
        return run_study(spec, workers=workers, scheduler=scheduler)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TextColumn(f"(estimated {size.describe().split(' on ')[0]})"),
        transient=True,
    ) as bar:
        task = bar.add_task("chunks", total=spec.n_chunks)
        return run_study(
            spec,
            workers=workers,
            scheduler=scheduler,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


@click.command(epilog=SIMULATE_EPILOG)
@click.argument("study", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replicates", type=click.IntRange(min=1), help="Replicates (default: the study's).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed (default: the study's).")
@click.option(
    "--model",
    type=click.Choice(["conjugate", "hierarchical"]),
    help="The posterior the policies decide on (default: the study's).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for results.csv, summary.json and the PNG plots.",
)
@format_option()
@json_alias_option()
@click.option("--force", is_flag=True, help="Run a study even when its estimated time or memory is too large.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local processes running chunks of replicates.",
)
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://HOST:PORT) to run the chunks on.")
def simulate(
    study: Path,
    replicates: int | None,
    seed: int | None,
    model: str | None,
    out: Path | None,
    fmt: str | None,
    as_json: bool,
    force: bool,
    workers: int,
    scheduler: str | None,
) -> None:
    """Simulate STUDY (TOML): every policy it lists, with the plan's guardrails and stopping rule, against
    the oracle. The numbers depend only on the seed, not on --workers or --scheduler."""
    from simulations.metrics import summary

    fmt = output_format(fmt, as_json)
    show_progress = sys.stderr.isatty() and fmt == "table"
    try:
        res = run_guarded(_run, study, replicates, seed, model, workers, scheduler, show_progress, force)
    except OSError as e:
        fail(_os_error_line(e, scheduler))
        return
    except KeyboardInterrupt:
        fail("interrupted: the study was stopped and nothing was written", 130)
        return
    full = summary(res, full=True)
    if out is not None:
        run_guarded(write_outputs, res, full, out)
    if fmt == "json":
        click.echo(json.dumps(summary(res), indent=2))
    elif fmt == "csv":
        click.echo(summary_csv(res, full), nl=False)
    else:
        print_summary(res, full)
        if out is not None:
            click.echo(f"results written to {out}/ (results.csv, summary.json, 3 PNG plots)")


def _os_error_line(e: OSError, scheduler: str | None) -> str:
    """Blame what failed: a file (a history CSV that cannot be read), else the scheduler, else the pool."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename:
        return f"{e.filename}: cannot read ({reason}); check the path and its permissions"
    if scheduler is not None:
        return f"scheduler {scheduler}: {reason}; check the address and that the scheduler is running"
    return f"worker pool: {reason}; try --workers 1"


OUT_FILES = ("results.csv", "summary.json")


def write_outputs(res, full: dict, out: Path) -> None:
    """results.csv, summary.json and the plots into `out`, written whole or not at all."""
    from allocator.presentation.outputs import write_folder_atomic
    from simulations.metrics import results_csv
    from simulations.plots import PLOTS, write_plots

    def fill(folder: Path) -> None:
        (folder / "results.csv").write_text(results_csv(res), encoding="utf-8")
        (folder / "summary.json").write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
        write_plots(res, folder)

    write_folder_atomic(out, fill, (*OUT_FILES, *PLOTS))


def summary_csv(res, full: dict) -> str:
    """The summary table as CSV: one row per policy, the table's columns with their standard errors."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    from simulations.metrics import JSON_KEYS

    cols = [k for k in JSON_KEYS if k != "model_fallbacks"]  # the table's columns (fallbacks: a count, in JSON)
    w.writerow(["policy", *cols])
    for policy, s in full["policies"].items():
        w.writerow([policy, *("" if s.get(c) is None else repr(float(s[c])) for c in cols)])
    return buf.getvalue()

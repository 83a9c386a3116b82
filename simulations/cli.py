"""`sparkbandit simulate`: run a simulation study of policies offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from allocator.cli import fail, run_guarded, write_atomic

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
    from rich.console import Console
    from rich.table import Table

    unit = res.unit_cost
    table = Table(title=f"{res.name}: {res.replicates} replicates x {res.periods} periods", title_justify="left")
    for col in ("policy", "conversions", "regret", "spend" if not unit else "impressions", "CPA",
                "on best", "P(correct)", "winner day"):
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
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    console.print("± one standard error over replicates; regret in expected conversions lost against the oracle")
    fell_back = {p: s["model_fallbacks"] for p, s in full["policies"].items() if s.get("model_fallbacks")}
    if fell_back:
        console.print("hierarchical fits that failed the diagnostics gate and used the conjugate posterior: "
                      + ", ".join(f"{p} {int(n)}" for p, n in fell_back.items()))


def _run(study: Path, replicates: int | None, seed: int | None, model: str | None, workers: int,
         scheduler: str | None, show_progress: bool):
    from pydantic import ValidationError

    from allocator.plan import pydantic_error
    from simulations.runner import load_spec, run_study
    from simulations.study import Study

    try:
        spec = load_spec(study).with_overrides(replicates=replicates, seed=seed, model=model)
    except ValidationError as e:
        raise pydantic_error(str(study), e, Study) from None
    if not show_progress:
        return run_study(spec, workers=workers, scheduler=scheduler)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("chunks", total=spec.n_chunks)
        return run_study(spec, workers=workers, scheduler=scheduler,
                         progress=lambda done, total: bar.update(task, completed=done))


@click.command(epilog=SIMULATE_EPILOG)
@click.argument("study", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replicates", type=click.IntRange(min=1), help="Replicates (default: the study's).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed (default: the study's).")
@click.option("--model", type=click.Choice(["conjugate", "hierarchical"]),
              help="The posterior the policies decide on (default: the study's).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.csv, summary.json and the PNG plots.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local processes running chunks of replicates.")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://HOST:PORT) to run the chunks on.")
def simulate(study: Path, replicates: int | None, seed: int | None, model: str | None, out: Path | None,
             as_json: bool, workers: int, scheduler: str | None) -> None:
    """Simulate STUDY (TOML): every policy it lists, with the plan's guardrails and stopping rule, against
    the oracle. The numbers depend only on the seed, not on --workers or --scheduler."""
    from simulations.metrics import results_csv, summary

    show_progress = sys.stderr.isatty() and not as_json
    try:
        res = run_guarded(_run, study, replicates, seed, model, workers, scheduler, show_progress)
    except OSError as e:  # e.g. a scheduler that cannot be reached
        fail(f"{scheduler or 'workers'}: {e}")
        return
    full = summary(res, full=True)
    if out is not None:
        from simulations.plots import write_plots

        write_atomic(out / "results.csv", results_csv(res))
        write_atomic(out / "summary.json", json.dumps(full, indent=2) + "\n")
        write_plots(res, out)
    if as_json:
        click.echo(json.dumps(summary(res), indent=2))
    else:
        print_summary(res, full)
        if out is not None:
            click.echo(f"results written to {out}/ (results.csv, summary.json, 3 PNG plots)")

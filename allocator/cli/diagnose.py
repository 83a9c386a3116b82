"""`sparkbandit diagnose`: ArviZ's summary of the latest hierarchical fit saved beside the plan."""

from __future__ import annotations

from pathlib import Path

import click

from allocator.cli.main import fail, format_option, json_alias_option, output_format, run_guarded
from allocator.presentation.outputs import fit_file


@click.command(epilog="Examples:\n\n  sparkbandit diagnose --plan plan.toml")
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Campaign plan (TOML) whose latest fit to summarise.",
)
@format_option()
@json_alias_option()
def diagnose(plan_path: Path, fmt: str | None, as_json: bool) -> None:
    """Print ArviZ's summary (mean, sd, interval, ESS, R-hat) of the latest hierarchical fit."""
    fmt = output_format(fmt, as_json)
    from allocator.plan import load_plan

    loaded = run_guarded(load_plan, plan_path)
    path = fit_file(loaded)
    if not path.exists() and not path.with_suffix(".npz").exists():  # .npz: the fast path's fit
        fail(f'{path}: no saved fit; run `sparkbandit reallocate --plan {plan_path}` with model = "hierarchical" first')
    from models.hierarchical import diagnose_summary  # imports arviz

    text = run_guarded(diagnose_summary, path, fmt)
    click.echo(text, nl=fmt == "table")

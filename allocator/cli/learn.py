"""`sparkbandit learn`: priors (and delay, organic coefficient) from the account's past campaigns.

A thin click command over `allocator.workflows.learn`; `allocator.cli.main` registers it lazily.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from allocator.cli.main import fail, run_guarded
from allocator.presentation.outputs import write_atomic

LEARN_EPILOG = """Examples:

\b
  sparkbandit learn --history configs/studies/past_tests.csv
  sparkbandit learn --history past.csv --by creator --out priors.toml --json
  sparkbandit learn --plan q3.toml --plan q4.toml --out priors.toml
"""


@click.command("learn", epilog=LEARN_EPILOG)
@click.option(
    "--history",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Past tests CSV (campaign_id, creative_id, impressions, conversions[, clicks, spend, ...]).",
)
@click.option(
    "--plan",
    "plans",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A past campaign's plan; its ledger holds the results (repeat for several campaigns).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write the priors file (TOML) plans read with [prior] file = "...".',
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")
@click.option("--by", default=None, help="Also fit one prior per group: a history column, or 'creator' with --plan.")
@click.option(
    "--folds",
    default=5,
    show_default=True,
    type=click.IntRange(2, 100),
    help="Folds of the cross-validated check (over campaigns).",
)
@click.option(
    "--window",
    default=7,
    show_default=True,
    type=click.IntRange(1, 60),
    help="Attribution window in days (ages 0..window-1 of the delay CDF).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the folds and the bootstrap.")
@click.option("--no-organic", is_flag=True, help="Skip the portfolio fit of the organic coefficient (PyMC, slow).")
def learn(
    history: Path | None,
    plans: tuple[Path, ...],
    out: Path | None,
    as_json: bool,
    by: str | None,
    folds: int,
    window: int,
    seed: int,
    no_organic: bool,
) -> None:
    """Fit priors to past campaigns' creatives, check them on held-out campaigns, write a priors file.

    The conversion prior is the Beta that maximises the beta-binomial marginal likelihood of the past
    creatives (with standard errors); the click and CPM priors come from clicks and spend where present.
    With --plan, the ledgers' restated days also give the attribution-delay CDF (written as
    [model] delay_cdf) and, where the plans have organic data, the organic coefficient across campaigns.
    """
    import numpy as np

    from allocator.plan import Prior, load_plan
    from allocator.workflows.learn import PastCreatives
    from allocator.workflows.learn import learn as fit

    if (history is None) == (not plans):
        fail("give exactly one of --history FILE or --plan PLAN (repeatable)")
    if history is not None:
        past = run_guarded(PastCreatives.from_history, history, by)
        current, source = Prior(), str(history)
    else:
        if by not in (None, "creator"):
            fail(f"--by {by}: with --plan only 'creator' can group creatives; use --by creator")
        loaded = [run_guarded(load_plan, p) for p in plans]
        past = run_guarded(PastCreatives.from_plans, loaded, by, window)
        current, source = loaded[0].plan.prior, ", ".join(str(p) for p in plans)
    result = run_guarded(fit, past, current, folds, np.random.default_rng(seed), window, not no_organic)
    if out is not None:
        write_atomic(out, result.to_toml(source))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    for line in result.lines():
        click.echo(line)
    if out is not None:
        click.echo(f'\npriors written to {out}; use them with [prior] file = "{out.name}" in a plan')

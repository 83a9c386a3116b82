"""`sparkbandit candidates`: which organic post to boost next. A thin click command over
`allocator.decisions.candidates`; `allocator.cli.main` registers it lazily."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from allocator.cli.main import run_guarded

EPILOG = """Examples:

\b
  sparkbandit candidates --plan plan.toml posts.csv
  sparkbandit candidates --plan plan.toml posts.csv --json
"""


def _inputs(plan_path: Path):
    from allocator.cli.main import load_inputs

    loaded, daily, _, (kind, source) = load_inputs(plan_path, None)
    if kind == "ledger":
        from allocator.storage.ledger import Ledger
        from models.observations import DailyObservations

        if not Path(source).exists():
            return loaded, DailyObservations.empty(loaded.plan.creative_ids)
        with Ledger.open(source, create=False) as ledger:
            daily = ledger.daily(loaded.plan)
    return loaded, daily


@click.command("candidates", epilog=EPILOG)
@click.option(
    "--plan",
    "plan_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Campaign plan (TOML); its [prior] (e.g. a learned priors file) drives the prediction.",
)
@click.argument("posts", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]), help="Today (default: after the last data).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def candidates(plan_path: Path, posts: Path, date_: dt.datetime | None, as_json: bool) -> None:
    """Rank organic POSTS (CSV: post_id, views, likes, comments, shares[, creator]) not yet boosted by
    predicted conversions per dollar with a 90% interval, and say which running creative each would replace
    (authorization ending, or clearly losing)."""
    import numpy as np

    from allocator.decisions.candidates import rank_candidates, read_posts

    loaded, daily = run_guarded(_inputs, plan_path)
    plist = run_guarded(read_posts, posts)
    if date_ is not None:
        date = date_.date()
    elif daily.n_days:
        date = daily.dates[-1].astype(dt.date) + dt.timedelta(days=1)
    else:
        date = dt.date.today()
    ranked = run_guarded(
        rank_candidates, loaded.plan, plist, daily, date, np.random.default_rng(loaded.plan.campaign.seed)
    )
    cur = loaded.plan.campaign.currency
    if as_json:
        click.echo(
            json.dumps(
                {
                    "campaign": loaded.plan.campaign.name,
                    "date": date.isoformat(),
                    "currency": cur,
                    "candidates": [c.to_json() for c in ranked],
                },
                indent=2,
            )
        )
        return
    if not ranked:
        click.echo("every post in the file is already boosted in this plan")
        return
    click.echo(f"Posts to boost next for {loaded.plan.campaign.name!r} ({date.isoformat()}), best first:")
    for k, c in enumerate(ranked, start=1):
        per = 1000.0
        click.echo(
            f"{k}. {c.post.post_id}"
            + (f" ({c.post.creator})" if c.post.creator else "")
            + f": {c.mean * per:.1f} conversions per {per:,.0f} {cur} (90% {c.low * per:.1f} to "
            f"{c.high * per:.1f}), engagement {c.post.engagement_rate:.1%}; {c.why}"
        )

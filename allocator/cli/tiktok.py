"""TikTok API commands of the `sparkbandit` CLI: sync, apply, init.

Thin click commands over `allocator.workflows.sync`, `allocator.workflows.apply` and `allocator.workflows.init_plan`; `allocator.cli.main`
registers them lazily. The access token comes from TIKTOK_ACCESS_TOKEN (or the file TIKTOK_ACCESS_TOKEN_FILE)
and never appears in any output.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from allocator.cli.ledger import JSON_OPTION, PLAN_OPTION, _load
from allocator.cli.main import fail, run_guarded
from allocator.decisions.reasons import money
from allocator.presentation.outputs import write_atomic

DAY = click.DateTime(["%Y-%m-%d"])


def _client():
    from allocator.inputs.tiktok_api import TikTokClient, credentials_from_env

    return TikTokClient(run_guarded(credentials_from_env))


# ---------------------------------------------------------------------------- sync
SYNC_EPILOG = """Examples:

\b
  export TIKTOK_ACCESS_TOKEN=...        # or TIKTOK_ACCESS_TOKEN_FILE=~/.tiktok-token
  sparkbandit sync --plan plan.toml
  sparkbandit sync --plan plan.toml --since 2026-11-01 --json
"""


@click.command("sync", epilog=SYNC_EPILOG)
@PLAN_OPTION
@click.option("--date", "date_", type=DAY, help="Read the days before this one (default: today in [tiktok] time_zone).")
@click.option("--since", type=DAY, help="First day to read (default: the restatement window, or 30 days back).")
@JSON_OPTION
def sync(plan_path: Path, date_: dt.datetime | None, since: dt.datetime | None, as_json: bool) -> None:
    """Pull the daily ad-level report from the TikTok API into the plan's ledger.

    Exactly ingest's semantics: idempotent, restated days replace the stored ones (the ledger keeps the
    earlier version), one transaction, nothing written on any failure. Spark authorizations of creatives with
    an auth_code are read too; their end dates win over auth_expires.
    """
    from allocator.workflows.sync import sync as run_sync

    loaded = _load(plan_path)
    with _client() as client:
        res = run_guarded(
            run_sync, loaded, client, None if date_ is None else date_.date(), None if since is None else since.date()
        )
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps(res.to_json(), indent=2))
        return
    f = res.ingest.files[0]
    span = f"{res.start} to {res.end}" if res.start else f"nothing to read before {res.end + dt.timedelta(days=1)}"
    state = (
        "already synced: nothing changed"
        if f.status == "already imported"
        else f"{f.added} added, {f.restated} restated, {f.unchanged} unchanged"
    )
    click.echo(
        f"tiktok {loaded.plan.tiktok.advertiser_id}: {span}: {res.rows} rows in {res.pages} pages "
        f"({res.requests} requests): {state}"
    )
    for a in res.authorizations:
        exp = a.expires(res.time_zone)
        click.echo(
            f"  authorization {a.creative_id}: {a.auth_status or '-'}, ends {a.auth_end_time or '-'} UTC"
            + (f" (expires {exp.isoformat()})" if exp else "")
        )
    click.echo(f"ledger {res.ingest.ledger}")


# ---------------------------------------------------------------------------- apply
APPLY_EPILOG = """Examples:

\b
  sparkbandit apply --plan plan.toml            # show the changes; sends nothing
  sparkbandit apply --plan plan.toml --yes      # send them
  sparkbandit apply --plan plan.toml --date 2026-12-03 --yes --json
"""


@click.command("apply", epilog=APPLY_EPILOG)
@PLAN_OPTION
@click.option("--date", "date_", type=DAY, help="The decision to apply (default: the latest).")
@click.option("--yes", is_flag=True, help="Send the changes (without it nothing is sent).")
@click.option(
    "--now",
    "now_",
    hidden=True,
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    help="The current time (tests, scripted runs).",
)
@JSON_OPTION
def apply(plan_path: Path, date_: dt.datetime | None, yes: bool, now_: dt.datetime | None, as_json: bool) -> None:
    """Push the recorded decision's budgets to the ad groups on TikTok.

    A future day's budgets go as scheduled_budget (from 00:00 in the account's time zone), today's as budget;
    a budget of 0 disables the ad group, one coming back is re-enabled. Every push is recorded in the ledger;
    applying the same decision again sends nothing, and a re-run after a failure sends only what is missing.
    """
    from allocator.workflows.apply import apply as run_apply

    loaded = _load(plan_path)
    with _client() as client:
        res = run_guarded(run_apply, loaded, client, None if date_ is None else date_.date(), yes=yes, now=now_)
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps(res.to_json(), indent=2))
    else:
        _print_apply(loaded, res)
    if res.failed:
        fail(
            "TikTok refused some changes (see above); fix them and run apply --yes again: only what is missing is sent"
        )


def _print_apply(loaded, res) -> None:
    cur = loaded.plan.campaign.currency
    when = "from 00:00 (scheduled_budget)" if res.mode == "scheduled_budget" else "now (budget)"
    click.echo(f"decision for {res.decision.date.isoformat()} (run {res.decision.run_id[:8]}); budgets apply {when}")
    for ch in res.changes:
        old = "-" if ch.current_budget is None else money(ch.current_budget, cur)
        status = f"{ch.current_status} -> {ch.status_change}" if ch.status_change else (ch.current_status or "-")
        todo = []
        if ch.budget_kind:
            todo.append(f"send {ch.budget_kind} {money(ch.new_budget, cur)}")
        if ch.status_change:
            todo.append(f"send {ch.status_change}")
        line = (
            f"  {ch.label} (ad group {ch.adgroup_id}): {old} -> {money(ch.new_budget, cur)}, {status}; "
            f"{', '.join(todo) if todo else 'nothing to send'}; {ch.reason}"
        )
        click.echo(line)
        for o in ch.outcome:
            click.echo(f"      {o}")
    pending = sum(ch.pending for ch in res.changes)
    if not res.sent:
        click.echo(
            f"{pending} ad group{'s' if pending != 1 else ''} to change; nothing sent (add --yes to send)"
            if pending
            else "TikTok already has this decision; nothing to send"
        )
    elif not pending:
        click.echo("TikTok already has this decision; nothing sent")
    else:
        click.echo(
            f"{res.calls} call{'s' if res.calls != 1 else ''} sent; every push is recorded in {loaded.ledger_path}"
        )


# ---------------------------------------------------------------------------- init
INIT_EPILOG = """Examples:

\b
  sparkbandit init --from exports/2026-11-25.csv --out plan.toml
  sparkbandit init --from-api --advertiser-id 7000000000000000001 --time-zone Europe/London --out plan.toml
"""


@click.command("init", epilog=INIT_EPILOG)
@click.option("--from", "source", type=click.Path(dir_okay=False, path_type=Path), help="An Ads Manager export.")
@click.option("--from-api", is_flag=True, help="List the ads of the account's report (needs the token).")
@click.option("--advertiser-id", help="[tiktok] advertiser_id (the ad account id).")
@click.option("--time-zone", default="UTC", show_default=True, help="[tiktok] time_zone (IANA name).")
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1, 365),
    help="With --from-api: days of the report to list ads from.",
)
@click.option("--name", "campaign", help="[campaign] name.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: print).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def init(
    source: Path | None,
    from_api: bool,
    advertiser_id: str | None,
    time_zone: str,
    days: int,
    campaign: str | None,
    out: Path | None,
    force: bool,
) -> None:
    """Write a commented starter plan listing the creatives of an export (or of the ad account)."""
    from allocator.workflows.init_plan import from_export, from_report, starter_plan

    if (source is None) == (not from_api):
        fail("init: give either --from EXPORT or --from-api (with --advertiser-id)")
    if out is not None and out.exists() and not force:
        fail(f"{out} exists; choose another --out or add --force")
    if advertiser_id is not None and not advertiser_id.isdigit():
        fail(f"--advertiser-id: {advertiser_id!r} is not an ad account id (digits only); copy it from Ads Manager")
    if source is not None:
        found, meta = run_guarded(from_export, source)
        text = run_guarded(
            starter_plan,
            found,
            source=str(source),
            campaign=campaign or meta.get("campaign"),
            currency=meta.get("currency"),
            advertiser_id=advertiser_id,
            time_zone=time_zone,
        )
    else:
        if advertiser_id is None:
            fail("init --from-api: --advertiser-id is missing; give the ad account id")
        import zoneinfo

        from allocator.workflows.sync import today_in

        try:
            zoneinfo.ZoneInfo(time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            fail(f"--time-zone: {time_zone!r} is not an IANA time zone; e.g. America/New_York or UTC")
        end = today_in(time_zone) - dt.timedelta(days=1)
        start = end - dt.timedelta(days=days - 1)
        with _client() as client:
            items, _ = run_guarded(client.report, advertiser_id, start, end)
            found = from_report(items, {})
            groups = [f.adgroup_id for f in found if f.adgroup_id]
            adgroups = run_guarded(client.adgroups, advertiser_id, groups) if groups else {}
        found = from_report(items, adgroups)
        if not found:
            fail(f"advertiser {advertiser_id}: no ads with impressions from {start} to {end}; give more --days")
        text = run_guarded(
            starter_plan,
            found,
            source=f"the TikTok API (advertiser {advertiser_id})",
            campaign=campaign,
            advertiser_id=advertiser_id,
            time_zone=time_zone,
        )
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomic(out, text)
    click.echo(
        f"{out}: starter plan with {len(found)} creatives; check the TODO lines, then: sparkbandit validate {out}"
    )

"""`sparkbandit sync`: the ad-level daily report from the TikTok API into the ledger, with ingest's semantics.

The days read end the day before DAY (default: today in `[tiktok] time_zone`) and start at the earlier of
the day after the ledger's last result and DAY - `restate_days` (TikTok books conversions on the day of the
click and restates past days), or at `--since`; an empty ledger starts at the earliest `launched` date or 30
days back. Everything is fetched first; the rows then go through `Ledger.ingest` (idempotent; a restated
day adds a version and keeps the earlier one) together with the Spark authorizations, in one transaction:
any failure (API, network, bad value) writes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from allocator.inputs.matching import match_rows
from allocator.inputs.records import ParsedFile, ResultRow
from allocator.inputs.tiktok_api import REPORT_PAGE_SIZE, TikTokClient, chunks, metric_value
from allocator.plan import CampaignPlan, LoadedPlan
from allocator.storage.ledger import Ledger
from allocator.storage.pushes import Authorization, auth_disagreements, store_authorizations
from allocator.storage.summaries import IngestSummary
from models.errors import DataError, PlanError, TikTokAPIError

EMPTY_LEDGER_DAYS = 30
REPORT_SOURCE = "TikTok API report/integrated/get/"
# report metric -> ledger field
METRICS = {"impressions": "impressions", "clicks": "clicks", "conversion": "conversions", "spend": "spend"}


@dataclass(frozen=True)
class SyncResult:
    """What a sync read and stored."""

    start: dt.date | None
    end: dt.date
    requests: int  # report requests (30-day chunks)
    pages: int
    rows: int
    ingest: IngestSummary
    authorizations: tuple[Authorization, ...]
    time_zone: str
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = self.ingest.to_json()
        out["warnings"] = list(self.warnings)
        return {
            "start": None if self.start is None else self.start.isoformat(),
            "end": self.end.isoformat(),
            "requests": self.requests,
            "pages": self.pages,
            "rows": self.rows,
            "ingest": out,
            "authorizations": [a.to_json(self.time_zone) for a in self.authorizations],
            "warnings": list(self.warnings),
        }


def require_tiktok(loaded: LoadedPlan):
    """The plan's `[tiktok]` section, or a PlanError saying how to add it."""
    if loaded.plan.tiktok is None:
        raise PlanError(
            str(loaded.path),
            "tiktok",
            "section [tiktok] is missing",
            'add [tiktok] with advertiser_id = "..." (the ad account id, quoted) and time_zone',
        )
    return loaded.plan.tiktok


def today_in(time_zone: str, now: dt.datetime | None = None) -> dt.date:
    """Today's date in the account's time zone (`now` for tests and scripted runs: aware, or naive UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(zoneinfo.ZoneInfo(time_zone)).date()


def sync_window(
    plan: CampaignPlan, last: dt.date | None, day: dt.date, since: dt.date | None
) -> tuple[dt.date, dt.date]:
    """(start, end) of the days to read: see the module docstring. start > end means nothing to read."""
    end = day - dt.timedelta(days=1)
    if since is not None:
        return since, end
    restate = plan.tiktok.restate_days if plan.tiktok is not None else 7
    if last is None:
        launched = [c.launched for c in plan.creatives if c.launched is not None]
        return (min(launched) if launched else end - dt.timedelta(days=EMPTY_LEDGER_DAYS - 1)), end
    start = last + dt.timedelta(days=1)
    if restate:
        start = min(start, end - dt.timedelta(days=restate - 1))
    return start, end


def report_rows(plan: CampaignPlan, items: list[dict]) -> tuple[ResultRow, ...]:
    """The report's rows as validated `ResultRow`s, labelled with the plan's creative id where an `ad_id`
    matches (else the ad id, which `match_rows` resolves against creative ids or reports as unknown).

    Raises
    ------
    DataError
        A row without ad_id or stat_time_day, a metric that is not a number, negative, not whole (counts), or
        clicks or conversions above impressions; the message names the ad, day and metric.
    """
    by_ad = {c.ad_id: c.id for c in plan.creatives if c.ad_id}
    rows = []
    for k, item in enumerate(items, start=1):
        dims = item.get("dimensions") or {}
        metrics = item.get("metrics") or {}
        ad = str(dims.get("ad_id") or "").strip()
        day_text = str(dims.get("stat_time_day") or "").strip()
        if not ad or not day_text:
            raise DataError(
                REPORT_SOURCE,
                f"row {k}",
                "a row without ad_id or stat_time_day",
                "report this answer; the request asks for both dimensions",
            )
        try:
            day = dt.date.fromisoformat(day_text[:10])
        except ValueError:
            raise DataError(
                REPORT_SOURCE, f"ad {ad}", f"stat_time_day {day_text!r} is not a date", "report this answer"
            ) from None
        values = {}
        for metric, name in METRICS.items():
            raw = metrics.get(metric)
            try:
                v = metric_value(raw)
            except ValueError:
                raise DataError(
                    REPORT_SOURCE,
                    f"ad {ad}, {day.isoformat()}, metric {metric!r}",
                    f"{raw!r} is not a number",
                    'report this answer; values should be numbers, strings of numbers, null or "-"',
                ) from None
            if not math.isfinite(v) or v < 0 or (name != "spend" and not v.is_integer()):
                problem = (
                    "is not a whole number" if math.isfinite(v) and v >= 0 else "is not a finite non-negative number"
                )
                raise DataError(
                    REPORT_SOURCE,
                    f"ad {ad}, {day.isoformat()}, metric {metric!r}",
                    f"{raw!r} {problem}",
                    "report this answer",
                )
            values[name] = v + 0.0
        for name in ("clicks", "conversions"):
            if values[name] > values["impressions"]:
                raise DataError(
                    REPORT_SOURCE,
                    f"ad {ad}, {day.isoformat()}",
                    f"{name} {values[name]:g} above impressions {values['impressions']:g}",
                    "this day cannot be modelled; check the ad in Ads Manager",
                )
        rows.append(
            ResultRow(
                day,
                by_ad.get(ad, ad),
                values["impressions"],
                values["clicks"],
                values["conversions"],
                values["spend"],
                k,
            )
        )
    return tuple(rows)


def canonical_sha(advertiser: str, start: dt.date, end: dt.date, rows: tuple[ResultRow, ...]) -> str:
    """SHA-256 of the range and its rows in a canonical order: the same answer twice is "already imported"."""
    body = sorted((r.label, r.date.isoformat(), r.impressions, r.clicks, r.conversions, r.spend) for r in rows)
    text = json.dumps([advertiser, start.isoformat(), end.isoformat(), body], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fetch_authorizations(client: TikTokClient, plan: CampaignPlan) -> list[Authorization]:
    """tt_video/info for every creative with an `auth_code`."""
    out = []
    assert plan.tiktok is not None
    for j, c in enumerate(plan.creatives):
        if not c.auth_code:
            continue
        try:
            data = client.video_info(plan.tiktok.advertiser_id, c.auth_code)
        except TikTokAPIError as e:
            if e.code != 40002:
                raise
            raise TikTokAPIError(
                f"{e} (TikTok refused creatives[{j + 1}].auth_code of {c.label!r}: check the code, or ask the creator "
                "for a new one)",
                e.code,
                e.request_id,
            ) from None
        info = data.get("auth_info") or {}
        out.append(
            Authorization(c.id, info.get("ad_auth_status"), info.get("auth_start_time"), info.get("auth_end_time"))
        )
    return out


def sync(
    loaded: LoadedPlan,
    client: TikTokClient,
    day: dt.date | None = None,
    since: dt.date | None = None,
    *,
    now: dt.datetime | None = None,
    page_size: int = REPORT_PAGE_SIZE,
) -> SyncResult:
    """Pull the report for the sync window and the Spark authorizations, then store them in one transaction.

    Parameters
    ----------
    loaded : LoadedPlan
        Needs a `[tiktok]` section.
    client : TikTokClient
    day : datetime.date, optional
        Read the days before it (default: today in the account's time zone, from `now`).
    since : datetime.date, optional
        First day to read (overrides the window).
    """
    plan = loaded.plan
    tk = require_tiktok(loaded)
    day = day or today_in(tk.time_zone, now)
    last = None
    path = loaded.ledger_path
    if path.is_file():
        with Ledger.open(path) as ledger:
            daily = ledger.daily(plan)
            last = daily.dates[-1].astype(dt.date) if daily.n_days else None
    start, end = sync_window(plan, last, day, since)
    if since is not None and since > end:
        raise PlanError(
            "--since",
            "",
            f"{since.isoformat()} is after the last day to read ({end.isoformat()})",
            "give a day before --date",
        )
    # Every network call happens before the ledger is opened for writing: a failure writes nothing.
    items, pages = client.report(tk.advertiser_id, start, end, page_size=page_size) if start <= end else ([], 0)
    rows = report_rows(plan, items)
    auths = fetch_authorizations(client, plan)
    source = f"tiktok:{tk.advertiser_id}:{start.isoformat()}..{end.isoformat()}"
    parsed = ParsedFile(Path(source), "tiktok-api", rows, canonical_sha(tk.advertiser_id, start, end, rows))
    matched = match_rows(rows, plan, source)
    with Ledger.open(path) as ledger, ledger.write():
        summary = ledger.ingest(plan, [(parsed, matched)])
        store_authorizations(ledger, ledger.sync_plan(plan), auths, tk.time_zone)
    warnings = summary.warnings() + auth_disagreements(plan, {a.creative_id: a for a in auths})
    return SyncResult(
        start if start <= end else None,
        end,
        len(chunks(start, end)),
        pages,
        len(rows),
        summary,
        tuple(auths),
        tk.time_zone,
        warnings,
    )

"""`sparkbandit init`: a commented starter plan listing the creatives of an export or of the ad account.

Ids are written as quoted strings (a 19-digit id through a float reaches another ad), with names, ad group
ids (where the export or the API has them) and launch dates (the first day with impressions). The text is
validated as a plan before it is written, so the starter always passes `sparkbandit validate`.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from allocator.inputs.files import table_rows
from allocator.inputs.importer import parse_file
from allocator.plan import CampaignPlan, pydantic_error

# export column (case-folded) -> starter field, beyond what the importer reads
EXTRA_COLUMNS = {
    "ad name": "ad_name",
    "ad group id": "adgroup_id",
    "ad group name": "adgroup_name",
    "ad id": "ad_id",
    "currency": "currency",
    "campaign name": "campaign",
}


@dataclass
class Found:
    """A creative found in an export or the report."""

    label: str
    ad_id: str | None = None
    name: str | None = None
    adgroup_id: str | None = None
    adgroup_name: str | None = None
    launched: dt.date | None = None


def _export_extras(path: Path) -> dict[int, dict[str, str]]:
    """line -> {field: cell} of the export's extra columns (CSV, tab text or .xlsx, read as `parse_file` reads)."""
    out: dict[int, dict[str, str]] = {}
    index: dict[str, int] | None = None
    for line, cells in table_rows(path):
        if not any(c for c in cells):
            continue
        if index is None:
            index = {EXTRA_COLUMNS[c.casefold()]: i for i, c in enumerate(cells) if c.casefold() in EXTRA_COLUMNS}
            continue
        out[line] = {f: cells[i] for f, i in index.items() if i < len(cells) and cells[i] not in ("", "-")}
    return out


def from_export(path: str | Path) -> tuple[list[Found], dict[str, str]]:
    """Creatives of an Ads Manager export (or a native CSV), in order of first appearance, and the export's
    campaign name and currency when it has them.

    Raises
    ------
    DataError
        Any error of `allocator.inputs.importer.parse_file`.
    """
    parsed = parse_file(path)
    extras = _export_extras(Path(path)) if parsed.format == "tiktok" else {}
    found: dict[str, Found] = {}
    meta: dict[str, str] = {}
    for row in parsed.rows:
        x = extras.get(row.line, {})
        label = row.label.strip()
        f = found.setdefault(label, Found(label))
        ad_id = x.get("ad_id")
        if ad_id and ad_id.isdigit():
            f.ad_id = ad_id
        f.name = f.name or x.get("ad_name")
        f.adgroup_id = f.adgroup_id or (x.get("adgroup_id") if (x.get("adgroup_id") or "").isdigit() else None)
        f.adgroup_name = f.adgroup_name or x.get("adgroup_name")
        if row.impressions > 0 and (f.launched is None or row.date < f.launched):
            f.launched = row.date
        for key in ("campaign", "currency"):
            if key in x:
                meta.setdefault(key, x[key])
    return list(found.values()), meta


def from_report(items: list[dict], adgroups: dict[str, dict]) -> list[Found]:
    """Creatives of report rows (`TikTokClient.report`) with impressions, ordered by ad id."""
    from allocator.inputs.tiktok_api import metric_value

    found: dict[str, Found] = {}
    for item in items:
        dims, m = item.get("dimensions") or {}, item.get("metrics") or {}
        ad = str(dims.get("ad_id") or "")
        try:
            impressions = metric_value(m.get("impressions"))
        except ValueError:
            impressions = 0.0
        if not ad or impressions <= 0:
            continue
        day = dt.date.fromisoformat(str(dims.get("stat_time_day"))[:10])
        f = found.setdefault(ad, Found(ad, ad_id=ad))
        f.name = f.name or (m.get("ad_name") or None)
        group = str(m.get("adgroup_id") or "")
        if group.isdigit() and group != "0":
            f.adgroup_id = group
            f.adgroup_name = (adgroups.get(group) or {}).get("adgroup_name")
        if f.launched is None or day < f.launched:
            f.launched = day
    return [found[k] for k in sorted(found)]


def _s(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def starter_plan(
    found: list[Found],
    *,
    source: str,
    campaign: str | None = None,
    currency: str | None = None,
    advertiser_id: str | None = None,
    time_zone: str = "UTC",
    today: dt.date | None = None,
) -> str:
    """The commented TOML text of a starter plan; validated (raises PlanError if it would not be)."""
    today = today or dt.datetime.now(dt.UTC).date()
    n = max(1, len(found))
    budget = max(100.0, 20.0 * n)
    lines = [
        f"# Starter plan written by `sparkbandit init` from {source} on {today.isoformat()}.",
        "# Check every line marked TODO, then run: sparkbandit validate THIS_FILE",
        '# Keys: see the README\'s "Campaign plan (TOML)" section.',
        "",
        "[campaign]",
        f"name = {_s(campaign or 'My Spark Ads test')}  # TODO: the campaign's name (the ledger is keyed by it)",
        f"currency = {_s((currency or 'USD').upper()[:3])}  # the ad account's currency",
        f"daily_budget = {budget:.2f}  # TODO: the campaign's daily budget, split among the creatives",
        "",
    ]
    if n > 20:
        lines += [
            "[guardrails]",
            f"exploration_floor = {int(1000 / n) / 1000:.3f}  # 5% each cannot fit {n} creatives",
            "",
        ]
    if advertiser_id:
        lines += [
            "[tiktok]",
            f"advertiser_id = {_s(advertiser_id)}",
            f"time_zone = {_s(time_zone)}  # the ad account's time zone (IANA name)",
            "restate_days = 7  # days re-read by every sync (TikTok restates late conversions)",
            "",
        ]
    else:
        lines += [
            "# For sync and apply (TikTok API): the ad account id (quoted) and its time zone.",
            "# [tiktok]",
            '# advertiser_id = "7000000000000000000"',
            '# time_zone = "UTC"',
            "",
        ]
    names: set[str] = set()
    groups: dict[str, str] = {}
    for f in found:
        name = f.name
        if name and name in names:
            name = f"{name} ({f.ad_id or f.label})"  # plan names must be unique
        if name:
            names.add(name)
        lines.append("[[creatives]]")
        lines.append(f"id = {_s(f.label)}")
        if name and name != f.label:
            lines.append(f"name = {_s(name)}")
        if f.ad_id:
            lines.append(f"ad_id = {_s(f.ad_id)}")
        if f.adgroup_id and f.adgroup_id in groups:
            lines.append(
                f"# adgroup_id = {_s(f.adgroup_id)}  # TODO: shared with creative {groups[f.adgroup_id]!r}; "
                "move this ad to an ad group of its own"
            )
        elif f.adgroup_id:
            groups[f.adgroup_id] = f.label
            lines.append(f"adgroup_id = {_s(f.adgroup_id)}")
            if f.adgroup_name:
                lines.append(f"adgroup_name = {_s(f.adgroup_name)}")
        else:
            lines.append('# adgroup_id = ""  # TODO: the ad group id (one Spark Ad per ad group), for apply')
        if f.launched:
            lines.append(f"launched = {f.launched.isoformat()}  # first day with impressions")
        lines.append('# auth_code = ""  # the Spark authorization code: sync reads its end date from TikTok')
        lines.append("# auth_expires = 2026-12-31  # or the authorization's end, by hand")
        lines.append("")
    text = "\n".join(lines)
    try:
        CampaignPlan.model_validate(tomllib.loads(text))
    except ValidationError as e:
        raise pydantic_error("<starter plan>", e, CampaignPlan) from None
    return text

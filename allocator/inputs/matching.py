"""Matching rows to a plan's creatives: by id, else by name (a TikTok row's Ad name when its Ad ID is not
in the plan), after NFC normalisation, exactly then ignoring case; one row per creative and day."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from allocator.inputs.records import MatchedResults, ResultRow
from models.errors import DataError
from models.observations import FIELDS, DailyObservations

if TYPE_CHECKING:  # pydantic stays out of the import path of this module
    from allocator.plan import CampaignPlan


def match_rows(
    rows: Iterable[ResultRow], plan: CampaignPlan, source: str, *, require_match: bool = False
) -> MatchedResults:
    """Match rows to the plan's creatives and build daily observations.

    A row matches the creative whose id equals its label, else whose name equals it; a TikTok row whose
    Ad ID is not in the plan falls back to its Ad name. Labels, ids and names are compared after stripping
    surrounding spaces and Unicode NFC normalisation (a name typed on a Mac and one exported by TikTok may
    compose accents differently), exactly, then ignoring case (case-folding).

    Parameters
    ----------
    rows : iterable of ResultRow
        Rows of one file (their `line` numbers refer to `source`).
    plan : CampaignPlan
    source : str
        The file the rows come from, for error messages.
    require_match : bool
        Refuse rows of which none matches a plan creative (a decision on no data is no decision).

    Returns
    -------
    MatchedResults

    Raises
    ------
    DataError
        Two rows for the same creative and day, a label that matches two creatives once case is ignored,
        a row whose `Currency` is not the plan's, or (with `require_match`) no row matching any creative.
    """
    return match_entries(((source, row) for row in rows), plan, require_match=require_match)


def normalise(text: str) -> str:
    """A label or name as compared: stripped and NFC-normalised."""
    return unicodedata.normalize("NFC", text.strip())


def _folded(text: str) -> str:
    # casefold can decompose (e.g. "İ"): normalise again so that both sides compare in NFC
    return unicodedata.normalize("NFC", normalise(text).casefold())


def _resolver(plan: CampaignPlan) -> Callable[[str], str | list[str] | None]:
    """label -> plan creative id, a list of ids when ambiguous ignoring case, or None when unknown."""
    levels: list[dict[str, list[str]]] = [{}, {}, {}, {}]
    for c in plan.creatives:
        keys = (normalise(c.id), normalise(c.name or ""))
        for level, key in enumerate((*keys, *(_folded(k) for k in keys))):
            if key:
                ids = levels[level].setdefault(key, [])
                if c.id not in ids:
                    ids.append(c.id)
    cache: dict[str, str | list[str] | None] = {}

    def resolve(label: str) -> str | list[str] | None:
        if label not in cache:
            s = normalise(label)
            f = _folded(label)
            found: str | list[str] | None = None
            for level, key in enumerate((s, s, f, f)):
                ids = levels[level].get(key)
                if ids:
                    found = ids[0] if len(ids) == 1 else ids
                    break
            cache[label] = found
        return cache[label]

    return resolve


def row_resolver(plan: CampaignPlan) -> Callable[[ResultRow], str | list[str] | None]:
    """row -> plan creative id by its label, else (Ad ID not in the plan) by its Ad name; a list of ids when
    the label is ambiguous ignoring case; None when neither matches. The ledger uses it for pending rows."""
    resolve = _resolver(plan)

    def by_row(row: ResultRow) -> str | list[str] | None:
        found = resolve(row.label)
        if found is None and row.name:
            found = resolve(row.name)
        return found

    return by_row


def match_entries(
    entries: Iterable[tuple[str, ResultRow]], plan: CampaignPlan, *, require_match: bool = False
) -> MatchedResults:
    resolve = row_resolver(plan)
    ids = [c.id for c in plan.creatives]
    currency = plan.campaign.currency.upper()
    # creative-day -> its row, keyed by one int (creative index x 2^22 + day ordinal, which is below 2^22 up to year 9999) to keep a big export
    # small in memory; `origin` holds the file of rows not from the first one (for the duplicate message)
    column = {cid: j for j, cid in enumerate(ids)}
    seen: dict[int, ResultRow] = {}
    origin: dict[int, str] = {}
    unknown: Counter[str] = Counter()
    first: dt.date | None = None
    last: dt.date | None = None
    sources: list[str] = []
    for source, row in entries:
        if not sources or sources[-1] != source:
            sources.append(source)
        if row.currency is not None and row.currency != currency:
            raise DataError(
                source,
                f"row {row.line}, column 'Currency'",
                f"{row.currency} but the plan's currency is {currency}",
                "export the ad account the plan is for, or set [campaign] currency",
            )
        first = row.date if first is None or row.date < first else first
        last = row.date if last is None or row.date > last else last
        found = resolve(row)
        if found is None:
            unknown[normalise(row.label)] += 1
            continue
        if isinstance(found, list):
            raise DataError(
                source,
                f"row {row.line}",
                f"{row.label.strip()!r} matches creatives {' and '.join(map(repr, found))} when case is ignored",
                "write the creative's id exactly as in the plan",
            )
        key = column[found] << 22 | row.date.toordinal()
        if key in seen:
            other, other_source = seen[key], origin.get(key, sources[0])
            lines = (
                f"lines {other.line} and {row.line}"
                if other_source == source
                else f"line {other.line} of {other_source} and line {row.line} of {source}"
            )
            raise DataError(
                source,
                f"row {row.line}",
                f"duplicate creative-day rows for creative {found!r} on {row.date.isoformat()} ({lines})",
                "keep one row per creative and day",
            )
        seen[key] = row
        if source != sources[0]:
            origin[key] = source
    if require_match and unknown and not seen:
        labels = ", ".join(repr(label) for label, _ in unknown.most_common(3))
        raise DataError(
            " and ".join(sources),
            "",
            f"none of its {sum(unknown.values())} rows matches a creative of the plan (labels such as {labels})",
            "check that the export is for this campaign, or add the creatives to [[creatives]] (by id or name)",
        )

    if first is None or last is None:
        daily = DailyObservations.empty(tuple(ids))
    else:
        n_days, start = (last - first).days + 1, first.toordinal()
        arrays = {name: np.zeros((n_days, len(ids))) for name in FIELDS}
        observed = np.zeros((n_days, len(ids)), dtype=bool)
        for key, row in seen.items():
            d, j = (key & 0x3FFFFF) - start, key >> 22
            for name in FIELDS:
                arrays[name][d, j] = getattr(row, name)
            observed[d, j] = True
        dates = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + np.timedelta64(1, "D"))
        daily = DailyObservations(tuple(ids), dates, **arrays, observed=observed)
    counts = Counter(ids[key >> 22] for key in seen)
    return MatchedResults(
        daily=daily,
        rows_by_creative={cid: counts[cid] for cid in ids},
        unknown=dict(unknown),
        first_date=first,
        last_date=last,
    )

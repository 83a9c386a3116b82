"""The types of results import: a validated row (`ResultRow`), a file read (`ParsedFile`), rows matched to a
plan (`MatchedResults`) and how files are read (`ReadOptions`: the plan's date format and plausibility limits)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from models.observations import DailyObservations

if TYPE_CHECKING:  # pydantic stays out of the import path of this module
    from allocator.plan import CampaignPlan


@dataclass(frozen=True, slots=True)  # slots: a 50 MB export holds ~200,000 of them
class ResultRow:
    """One validated row of a results file: one creative on one day.

    Attributes
    ----------
    date : datetime.date
    label : str
        The creative id (or, in a TikTok export without an Ad ID, the ad name) as written in the file.
    impressions, clicks, conversions : float
        Whole, non-negative counts; clicks and conversions are at most impressions.
    spend : float
        Non-negative, finite, in the account's currency.
    line : int
        1-based line number of the row in the file (the header is line 1).
    name : str or None
        The Ad name of a TikTok row whose label is its Ad ID: matching falls back to it when the id is not
        in the plan. Not compared (two rows are equal whatever names they carry).
    currency : str or None
        The row's `Currency` cell (ISO code, upper case) when the export has that column. Not compared.
    """

    date: dt.date
    label: str
    impressions: float
    clicks: float
    conversions: float
    spend: float
    line: int
    name: str | None = field(default=None, compare=False)
    currency: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ParsedFile:
    """A results file read and validated.

    Attributes
    ----------
    path : Path
    format : str
        ``"native"`` or ``"tiktok"`` (the sync builds ``"tiktok-api"`` files from API rows).
    rows : tuple of ResultRow
        The data rows in file order (summary row and blank lines left out); never empty.
    sha256 : str
        Hex digest of the file's bytes, to recognise a file seen before.
    exported_at : datetime or None
        When the data was exported; None means "as of the file's modification time" (or now, for rows that
        have no file). The ledger never lets an older export overwrite a newer version of a day.
    notes : tuple of str
        How the file was read, for the user: the number format and date order decided for it.
    warnings : tuple of str
        Implausible but possible values (spend 0 with impressions), each naming the file, row and column.
    """

    path: Path
    format: str
    rows: tuple[ResultRow, ...]
    sha256: str
    exported_at: dt.datetime | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchedResults:
    """Rows matched to the plan's creatives.

    Attributes
    ----------
    daily : DailyObservations
        Over all plan creatives in plan order; ``dates`` run day by day from `first_date` to `last_date`.
        A creative-day without a row is zeros with ``observed`` False. Empty (0 days) when there were no rows.
    rows_by_creative : dict of str to int
        Plan creative id -> number of rows matched to it (every plan creative, in plan order).
    unknown : dict of str to int
        Label (stripped) that matches no plan creative -> number of rows. These rows are not in `daily`;
        the caller should warn about them (the ledger keeps them as pending).
    first_date, last_date : datetime.date or None
        First and last date of any row, matched or not; None when there were no rows.
    warnings : tuple of str
        The files' read warnings (`ParsedFile.warnings`), for `read_results`.
    """

    daily: DailyObservations
    rows_by_creative: dict[str, int]
    unknown: dict[str, int]
    first_date: dt.date | None
    last_date: dt.date | None
    warnings: tuple[str, ...] = ()


DATE_FORMATS = ("YYYY-MM-DD", "MM/DD/YYYY", "DD/MM/YYYY")
MAX_COUNT = 2.0**53  # the largest count a float (and the ledger's REAL) holds exactly


@dataclass(frozen=True)
class ReadOptions:
    """How to read results files: the plan's `[campaign] date_format` and `[data]` limits.

    Attributes
    ----------
    date_format : str or None
        One of `DATE_FORMATS`; None detects the order of slash dates from the file (a day above 12) and
        refuses a file where every day and month are 12 or less.
    decimal : str or None
        "." or ","; None decides per file from its values and delimiter.
    max_spend : float
        Largest plausible spend of one creative on one day, in the plan's currency.
    max_days_ahead : int
        Rows dated more than this many days after `today` are refused.
    max_days_back : int
        Rows dated more than this many days before `today` are refused (a misread year, or an export of
        another account's history).
    today : datetime.date or None
        The reference day for `max_days_ahead` and `max_days_back`; None skips both checks.
    zero_spend : str
        "warn" or "error": a row with impressions but spend 0.
    """

    date_format: str | None = None
    decimal: str | None = None
    max_spend: float = 1e10
    max_days_ahead: int = 1
    max_days_back: int = 1095
    today: dt.date | None = None
    zero_spend: str = "warn"

    @classmethod
    def from_plan(cls, plan: CampaignPlan, today: dt.date | None = None) -> ReadOptions:
        d = plan.data
        return cls(
            date_format=plan.campaign.date_format,
            decimal=d.decimal,
            max_spend=d.max_spend,
            max_days_ahead=d.max_days_ahead,
            max_days_back=d.max_days_back,
            today=today or dt.datetime.now(dt.UTC).date(),
            zero_spend=d.zero_spend,
        )

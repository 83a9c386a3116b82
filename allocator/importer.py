"""Read daily results files and match their rows to a plan's creatives.

Two file formats, told apart by the header (row 1):

- native CSV: exactly the columns ``date, creative_id, impressions, clicks, conversions, spend``
  (any order, any case, surrounding spaces ignored). Dates ``YYYY-MM-DD``; plain numbers only
  (``1234``, ``12.5``, ``1e3``), no thousands separators or currency; an empty value is an error.
- TikTok Ads Manager export: the columns "By Day" (date), "Ad ID" and/or "Ad name" (the creative),
  "Cost" (spend), "Impressions", "Clicks (destination)" (clicks) and "Conversions"; every other export
  column is ignored. The "Total of ..." summary row is dropped. Numbers may carry thousands separators
  ("12,345") and a currency symbol or ISO code ("$1,234.50", "1234.50 USD"); "-" or an empty cell
  means 0 (for the counts and for Cost: TikTok writes "-" on days an ad did not deliver).
  Dates ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``MM/DD/YYYY``.

Both formats: UTF-8 with or without a byte-order mark; comma, tab or semicolon delimited (sniffed from
the header line). Every row is validated; the first bad one raises a `DataError` naming the file, the
line ("row N", the 1-based line number with the header on line 1), the column, the problem and the fix.

Only the standard library's `csv` is used (no pandas): exact line numbers and a fast CLI start-up.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import hashlib
import io
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.errors import DataError
from models.observations import FIELDS, DailyObservations

if TYPE_CHECKING:  # pydantic stays out of the import path of this module
    from allocator.plan import CampaignPlan

COUNTS = ("impressions", "clicks", "conversions")
NATIVE_COLUMNS = ("date", "creative_id", "impressions", "clicks", "conversions", "spend")
# TikTok export header (case-folded) -> field; "ad_id" and "ad_name" both give the creative label.
TIKTOK_COLUMNS = {
    "by day": "date",
    "ad id": "ad_id",
    "ad name": "ad_name",
    "cost": "spend",
    "impressions": "impressions",
    "clicks (destination)": "clicks",
    "conversions": "conversions",
}
TIKTOK_NAMES = {
    "date": "By Day",
    "ad_id": "Ad ID",
    "ad_name": "Ad name",
    "spend": "Cost",
    "impressions": "Impressions",
    "clicks": "Clicks (destination)",
    "conversions": "Conversions",
}
DELIMITERS = (",", "\t", ";")
NATIVE_DATE_FORMATS = "YYYY-MM-DD"
TIKTOK_DATE_FORMATS = "YYYY-MM-DD, YYYY/MM/DD or MM/DD/YYYY"


# ---------------------------------------------------------------------- public types
@dataclass(frozen=True)
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
    """

    date: dt.date
    label: str
    impressions: float
    clicks: float
    conversions: float
    spend: float
    line: int


@dataclass(frozen=True)
class ParsedFile:
    """A results file read and validated.

    Attributes
    ----------
    path : Path
    format : str
        ``"native"`` or ``"tiktok"``.
    rows : tuple of ResultRow
        The data rows in file order (summary row and blank lines left out); never empty.
    sha256 : str
        Hex digest of the file's bytes, to recognise a file seen before.
    """

    path: Path
    format: str
    rows: tuple[ResultRow, ...]
    sha256: str


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
        the caller should warn about them.
    first_date, last_date : datetime.date or None
        First and last date of any row, matched or not; None when there were no rows.
    """

    daily: DailyObservations
    rows_by_creative: dict[str, int]
    unknown: dict[str, int]
    first_date: dt.date | None
    last_date: dt.date | None


# ---------------------------------------------------------------------- parsing
class _Bad(Exception):
    """A bad value; the row loop adds the file, row and column."""

    def __init__(self, problem: str, fix: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.field = field  # set when the reader knows the column better than the caller


@dataclass(frozen=True)
class _Layout:
    """Where each field sits in a file's rows and how its cells are read."""

    format: str
    index: dict[str, int]  # field -> cell index
    names: dict[str, str]  # field -> column name as written in the header
    width: int  # number of header columns up to the last named one
    parse_date: Callable[[str], dt.date]
    parse_number: Callable[[str], float]


def parse_file(path: str | Path) -> ParsedFile:
    """Read one results file, native CSV or TikTok Ads Manager export.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ParsedFile
        The format detected from the header, the validated rows and the SHA-256 of the file's bytes.

    Raises
    ------
    DataError
        On the first problem: file not found or unreadable, not UTF-8, no data rows, a missing,
        unknown or repeated column, a row with the wrong number of values, an empty or unparsable
        date, an empty creative, a value that is not a number, not finite, negative or (for counts)
        not whole, or clicks or conversions above impressions. The message names the file, the
        line ("row N") and the column.
    """
    path = Path(path)
    source = str(path)
    raw = _read_bytes(path, source)
    text = _decode(raw, source)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    rows: list[ResultRow] = []
    layout: _Layout | None = None
    line = 0
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num  # a quoted value may span lines: report the first
            if not any(c.strip() for c in cells):
                continue
            if layout is None:
                layout = _layout(cells, source, start)
                continue
            if layout.format == "tiktok" and cells[0].strip().casefold().startswith("total of"):
                continue
            rows.append(_row(cells, layout, source, start))
    except csv.Error as e:
        raise DataError(source, f"row {reader.line_num}", f"not valid CSV ({e})", "check the quoting") from None
    if not rows:
        problem = "no data rows" if layout is not None else "no data rows (the file is empty)"
        raise DataError(source, "", problem, "export at least one day of results")
    assert layout is not None
    return ParsedFile(path, layout.format, tuple(rows), hashlib.sha256(raw).hexdigest())


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(source, "", "file not found", "check the path") from None
    except OSError as e:
        raise DataError(source, "", f"cannot read ({e.strerror})", "check the path and permissions") from None


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            source,
            f"row {line}",
            f"not UTF-8 text (byte 0x{raw[e.start]:02x})",
            "save the file as UTF-8 (in Excel: Save As, CSV UTF-8)",
        ) from None


def _sniff_delimiter(text: str) -> str:
    """The most frequent of comma, tab and semicolon on the header line (comma on a tie)."""
    header = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first on a tie: comma
    return best if counts[best] else ","


def _layout(header: list[str], source: str, line: int) -> _Layout:
    names = [c.strip() for c in header]
    width = max(i for i, n in enumerate(names) if n) + 1
    folded = {n.casefold() for n in names if n}
    tiktok = "by day" in folded or bool(folded & {"ad id", "ad name", "cost", "clicks (destination)"})
    return _tiktok_layout(names, width, source, line) if tiktok else _native_layout(names, width, source, line)


def _native_layout(names: list[str], width: int, source: str, line: int) -> _Layout:
    index: dict[str, int] = {}
    written: dict[str, str] = {}
    listing = ", ".join(NATIVE_COLUMNS)
    for i, name in enumerate(names):
        if not name:
            continue
        key = name.casefold()
        where = f"row {line}, column {name!r}"
        if key not in NATIVE_COLUMNS:
            close = difflib.get_close_matches(key, NATIVE_COLUMNS, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"remove it (the columns are: {listing})"
            raise DataError(source, where, "unknown column", fix)
        if key in index:
            raise DataError(source, where, "column appears more than once", "keep one")
        index[key], written[key] = i, name
    for col in NATIVE_COLUMNS:
        if col not in index:
            raise DataError(source, f"row {line}", f"missing column '{col}'", f"add it (the columns are: {listing})")
    index["label"], written["label"] = index.pop("creative_id"), written.pop("creative_id")
    return _Layout("native", index, written, width, _native_date, _native_number)


def _tiktok_layout(names: list[str], width: int, source: str, line: int) -> _Layout:
    index: dict[str, int] = {}
    written: dict[str, str] = {}
    for i, name in enumerate(names):
        field = TIKTOK_COLUMNS.get(name.casefold())
        if field is None:
            continue  # the export's other columns (Campaign name, CTR, CPM, Reach...) are not needed
        if field in index:
            raise DataError(source, f"row {line}, column {name!r}", "column appears more than once", "keep one")
        index[field], written[field] = i, name
    if "ad_id" not in index and "ad_name" not in index:
        raise DataError(
            source, f"row {line}", "missing column 'Ad ID' or 'Ad name'", "add Ad ID (or Ad name) to the export"
        )
    for field in ("date", "impressions", "clicks", "conversions", "spend"):
        if field not in index:
            col = TIKTOK_NAMES[field]
            fix = (
                "export with the By Day breakdown (one row per ad and day)"
                if field == "date"
                else "add it to the export's columns in Ads Manager"
            )
            raise DataError(source, f"row {line}", f"missing column '{col}'", fix)
    return _Layout("tiktok", index, written, width, _tiktok_date, _tiktok_number)


def _row(cells: list[str], layout: _Layout, source: str, line: int) -> ResultRow:
    # Trailing empty cells are what spreadsheets leave behind; any other count means shifted columns
    # (e.g. an unquoted "12,345" in a comma-separated file), which would silently misread values.
    n = len(cells)
    while n > layout.width and not cells[n - 1].strip():
        n -= 1
    if n != layout.width:
        raise DataError(
            source,
            f"row {line}",
            f"{n} values but the header has {layout.width} columns",
            "quote values that contain the delimiter and fill in missing values",
        )

    def where(field: str) -> str:
        return f"row {line}, column {layout.names[field]!r}"

    field = "date"
    try:
        date = layout.parse_date(cells[layout.index["date"]])
        label = _label(cells, layout)
        values = {}
        for field in FIELDS:
            values[field] = _metric(field, layout.parse_number(cells[layout.index[field]]), cells[layout.index[field]])
    except _Bad as bad:
        raise DataError(source, where(bad.field or field), bad.problem, bad.fix) from None
    for field in ("clicks", "conversions"):
        if values[field] > values["impressions"]:
            raise DataError(
                source,
                where(field),
                f"{field} {_fmt(values[field])} is above impressions {_fmt(values['impressions'])}",
                f"check that the columns are not swapped; a creative cannot have more {field} than impressions",
            )
    return ResultRow(date, label, values["impressions"], values["clicks"], values["conversions"], values["spend"], line)


def _label(cells: list[str], layout: _Layout) -> str:
    """The creative label of a row, as written. Raises _Bad naming the label column."""
    if layout.format == "native":
        label = cells[layout.index["label"]]
        if not label.strip():
            raise _Bad("creative id is empty", "write the creative's id (or name) from the plan", "label")
        return label
    # TikTok: prefer Ad ID, fall back to Ad name row by row.
    present = [f for f in ("ad_id", "ad_name") if f in layout.index]
    for field in present:
        label = cells[layout.index[field]]
        if label.strip() in ("", "-"):
            continue
        if field == "ad_id" and re.fullmatch(r"\s*\d(?:\.\d+)?[eE]\+?\d+\s*", label):
            raise _Bad(
                f"Ad ID {label.strip()!r} was rounded by a spreadsheet",
                "use the export as downloaded, or format the Ad ID column as text before saving",
                field,
            )
        return label
    problem = "Ad ID and Ad name are both empty" if len(present) == 2 else f"{TIKTOK_NAMES[present[0]]} is empty"
    raise _Bad(problem, "export with Ad ID (or Ad name) filled in on every row", present[0])


def _metric(field: str, value: float, text: str) -> float:
    shown = text.strip()
    if not math.isfinite(value):
        raise _Bad(f"{shown!r} is not a finite number", "write the actual value (0 if there was none)")
    if value < 0:
        raise _Bad(f"{shown!r} is negative", f"{field} cannot be negative; correct the value")
    if field in COUNTS and not value.is_integer():
        raise _Bad(f"{shown!r} is not a whole number", f"{field} is a count; write a whole number")
    return value + 0.0  # turns -0.0 into 0.0


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


# ---------------------------------------------------------------------- cell readers
_PLAIN = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+")
_CODE_BEFORE = re.compile(r"[A-Z]{3}(?![A-Za-z])\s*")
_CODE_AFTER = re.compile(r"(?<![A-Za-z])\s*[A-Z]{3}$")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_SLASH_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_SLASH_MDY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _native_number(text: str) -> float:
    """A plain decimal number; empty is an error (native files are written by tools, not people)."""
    s = text.strip()
    if not s:
        raise _Bad("value is empty", "write 0 if there were none")
    if _NON_FINITE.fullmatch(s):
        return float(s)  # reported as not finite by _metric
    if not _PLAIN.fullmatch(s):
        raise _Bad(
            f"{s!r} is not a number", "write a plain number such as 1234 or 12.5 (no thousands separators or currency)"
        )
    return float(s)


def _tiktok_number(text: str) -> float:
    """A number as Ads Manager writes it: "12,345", "$1,234.50", "1234.50 USD"; "-" or empty is 0."""
    s = text.strip()
    if s in ("", "-", "--"):
        return 0.0
    if _NON_FINITE.fullmatch(s):
        return float(s)
    body, negative = s, False
    signed = False
    while body:  # peel a sign, currency symbols and ISO codes off the front: "-$5", "$-5", "USD 5"
        if body[0] in "+-\u2212" and not signed:
            signed, negative, body = True, body[0] != "+", body[1:].lstrip()
        elif unicodedata.category(body[0]) == "Sc":
            body = body[1:].lstrip()
        elif m := _CODE_BEFORE.match(body):
            body = body[m.end() :]
        else:
            break
    while body:  # and off the back: "5 €", "5 USD"
        if unicodedata.category(body[-1]) == "Sc":
            body = body[:-1].rstrip()
        elif m := _CODE_AFTER.search(body):
            body = body[: m.start()]
        else:
            break
    if not _GROUPED.fullmatch(body):
        raise _Bad(f"{s!r} is not a number", "write a number such as 1234, 12,345 or $12.50")
    value = float(body.replace(",", ""))
    return -value if negative else value


def _native_date(text: str) -> dt.date:
    return _date(text, ((_ISO, (0, 1, 2)),), NATIVE_DATE_FORMATS)


def _tiktok_date(text: str) -> dt.date:
    return _date(text, ((_ISO, (0, 1, 2)), (_SLASH_YMD, (0, 1, 2)), (_SLASH_MDY, (2, 0, 1))), TIKTOK_DATE_FORMATS)


def _date(text: str, patterns: tuple[tuple[re.Pattern[str], tuple[int, int, int]], ...], accepted: str) -> dt.date:
    s = text.strip()
    if not s:
        raise _Bad("date is empty", f"write the date as {accepted}")
    for pattern, (y, m, d) in patterns:
        if match := pattern.fullmatch(s):
            parts = match.groups()
            try:
                return dt.date(int(parts[y]), int(parts[m]), int(parts[d]))
            except ValueError:
                break  # right shape, impossible day (e.g. 2026-02-30)
    raise _Bad(f"{s!r} is not a date", f"write the date as {accepted}")


# ---------------------------------------------------------------------- matching
def match_rows(rows: Iterable[ResultRow], plan: CampaignPlan, source: str) -> MatchedResults:
    """Match rows to the plan's creatives and build daily observations.

    A row matches the creative whose id equals its label, else whose name equals it; labels and ids
    are compared exactly after stripping surrounding spaces, then ignoring case.

    Parameters
    ----------
    rows : iterable of ResultRow
        Rows of one file (their `line` numbers refer to `source`).
    plan : CampaignPlan
    source : str
        The file the rows come from, for error messages.

    Returns
    -------
    MatchedResults

    Raises
    ------
    DataError
        Two rows for the same creative and day, or a label that matches two creatives once case is ignored.
    """
    return _match(((source, row) for row in rows), plan)


def read_results(paths: str | Path | Sequence[str | Path], plan: CampaignPlan) -> MatchedResults:
    """Parse one or more results files and match all their rows together.

    Parameters
    ----------
    paths : path or sequence of paths
        Native CSVs and/or TikTok exports, in any mix.
    plan : CampaignPlan

    Returns
    -------
    MatchedResults

    Raises
    ------
    DataError
        Any error of `parse_file`, no paths given, or a creative-day present twice (also across files:
        re-exports that restate past days go through the ledger, not through this function).
    """
    if isinstance(paths, (str, PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise DataError("<input>", "", "no results files given", "pass at least one file")
    parsed = [parse_file(p) for p in paths]
    return _match(((str(pf.path), row) for pf in parsed for row in pf.rows), plan)


def _resolver(plan: CampaignPlan) -> Callable[[str], str | list[str] | None]:
    """label -> plan creative id, a list of ids when ambiguous ignoring case, or None when unknown."""
    levels: list[dict[str, list[str]]] = [{}, {}, {}, {}]
    for c in plan.creatives:
        keys = (c.id.strip(), (c.name or "").strip())
        for level, key in enumerate((*keys, *(k.casefold() for k in keys))):
            if key:
                ids = levels[level].setdefault(key, [])
                if c.id not in ids:
                    ids.append(c.id)
    cache: dict[str, str | list[str] | None] = {}

    def resolve(label: str) -> str | list[str] | None:
        if label not in cache:
            s = label.strip()
            found: str | list[str] | None = None
            for level, key in enumerate((s, s, s.casefold(), s.casefold())):
                ids = levels[level].get(key)
                if ids:
                    found = ids[0] if len(ids) == 1 else ids
                    break
            cache[label] = found
        return cache[label]

    return resolve


def _match(entries: Iterable[tuple[str, ResultRow]], plan: CampaignPlan) -> MatchedResults:
    resolve = _resolver(plan)
    ids = [c.id for c in plan.creatives]
    seen: dict[tuple[str, dt.date], tuple[str, ResultRow]] = {}
    unknown: Counter[str] = Counter()
    first: dt.date | None = None
    last: dt.date | None = None
    for source, row in entries:
        first = row.date if first is None or row.date < first else first
        last = row.date if last is None or row.date > last else last
        found = resolve(row.label)
        if found is None:
            unknown[row.label.strip()] += 1
            continue
        if isinstance(found, list):
            raise DataError(
                source,
                f"row {row.line}",
                f"{row.label.strip()!r} matches creatives {' and '.join(map(repr, found))} when case is ignored",
                "write the creative's id exactly as in the plan",
            )
        key = (found, row.date)
        if key in seen:
            other_source, other = seen[key]
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
        seen[key] = (source, row)

    if first is None or last is None:
        daily = DailyObservations.empty(tuple(ids))
    else:
        n_days, column = (last - first).days + 1, {cid: j for j, cid in enumerate(ids)}
        arrays = {name: np.zeros((n_days, len(ids))) for name in FIELDS}
        observed = np.zeros((n_days, len(ids)), dtype=bool)
        for (cid, date), (_, row) in seen.items():
            d, j = (date - first).days, column[cid]
            for name in FIELDS:
                arrays[name][d, j] = getattr(row, name)
            observed[d, j] = True
        dates = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + np.timedelta64(1, "D"))
        daily = DailyObservations(tuple(ids), dates, **arrays, observed=observed)
    counts = Counter(cid for cid, _ in seen)
    return MatchedResults(
        daily=daily,
        rows_by_creative={cid: counts[cid] for cid in ids},
        unknown=dict(unknown),
        first_date=first,
        last_date=last,
    )

"""Read daily results files and match their rows to a plan's creatives.

Two file formats, told apart by the header (row 1):

- native CSV: exactly the columns ``date, creative_id, impressions, clicks, conversions, spend``
  (any order, any case, surrounding spaces ignored). Dates ``YYYY-MM-DD``; plain numbers only
  (``1234``, ``12.5``, ``1e3``), no thousands separators or currency; an empty value is an error.
- TikTok Ads Manager export (CSV, tab-separated text or an .xlsx workbook's first sheet): the columns
  "By Day" (date), "Ad ID" and/or "Ad name" (the creative; matching falls back from an id not in the plan to
  the name), "Cost" (spend), "Impressions", "Clicks (destination)" (clicks), "Conversions" and, when present,
  "Currency" (must be the plan's); every other export column is ignored. The "Total of ..." summary row is
  dropped. Numbers may carry thousands separators and a currency symbol or ISO code; their decimal mark is
  decided per file (`number_style`: the plan's `[data] decimal`, else what the values prove, else the
  delimiter's rule; ambiguity is an error). "-" or an empty cell means 0. Dates ``YYYY-MM-DD``,
  ``YYYY/MM/DD`` or ``NN/NN/YYYY`` in the order the plan's `date_format` gives or the file proves (a day above
  12); a file that cannot tell is refused.

Text: UTF-8 with or without a byte-order mark, or UTF-16 (Excel's "Unicode text"); comma, tab or semicolon
delimited (sniffed from the header line). Every row is validated, with plausibility limits (`ReadOptions`);
the first bad one raises a `DataError` naming the file (and sheet), the line ("row N", the 1-based line
number with the header on line 1), the column, the problem and the fix.

The standard library's `csv` reads text (no pandas: exact line numbers and a fast CLI start-up);
python-calamine reads workbooks, imported only then.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import difflib
import functools
import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    "currency": "currency",
}
TIKTOK_NAMES = {
    "date": "By Day",
    "ad_id": "Ad ID",
    "ad_name": "Ad name",
    "spend": "Cost",
    "impressions": "Impressions",
    "clicks": "Clicks (destination)",
    "conversions": "Conversions",
    "currency": "Currency",
}
DELIMITERS = (",", "\t", ";")
NATIVE_DATE_FORMATS = "YYYY-MM-DD"
TIKTOK_DATE_FORMATS = "YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY or DD/MM/YYYY"


# ---------------------------------------------------------------------- public types
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


# ---------------------------------------------------------------------- parsing
class _Bad(Exception):
    """A bad value; the row loop adds the file, row and column."""

    def __init__(self, problem: str, fix: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.field = field  # set when the reader knows the column better than the caller


Cell = str | float | int | dt.date | dt.datetime | bool | None


@dataclass(frozen=True)
class _Layout:
    """Where each field sits in a file's rows and how its cells are read."""

    format: str
    index: dict[str, int]  # field -> cell index
    names: dict[str, str]  # field -> column name as written in the header
    width: int  # number of header columns up to the last named one
    parse_date: Callable[[Cell], dt.date]
    parse_number: Callable[[Cell], float]


def parse_file(path: str | Path, options: ReadOptions | None = None) -> ParsedFile:
    """Read one results file, native CSV or TikTok Ads Manager export (CSV, tab text or .xlsx workbook).

    Parameters
    ----------
    path : str or Path
    options : ReadOptions, optional
        The plan's date format and plausibility limits (`ReadOptions.from_plan`); default: detect the date
        order and number format, default limits, no check of dates against today.

    Returns
    -------
    ParsedFile
        The format detected from the header, the validated rows, the SHA-256 of the file's bytes, the
        file's modification time as `exported_at`, notes on how it was read and warnings.

    Raises
    ------
    DataError
        On the first problem: file not found or unreadable, not UTF-8 or UTF-16, no data rows, a missing,
        unknown or repeated column, a row with the wrong number of values, an empty, unparsable or ambiguous
        date, an empty creative, a value that is not a number, is ambiguous, not finite, negative, above its
        plausible limit or (for counts) not whole, or clicks or conversions above impressions. The message
        names the file (and sheet), the line ("row N") and the column.
    """
    path = Path(path)
    source = str(path)
    options = options or ReadOptions()
    # Streamed, not loaded: the file is read in passes (its hash, the decisions on number format and date
    # order, the rows) and only the validated rows are kept, so memory stays a small multiple of the file.
    head, sha = _head_and_sha256(path, source)
    if _is_workbook(head):
        sheet, delimiter = _first_sheet_name(path, source), None
        open_table: Callable[[], Iterator[tuple[int, list[Cell]]]] = functools.partial(_workbook_rows, path, source)
    else:
        codec = _codec(head)
        sheet, delimiter = None, _sniff_delimiter(_decode_head(head, codec))
        open_table = functools.partial(_csv_rows, path, codec, delimiter, source)
    at = f"sheet {sheet!r}, " if sheet is not None else ""
    layout, data = _open_data(open_table, source, at)
    notes: list[str] = []
    if layout.format == "tiktok":
        marks, dates = _MarkEvidence(), _DateEvidence()
        for line, cells in data:
            where = f"{at}row {line}, column "
            for field_ in FIELDS:
                i = layout.index[field_]
                marks.see(cells[i] if i < len(cells) else None, where + repr(layout.names[field_]))
            i = layout.index["date"]
            dates.see(cells[i] if i < len(cells) else None, where + repr(layout.names["date"]))
        style, note = marks.decide(delimiter, options.decimal, source)
        order, date_note = dates.decide(options.date_format, source)
        notes += [n for n in (note, date_note) if n]
        layout = dataclasses.replace(
            layout,
            parse_number=functools.partial(_tiktok_number, style=style),
            parse_date=functools.partial(_tiktok_date, order=order),
        )
        _, data = _open_data(open_table, source, at)
    rows: list[ResultRow] = []
    days: dict[Cell, dt.date] = {}
    parse_date = layout.parse_date

    def cached_date(cell: Cell) -> dt.date:
        # one date object per distinct cell: an export repeats each day once per ad
        if isinstance(cell, str):
            found = days.get(cell)
            if found is None:
                found = days[cell] = parse_date(cell)
            return found
        return parse_date(cell)

    layout = dataclasses.replace(layout, parse_date=cached_date)
    shared: dict[object, object] = {}  # one object per distinct label, name, currency and small count

    def one(value: object) -> Any:
        return None if value is None else shared.setdefault(value, value)

    for line, cells in data:
        r = _row(cells, layout, source, f"{at}row {line}", line, options)
        rows.append(
            ResultRow(
                r.date,
                one(r.label),
                r.impressions,
                one(r.clicks) if r.clicks < 4096 else r.clicks,
                one(r.conversions) if r.conversions < 4096 else r.conversions,
                r.spend,
                line,
                one(r.name),
                one(r.currency),
            )
        )
    if not rows:
        raise DataError(source, "", "no data rows", "export at least one day of results")
    warnings = _zero_spend(rows, layout, source, at, options)
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return ParsedFile(path, layout.format, tuple(rows), sha, mtime, tuple(notes), tuple(warnings))


def table_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """(line, cells as shown) of every row of a results file, header included: the same reading as
    `parse_file` (workbook or text, its encoding and delimiter), for tools that need columns it does not keep
    (`sparkbandit init` reads ad names and ad groups). Raises DataError where `parse_file` would."""
    path = Path(path)
    source = str(path)
    head, _ = _head_and_sha256(path, source)
    if _is_workbook(head):
        rows = _workbook_rows(path, source)
    else:
        codec = _codec(head)
        rows = _csv_rows(path, codec, _sniff_delimiter(_decode_head(head, codec)), source)
    for line, cells in rows:
        yield line, [_shown(c) for c in cells]


def _open_data(
    open_table: Callable[[], Iterator[tuple[int, list[Cell]]]], source: str, at: str
) -> tuple[_Layout, Iterator[tuple[int, list[Cell]]]]:
    """(layout from the header, iterator over the data rows after it) of a fresh pass over the file."""
    table = open_table()
    for line, cells in table:
        if any(not _blank(c) for c in cells):
            layout = _layout([_header_text(c) for c in cells], source, f"{at}row {line}")
            break
    else:
        raise DataError(source, "", "no data rows (the file is empty)", "export at least one day of results")

    def data() -> Iterator[tuple[int, list[Cell]]]:
        for line, cells in table:
            if not (cells and not _blank(cells[0])) and all(_blank(c) for c in cells):
                continue
            if (
                layout.format == "tiktok"
                and isinstance(cells[0], str)
                and cells[0].strip().casefold().startswith("total of")
            ):
                continue
            yield line, cells

    return layout, data()


def _head_and_sha256(path: Path, source: str) -> tuple[bytes, str]:
    """The first 64 KiB of the file (to tell its kind and encoding) and the SHA-256 of all its bytes."""
    digest = hashlib.sha256()
    head = b""
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                if not head:
                    head = chunk[: 1 << 16]
                digest.update(chunk)
    except FileNotFoundError:
        raise DataError(source, "", "file not found", "check the path") from None
    except OSError as e:
        raise DataError(source, "", f"cannot read ({e.strerror})", "check the path and permissions") from None
    return head, digest.hexdigest()


def _blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _header_text(cell: Cell) -> str:
    return "" if cell is None else str(cell)


def _csv_rows(path: Path, codec: str, delimiter: str, source: str) -> Iterator[tuple[int, list[Cell]]]:
    """(first line, cells) of each CSV record, decoded as the file is read."""
    with path.open("r", encoding=codec, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        line = 0
        try:
            for cells in reader:
                start, line = line + 1, reader.line_num  # a quoted value may span lines: report the first
                yield start, cells
        except csv.Error as e:
            raise DataError(source, f"row {reader.line_num}", f"not valid CSV ({e})", "check the quoting") from None
        except UnicodeDecodeError:
            decode_text(path.read_bytes(), source)  # raises the one-line error naming the row
            raise


def _is_workbook(raw: bytes) -> bool:
    # .xlsx/.xlsm/.ods are zip files; .xls is an OLE2 compound file. A text export is never either.
    return raw[:4] == b"PK\x03\x04" or raw[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _open_workbook(path: Path, source: str):  # -> (CalamineWorkbook, first sheet name)
    import python_calamine as calamine

    failures = (
        calamine.CalamineError,
        calamine.PasswordError,
        calamine.XmlError,
        calamine.ZipError,
        OSError,
        ValueError,
    )
    try:
        book = calamine.CalamineWorkbook.from_path(str(path))
        names = book.sheet_names
    except failures as e:  # damaged, encrypted or not really a workbook
        raise DataError(
            source,
            "",
            f"cannot read the workbook ({e})",
            "open it in Excel and save it again as .xlsx, or export it as CSV",
        ) from None
    if not names:
        raise DataError(source, "", "the workbook has no sheets", "export the results again from Ads Manager")
    return book, names[0], failures


def _first_sheet_name(path: Path, source: str) -> str:
    return _open_workbook(path, source)[1]


def _workbook_rows(path: Path, source: str) -> Iterator[tuple[int, list[Cell]]]:
    """The first sheet of a workbook as (line, typed cells), read with python-calamine (see the README)."""
    book, name, failures = _open_workbook(path, source)
    try:
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)  # from A1: Excel's line numbers
    except failures as e:
        raise DataError(
            source,
            "",
            f"cannot read the workbook ({e})",
            "open it in Excel and save it again as .xlsx, or export it as CSV",
        ) from None
    for i, r in enumerate(rows):
        yield i + 1, list(r)


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(source, "", "file not found", "check the path") from None
    except OSError as e:
        raise DataError(source, "", f"cannot read ({e.strerror})", "check the path and permissions") from None


def _codec(head: bytes) -> str:
    """The text encoding of a file from its first bytes: UTF-16 with a BOM, or without one when every other
    byte of the start is zero (Excel's "Unicode text" has a BOM; some tools write none), else UTF-8."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    sample = head[:400]
    if len(sample) >= 4:
        zeros_odd, zeros_even = sample[1::2].count(0), sample[0::2].count(0)
        if max(zeros_odd, zeros_even) >= len(sample) // 4 and min(zeros_odd, zeros_even) == 0:
            return "utf-16-le" if zeros_odd > zeros_even else "utf-16-be"
    return "utf-8-sig"


def _decode_head(head: bytes, codec: str) -> str:
    """As much of the start of the file as decodes (a multi-byte character may be cut at the end)."""
    return head.decode(codec, errors="ignore")


def decode_text(raw: bytes, source: str) -> str:
    """Text of a results or history file: UTF-8 (BOM or not) or UTF-16 (see `_codec`). Raises DataError
    naming the line of the first byte that is not valid."""
    codec = _codec(raw[: 1 << 16])
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as e:
        if codec != "utf-8-sig":
            raise DataError(
                source, "", "not valid UTF-16 text (the file is cut short or damaged)", "export the file again"
            ) from None
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            source,
            f"row {line}",
            f"not UTF-8 text (byte 0x{raw[e.start]:02x})",
            "save the file as UTF-8 (in Excel: Save As, CSV UTF-8)",
        ) from None


_decode = decode_text


def _sniff_delimiter(text: str) -> str:
    """The most frequent of comma, tab and semicolon on the header line (comma on a tie)."""
    header = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first on a tie: comma
    return best if counts[best] else ","


def _layout(header: list[str], source: str, where: str) -> _Layout:
    names = [c.strip() for c in header]
    width = max(i for i, n in enumerate(names) if n) + 1
    folded = {n.casefold() for n in names if n}
    tiktok = "by day" in folded or bool(folded & {"ad id", "ad name", "cost", "clicks (destination)"})
    return _tiktok_layout(names, width, source, where) if tiktok else _native_layout(names, width, source, where)


def _native_layout(names: list[str], width: int, source: str, where_row: str) -> _Layout:
    index: dict[str, int] = {}
    written: dict[str, str] = {}
    listing = ", ".join(NATIVE_COLUMNS)
    for i, name in enumerate(names):
        if not name:
            continue
        key = name.casefold()
        where = f"{where_row}, column {name!r}"
        if key not in NATIVE_COLUMNS:
            close = difflib.get_close_matches(key, NATIVE_COLUMNS, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"remove it (the columns are: {listing})"
            raise DataError(source, where, "unknown column", fix)
        if key in index:
            raise DataError(source, where, "column appears more than once", "keep one")
        index[key], written[key] = i, name
    for col in NATIVE_COLUMNS:
        if col not in index:
            raise DataError(source, where_row, f"missing column '{col}'", f"add it (the columns are: {listing})")
    index["label"], written["label"] = index.pop("creative_id"), written.pop("creative_id")
    return _Layout("native", index, written, width, _native_date, _native_number)


def _tiktok_layout(names: list[str], width: int, source: str, where_row: str) -> _Layout:
    index: dict[str, int] = {}
    written: dict[str, str] = {}
    for i, name in enumerate(names):
        field_ = TIKTOK_COLUMNS.get(name.casefold())
        if field_ is None:
            continue  # the export's other columns (Campaign name, CTR, CPM, Reach...) are not needed
        if field_ in index:
            raise DataError(source, f"{where_row}, column {name!r}", "column appears more than once", "keep one")
        index[field_], written[field_] = i, name
    if "ad_id" not in index and "ad_name" not in index:
        raise DataError(
            source, where_row, "missing column 'Ad ID' or 'Ad name'", "add Ad ID (or Ad name) to the export"
        )
    for field_ in ("date", "impressions", "clicks", "conversions", "spend"):
        if field_ not in index:
            col = TIKTOK_NAMES[field_]
            fix = (
                "export with the By Day breakdown (one row per ad and day)"
                if field_ == "date"
                else "add it to the export's columns in Ads Manager"
            )
            raise DataError(source, where_row, f"missing column '{col}'", fix)
    return _Layout("tiktok", index, written, width, _tiktok_date, _tiktok_number)


def _row(cells: list[Cell], layout: _Layout, source: str, where_row: str, line: int, options: ReadOptions) -> ResultRow:
    # Trailing empty cells are what spreadsheets leave behind; any other count means shifted columns
    # (e.g. an unquoted "12,345" in a comma-separated file), which would silently misread values.
    n = len(cells)
    while n > layout.width and _blank(cells[n - 1]):
        n -= 1
    if n != layout.width:
        raise DataError(
            source,
            where_row,
            f"{n} values but the header has {layout.width} columns",
            "quote values that contain the delimiter and fill in missing values",
        )

    def where(field_: str) -> str:
        return f"{where_row}, column {layout.names[field_]!r}"

    field_ = "date"
    try:
        date = layout.parse_date(cells[layout.index["date"]])
        if options.today is not None and (date - options.today).days > options.max_days_ahead:
            ahead = (date - options.today).days
            raise _Bad(
                f"{date.isoformat()} is {ahead} days after today ({options.today.isoformat()})",
                "check the year and the date format (results cannot come from the future; the limit is "
                "[data] max_days_ahead)",
            )
        if options.today is not None and (options.today - date).days > options.max_days_back:
            raise _Bad(
                f"{date.isoformat()} is {(options.today - date).days} days before today ({options.today.isoformat()})",
                "check the year and the date format; if results that old are right, raise [data] max_days_back",
            )
        label, name = _label(cells, layout)
        values = {}
        for field_ in FIELDS:
            cell = cells[layout.index[field_]]
            values[field_] = _metric(field_, layout.parse_number(cell), cell, options)
        currency = None
        if "currency" in layout.index:
            field_ = "currency"
            currency = _currency(cells[layout.index["currency"]])
    except _Bad as bad:
        raise DataError(source, where(bad.field or field_), bad.problem, bad.fix) from None
    for field_ in ("clicks", "conversions"):
        if values[field_] > values["impressions"]:
            raise DataError(
                source,
                where(field_),
                f"{field_} {_fmt(values[field_])} is above impressions {_fmt(values['impressions'])}",
                f"check that the columns are not swapped; a creative cannot have more {field_} than impressions",
            )
    return ResultRow(
        date,
        label,
        values["impressions"],
        values["clicks"],
        values["conversions"],
        values["spend"],
        line,
        name,
        currency,
    )


def _shown(cell: Cell) -> str:
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < 1e16:
        return str(int(cell))
    return "" if cell is None else str(cell).strip()


def _currency(cell: Cell) -> str | None:
    s = "" if cell is None else str(cell).strip()
    if s in ("", "-"):
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", s):
        raise _Bad(f"{s!r} is not a currency code", "the Currency column holds ISO codes such as USD or EUR")
    return s.upper()


def _label_text(cell: Cell, field_: str) -> str:
    """A label cell as text; a workbook may hold an Ad ID as a number, which is exact only below 2^53."""
    if isinstance(cell, bool) or cell is None:
        return "" if cell is None else str(cell)
    if isinstance(cell, (int, float)):
        if field_ == "ad_id" and (not float(cell).is_integer() or abs(cell) >= MAX_COUNT):
            raise _Bad(
                f"Ad ID {cell!r} is stored as a number in the workbook and was rounded",
                "use the export as downloaded, or format the Ad ID column as text before saving",
                field_,
            )
        return str(int(cell)) if float(cell).is_integer() else repr(cell)
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell)


def _label(cells: list[Cell], layout: _Layout) -> tuple[str, str | None]:
    """(label, Ad name to fall back on) of a row, as written. Raises _Bad naming the label column."""
    if layout.format == "native":
        label = _label_text(cells[layout.index["label"]], "label")
        if not label.strip():
            raise _Bad("creative id is empty", "write the creative's id (or name) from the plan", "label")
        return label, None
    # TikTok: prefer Ad ID, fall back to Ad name row by row (and in matching, when the id is not in the plan).
    present = [f for f in ("ad_id", "ad_name") if f in layout.index]
    texts = {f: _label_text(cells[layout.index[f]], f) for f in present}
    for field_ in present:
        label = texts[field_]
        if label.strip() in ("", "-"):
            continue
        if field_ == "ad_id" and re.fullmatch(r"\s*\d(?:[.,]\d+)?[eE]\+?\d+\s*", label):
            raise _Bad(
                f"Ad ID {label.strip()!r} was rounded by a spreadsheet",
                "use the export as downloaded, or format the Ad ID column as text before saving",
                field_,
            )
        name = texts.get("ad_name") if field_ == "ad_id" else None
        return label, (name if name and name.strip() not in ("", "-") else None)
    problem = "Ad ID and Ad name are both empty" if len(present) == 2 else f"{TIKTOK_NAMES[present[0]]} is empty"
    raise _Bad(problem, "export with Ad ID (or Ad name) filled in on every row", present[0])


def _metric(field_: str, value: float, cell: Cell, options: ReadOptions) -> float:
    if 0 <= value <= 1e9 and (field_ not in COUNTS or value.is_integer()) and value <= options.max_spend:
        return value + 0.0  # the common case, checked at once; -0.0 becomes 0.0
    shown = _shown(cell)  # only on the way to an error message
    if not math.isfinite(value):
        raise _Bad(f"{shown!r} is not a finite number", "write the actual value (0 if there was none)")
    if value < 0:
        raise _Bad(f"{shown!r} is negative", f"{field_} cannot be negative; correct the value")
    if field_ in COUNTS:
        if not value.is_integer():
            raise _Bad(f"{shown!r} is not a whole number", f"{field_} is a count; write a whole number")
        if value >= MAX_COUNT:  # a float this large may already be rounded: 2^53 + 1 reads as 2^53
            raise _Bad(
                f"{shown!r} is 2^53 ({int(MAX_COUNT)}) or more, beyond any real count",
                "check the value (a column may be shifted or two values joined)",
            )
    elif value > options.max_spend:
        raise _Bad(
            f"{shown!r} is above the plausible spend of one creative in one day ({options.max_spend:g})",
            "check the value; if it is right, raise [data] max_spend in the plan",
        )
    return value + 0.0  # turns -0.0 into 0.0


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _zero_spend(rows: list[ResultRow], layout: _Layout, source: str, at: str, options: ReadOptions) -> list[str]:
    """Rows with impressions but no spend: possible (a credit, a free test) but they make a creative look
    free, which can make it almost surely the best. A warning (or an error with [data] zero_spend = "error")."""
    free = [r for r in rows if r.spend == 0 and r.impressions > 0]
    if not free:
        return []
    r = free[0]
    where = f"{at}row {r.line}, column {layout.names['spend']!r}"
    problem = f"spend 0 with {_fmt(r.impressions)} impressions for {r.label.strip()!r}" + (
        f" (and {len(free) - 1} more row{'s' if len(free) > 2 else ''} like it)" if len(free) > 1 else ""
    )
    if options.zero_spend == "error":
        raise DataError(
            source,
            where,
            problem,
            'check the export\'s Cost column, or set [data] zero_spend = "warn" if the impressions really were free',
        )
    return [
        (
            f"{source}: {where}: {problem}; free impressions make that creative look cheaper than it is: "
            "check the export's Cost column"
        )
    ]


# ---------------------------------------------------------------------- cell readers
_PLAIN = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_CODE_BEFORE = re.compile(r"[A-Z]{3}(?![A-Za-z])\s*")
_CODE_AFTER = re.compile(r"(?<![A-Za-z])\s*[A-Z]{3}$")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_SLASH_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_SLASH_XY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
# thousands "," and decimal "." (US, UK, ...) or thousands "." and decimal "," (most of Europe); spaces
# (also no-break) and apostrophes group thousands in either
_STYLES = {
    ".": re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+"),
    ",": re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d*)?|,\d+"),
}
_SHAPE = re.compile(r"[1-9]")  # "0" kept: a leading 0 ("0,125") cannot start a group of thousands
_SPACE_GROUPS = re.compile(r"\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?=$|[.,])")
STYLE_NAMES = {".": "'.' decimal point, ',' thousands (1,234.56)", ",": "',' decimal comma, '.' thousands (1.234,56)"}


def _native_number(cell: Cell) -> float:
    """A plain decimal number; empty is an error (native files are written by tools, not people)."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return float(cell)
    s = "" if cell is None else str(cell).strip()
    if not s:
        raise _Bad("value is empty", "write 0 if there were none")
    if _NON_FINITE.fullmatch(s):
        return float(s)  # reported as not finite by _metric
    if not _PLAIN.fullmatch(s):
        raise _Bad(
            f"{s!r} is not a number", "write a plain number such as 1234 or 12.5 (no thousands separators or currency)"
        )
    return float(s)


def _peel(s: str) -> tuple[str, bool]:
    """(digits and separators, negative) of a cell with its sign, currency symbols and ISO codes removed."""
    body, negative, signed = s, False, False
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
    if m := _SPACE_GROUPS.match(body):
        body = re.sub(r"[ \u00a0\u202f']", "", m.group()) + body[m.end() :]
    return body, negative


def _tiktok_number(cell: Cell, style: str = ".") -> float:
    """A number as Ads Manager writes it: "12,345", "$1,234.50", "1234.50 USD", or with `style` ","
    "1.234,50 €"; "-" or empty is 0. A workbook's numeric cell is taken as it is."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return float(cell)
    s = "" if cell is None else str(cell).strip()
    if s in ("", "-", "--"):
        return 0.0
    if _NON_FINITE.fullmatch(s):
        return float(s)
    if _STYLES[style].fullmatch(s):  # the common case, "12,345" or "8.00": nothing to peel
        return float(s.replace(",", "") if style == "." else s.replace(".", "").replace(",", "."))
    body, negative = _peel(s)
    if not _STYLES[style].fullmatch(body):
        example = "1234, 12,345 or $12.50" if style == "." else "1234, 12.345 or 12,50 €"
        raise _Bad(f"{s!r} is not a number", f"write a number such as {example}")
    value = float(body.replace(",", "") if style == "." else body.replace(".", "").replace(",", "."))
    return -value if negative else value


def _evidence(body: str) -> str | None:
    """The decimal mark a number's text proves ("." or ","), or None when it could be either or has none.

    "1,234.5", "1.5", "12.50", "0.125", "1234.567", "1,234,567" prove "."; their mirror images prove ",".
    "1,234" and "25.000" (one separator before exactly three digits) prove nothing."""
    for mark, other in ((".", ","), (",", ".")):
        if re.fullmatch(rf"\d{{1,3}}(?:\{other}\d{{3}})+\{mark}\d+", body):  # both: the last one is decimal
            return mark
        if re.fullmatch(rf"\d{{1,3}}(?:\{other}\d{{3}}){{2,}}", body):  # repeated: thousands
            return mark
        if re.fullmatch(rf"\d*\{mark}\d+", body):
            head, _, tail = body.partition(mark)
            if len(tail) != 3 or len(head) > 3 or head in ("", "0"):
                return mark  # a group of thousands has exactly 3 digits after 1-3 digits that are not 0
    return None


class _MarkEvidence:
    """What a file's number cells say about its decimal mark, gathered in one pass (see `number_style`)."""

    def __init__(self) -> None:
        self.proof: dict[str, tuple[str, str]] = {}
        self.ambiguous: tuple[str, str] | None = None
        self.separated = False
        self.shapes: dict[str, str | None] = {}  # shape -> mark proved ("." or ","), None: either, "": none

    def see(self, cell: Cell, where: str) -> None:
        if not isinstance(cell, str):
            return
        text = cell.strip()
        if not text or ("," not in text and "." not in text):
            return
        # the same shape ("1,111.11") always gives the same evidence: decide each shape once
        shape = _SHAPE.sub("1", text)
        mark = self.shapes.get(shape, "?")
        if mark == "?":
            body, _ = _peel(text)
            mark = self.shapes[shape] = _evidence(body) if ("," in body or "." in body) else ""
        if mark == "":
            return
        self.separated = True
        if mark is None:
            self.ambiguous = self.ambiguous or (text, where)
        elif mark not in self.proof:
            self.proof[mark] = (text, where)

    def decide(self, delimiter: str | None, decimal: str | None, source: str) -> tuple[str, str | None]:
        proof, ambiguous = self.proof, self.ambiguous
        if decimal is not None:
            note = f"numbers read with {STYLE_NAMES[decimal]}, as [data] decimal says" if self.separated else None
            return decimal, note
        if len(proof) == 2:
            (a, wa), (b, wb) = proof["."], proof[","]
            raise DataError(
                source,
                wb,
                f"numbers are written both as {a!r} ({wa}) and {b!r}, with the decimal mark swapped",
                "export the file again in one number format",
            )
        if proof:
            mark, (text, where) = next(iter(proof.items()))
            return mark, f"numbers read with {STYLE_NAMES[mark]}, as {text!r} ({where}) shows"
        if ambiguous is None:
            return ("," if delimiter == ";" else "."), None
        if delimiter in (";", ","):
            mark = "," if delimiter == ";" else "."
            return mark, (
                f"numbers read with {STYLE_NAMES[mark]}, usual in {delimiter!r}-separated exports "
                f"({ambiguous[0]!r}, {ambiguous[1]}, is {_tiktok_number(ambiguous[0], mark):g})"
            )
        text, where = ambiguous
        raise DataError(
            source,
            where,
            f"{text!r} could be read with ',' or '.' as the decimal mark and no value in the file tells which",
            'set [data] decimal = "." or "," in the plan (the mark your Ads Manager uses)',
        )


def number_style(
    cells: Iterable[tuple[Cell, str]], delimiter: str | None, decimal: str | None, source: str
) -> tuple[str, str | None]:
    """The decimal mark ("." or ",") of a file's numbers, and a note saying how it was decided.

    Given by the plan (`decimal`), else proved by the values (`_evidence`: "14,87", "1.234,5", "12.50"...),
    else the delimiter's rule when some value has a separator ("," in ";" files, "." in comma files). Values
    that prove both marks, or ambiguous values ("25.000") in a file with neither proof nor rule (tab text,
    workbooks), are an error naming the cell. `cells` yields (cell, "row N, column 'X'")."""
    evidence = _MarkEvidence()
    for cell, where in cells:
        evidence.see(cell, where)
    return evidence.decide(delimiter, decimal, source)


def read_number(cell: Cell, style: str = ".") -> float:
    """A number as a person or Ads Manager writes it ("12,345", "$1,234.50", "1.234,5 €" with `style` ",");
    "-" or empty is 0. Raises `DataError`-free `ValueError` with the problem and the fix as its two args."""
    try:
        return _tiktok_number(cell, style)
    except _Bad as bad:
        raise ValueError(bad.problem, bad.fix) from None


def _native_date(cell: Cell) -> dt.date:
    if isinstance(cell, dt.date):
        return cell.date() if isinstance(cell, dt.datetime) else cell
    return _date(cell, ((_ISO, (0, 1, 2)),), NATIVE_DATE_FORMATS)


def _tiktok_date(cell: Cell, order: str = "MM/DD/YYYY") -> dt.date:
    if isinstance(cell, dt.date):  # a workbook date cell
        return cell.date() if isinstance(cell, dt.datetime) else cell
    slash = (_SLASH_XY, (2, 0, 1) if order == "MM/DD/YYYY" else (2, 1, 0))
    return _date(cell, ((_ISO, (0, 1, 2)), (_SLASH_YMD, (0, 1, 2)), slash), TIKTOK_DATE_FORMATS)


class _DateEvidence:
    """The order of "NN/NN/YYYY" dates in a file, gathered in one pass: the plan's `date_format`, else day
    first when a first number above 12 appears, month first when a second one does. A file where every such
    date has both numbers at most 12 (and not equal) is refused: 01/12/2026 is 1 December or January 12."""

    def __init__(self) -> None:
        self.day_first: tuple[str, str] | None = None
        self.month_first: tuple[str, str] | None = None
        self.ambiguous: tuple[str, str] | None = None
        self.last: str | None = None

    def see(self, cell: Cell, where: str) -> None:
        if not isinstance(cell, str) or cell == self.last:  # an export repeats each day once per ad
            return
        self.last = cell
        if not (m := _SLASH_XY.fullmatch(cell.strip())):
            return
        a, b = int(m.group(1)), int(m.group(2))
        if a > 12:
            self.day_first = self.day_first or (cell.strip(), where)
        elif b > 12:
            self.month_first = self.month_first or (cell.strip(), where)
        elif a != b:
            self.ambiguous = self.ambiguous or (cell.strip(), where)

    def decide(self, date_format: str | None, source: str) -> tuple[str, str | None]:
        day_first, month_first, ambiguous = self.day_first, self.month_first, self.ambiguous
        if date_format is not None:
            wrong = {"DD/MM/YYYY": month_first, "MM/DD/YYYY": day_first}.get(
                date_format, day_first or month_first or ambiguous
            )
            if wrong is not None:
                raise DataError(
                    source,
                    wrong[1],
                    f"{wrong[0]!r} is not a date in the plan's date_format {date_format}",
                    "check [campaign] date_format in the plan, or the export's date setting",
                )
            return ("MM/DD/YYYY" if date_format == "YYYY-MM-DD" else date_format), None
        if day_first and month_first:
            raise DataError(
                source,
                month_first[1],
                f"{month_first[0]!r} is month first but {day_first[0]!r} ({day_first[1]}) is day first",
                "export the file again with one date format",
            )
        if day_first:
            return "DD/MM/YYYY", f"dates read day first (DD/MM/YYYY), as {day_first[0]!r} ({day_first[1]}) shows"
        if month_first:
            return "MM/DD/YYYY", None
        if ambiguous:
            text, where = ambiguous
            raise DataError(
                source,
                where,
                f"{text!r} could be day first or month first: every day and month in the file is 12 or less",
                'set [campaign] date_format = "DD/MM/YYYY" (or "MM/DD/YYYY") in the plan',
            )
        return "MM/DD/YYYY", None


def _date(cell: Cell, patterns: tuple[tuple[re.Pattern[str], tuple[int, int, int]], ...], accepted: str) -> dt.date:
    s = "" if cell is None else str(cell).strip()
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
    return _match(((source, row) for row in rows), plan, require_match=require_match)


def read_results(
    paths: str | Path | Sequence[str | Path], plan: CampaignPlan, *, today: dt.date | None = None
) -> MatchedResults:
    """Parse one or more results files and match all their rows together.

    Parameters
    ----------
    paths : path or sequence of paths
        Native CSVs and/or TikTok exports, in any mix.
    plan : CampaignPlan
        Its `[campaign] date_format` and `[data]` limits apply.
    today : datetime.date, optional
        Reference day for `[data] max_days_ahead` (default: the UTC date).

    Returns
    -------
    MatchedResults
        With the files' read warnings in `warnings`.

    Raises
    ------
    DataError
        Any error of `parse_file`, no paths given, no row matching a plan creative, or a creative-day
        present twice (also across files: re-exports that restate past days go through the ledger, not
        through this function).
    """
    if isinstance(paths, (str, PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise DataError("<input>", "", "no results files given", "pass at least one file")
    options = ReadOptions.from_plan(plan, today)
    parsed = [parse_file(p, options) for p in paths]
    matched = _match(((str(pf.path), row) for pf in parsed for row in pf.rows), plan, require_match=True)
    return dataclasses.replace(matched, warnings=tuple(w for pf in parsed for w in pf.warnings))


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


def _match(
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

"""Read daily results files and match their rows to a plan's creatives: `parse_file` and `read_results`.

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

The parts: `allocator.inputs.files` (bytes, encodings, delimiters, workbooks), `allocator.inputs.formats`
(number and date formats decided per file), `allocator.inputs.validate` (columns, each row's checks and
plausibility limits), `allocator.inputs.matching` (rows to creatives), `allocator.inputs.records` (the types).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allocator.inputs.files import (
    Cell,
    blank,
    csv_rows,
    decode_head,
    first_sheet_name,
    head_and_sha256,
    header_text,
    is_workbook,
    sniff_delimiter,
    text_codec,
    workbook_rows,
)
from allocator.inputs.formats import DateEvidence, MarkEvidence, tiktok_date, tiktok_number
from allocator.inputs.matching import match_entries
from allocator.inputs.records import MatchedResults, ParsedFile, ReadOptions, ResultRow
from allocator.inputs.validate import Layout, layout_of, validate_row, zero_spend_warnings
from models.errors import DataError
from models.observations import FIELDS

if TYPE_CHECKING:  # pydantic stays out of the import path of this module
    from allocator.plan import CampaignPlan


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
    head, sha = head_and_sha256(path, source)
    if is_workbook(head):
        sheet, delimiter = first_sheet_name(path, source), None
        open_table: Callable[[], Iterator[tuple[int, Sequence[Cell]]]] = functools.partial(workbook_rows, path, source)
    else:
        codec = text_codec(head)
        sheet, delimiter = None, sniff_delimiter(decode_head(head, codec))
        open_table = functools.partial(csv_rows, path, codec, delimiter, source)
    at = f"sheet {sheet!r}, " if sheet is not None else ""
    layout, data = _open_data(open_table, source, at)
    notes: list[str] = []
    if layout.format == "tiktok":
        marks, dates = MarkEvidence(), DateEvidence()
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
            parse_number=functools.partial(tiktok_number, style=style),
            parse_date=functools.partial(tiktok_date, order=order),
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
        r = validate_row(cells, layout, source, f"{at}row {line}", line, options)
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
    warnings = zero_spend_warnings(rows, layout, source, at, options)
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return ParsedFile(path, layout.format, tuple(rows), sha, mtime, tuple(notes), tuple(warnings))


def _open_data(
    open_table: Callable[[], Iterator[tuple[int, Sequence[Cell]]]], source: str, at: str
) -> tuple[Layout, Iterator[tuple[int, Sequence[Cell]]]]:
    """(layout from the header, iterator over the data rows after it) of a fresh pass over the file."""
    table = open_table()
    for line, cells in table:
        if any(not blank(c) for c in cells):
            layout = layout_of([header_text(c) for c in cells], source, f"{at}row {line}")
            break
    else:
        raise DataError(source, "", "no data rows (the file is empty)", "export at least one day of results")

    def data() -> Iterator[tuple[int, Sequence[Cell]]]:
        for line, cells in table:
            if not (cells and not blank(cells[0])) and all(blank(c) for c in cells):
                continue
            if (
                layout.format == "tiktok"
                and isinstance(cells[0], str)
                and cells[0].strip().casefold().startswith("total of")
            ):
                continue
            yield line, cells

    return layout, data()


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
    matched = match_entries(((str(pf.path), row) for pf in parsed for row in pf.rows), plan, require_match=True)
    return dataclasses.replace(matched, warnings=tuple(w for pf in parsed for w in pf.warnings))

"""The columns of a results file and the checks of each row: the header's layout (native or TikTok export),
labels, counts and spend within their plausibility limits (`ReadOptions`), dates within the plan's window,
and the zero-spend warning."""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from allocator.inputs.files import Cell, blank, cell_text
from allocator.inputs.formats import BadValue, native_date, native_number, tiktok_date, tiktok_number
from allocator.inputs.records import MAX_COUNT, ReadOptions, ResultRow
from models.errors import DataError
from models.observations import FIELDS

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


@dataclass(frozen=True)
class Layout:
    """Where each field sits in a file's rows and how its cells are read."""

    format: str
    index: dict[str, int]  # field -> cell index
    names: dict[str, str]  # field -> column name as written in the header
    width: int  # number of header columns up to the last named one
    parse_date: Callable[[Cell], dt.date]
    parse_number: Callable[[Cell], float]


def layout_of(header: list[str], source: str, where: str) -> Layout:
    names = [c.strip() for c in header]
    width = max(i for i, n in enumerate(names) if n) + 1
    folded = {n.casefold() for n in names if n}
    tiktok = "by day" in folded or bool(folded & {"ad id", "ad name", "cost", "clicks (destination)"})
    return _tiktok_layout(names, width, source, where) if tiktok else _native_layout(names, width, source, where)


def _native_layout(names: list[str], width: int, source: str, where_row: str) -> Layout:
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
    return Layout("native", index, written, width, native_date, native_number)


def _tiktok_layout(names: list[str], width: int, source: str, where_row: str) -> Layout:
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
    return Layout("tiktok", index, written, width, tiktok_date, tiktok_number)


def validate_row(
    cells: Sequence[Cell], layout: Layout, source: str, where_row: str, line: int, options: ReadOptions
) -> ResultRow:
    # Trailing empty cells are what spreadsheets leave behind; any other count means shifted columns
    # (e.g. an unquoted "12,345" in a comma-separated file), which would silently misread values.
    n = len(cells)
    while n > layout.width and blank(cells[n - 1]):
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
            raise BadValue(
                f"{date.isoformat()} is {ahead} days after today ({options.today.isoformat()})",
                "check the year and the date format (results cannot come from the future; the limit is "
                "[data] max_days_ahead)",
            )
        if options.today is not None and (options.today - date).days > options.max_days_back:
            raise BadValue(
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
    except BadValue as bad:
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


def _currency(cell: Cell) -> str | None:
    s = "" if cell is None else str(cell).strip()
    if s in ("", "-"):
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", s):
        raise BadValue(f"{s!r} is not a currency code", "the Currency column holds ISO codes such as USD or EUR")
    return s.upper()


def _label_text(cell: Cell, field_: str) -> str:
    """A label cell as text; a workbook may hold an Ad ID as a number, which is exact only below 2^53."""
    if isinstance(cell, bool) or cell is None:
        return "" if cell is None else str(cell)
    if isinstance(cell, (int, float)):
        if field_ == "ad_id" and (not float(cell).is_integer() or abs(cell) >= MAX_COUNT):
            raise BadValue(
                f"Ad ID {cell!r} is stored as a number in the workbook and was rounded",
                "use the export as downloaded, or format the Ad ID column as text before saving",
                field_,
            )
        return str(int(cell)) if float(cell).is_integer() else repr(cell)
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell)


def _label(cells: Sequence[Cell], layout: Layout) -> tuple[str, str | None]:
    """(label, Ad name to fall back on) of a row, as written. Raises BadValue naming the label column."""
    if layout.format == "native":
        label = _label_text(cells[layout.index["label"]], "label")
        if not label.strip():
            raise BadValue("creative id is empty", "write the creative's id (or name) from the plan", "label")
        return label, None
    # TikTok: prefer Ad ID, fall back to Ad name row by row (and in matching, when the id is not in the plan).
    present = [f for f in ("ad_id", "ad_name") if f in layout.index]
    texts = {f: _label_text(cells[layout.index[f]], f) for f in present}
    for field_ in present:
        label = texts[field_]
        if label.strip() in ("", "-"):
            continue
        if field_ == "ad_id" and re.fullmatch(r"\s*\d(?:[.,]\d+)?[eE]\+?\d+\s*", label):
            raise BadValue(
                f"Ad ID {label.strip()!r} was rounded by a spreadsheet",
                "use the export as downloaded, or format the Ad ID column as text before saving",
                field_,
            )
        name = texts.get("ad_name") if field_ == "ad_id" else None
        return label, (name if name and name.strip() not in ("", "-") else None)
    problem = "Ad ID and Ad name are both empty" if len(present) == 2 else f"{TIKTOK_NAMES[present[0]]} is empty"
    raise BadValue(problem, "export with Ad ID (or Ad name) filled in on every row", present[0])


def _metric(field_: str, value: float, cell: Cell, options: ReadOptions) -> float:
    if 0 <= value <= 1e9 and (field_ not in COUNTS or value.is_integer()) and value <= options.max_spend:
        return value + 0.0  # the common case, checked at once; -0.0 becomes 0.0
    shown = cell_text(cell)  # only on the way to an error message
    if not math.isfinite(value):
        raise BadValue(f"{shown!r} is not a finite number", "write the actual value (0 if there was none)")
    if value < 0:
        raise BadValue(f"{shown!r} is negative", f"{field_} cannot be negative; correct the value")
    if field_ in COUNTS:
        if not value.is_integer():
            raise BadValue(f"{shown!r} is not a whole number", f"{field_} is a count; write a whole number")
        if value >= MAX_COUNT:  # a float this large may already be rounded: 2^53 + 1 reads as 2^53
            raise BadValue(
                f"{shown!r} is 2^53 ({int(MAX_COUNT)}) or more, beyond any real count",
                "check the value (a column may be shifted or two values joined)",
            )
    elif value > options.max_spend:
        raise BadValue(
            f"{shown!r} is above the plausible spend of one creative in one day ({options.max_spend:g})",
            "check the value; if it is right, raise [data] max_spend in the plan",
        )
    return value + 0.0  # turns -0.0 into 0.0


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def zero_spend_warnings(rows: list[ResultRow], layout: Layout, source: str, at: str, options: ReadOptions) -> list[str]:
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

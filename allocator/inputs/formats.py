"""Numbers and dates as files write them, decided per file: the decimal mark (`number_style`: the plan's
`[data] decimal`, else what the values prove, else the delimiter's rule) and the order of slash dates (the
plan's `date_format`, else a day above 12); a file that cannot tell is refused."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable

from allocator.inputs.files import Cell
from models.errors import DataError

NATIVE_DATE_FORMATS = "YYYY-MM-DD"
TIKTOK_DATE_FORMATS = "YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY or DD/MM/YYYY"


class BadValue(Exception):
    """A bad value; the row loop adds the file, row and column."""

    def __init__(self, problem: str, fix: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.field = field  # set when the reader knows the column better than the caller


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


def native_number(cell: Cell) -> float:
    """A plain decimal number; empty is an error (native files are written by tools, not people)."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return float(cell)
    s = "" if cell is None else str(cell).strip()
    if not s:
        raise BadValue("value is empty", "write 0 if there were none")
    if _NON_FINITE.fullmatch(s):
        return float(s)  # reported as not finite by _metric
    if not _PLAIN.fullmatch(s):
        raise BadValue(
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


def tiktok_number(cell: Cell, style: str = ".") -> float:
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
        raise BadValue(f"{s!r} is not a number", f"write a number such as {example}")
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


class MarkEvidence:
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
                f"({ambiguous[0]!r}, {ambiguous[1]}, is {tiktok_number(ambiguous[0], mark):g})"
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
    evidence = MarkEvidence()
    for cell, where in cells:
        evidence.see(cell, where)
    return evidence.decide(delimiter, decimal, source)


def read_number(cell: Cell, style: str = ".") -> float:
    """A number as a person or Ads Manager writes it ("12,345", "$1,234.50", "1.234,5 €" with `style` ",");
    "-" or empty is 0. Raises `DataError`-free `ValueError` with the problem and the fix as its two args."""
    try:
        return tiktok_number(cell, style)
    except BadValue as bad:
        raise ValueError(bad.problem, bad.fix) from None


def native_date(cell: Cell) -> dt.date:
    if isinstance(cell, dt.date):
        return cell.date() if isinstance(cell, dt.datetime) else cell
    return _date(cell, ((_ISO, (0, 1, 2)),), NATIVE_DATE_FORMATS)


def tiktok_date(cell: Cell, order: str = "MM/DD/YYYY") -> dt.date:
    if isinstance(cell, dt.date):  # a workbook date cell
        return cell.date() if isinstance(cell, dt.datetime) else cell
    slash = (_SLASH_XY, (2, 0, 1) if order == "MM/DD/YYYY" else (2, 1, 0))
    return _date(cell, ((_ISO, (0, 1, 2)), (_SLASH_YMD, (0, 1, 2)), slash), TIKTOK_DATE_FORMATS)


class DateEvidence:
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
        raise BadValue("date is empty", f"write the date as {accepted}")
    for pattern, (y, m, d) in patterns:
        if match := pattern.fullmatch(s):
            parts = match.groups()
            try:
                return dt.date(int(parts[y]), int(parts[m]), int(parts[d]))
            except ValueError:
                break  # right shape, impossible day (e.g. 2026-02-30)
    raise BadValue(f"{s!r} is not a date", f"write the date as {accepted}")

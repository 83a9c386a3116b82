"""Reading a results file's bytes into rows of cells: its hash, encoding (UTF-8 or UTF-16), delimiter, CSV
records or an .xlsx workbook's first sheet (python-calamine, imported only then).

The standard library's `csv` reads text (no pandas: exact line numbers and a fast CLI start-up).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from models.errors import DataError

DELIMITERS = (",", "\t", ";")


Cell = str | float | int | dt.date | dt.datetime | bool | None


def table_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """(line, cells as shown) of every row of a results file, header included: the same reading as
    `parse_file` (workbook or text, its encoding and delimiter), for tools that need columns it does not keep
    (`sparkbandit init` reads ad names and ad groups). Raises DataError where `parse_file` would."""
    path = Path(path)
    source = str(path)
    head, _ = head_and_sha256(path, source)
    if is_workbook(head):
        rows = workbook_rows(path, source)
    else:
        codec = text_codec(head)
        rows = csv_rows(path, codec, sniff_delimiter(decode_head(head, codec)), source)
    for line, cells in rows:
        yield line, [cell_text(c) for c in cells]


def head_and_sha256(path: Path, source: str) -> tuple[bytes, str]:
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


def blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def header_text(cell: Cell) -> str:
    return "" if cell is None else str(cell)


def csv_rows(path: Path, codec: str, delimiter: str, source: str) -> Iterator[tuple[int, Sequence[Cell]]]:
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


def is_workbook(raw: bytes) -> bool:
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
        raise _unreadable_workbook(source, e) from None
    if not names:
        raise DataError(source, "", "the workbook has no sheets", "export the results again from Ads Manager")
    return book, names[0], failures


def _unreadable_workbook(source: str, e: Exception) -> DataError:
    return DataError(
        source,
        "",
        f"cannot read the workbook ({e})",
        "open it in Excel and save it again as .xlsx, or export it as CSV",
    )


def first_sheet_name(path: Path, source: str) -> str:
    return _open_workbook(path, source)[1]


def workbook_rows(path: Path, source: str) -> Iterator[tuple[int, Sequence[Cell]]]:
    """The first sheet of a workbook as (line, typed cells), read with python-calamine (see the README)."""
    book, name, failures = _open_workbook(path, source)
    try:
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)  # from A1: Excel's line numbers
    except failures as e:
        raise _unreadable_workbook(source, e) from None
    for i, r in enumerate(rows):
        yield i + 1, list(r)


def read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(source, "", "file not found", "check the path") from None
    except OSError as e:
        raise DataError(source, "", f"cannot read ({e.strerror})", "check the path and permissions") from None


def text_codec(head: bytes) -> str:
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


def decode_head(head: bytes, codec: str) -> str:
    """As much of the start of the file as decodes (a multi-byte character may be cut at the end)."""
    return head.decode(codec, errors="ignore")


def decode_text(raw: bytes, source: str) -> str:
    """Text of a results or history file: UTF-8 (BOM or not) or UTF-16 (see `text_codec`). Raises DataError
    naming the line of the first byte that is not valid."""
    codec = text_codec(raw[: 1 << 16])
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


def sniff_delimiter(text: str) -> str:
    """The most frequent of comma, tab and semicolon on the header line (comma on a tie)."""
    header = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first on a tie: comma
    return best if counts[best] else ","


def cell_text(cell: Cell) -> str:
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < 1e16:
        return str(int(cell))
    return "" if cell is None else str(cell).strip()

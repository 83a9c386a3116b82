"""Results import: native CSV and TikTok exports, every bad input with its exact message, matching to the plan."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.inputs.importer import parse_file, read_results
from allocator.inputs.matching import match_rows
from allocator.inputs.records import MatchedResults, ParsedFile, ResultRow
from allocator.plan import CampaignPlan
from models.errors import DataError

NATIVE_HEADER = "date,creative_id,impressions,clicks,conversions,spend\n"
COLUMNS = "the columns are: date, creative_id, impressions, clicks, conversions, spend"
D = dt.date


def make_plan() -> CampaignPlan:
    return CampaignPlan.model_validate(
        {
            "campaign": {"name": "Q4", "daily_budget": 300},
            "creatives": [
                {"id": "c1", "name": "Hook A"},
                {"id": "c2", "name": "Unboxing"},
                {"id": "1786000000000000001"},
            ],
        }
    )


def write(tmp_path: Path, text: str | bytes, name: str = "results.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(DataError) as info:
        parse_file(path)
    return str(info.value)


# ---------------------------------------------------------------------- native format
def test_native_rows_values_and_line_numbers(tmp_path):
    text = (
        " Spend , DATE,creative_id,Impressions,clicks,conversions\n"
        "12.5,2026-11-20,c1,1000,12,1\n"
        "\n"  # a blank line is skipped but still counts as a line
        "0,2026-11-21, Hook A ,0,0,0\n"
    )
    path = write(tmp_path, text)
    parsed = parse_file(path)
    assert isinstance(parsed, ParsedFile)
    assert parsed.format == "native"
    assert parsed.path == path
    assert parsed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert parsed.rows == (
        ResultRow(D(2026, 11, 20), "c1", 1000.0, 12.0, 1.0, 12.5, 2),
        ResultRow(D(2026, 11, 21), " Hook A ", 0.0, 0.0, 0.0, 0.0, 4),
    )


def test_native_quoted_newline_reports_the_row_first_line(tmp_path):
    text = NATIVE_HEADER + '2026-11-20,"two\nlines",10,1,0,1\n2026-11-20,c1,10,1,0,-1\n'
    assert error_of(write(tmp_path, text)).endswith(
        "row 4, column 'spend': '-1' is negative; spend cannot be negative; correct the value"
    )
    text = NATIVE_HEADER + '2026-11-20,"two\nlines",10,1,0,1\n'
    assert parse_file(write(tmp_path, text)).rows[0].line == 2


def test_native_bom_semicolon_and_trailing_empty_cells(tmp_path):
    text = "\ufeffdate;creative_id;impressions;clicks;conversions;spend;\r\n2026-11-20;c1;5;1;0;0.25;;\r\n"
    parsed = parse_file(write(tmp_path, text))
    assert parsed.rows == (ResultRow(D(2026, 11, 20), "c1", 5.0, 1.0, 0.0, 0.25, 2),)


BAD_NATIVE = [
    ("", "no data rows (the file is empty); export at least one day of results"),
    ("\n\n", "no data rows (the file is empty); export at least one day of results"),
    (NATIVE_HEADER, "no data rows; export at least one day of results"),
    (
        "date,creative_id,impressions,clicks,conversions\n2026-11-20,c1,1,0,0\n",
        f"row 1: missing column 'spend'; add it ({COLUMNS})",
    ),
    (
        "date,creative_id,impressions,clicks,conversions,spent\n",
        "row 1, column 'spent': unknown column; did you mean 'spend'?",
    ),
    (
        NATIVE_HEADER.strip() + ",campaign\n",
        f"row 1, column 'campaign': unknown column; remove it ({COLUMNS})",
    ),
    (
        NATIVE_HEADER.strip() + ",Spend\n",
        "row 1, column 'Spend': column appears more than once; keep one",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1000,10,1,5\n2026-11-20,c2,abc,10,1,5\n",
        "row 3, column 'impressions': 'abc' is not a number; write a plain number such as 1234 or 12.5 "
        "(no thousands separators or currency)",
    ),
    (
        NATIVE_HEADER + '2026-11-20,c1,"1,000",10,1,5\n',
        "row 2, column 'impressions': '1,000' is not a number; write a plain number such as 1234 or 12.5 "
        "(no thousands separators or currency)",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1000,10,1,-5\n",
        "row 2, column 'spend': '-5' is negative; spend cannot be negative; correct the value",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1000,-1,0,5\n",
        "row 2, column 'clicks': '-1' is negative; clicks cannot be negative; correct the value",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1000,10,1,nan\n",
        "row 2, column 'spend': 'nan' is not a finite number; write the actual value (0 if there was none)",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1e400,10,1,5\n",
        "row 2, column 'impressions': '1e400' is not a finite number; write the actual value (0 if there was none)",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1000,10.5,1,5\n",
        "row 2, column 'clicks': '10.5' is not a whole number; clicks is a count; write a whole number",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1000,10,,5\n",
        "row 2, column 'conversions': value is empty; write 0 if there were none",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,10,5,11,5\n",
        "row 2, column 'conversions': conversions 11 is above impressions 10; check that the columns are not "
        "swapped; a creative cannot have more conversions than impressions",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,10,12,1,5\n",
        "row 2, column 'clicks': clicks 12 is above impressions 10; check that the columns are not "
        "swapped; a creative cannot have more clicks than impressions",
    ),
    (
        NATIVE_HEADER + "2026/11/20,c1,10,1,1,5\n",
        "row 2, column 'date': '2026/11/20' is not a date; write the date as YYYY-MM-DD",
    ),
    (
        NATIVE_HEADER + "2026-02-30,c1,10,1,1,5\n",
        "row 2, column 'date': '2026-02-30' is not a date; write the date as YYYY-MM-DD",
    ),
    (
        NATIVE_HEADER + ",c1,10,1,1,5\n",
        "row 2, column 'date': date is empty; write the date as YYYY-MM-DD",
    ),
    (
        NATIVE_HEADER + "2026-11-20, ,10,1,1,5\n",
        "row 2, column 'creative_id': creative id is empty; write the creative's id (or name) from the plan",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,1,000,1,1,5\n",
        "row 2: 7 values but the header has 6 columns; quote values that contain the delimiter and fill in "
        "missing values",
    ),
    (
        NATIVE_HEADER + "2026-11-20,c1,10,1,1\n",
        "row 2: 5 values but the header has 6 columns; quote values that contain the delimiter and fill in "
        "missing values",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_NATIVE)
def test_native_bad_input_exact_message(tmp_path, text, message):
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: {message}"


def test_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path, (NATIVE_HEADER + "2026-11-20,Caf\xe9,10,1,1,5\n").encode("latin-1"))
    assert error_of(path) == (
        f"{path}: row 2: not UTF-8 text (byte 0xe9); save the file as UTF-8 (in Excel: Save As, CSV UTF-8)"
    )


def test_file_not_found(tmp_path):
    path = tmp_path / "missing.csv"
    assert error_of(path) == f"{path}: file not found; check the path"


def test_directory_is_not_readable(tmp_path):
    assert error_of(tmp_path).startswith(f"{tmp_path}: cannot read (")


# ---------------------------------------------------------------------- TikTok export
TIKTOK = (
    "\ufeffBy Day,Campaign name,Ad group name,Ad name,Ad ID,Currency,Cost,Impressions,"
    "Clicks (destination),CTR (destination),CPM,Conversions,Cost per conversion,Reach\n"
    '2026-11-20,Q4,AG1,Hook A,1786000000000000001,USD,"$1,234.50","12,345",120,0.97%,$100.00,7,$176.36,"9,000"\n'
    '2026/11/21,Q4,AG2,Hook A,,USD,$0.40,"1,000",3,0.30%,$0.40,-,-,800\n'
    "11/22/2026,Q4,AG3,Unboxing,-,USD,-,-,,-,-,,-,-\n"
    'Total of 3 results,,,,,USD,"$1,234.90","13,345",123,0.92%,$92.50,7,$176.41,"9,800"\n'
)


def test_tiktok_export_comma_with_bom_thousands_currency_and_total_row(tmp_path):
    parsed = parse_file(write(tmp_path, TIKTOK))
    assert parsed.format == "tiktok"
    assert parsed.rows == (
        ResultRow(D(2026, 11, 20), "1786000000000000001", 12345.0, 120.0, 7.0, 1234.5, 2),
        ResultRow(D(2026, 11, 21), "Hook A", 1000.0, 3.0, 0.0, 0.4, 3),  # Ad ID empty: Ad name
        ResultRow(D(2026, 11, 22), "Unboxing", 0.0, 0.0, 0.0, 0.0, 4),  # "-" and empty mean 0
    )


def test_tiktok_export_tab_delimited(tmp_path):
    text = TIKTOK.replace(",", "\t").replace('"$1\t234.50"', "$1,234.50").replace('"12\t345"', "12,345")
    text = text.replace('"1\t000"', "1000").replace('"9\t000"', "9000")
    parsed = parse_file(write(tmp_path, text, "export.tsv"))
    assert parsed.format == "tiktok"
    assert [(r.label, r.impressions, r.spend, r.line) for r in parsed.rows] == [
        ("1786000000000000001", 12345.0, 1234.5, 2),
        ("Hook A", 1000.0, 0.4, 3),
        ("Unboxing", 0.0, 0.0, 4),
    ]


def test_tiktok_export_semicolon_and_name_only(tmp_path):
    text = "by day;AD NAME;Cost;Impressions;Clicks (destination);Conversions\n2026-11-20;Hook A;5,00 EUR;100;1;0\n"
    # "5,00" in a ";" file is a decimal comma: read as 5.00, and the file's note says how it was read
    parsed = parse_file(write(tmp_path, text))
    assert parsed.rows == (ResultRow(D(2026, 11, 20), "Hook A", 100.0, 1.0, 0.0, 5.0, 2),)
    assert parsed.notes == (
        "numbers read with ',' decimal comma, '.' thousands (1.234,56), as '5,00 EUR' (row 2, column 'Cost') shows",
    )


@pytest.mark.parametrize(
    ("cost", "spend"),
    [("$1,234.50", 1234.5), ("USD 12", 12.0), ("12 USD", 12.0), ("€7.5", 7.5), ("1,234,567", 1234567.0)],
)
def test_tiktok_money_formats(tmp_path, cost, spend):
    text = f'By Day,Ad ID,Cost,Impressions,Clicks (destination),Conversions\n2026-11-20,c1,"{cost}",10,1,0\n'
    assert parse_file(write(tmp_path, text)).rows[0].spend == spend


TT_HEADER = "By Day,Ad name,Ad ID,Cost,Impressions,Clicks (destination),Conversions\n"
TT_DATES = "YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY or DD/MM/YYYY"
BAD_TIKTOK = [
    (
        "By Day,Ad name,Cost,Impressions,Clicks (all),Conversions\n",
        "row 1: missing column 'Clicks (destination)'; add it to the export's columns in Ads Manager",
    ),
    (
        "Ad name,Cost,Impressions,Clicks (destination),Conversions\n",
        "row 1: missing column 'By Day'; export with the By Day breakdown (one row per ad and day)",
    ),
    (
        "By Day,Campaign name,Cost,Impressions,Clicks (destination),Conversions\n",
        "row 1: missing column 'Ad ID' or 'Ad name'; add Ad ID (or Ad name) to the export",
    ),
    (TT_HEADER, "no data rows; export at least one day of results"),
    (TT_HEADER + "Total of 0 results,,,-,-,-,-\n", "no data rows; export at least one day of results"),
    (
        TT_HEADER + "20.11.2026,Hook A,,1,10,1,0\n",
        f"row 2, column 'By Day': '20.11.2026' is not a date; write the date as {TT_DATES}",
    ),
    (
        TT_HEADER + "2026-11-20,Hook A,,abc,10,1,0\n",
        "row 2, column 'Cost': 'abc' is not a number; write a number such as 1234, 12,345 or $12.50",
    ),
    (
        TT_HEADER + "2026-11-20,Hook A,,-$5.00,10,1,0\n",
        "row 2, column 'Cost': '-$5.00' is negative; spend cannot be negative; correct the value",
    ),
    (
        TT_HEADER + "2026-11-20,Hook A,,$5,10,1,0.5\n",
        "row 2, column 'Conversions': '0.5' is not a whole number; conversions is a count; write a whole number",
    ),
    (
        TT_HEADER + "2026-11-20,Hook A,,$5,10,1,Infinity\n",
        "row 2, column 'Conversions': 'Infinity' is not a finite number; write the actual value (0 if there was none)",
    ),
    (
        TT_HEADER + "2026-11-20,Hook A,,$5,10,1,11\n",
        "row 2, column 'Conversions': conversions 11 is above impressions 10; check that the columns are not "
        "swapped; a creative cannot have more conversions than impressions",
    ),
    (
        TT_HEADER + '2026-11-20,Hook A,,$5,"1,000","1,001",0\n',
        "row 2, column 'Clicks (destination)': clicks 1001 is above impressions 1000; check that the columns are "
        "not swapped; a creative cannot have more clicks than impressions",
    ),
    (
        TT_HEADER + "2026-11-20,,-,$5,10,1,0\n",
        "row 2, column 'Ad ID': Ad ID and Ad name are both empty; export with Ad ID (or Ad name) filled in on every row",
    ),
    (
        TT_HEADER + "2026-11-20,Hook A,1.786E+18,$5,10,1,0\n",
        "row 2, column 'Ad ID': Ad ID '1.786E+18' was rounded by a spreadsheet; use the export as downloaded, "
        "or format the Ad ID column as text before saving",
    ),
    (
        TT_HEADER.replace("Ad ID", "Cost"),
        "row 1, column 'Cost': column appears more than once; keep one",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_TIKTOK)
def test_tiktok_bad_input_exact_message(tmp_path, text, message):
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: {message}"


# ---------------------------------------------------------------------- matching to the plan
def row(date: dt.date, label: str, impressions=100.0, clicks=2.0, conversions=1.0, spend=1.0, line=2) -> ResultRow:
    return ResultRow(date, label, impressions, clicks, conversions, spend, line)


def test_match_by_id_then_name_then_ignoring_case():
    rows = [
        row(D(2026, 11, 20), "c1", line=2),
        row(D(2026, 11, 21), " Hook A ", line=3),  # name, after strip
        row(D(2026, 11, 22), "C1", line=4),  # id, ignoring case
        row(D(2026, 11, 20), "UNBOXING", line=5),  # name, ignoring case
        row(D(2026, 11, 20), "1786000000000000001", line=6),
    ]
    result = match_rows(rows, make_plan(), "x.csv")
    assert result.rows_by_creative == {"c1": 3, "c2": 1, "1786000000000000001": 1}
    assert result.unknown == {}
    assert result.daily.observed.tolist() == [[True, True, True], [True, False, False], [True, False, False]]


def test_unknown_labels_are_reported_with_counts_not_matched():
    rows = [
        row(D(2026, 11, 20), "c1", line=2),
        row(D(2026, 11, 20), "Old ad", line=3),
        row(D(2026, 11, 21), "Old ad ", line=4),
        row(D(2026, 11, 23), "c9", line=5),
    ]
    result = match_rows(rows, make_plan(), "x.csv")
    assert result.unknown == {"Old ad": 2, "c9": 1}
    assert result.rows_by_creative == {"c1": 1, "c2": 0, "1786000000000000001": 0}
    # the dates cover every row of the file, matched or not
    assert (result.first_date, result.last_date) == (D(2026, 11, 20), D(2026, 11, 23))
    assert result.daily.impressions.sum() == 100.0


def test_daily_observations_equal_the_input_and_missing_days_are_zero_unobserved():
    rows = [
        row(D(2026, 11, 20), "c1", 1000, 10, 2, 8.5, line=2),
        row(D(2026, 11, 23), "c1", 500, 5, 1, 4.25, line=3),
        row(D(2026, 11, 21), "Unboxing", 300, 3, 0, 2.0, line=4),
    ]
    result = match_rows(rows, make_plan(), "x.csv")
    assert isinstance(result, MatchedResults)
    daily = result.daily
    assert daily.creative_ids == ("c1", "c2", "1786000000000000001")
    assert daily.dates.tolist() == [D(2026, 11, 20), D(2026, 11, 21), D(2026, 11, 22), D(2026, 11, 23)]
    np.testing.assert_array_equal(daily.impressions, [[1000, 0, 0], [0, 300, 0], [0, 0, 0], [500, 0, 0]])
    np.testing.assert_array_equal(daily.clicks, [[10, 0, 0], [0, 3, 0], [0, 0, 0], [5, 0, 0]])
    np.testing.assert_array_equal(daily.conversions, [[2, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(daily.spend, [[8.5, 0, 0], [0, 2.0, 0], [0, 0, 0], [4.25, 0, 0]])
    np.testing.assert_array_equal(
        daily.observed, [[True, False, False], [False, True, False], [False, False, False], [True, False, False]]
    )
    totals = daily.totals()
    np.testing.assert_array_equal(totals.impressions, [1500, 300, 0])
    np.testing.assert_array_equal(totals.spend, [12.75, 2.0, 0])


def test_zero_row_is_observed():
    result = match_rows([row(D(2026, 11, 20), "c2", 0, 0, 0, 0)], make_plan(), "x.csv")
    assert result.daily.observed.tolist() == [[False, True, False]]


def test_no_rows_gives_empty_daily():
    result = match_rows([], make_plan(), "x.csv")
    assert result.daily.n_days == 0 and result.daily.creative_ids == ("c1", "c2", "1786000000000000001")
    assert (result.first_date, result.last_date) == (None, None)
    assert result.rows_by_creative == {"c1": 0, "c2": 0, "1786000000000000001": 0}


def test_duplicate_creative_day_names_both_lines():
    rows = [
        row(D(2026, 11, 20), "c1", line=4),
        row(D(2026, 11, 21), "c1", line=5),
        row(D(2026, 11, 20), "Hook A", line=9),
    ]
    with pytest.raises(DataError) as info:
        match_rows(rows, make_plan(), "x.csv")
    assert str(info.value) == (
        "x.csv: row 9: duplicate creative-day rows for creative 'c1' on 2026-11-20 (lines 4 and 9); "
        "keep one row per creative and day"
    )


def test_duplicate_unknown_rows_are_only_counted():
    rows = [row(D(2026, 11, 20), "gone", line=2), row(D(2026, 11, 20), "gone", line=3)]
    assert match_rows(rows, make_plan(), "x.csv").unknown == {"gone": 2}


def test_label_ambiguous_ignoring_case_is_an_error():
    plan = CampaignPlan.model_validate(
        {"campaign": {"name": "Q4", "daily_budget": 300}, "creatives": [{"id": "Ad1"}, {"id": "AD1"}]}
    )
    assert match_rows([row(D(2026, 11, 20), "AD1")], plan, "x.csv").rows_by_creative == {"Ad1": 0, "AD1": 1}
    with pytest.raises(DataError) as info:
        match_rows([row(D(2026, 11, 20), "ad1", line=3)], plan, "x.csv")
    assert str(info.value) == (
        "x.csv: row 3: 'ad1' matches creatives 'Ad1' and 'AD1' when case is ignored; "
        "write the creative's id exactly as in the plan"
    )


# ---------------------------------------------------------------------- read_results
def test_read_results_one_path_or_many_in_mixed_formats(tmp_path):
    native = write(tmp_path, NATIVE_HEADER + "2026-11-23,c2,50,1,0,0.5\n", "native.csv")
    export = write(tmp_path, TIKTOK, "export.csv")
    single = read_results(str(native), make_plan())
    assert single.rows_by_creative == {"c1": 0, "c2": 1, "1786000000000000001": 0}
    both = read_results([export, native], make_plan())
    assert both.rows_by_creative == {"c1": 1, "c2": 2, "1786000000000000001": 1}
    assert both.unknown == {}
    assert (both.first_date, both.last_date) == (D(2026, 11, 20), D(2026, 11, 23))
    np.testing.assert_array_equal(both.daily.impressions[:, 2], [12345, 0, 0, 0])
    np.testing.assert_array_equal(both.daily.impressions[:, 1], [0, 0, 0, 50])
    np.testing.assert_array_equal(both.daily.observed[:, 1], [False, False, True, True])


def test_read_results_duplicate_across_files(tmp_path):
    a = write(tmp_path, NATIVE_HEADER + "2026-11-20,c1,50,1,0,0.5\n", "a.csv")
    b = write(tmp_path, NATIVE_HEADER + "2026-11-19,c2,50,1,0,0.5\n2026-11-20,Hook A,60,1,0,0.7\n", "b.csv")
    with pytest.raises(DataError) as info:
        read_results([a, b], make_plan())
    assert str(info.value) == (
        f"{b}: row 3: duplicate creative-day rows for creative 'c1' on 2026-11-20 (line 2 of {a} and line 3 of {b}); "
        "keep one row per creative and day"
    )


def test_read_results_duplicate_within_file(tmp_path):
    text = NATIVE_HEADER + "2026-11-20,c1,50,1,0,0.5\n" * 2
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_results(path, make_plan())
    assert str(info.value) == (
        f"{path}: row 3: duplicate creative-day rows for creative 'c1' on 2026-11-20 (lines 2 and 3); "
        "keep one row per creative and day"
    )


def test_read_results_needs_a_path():
    with pytest.raises(DataError) as info:
        read_results([], make_plan())
    assert str(info.value) == "<input>: no results files given; pass at least one file"


def test_importer_does_not_import_heavy_libraries():
    import subprocess
    import sys

    code = "import sys, allocator.inputs.importer; print(sorted({'pandas', 'pymc', 'arviz', 'pydantic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------- property: write then parse is exact
labels = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufeff"), min_size=1, max_size=12
).filter(lambda s: s.strip())


@st.composite
def native_rows(draw):
    n = draw(st.integers(1, 8))
    out = []
    for _ in range(n):
        impressions = draw(st.integers(0, 10**12))
        out.append(
            (
                draw(st.dates(D(2000, 1, 1), D(2100, 12, 31))),
                draw(labels),
                impressions,
                draw(st.integers(0, impressions)),
                draw(st.integers(0, impressions)),
                draw(st.floats(0, 1e9, allow_nan=False, allow_infinity=False)),
            )
        )
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=native_rows(),
    order=st.permutations(range(6)),
    delimiter=st.sampled_from([",", "\t", ";"]),
    upper=st.booleans(),
)
def test_property_native_round_trip(tmp_path, rows, order, delimiter, upper):
    names = ["date", "creative_id", "impressions", "clicks", "conversions", "spend"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow([names[i].upper() if upper else names[i] for i in order])
    for r in rows:
        cells = [r[0].isoformat(), r[1], str(r[2]), str(r[3]), str(r[4]), repr(r[5])]
        writer.writerow([cells[i] for i in order])
    path = write(tmp_path, buffer.getvalue(), "roundtrip.csv")
    parsed = parse_file(path)
    expected = tuple(
        ResultRow(d, label, float(i), float(c), float(v), s, line)
        for line, (d, label, i, c, v, s) in enumerate(rows, start=2)
    )
    assert parsed.rows == expected
    assert parsed.format == "native"

"""Exports as Ads Manager writes them and nothing misread (issues 9 and 12): number formats decided per file,
slash-date order, .xlsx workbooks, UTF-16 text, Currency, plausibility limits, id-then-name, Unicode names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from allocator.inputs.importer import parse_file, read_results
from allocator.inputs.matching import match_rows
from allocator.inputs.records import ReadOptions, ResultRow
from allocator.plan import CampaignPlan
from models.errors import DataError

D = dt.date
TT = "By Day;Ad name;Cost;Impressions;Clicks (destination);Conversions\n"


def make_plan(**campaign) -> CampaignPlan:
    return CampaignPlan.model_validate(
        {
            "campaign": {"name": "Q4", "daily_budget": 300, **campaign},
            "creatives": [{"id": "c1", "name": "Hook A"}, {"id": "c2", "name": "Crème brûlée"}],
        }
    )


def write(tmp_path: Path, text: str | bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def error_of(path: Path, options: ReadOptions | None = None) -> str:
    with pytest.raises(DataError) as info:
        parse_file(path, options)
    return str(info.value)


# ---------------------------------------------------------------------- numbers
def test_semicolon_file_dot_thousands_and_decimal_comma(tmp_path):
    text = TT + "2026-11-20;Hook A;1.234;25.000;100;3\n2026-11-21;Hook A;14,87;1.000.000;1.200;0\n"
    parsed = parse_file(write(tmp_path, text))
    assert [(r.spend, r.impressions, r.clicks) for r in parsed.rows] == [
        (1234.0, 25000.0, 100.0),
        (14.87, 1000000.0, 1200.0),
    ]
    assert parsed.notes == (
        (
            "numbers read with ',' decimal comma, '.' thousands (1.234,56), as '1.000.000' (row 3, column "
            "'Impressions') shows"
        ),
    )


def test_semicolon_file_without_proof_uses_the_delimiter_rule_and_says_so(tmp_path):
    parsed = parse_file(write(tmp_path, TT + "2026-11-20;Hook A;8;25.000;100;3\n"))
    assert parsed.rows[0].impressions == 25000.0
    assert parsed.notes == (
        (
            "numbers read with ',' decimal comma, '.' thousands (1.234,56), usual in ';'-separated exports "
            "('25.000', row 2, column 'Impressions', is 25000)"
        ),
    )


def test_semicolon_file_whose_values_say_dot_decimal(tmp_path):
    parsed = parse_file(write(tmp_path, TT + "2026-11-20;Hook A;$1,234.50;25,000;100;3\n"))
    assert (parsed.rows[0].spend, parsed.rows[0].impressions) == (1234.5, 25000.0)


def test_both_number_formats_in_one_file_is_an_error(tmp_path):
    path = write(tmp_path, TT + "2026-11-20;Hook A;1,234.50;100;1;0\n2026-11-21;Hook A;14,87;100;1;0\n")
    assert error_of(path) == (
        f"{path}: row 3, column 'Cost': numbers are written both as '1,234.50' (row 2, column 'Cost') and "
        "'14,87', with the decimal mark swapped; export the file again in one number format"
    )


def test_tab_file_with_only_ambiguous_numbers_is_refused_unless_the_plan_says(tmp_path):
    text = TT.replace(";", "\t") + "2026-11-20\tHook A\t8\t25.000\t100\t3\n"
    path = write(tmp_path, text, "export.txt")
    assert error_of(path) == (
        f"{path}: row 2, column 'Impressions': '25.000' could be read with ',' or '.' as the decimal mark and no "
        'value in the file tells which; set [data] decimal = "." or "," in the plan (the mark your Ads Manager uses)'
    )
    assert parse_file(path, ReadOptions(decimal=",")).rows[0].impressions == 25000.0


def test_decimal_point_rule_reads_25_000_as_25(tmp_path):
    text = TT.replace(";", "\t") + "2026-11-20\tHook A\t8\t25.000\t10\t3\n"
    assert parse_file(write(tmp_path, text, "e.txt"), ReadOptions(decimal=".")).rows[0].impressions == 25.0


def test_space_grouped_thousands(tmp_path):
    parsed = parse_file(write(tmp_path, TT + "2026-11-20;Hook A;1\u00a0234,50 €;12 345;100;3\n"))
    assert (parsed.rows[0].spend, parsed.rows[0].impressions) == (1234.5, 12345.0)


# ---------------------------------------------------------------------- plausibility
LIMITS = ReadOptions(today=D(2026, 11, 25))
NATIVE = "date,creative_id,impressions,clicks,conversions,spend\n"
BAD = [
    (
        NATIVE + "2026-11-20,c1,1000,10,1,1e308\n",
        (
            "row 2, column 'spend': '1e308' is above the plausible spend of one creative in one day (1e+10); check the "
            "value; if it is right, raise [data] max_spend in the plan"
        ),
    ),
    (
        NATIVE + "2026-11-20,c1,9007199254740993,10,1,5\n",
        (
            "row 2, column 'impressions': '9007199254740993' is 2^53 (9007199254740992) or more, beyond any real count; "
            "check the value (a column may be shifted or two values joined)"
        ),
    ),
    (
        NATIVE + "2026-11-20,c1,1000,10,1,inf\n",
        "row 2, column 'spend': 'inf' is not a finite number; write the actual value (0 if there was none)",
    ),
    (
        NATIVE + "2062-11-20,c1,1000,10,1,5\n",
        (
            "row 2, column 'date': 2062-11-20 is 13144 days after today (2026-11-25); check the year and the date format "
            "(results cannot come from the future; the limit is [data] max_days_ahead)"
        ),
    ),
    (
        NATIVE + "1990-11-20,c1,1000,10,1,5\n",
        (
            "row 2, column 'date': 1990-11-20 is 13154 days before today (2026-11-25); check the year and the date "
            "format; if results that old are right, raise [data] max_days_back"
        ),
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_implausible_values_exact_message(tmp_path, text, message):
    path = write(tmp_path, text, "data.csv")
    assert error_of(path, LIMITS) == f"{path}: {message}"


def test_limits_are_configurable(tmp_path):
    path = write(tmp_path, NATIVE + "2026-11-27,c1,1000,10,1,2e10\n", "data.csv")
    parsed = parse_file(path, ReadOptions(max_spend=1e11, max_days_ahead=2, today=D(2026, 11, 25)))
    assert parsed.rows[0].spend == 2e10
    old = write(tmp_path, NATIVE + "2020-11-27,c1,1000,10,1,5\n", "old.csv")
    assert parse_file(old, ReadOptions(max_days_back=3650, today=D(2026, 11, 25))).rows[0].date == D(2020, 11, 27)


def test_zero_spend_with_impressions_warns_naming_row_and_column(tmp_path):
    path = write(tmp_path, NATIVE + "2026-11-20,c1,1000,10,1,0\n2026-11-21,c1,0,0,0,0\n2026-11-22,c1,5,0,0,0\n")
    parsed = parse_file(path)
    assert parsed.warnings == (
        (
            f"{path}: row 2, column 'spend': spend 0 with 1000 impressions for 'c1' (and 1 more row like it); free "
            "impressions make that creative look cheaper than it is: check the export's Cost column"
        ),
    )
    assert error_of(path, ReadOptions(zero_spend="error")) == (
        f"{path}: row 2, column 'spend': spend 0 with 1000 impressions for 'c1' (and 1 more row like it); check the "
        'export\'s Cost column, or set [data] zero_spend = "warn" if the impressions really were free'
    )


def test_plan_limits_reach_read_results(tmp_path):
    path = write(tmp_path, NATIVE + "2026-11-20,c1,1000,10,1,500\n", "data.csv")
    plan = CampaignPlan.model_validate({**make_plan().model_dump(), "data": {"max_spend": 100}})
    with pytest.raises(DataError, match=r"'500' is above the plausible spend of one creative in one day \(100\)"):
        read_results(path, plan, today=D(2026, 11, 25))


# ---------------------------------------------------------------------- dates
def test_day_first_dates_detected_from_a_day_above_12(tmp_path):
    text = TT + "01/11/2026;Hook A;8;100;1;0\n13/11/2026;Hook A;8;100;1;0\n"
    parsed = parse_file(write(tmp_path, text))
    assert [r.date for r in parsed.rows] == [D(2026, 11, 1), D(2026, 11, 13)]
    assert "dates read day first (DD/MM/YYYY), as '13/11/2026' (row 3, column 'By Day') shows" in parsed.notes


def test_ambiguous_slash_dates_refused_then_read_with_date_format(tmp_path):
    path = write(tmp_path, TT + "01/12/2026;Hook A;8;100;1;0\n02/12/2026;Hook A;8;100;1;0\n")
    assert error_of(path) == (
        f"{path}: row 2, column 'By Day': '01/12/2026' could be day first or month first: every day and month in "
        'the file is 12 or less; set [campaign] date_format = "DD/MM/YYYY" (or "MM/DD/YYYY") in the plan'
    )
    assert [r.date for r in parse_file(path, ReadOptions(date_format="DD/MM/YYYY")).rows] == [
        D(2026, 12, 1),
        D(2026, 12, 2),
    ]
    assert [r.date for r in parse_file(path, ReadOptions(date_format="MM/DD/YYYY")).rows] == [
        D(2026, 1, 12),
        D(2026, 2, 12),
    ]
    plan = make_plan(date_format="DD/MM/YYYY")
    assert read_results(path, plan, today=D(2026, 12, 3)).first_date == D(2026, 12, 1)


def test_date_format_contradicted_by_the_file_is_an_error(tmp_path):
    path = write(tmp_path, TT + "11/13/2026;Hook A;8;100;1;0\n")
    assert error_of(path, ReadOptions(date_format="DD/MM/YYYY")) == (
        f"{path}: row 2, column 'By Day': '11/13/2026' is not a date in the plan's date_format DD/MM/YYYY; check "
        "[campaign] date_format in the plan, or the export's date setting"
    )


def test_day_first_and_month_first_in_one_file(tmp_path):
    path = write(tmp_path, TT + "13/11/2026;Hook A;8;100;1;0\n11/14/2026;Hook A;8;100;1;0\n")
    assert error_of(path) == (
        f"{path}: row 3, column 'By Day': '11/14/2026' is month first but '13/11/2026' (row 2, column 'By Day') is "
        "day first; export the file again with one date format"
    )


def test_same_day_and_month_is_not_ambiguous(tmp_path):
    assert parse_file(write(tmp_path, TT + "11/11/2026;Hook A;8;100;1;0\n")).rows[0].date == D(2026, 11, 11)


# ---------------------------------------------------------------------- encodings and workbooks
UTF16_TEXT = (
    "By Day\tAd ID\tAd name\tCurrency\tCost\tImpressions\tClicks (destination)\tConversions\n"
    "2026-11-20\t1786000000000000001\tCrème brûlée\tEUR\t1.234,50 €\t12.345\t120\t7\n"
)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le"])
def test_utf16_unicode_text_export(tmp_path, codec):
    raw = UTF16_TEXT.encode(codec)  # "utf-16" writes a BOM; Excel's "Unicode text" does; some tools do not
    parsed = parse_file(write(tmp_path, raw, "export.txt"), ReadOptions(decimal=","))
    assert parsed.rows == (ResultRow(D(2026, 11, 20), "1786000000000000001", 12345.0, 120.0, 7.0, 1234.5, 2),)
    assert (parsed.rows[0].name, parsed.rows[0].currency) == ("Crème brûlée", "EUR")


def test_non_utf_text_names_the_line(tmp_path):
    path = write(
        tmp_path,
        "date,creative_id,impressions,clicks,conversions,spend\n2026-11-20,Caf\xe9,1,0,0,1\n".encode("latin-1"),
    )
    assert error_of(path).endswith(
        "row 2: not UTF-8 text (byte 0xe9); save the file as UTF-8 (in Excel: Save As, CSV UTF-8)"
    )


def xlsx(tmp_path: Path, rows: list[list], name: str = "export.xlsx", title: str = "Ads") -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for r in rows:
        sheet.append(r)
    path = tmp_path / name
    book.save(path)
    return path


XLSX_HEADER = [
    "By Day",
    "Campaign name",
    "Ad ID",
    "Ad name",
    "Currency",
    "Cost",
    "Impressions",
    "Clicks (destination)",
    "Conversions",
]


def test_xlsx_export_typed_and_text_cells_and_total_row(tmp_path):
    path = xlsx(
        tmp_path,
        [
            XLSX_HEADER,
            [dt.datetime(2026, 11, 20), "Q4", "1786000000000000001", "Hook A", "USD", 1234.5, 12345, 120, 7],
            ["2026-11-21", "Q4", "", "Hook A", "USD", "$1,008.00", "120,000", "900", "-"],
            ["Total of 2 results", None, None, None, "USD", 2242.5, 132345, 1020, 7],
        ],
    )
    parsed = parse_file(path)
    assert parsed.format == "tiktok"
    assert parsed.rows == (
        ResultRow(D(2026, 11, 20), "1786000000000000001", 12345.0, 120.0, 7.0, 1234.5, 2),
        ResultRow(D(2026, 11, 21), "Hook A", 120000.0, 900.0, 0.0, 1008.0, 3),
    )


def test_xlsx_errors_name_sheet_row_and_column(tmp_path):
    path = xlsx(tmp_path, [XLSX_HEADER, [dt.date(2026, 11, 20), "Q4", "1", "Hook A", "USD", -5, 10, 1, 0]])
    assert error_of(path) == (
        f"{path}: sheet 'Ads', row 2, column 'Cost': '-5' is negative; spend cannot be negative; correct the value"
    )
    path = xlsx(
        tmp_path,
        [[], XLSX_HEADER, [dt.date(2026, 11, 20), "Q4", 1.786e18, "Hook A", "USD", 5, 10, 1, 0]],
        "rounded.xlsx",
    )
    assert error_of(path) == (
        f"{path}: sheet 'Ads', row 3, column 'Ad ID': Ad ID 1.786e+18 is stored as a number in the workbook and was "
        "rounded; use the export as downloaded, or format the Ad ID column as text before saving"
    )


def test_damaged_workbook_is_one_line_never_not_utf8(tmp_path):
    path = write(tmp_path, b"PK\x03\x04 not really a zip", "broken.xlsx")
    message = error_of(path)
    assert message.startswith(f"{path}: cannot read the workbook (")
    assert message.endswith("); open it in Excel and save it again as .xlsx, or export it as CSV")
    assert "UTF-8" not in message and "\n" not in message


# ---------------------------------------------------------------------- matching
def test_currency_column_must_match_the_plan(tmp_path):
    path = write(
        tmp_path,
        "By Day,Ad name,Currency,Cost,Impressions,Clicks (destination),Conversions\n"
        "2026-11-20,Hook A,EUR,5.00,100,1,0\n",
    )
    with pytest.raises(DataError) as info:
        read_results(path, make_plan(), today=D(2026, 11, 21))
    assert str(info.value) == (
        f"{path}: row 2, column 'Currency': EUR but the plan's currency is USD; export the ad account the plan is "
        "for, or set [campaign] currency"
    )
    assert read_results(path, make_plan(currency="EUR"), today=D(2026, 11, 21)).rows_by_creative["c1"] == 1


def test_ad_id_not_in_plan_falls_back_to_ad_name(tmp_path):
    path = write(
        tmp_path,
        "By Day,Ad ID,Ad name,Cost,Impressions,Clicks (destination),Conversions\n"
        "2026-11-20,1786000000000000001,Hook A,5.00,100,1,0\n"
        "2026-11-20,1786000000000000002,CRÈME BRÛLÉE,5.00,100,1,0\n",
    )
    res = read_results(path, make_plan(), today=D(2026, 11, 21))
    assert res.rows_by_creative == {"c1": 1, "c2": 1} and res.unknown == {}


def test_nfc_and_casefold_names_match(tmp_path):
    decomposed = "cre\u0300me bru\u0302le\u0301e"  # as macOS may write it
    rows = [ResultRow(D(2026, 11, 20), decomposed, 10.0, 1.0, 0.0, 1.0, 2)]
    assert match_rows(rows, make_plan(), "x.csv").rows_by_creative == {"c1": 0, "c2": 1}


def test_nothing_matching_is_an_error_not_a_decision_on_no_data(tmp_path):
    path = write(
        tmp_path,
        "By Day,Ad ID,Ad name,Cost,Impressions,Clicks (destination),Conversions\n"
        "2026-11-20,111,Other,5.00,100,1,0\n2026-11-21,111,Other,5.00,100,1,0\n",
    )
    with pytest.raises(DataError) as info:
        read_results(path, make_plan(), today=D(2026, 11, 22))
    assert str(info.value) == (
        f"{path}: none of its 2 rows matches a creative of the plan (labels such as '111'); check that the export "
        "is for this campaign, or add the creatives to [[creatives]] (by id or name)"
    )


# ---------------------------------------------------------------------- plan keys
def test_plan_currency_must_be_iso_4217():
    from pydantic import ValidationError

    from allocator.plan import (
        load_plan,  # noqa: F401  (the path used by the CLI gives the same line)
        pydantic_error,
    )

    with pytest.raises(ValidationError) as info:
        make_plan(currency="XYZ")
    assert str(pydantic_error("plan.toml", info.value, CampaignPlan)) == (
        "plan.toml: campaign.currency: 'XYZ' is not an ISO 4217 currency code; write the ad account's currency as "
        "a three-letter code such as USD, EUR or GBP"
    )
    with pytest.raises(ValidationError) as info:
        make_plan(currency="eur")
    assert str(pydantic_error("plan.toml", info.value, CampaignPlan)).endswith("or GBP; did you mean 'EUR'?")


def test_plan_date_format_key_is_checked():
    from pydantic import ValidationError

    from allocator.plan import pydantic_error

    with pytest.raises(ValidationError) as info:
        make_plan(date_format="DD.MM.YYYY")
    assert str(pydantic_error("plan.toml", info.value, CampaignPlan)).startswith(
        "plan.toml: campaign.date_format: 'DD.MM.YYYY' is not valid ("
    )

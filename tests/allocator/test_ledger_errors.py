"""Every bad input at the ledger boundary, with the exact message."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from click.testing import CliRunner

from allocator.cli.main import main
from allocator.plan import load_plan
from allocator.storage.ledger import Ledger, ingest_files
from allocator.storage.schema import SCHEMA_VERSION
from allocator.workflows.daily import campaign_status, decision_history, reallocate_from_ledger, write_report
from models.errors import DataError, LedgerError

PLAN = """
[campaign]
name = "Q4"
daily_budget = 100

[[creatives]]
id = "c1"

[[creatives]]
id = "c2"
"""
GOOD = "date,creative_id,impressions,clicks,conversions,spend\n2026-11-10,c1,1000,10,1,8\n2026-11-10,c2,1000,10,1,8\n"


@pytest.fixture
def loaded(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    return load_plan(plan)


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(LedgerError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_not_a_database(loaded):
    loaded.ledger_path.write_text("this is a spreadsheet, not a ledger\n" * 50)
    path = loaded.ledger_path
    expected = (
        f"ledger {path} is not a sparkbandit ledger (not an SQLite database, or damaged); move it aside and "
        "re-import the exports with sparkbandit ingest, or restore a backup"
    )
    assert message(Ledger.open, path) == expected
    assert message(reallocate_from_ledger, loaded) == expected
    assert message(campaign_status, loaded) == expected


def test_damaged_ledger(loaded, tmp_path):
    big = tmp_path / "big.csv"
    rows = [f"2026-{m:02d}-{d:02d},c{i},1000,10,1,8" for m in (9, 10) for d in range(1, 29) for i in (1, 2)]
    big.write_text("date,creative_id,impressions,clicks,conversions,spend\n" + "\n".join(rows) + "\n")
    ingest_files(loaded, [big])
    raw = loaded.ledger_path.read_bytes()
    loaded.ledger_path.write_bytes(raw[: len(raw) // 2])  # e.g. a copy interrupted half-way
    expected = (
        f"ledger {loaded.ledger_path} is not a sparkbandit ledger (not an SQLite database, or damaged); move it "
        "aside and re-import the exports with sparkbandit ingest, or restore a backup"
    )
    assert message(reallocate_from_ledger, loaded, dry_run=True) == expected


def test_newer_schema(loaded, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    ingest_files(loaded, [good])
    conn = sqlite3.connect(loaded.ledger_path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    assert message(Ledger.open, loaded.ledger_path) == (
        f"ledger {loaded.ledger_path} was written by a newer sparkbandit (schema version 7; this version reads up "
        f"to {SCHEMA_VERSION}); upgrade sparkbandit (pip install -U sparkbandit)"
    )


def test_another_programs_database(loaded):
    conn = sqlite3.connect(loaded.ledger_path)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    assert message(Ledger.open, loaded.ledger_path) == (
        f"ledger {loaded.ledger_path} is an SQLite database but not a sparkbandit ledger; "
        "set campaign.ledger in the plan to another file"
    )


def test_missing_ledger_for_reading_commands(loaded, tmp_path):
    expected = f"no ledger at {loaded.ledger_path}; import results first: sparkbandit ingest --plan PLAN FILE..."
    assert message(decision_history, loaded) == expected
    assert message(campaign_status, loaded) == expected
    assert message(write_report, loaded, tmp_path / "r") == expected
    assert not loaded.ledger_path.exists()


def test_no_results_and_no_date(loaded, tmp_path):
    expected = (
        f"ledger {loaded.ledger_path} has no results for campaign 'Q4'; import an export first "
        f"(sparkbandit ingest --plan {loaded.path} FILE...) or give --date"
    )
    assert message(reallocate_from_ledger, loaded) == expected
    Ledger.open(loaded.ledger_path).close()  # an empty ledger
    assert message(reallocate_from_ledger, loaded) == expected


def test_ledger_is_a_folder_or_has_no_folder(tmp_path):
    (tmp_path / "dir.sqlite3").mkdir()
    assert message(Ledger.open, tmp_path / "dir.sqlite3") == (
        f"ledger {tmp_path / 'dir.sqlite3'} is a folder; set campaign.ledger in the plan to a file path"
    )
    assert message(Ledger.open, tmp_path / "nope" / "l.sqlite3") == (
        f"cannot create ledger {tmp_path / 'nope' / 'l.sqlite3'}: folder {tmp_path / 'nope'} does not exist; create it"
    )


def test_bad_row_in_any_file_imports_nothing(loaded, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text(GOOD)
    ingest_files(loaded, [first])
    good = tmp_path / "good.csv"
    good.write_text(GOOD.replace("2026-11-10", "2026-11-11"))
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,creative_id,impressions,clicks,conversions,spend\n2026-11-12,c1,1000,10,1,8\n2026-11-12,c2,1000,10,1,eight\n"
    )
    with pytest.raises(DataError) as info:
        ingest_files(loaded, [good, bad])
    assert str(info.value) == (
        f"{bad}: row 3, column 'spend': 'eight' is not a number; write a plain number such as 1234 or 12.5 "
        "(no thousands separators or currency)"
    )
    with Ledger.open(loaded.ledger_path) as ledger:
        assert ledger.conn.execute("SELECT count(*) FROM results").fetchone()[0] == 2
        assert ledger.conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 1


def test_duplicate_creative_day_imports_nothing(loaded, tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text(GOOD + "2026-11-10,c1,1000,10,2,8\n")
    with pytest.raises(DataError, match=r"row 4: duplicate creative-day rows for creative 'c1' on 2026-11-10"):
        ingest_files(loaded, [dup])
    assert not loaded.ledger_path.exists()


def test_cli_messages_are_one_line_exit_2(loaded, tmp_path):
    loaded.ledger_path.write_bytes(b"\x00garbage" * 100)
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    runner = CliRunner()
    for args in (
        ["ingest", "--plan", str(loaded.path), str(good)],
        ["reallocate", "--plan", str(loaded.path), "--date", "2026-11-11"],
        ["history", "--plan", str(loaded.path)],
        ["status", "--plan", str(loaded.path)],
        ["report", "--plan", str(loaded.path), "--out", str(tmp_path / "rep")],
    ):
        res = runner.invoke(main, args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: ledger {loaded.ledger_path} is not a sparkbandit"), args
    res = runner.invoke(main, ["ingest", "--plan", str(loaded.path)])
    assert res.exit_code == 2 and "Missing argument 'FILES...'" in res.output


def test_dry_run_with_date_and_no_ledger_is_allowed(loaded):
    alloc = reallocate_from_ledger(loaded, dt.date(2026, 11, 1), dry_run=True)
    assert sum(c.budget for c in alloc.creatives) == pytest.approx(100)
    assert not loaded.ledger_path.exists()

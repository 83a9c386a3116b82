"""Nothing lost (issue 12): rows the plan cannot place are kept as pending and land when it can; an older
export never overwrites a newer version of a day."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3

from click.testing import CliRunner

from allocator.cli.main import main
from allocator.plan import load_plan
from allocator.storage.ledger import Ledger, ingest_files
from allocator.storage.schema import MIGRATIONS
from allocator.workflows.daily import reallocate_from_ledger

PLAN = """
[campaign]
name = "Q4"
daily_budget = 150

[guardrails]
learning_days = 0

[[creatives]]
id = "c1"

[[creatives]]
id = "c2"
"""
NEW = '\n[[creatives]]\nid = "sp-new"\n'
HEADER = "date,creative_id,impressions,clicks,conversions,spend\n"
DAY1 = HEADER + (
    "2026-11-10,c1,1000,10,1,8\n"
    "2026-11-10,c2,2000,20,2,16\n"
    "2026-11-10,sp-new,500,5,1,4\n"
    "2026-11-11,sp-new,600,6,0,5\n"
    "2026-11-12,sp-new,700,7,2,6\n"
)


def rows(loaded, creative: str) -> list[tuple]:
    with Ledger.open(loaded.ledger_path) as ledger:
        return ledger.conn.execute(
            """SELECT r.date, r.impressions, r.conversions FROM results r JOIN creatives c ON c.id = r.creative_ref
               WHERE c.creative_id = ? AND r.superseded_by IS NULL ORDER BY r.date""",
            (creative,),
        ).fetchall()


def test_data_loss_sequence_unknown_creative_added_then_ingested_again(tmp_path):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN, encoding="utf-8")
    export = tmp_path / "day1.csv"
    export.write_text(DAY1, encoding="utf-8")
    runner = CliRunner()

    res = runner.invoke(main, ["ingest", "--plan", str(plan_path), str(export)])
    assert res.exit_code == 0, res.output
    assert "3 rows for 'sp-new', which is not in the plan; kept as pending" in res.output
    loaded = load_plan(plan_path)
    with Ledger.open(loaded.ledger_path) as ledger:
        assert ledger.pending(loaded.plan) == {"sp-new": 3}

    plan_path.write_text(PLAN + NEW, encoding="utf-8")  # the user adds the creative, as the warning says
    res = runner.invoke(main, ["ingest", "--plan", str(plan_path), str(export)])
    assert res.exit_code == 0, res.output
    assert "3 pending rows for 'sp-new' now stored" in res.output
    assert "already imported at" in res.output and "still pending" not in res.output
    loaded = load_plan(plan_path)
    assert rows(loaded, "sp-new") == [
        ("2026-11-10", 500.0, 1.0),
        ("2026-11-11", 600.0, 0.0),
        ("2026-11-12", 700.0, 2.0),
    ]
    assert rows(loaded, "c1") == [("2026-11-10", 1000.0, 1.0)]
    with Ledger.open(loaded.ledger_path) as ledger:
        assert ledger.pending(loaded.plan) == {}
        daily = ledger.daily(loaded.plan)
    assert daily.creative_ids == ("c1", "c2", "sp-new")
    assert daily.impressions.sum(axis=0).tolist() == [1000.0, 2000.0, 1800.0]

    res = runner.invoke(main, ["ingest", "--plan", str(plan_path), str(export)])  # third time: nothing to do
    assert "now stored" not in res.output and "nothing changed" in res.output


def test_still_unknown_file_is_not_fully_imported_and_reallocate_lands_rows(tmp_path):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN, encoding="utf-8")
    export = tmp_path / "day1.csv"
    export.write_text(DAY1, encoding="utf-8")
    loaded = load_plan(plan_path)
    ingest_files(loaded, [export])
    again = ingest_files(loaded, [export])
    assert again.files[0].status == "already imported"
    assert again.files[0].pending == {"sp-new": 3}
    assert again.warnings() == [
        (
            f"{export}: 3 rows for 'sp-new', which is not in the plan; kept as pending (add it to [[creatives]] or "
            "check the id, and they are stored at the next ingest or reallocate)"
        )
    ]
    plan_path.write_text(PLAN + NEW, encoding="utf-8")
    loaded = load_plan(plan_path)
    alloc = reallocate_from_ledger(loaded, dt.date(2026, 11, 13))
    assert "3 pending rows for 'sp-new' now stored" in alloc.warnings
    assert [c.id for c in alloc.creatives] == ["c1", "c2", "sp-new"]
    assert rows(loaded, "sp-new")[-1] == ("2026-11-12", 700.0, 2.0)


def test_pending_rows_land_by_ad_name_when_the_plan_gains_the_name(tmp_path):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN, encoding="utf-8")
    export = tmp_path / "tt.csv"
    export.write_text(
        "By Day,Ad ID,Ad name,Cost,Impressions,Clicks (destination),Conversions\n"
        "2026-11-10,111,Hook A,$8.00,1000,10,1\n2026-11-10,222,Café,$4.00,500,5,0\n",
        encoding="utf-8",
    )
    loaded = load_plan(plan_path)
    plan_path.write_text(PLAN.replace('id = "c1"', 'id = "c1"\nname = "Hook A"'), encoding="utf-8")
    loaded = load_plan(plan_path)
    s = ingest_files(loaded, [export])
    assert (s.added, s.files[0].pending) == (1, {"222": 1})
    # the plan learns the creative by its (decomposed-accent) name: the pending row lands by its Ad name
    plan_path.write_text(plan_path.read_text() + '\n[[creatives]]\nid = "c9"\nname = "Cafe\u0301"\n', encoding="utf-8")
    loaded = load_plan(plan_path)
    s = ingest_files(loaded, [export])
    assert s.landed == {"222": (1, "c9")}
    assert s.notes()[0] == "1 pending row for '222' (creative 'c9') now stored"
    assert rows(loaded, "c9") == [("2026-11-10", 500.0, 0.0)]


def test_rollback_sequence_older_export_after_newer_keeps_newer_values(tmp_path):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN, encoding="utf-8")
    old, new = tmp_path / "2026-11-12.csv", tmp_path / "2026-11-14.csv"
    old.write_text(HEADER + "2026-11-10,c1,1000,10,1,8\n2026-11-11,c1,1000,10,0,8\n", encoding="utf-8")
    # the later export restates 11-10 (late conversions) and adds 11-12
    new.write_text(
        HEADER + "2026-11-10,c1,1000,10,4,8\n2026-11-11,c1,1000,10,2,8\n2026-11-12,c1,900,9,1,7\n", encoding="utf-8"
    )
    os.utime(old, (1_700_000_000, 1_700_000_000))
    os.utime(new, (1_700_200_000, 1_700_200_000))
    loaded = load_plan(plan_path)
    first = ingest_files(loaded, [new])
    assert first.added == 3
    res = CliRunner().invoke(main, ["ingest", "--plan", str(plan_path), str(old)])
    assert res.exit_code == 0, res.output
    assert (
        f"warning: {old}: 2 creative-days already hold values from {new}, exported later; kept as earlier versions, "
        "the newer values stay current"
    ) in res.output
    assert f"{old}: native, 2 rows (2026-11-10 to 2026-11-11): 0 added, 0 restated, 0 unchanged, 2 older" in res.output
    assert rows(loaded, "c1") == [("2026-11-10", 1000.0, 4.0), ("2026-11-11", 1000.0, 2.0), ("2026-11-12", 900.0, 1.0)]
    with Ledger.open(loaded.ledger_path) as ledger:  # both versions are kept, the older one superseded
        kept = ledger.conn.execute(
            """SELECT r.date, r.conversions, r.version, r.superseded_by IS NULL, i.path FROM results r
               JOIN imports i ON i.id = r.import_id WHERE r.date = '2026-11-10' ORDER BY r.version"""
        ).fetchall()
    assert kept == [("2026-11-10", 4.0, 1, 1, str(new)), ("2026-11-10", 1.0, 2, 0, str(old))]
    # a still newer export restates as usual
    newest = tmp_path / "2026-11-15.csv"
    newest.write_text(HEADER + "2026-11-10,c1,1000,10,5,8\n", encoding="utf-8")
    os.utime(newest, (1_700_300_000, 1_700_300_000))
    s = ingest_files(loaded, [newest])
    assert (s.restated, s.older) == (1, 0)
    assert rows(loaded, "c1")[0] == ("2026-11-10", 1000.0, 5.0)


def test_exported_at_of_a_parsed_file_wins_over_the_file_time(tmp_path):
    from allocator.inputs.importer import parse_file
    from allocator.inputs.matching import match_rows

    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN, encoding="utf-8")
    loaded = load_plan(plan_path)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(HEADER + "2026-11-10,c1,1000,10,1,8\n", encoding="utf-8")
    b.write_text(HEADER + "2026-11-10,c1,1000,10,3,8\n", encoding="utf-8")
    pa, pb = parse_file(a), parse_file(b)
    pa = type(pa)(pa.path, pa.format, pa.rows, pa.sha256, dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
    pb = type(pb)(pb.path, pb.format, pb.rows, pb.sha256, dt.datetime(2026, 11, 19, tzinfo=dt.UTC))
    with Ledger.open(loaded.ledger_path) as ledger:
        s = ledger.ingest(
            loaded.plan, [(pa, match_rows(pa.rows, loaded.plan, "a")), (pb, match_rows(pb.rows, loaded.plan, "b"))]
        )
    assert [(f.added, f.older) for f in s.files] == [(1, 0), (0, 1)]
    assert rows(loaded, "c1") == [("2026-11-10", 1000.0, 1.0)]


def test_version_1_ledger_with_dropped_rows_is_migrated_and_the_file_read_again(tmp_path):
    plan_path = tmp_path / "plan.toml"
    plan_path.write_text(PLAN + NEW, encoding="utf-8")
    loaded = load_plan(plan_path)
    export = tmp_path / "day1.csv"
    export.write_text(DAY1, encoding="utf-8")
    # a ledger written by schema version 1, which dropped the 3 'sp-new' rows but recorded the file
    conn = sqlite3.connect(loaded.ledger_path)
    for statement in MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("PRAGMA application_id = 1396853831")
    conn.execute("PRAGMA user_version = 1")
    import hashlib

    sha = hashlib.sha256(export.read_bytes()).hexdigest()
    conn.execute("INSERT INTO campaigns VALUES (1, 'Q4', 'USD', '2026-11-13T06:00:00Z')")
    conn.execute("INSERT INTO creatives VALUES (1, 1, 'c1', NULL, NULL, NULL, '2026-11-13T06:00:00Z')")
    conn.execute(
        "INSERT INTO imports VALUES (1, 1, ?, ?, 'native', '2026-11-13T06:00:00Z', '2026-11-10', '2026-11-12', "
        "5, 1, 0, 0, 3)",
        (str(export), sha),
    )
    conn.execute("INSERT INTO results VALUES (1, 1, '2026-11-10', 1000, 10, 1, 8, 1, 1, NULL)")
    conn.commit()
    conn.close()
    s = ingest_files(loaded, [export])
    assert s.files[0].status == "imported"
    assert (s.added, s.unchanged) == (4, 1)
    assert len(rows(loaded, "sp-new")) == 3
    with Ledger.open(loaded.ledger_path) as ledger:
        assert ledger.conn.execute("SELECT exported_at FROM imports WHERE id = 1").fetchone() == (
            "2026-11-13T06:00:00.000000Z",
        )

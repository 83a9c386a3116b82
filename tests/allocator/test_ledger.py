"""The ledger: schema, idempotent ingest, restatements with kept versions, history from decisions."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from allocator.cli.main import main
from allocator.decisions.allocation import History
from allocator.inputs.importer import read_results
from allocator.plan import load_plan
from allocator.storage.ledger import Ledger, ingest_files
from allocator.storage.schema import APPLICATION_ID, SCHEMA_VERSION
from allocator.workflows.daily import reallocate_from_ledger

PLAN = """
[campaign]
name = "Q4"
daily_budget = 150

[guardrails]
learning_days = 0

[[creatives]]
id = "c1"
name = "Hook A"

[[creatives]]
id = "c2"
name = "Unboxing"
budget = 40
last_change = 2026-11-01

[[creatives]]
id = "c3"
"""

HEADER = "date,creative_id,impressions,clicks,conversions,spend\n"
V1 = HEADER + (
    "2026-11-10,c1,1000,10,1,8\n2026-11-10,c2,2000,20,2,16\n2026-11-11,c1,1000,10,1,8\n2026-11-11,ghost,500,5,0,4\n"
)
# the next day's export: 11-10 unchanged for c2, restated for c1 (a late conversion), 11-11 restated, 11-12 new
V2 = HEADER + (
    "2026-11-10,c1,1000,10,2,8\n"
    "2026-11-10,c2,2000,20,2,16\n"
    "2026-11-11,c1,1000,10,3,8\n"
    "2026-11-12,c1,1000,10,1,8\n"
    "2026-11-12,c3,900,9,0,7.5\n"
)


@pytest.fixture
def setup(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    v1, v2 = tmp_path / "v1.csv", tmp_path / "v2.csv"
    v1.write_text(V1, encoding="utf-8")
    v2.write_text(V2, encoding="utf-8")
    return load_plan(plan), v1, v2


def count(loaded, sql: str = "SELECT count(*) FROM results") -> int:
    with Ledger.open(loaded.ledger_path) as ledger:
        return ledger.conn.execute(sql).fetchone()[0]


def test_schema_version_identity_and_journal_mode(setup):
    loaded, v1, _ = setup
    ingest_files(loaded, [v1])
    assert loaded.ledger_path.name == "plan.ledger.sqlite3"
    conn = sqlite3.connect(loaded.ledger_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {
        "campaigns",
        "creatives",
        "imports",
        "results",
        "decisions",
        "decision_creatives",
        "pending",
        "tiktok_pushes",
        "tiktok_authorizations",
    }
    conn.close()


def test_ingest_counts_unknown_and_idempotence(setup):
    loaded, v1, _ = setup
    s = ingest_files(loaded, [v1])
    f = s.files[0]
    assert (f.status, f.format, f.rows, f.added, f.restated, f.unchanged) == ("imported", "native", 4, 3, 0, 0)
    assert f.unknown == {"ghost": 1}
    assert s.warnings() == [
        f"{v1}: 1 row for 'ghost', which is not in the plan; kept as pending (add it to [[creatives]] or check "
        "the id, and they are stored at the next ingest or reallocate)"
    ]
    before = count(loaded), count(loaded, "SELECT count(*) FROM imports")
    again = ingest_files(loaded, [v1])
    assert again.files[0].status == "already imported"
    assert again.files[0].imported_at == f.imported_at
    assert (again.added, again.restated, again.unchanged) == (0, 0, 0)
    assert (count(loaded), count(loaded, "SELECT count(*) FROM imports")) == before


def test_restatement_replaces_current_and_keeps_earlier_versions(setup):
    loaded, v1, v2 = setup
    ingest_files(loaded, [v1])
    s = ingest_files(loaded, [v2])
    assert (s.added, s.restated, s.unchanged) == (2, 2, 1)
    with Ledger.open(loaded.ledger_path) as ledger:
        rows = ledger.conn.execute(
            """SELECT r.conversions, r.version, r.superseded_by IS NULL, i.path FROM results r
               JOIN creatives c ON c.id = r.creative_ref JOIN imports i ON i.id = r.import_id
               WHERE c.creative_id = 'c1' AND r.date = '2026-11-10' ORDER BY r.version"""
        ).fetchall()
        assert rows == [(1.0, 1, 0, str(v1)), (2.0, 2, 1, str(v2))]
        daily = ledger.daily(loaded.plan)
    assert [str(d) for d in daily.dates] == ["2026-11-10", "2026-11-11", "2026-11-12"]
    assert daily.conversions[:, 0].tolist() == [2.0, 3.0, 1.0]
    assert daily.observed.tolist() == [[True, True, False], [True, False, False], [True, False, True]]


def test_later_file_of_one_invocation_wins(setup):
    loaded, v1, v2 = setup
    s = ingest_files(loaded, [v1, v2])
    assert [f.added for f in s.files] == [3, 2] and s.files[1].restated == 2
    with Ledger.open(loaded.ledger_path) as ledger:
        assert ledger.daily(loaded.plan).conversions[1, 0] == 3.0


def test_daily_matches_the_importer(setup):
    loaded, _, v2 = setup
    ingest_files(loaded, [v2])
    expected = read_results(v2, loaded.plan).daily
    with Ledger.open(loaded.ledger_path) as ledger:
        got = ledger.daily(loaded.plan)
    assert (got.dates == expected.dates).all()
    for name in ("impressions", "clicks", "conversions", "spend", "observed"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_tiktok_export_and_creatives_removed_from_the_plan(setup, tmp_path):
    loaded, v1, _ = setup
    tt = tmp_path / "tt.csv"
    tt.write_text(
        "By Day,Ad name,Cost,Impressions,Clicks (destination),Conversions\n"
        '2026-11-12,Hook A,"$1,008.00","120,000",900,30\nTotal of 1 result,,,,,\n',
        encoding="utf-8",
    )
    ingest_files(loaded, [v1, tt])
    smaller = tmp_path / "smaller.toml"
    smaller.write_text(PLAN.split('[[creatives]]\nid = "c2"')[0] + '[[creatives]]\nid = "c3"\n', encoding="utf-8")
    small = load_plan(smaller)
    small_ledger = small.ledger_path
    small_ledger.write_bytes(loaded.ledger_path.read_bytes())
    with Ledger.open(small_ledger) as ledger:
        daily = ledger.daily(small.plan)
    assert daily.creative_ids == ("c1", "c3")
    assert daily.spend[:, 0].tolist() == [8.0, 8.0, 1008.0]


def test_history_from_decisions(setup):
    loaded, v1, v2 = setup
    ingest_files(loaded, [v1, v2])
    with Ledger.open(loaded.ledger_path) as ledger:
        h = ledger.history(loaded.plan, dt.date(2026, 11, 13))
    base = History.from_plan(loaded.plan)
    assert h.previous.tolist() == base.previous.tolist() == [0.0, 40.0, 0.0]
    assert h.last_change == (None, dt.date(2026, 11, 1), None)

    a = reallocate_from_ledger(loaded)  # 2026-11-13
    budgets = [c.budget for c in a.creatives]
    with Ledger.open(loaded.ledger_path) as ledger:
        h = ledger.history(loaded.plan, dt.date(2026, 11, 14))
        assert ledger.history(loaded.plan, dt.date(2026, 11, 13)).previous.tolist() == [0.0, 40.0, 0.0]
    assert h.previous.tolist() == budgets
    changed = [
        dt.date(2026, 11, 13) if abs(b - p) > 0.005 else last
        for b, p, last in zip(budgets, [0.0, 40.0, 0.0], base.last_change)
    ]
    assert h.last_change == tuple(changed)


def test_history_change_dates_follow_differences(setup):
    """A budget equal to the one before it is not a change; the last differing one dates the change."""
    loaded, v1, _ = setup
    ingest_files(loaded, [v1])
    a = reallocate_from_ledger(loaded, dt.date(2026, 11, 12))
    with Ledger.open(loaded.ledger_path) as ledger, ledger.write():
        cid = ledger.campaign_id(loaded.plan)
        # a hand-made decision 2 days later with the same budgets: no change
        ledger.record_decision(loaded, a.__class__(**{**a.__dict__, "date": dt.date(2026, 11, 14)}))
        h = ledger.history(loaded.plan, dt.date(2026, 11, 20))
        assert cid is not None
    assert h.last_change[0] == dt.date(2026, 11, 12)
    assert h.previous.tolist() == [c.budget for c in a.creatives]


def test_decision_rows_are_queryable(setup):
    loaded, v1, _ = setup
    ingest_files(loaded, [v1])
    a = reallocate_from_ledger(loaded)
    with Ledger.open(loaded.ledger_path) as ledger:
        rows = ledger.conn.execute(
            """SELECT c.creative_id, dc.budget, dc.prob_best, dc.reason_code FROM decision_creatives dc
               JOIN creatives c ON c.id = dc.creative_ref ORDER BY c.creative_id"""
        ).fetchall()
        stored = json.loads(ledger.conn.execute("SELECT allocation FROM decisions").fetchone()[0])
        plan_sha = ledger.conn.execute("SELECT plan_sha256 FROM decisions").fetchone()[0]
    assert stored == a.to_json()
    assert plan_sha == loaded.sha256
    assert rows == [(c.id, c.budget, pytest.approx(c.prob_best, abs=1e-6), c.reason_code) for c in a.creatives]


def test_cli_ingest_summary_and_warnings(setup):
    loaded, v1, v2 = setup
    res = CliRunner().invoke(main, ["ingest", "--plan", str(loaded.path), str(v1), str(v2)])
    assert res.exit_code == 0, res.output
    assert (
        f"{v1}: native, 4 rows (2026-11-10 to 2026-11-11): 3 added, 0 restated, 0 unchanged, 1 not in the plan"
        in res.output
    )
    assert f"{v2}: native, 5 rows (2026-11-12 to 2026-11-12)" not in res.output
    assert "2 added, 2 restated, 1 unchanged" in res.output
    assert "warning: " in res.output and "'ghost'" in res.output
    res = CliRunner().invoke(main, ["ingest", "--plan", str(loaded.path), str(v1)])
    assert "already imported at" in res.output and "0 added, 0 restated, 0 unchanged" in res.output


def test_cli_history_and_status_tables(setup):
    loaded, v1, _ = setup
    ingest_files(loaded, [v1])
    runner = CliRunner()
    assert runner.invoke(main, ["reallocate", "--plan", str(loaded.path)]).exit_code == 0
    res = runner.invoke(main, ["history", "--plan", str(loaded.path)])
    assert res.exit_code == 0 and "2026-11-12" in res.output and "Hook A" in res.output
    res = runner.invoke(main, ["status", "--plan", str(loaded.path), "--date", "2026-11-12"])
    assert res.exit_code == 0, res.output
    assert "decision: budgets for 2026-11-12" in res.output
    assert "warning" not in res.output

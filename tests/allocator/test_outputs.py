"""Files written for the user: atomic, with the umask's mode, one clear line on failure, nothing half-written;
`reallocate --out` records the decision only once the file is written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator.cli.main import main
from allocator.presentation.outputs import write_atomic, write_folder_atomic
from models.errors import OutputError

ROOT = Path(__file__).resolve().parents[2]

PLAN = """
[campaign]
name = "Out"
daily_budget = 100

[guardrails]
learning_days = 0

[[creatives]]
id = "a"
budget = 50
last_change = 2026-10-01

[[creatives]]
id = "b"
budget = 50
last_change = 2026-10-01
"""
CSV = """date,creative_id,impressions,clicks,conversions,spend
2026-11-01,a,6000,60,12,50
2026-11-01,b,6000,60,3,50
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_write_atomic_follows_the_umask(tmp_path, umask_022):
    write_atomic(tmp_path / "a.csv", "x\n")
    assert mode(tmp_path / "a.csv") == 0o644
    os.umask(0o077)
    write_atomic(tmp_path / "b.csv", b"y\n")
    assert mode(tmp_path / "b.csv") == 0o600
    assert (tmp_path / "b.csv").read_bytes() == b"y\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]  # no temporary left


def test_write_atomic_to_a_read_only_folder_is_one_line(readonly_dir):
    target = readonly_dir / "budgets.csv"
    with pytest.raises(OutputError) as info:
        write_atomic(target, "x\n")
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert str(info.value) == f"cannot write {target} ({reason}); choose a folder you can write to; nothing was written"
    assert list(readonly_dir.iterdir()) == []


def test_write_atomic_on_a_full_disk_keeps_the_old_file(full_dir):
    target = full_dir / "budgets.csv"
    os.rename(full_dir / "filler", target)  # the old file: the whole disk
    before = target.stat().st_size
    with pytest.raises(OutputError) as info:
        write_atomic(target, "z" * 100_000)
    assert str(info.value) == (
        f"cannot write {target} (No space left on device); free some disk space or write elsewhere; nothing was written"
    )
    assert target.stat().st_size == before and sorted(p.name for p in full_dir.iterdir()) == ["budgets.csv"]


def test_folder_is_replaced_whole_or_not_at_all(tmp_path, umask_022):
    out = tmp_path / "rep"

    def fill(folder: Path, text: str) -> str:
        (folder / "index.html").write_text(text)
        (folder / "a.png").write_bytes(b"png")
        return "done"

    assert write_folder_atomic(out, lambda f: fill(f, "one"), ["index.html", "a.png"]) == "done"
    assert mode(out) == 0o755 and mode(out / "index.html") == 0o644

    def broken(folder: Path) -> None:
        (folder / "index.html").write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError) as info:
        write_folder_atomic(out, broken, ["index.html", "a.png"])
    assert str(info.value) == (
        f"cannot write {out} (No space left on device); free some disk space or write elsewhere; nothing was written"
    )
    assert (out / "index.html").read_text() == "one"  # the old report, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temporary folder left
    write_folder_atomic(out, lambda f: fill(f, "two"), ["index.html", "a.png"])
    assert (out / "index.html").read_text() == "two"


def test_folder_with_the_users_files_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError) as info:
        write_folder_atomic(out, lambda f: None, ["index.html"])
    assert str(info.value) == f"{out} holds files sparkbandit did not write (notes.txt); give a new or empty folder"
    assert (out / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------------- reallocate --out and the ledger
@pytest.fixture
def ledger_plan(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    (tmp_path / "r.csv").write_text(CSV)
    res = CliRunner().invoke(main, ["ingest", "--plan", str(plan), str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    return plan


def decisions(plan: Path) -> list:
    import json

    res = CliRunner().invoke(main, ["history", "--plan", str(plan), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)["decisions"]


def test_reallocate_out_failure_records_no_decision(ledger_plan, readonly_dir):
    target = readonly_dir / "budgets.csv"
    res = CliRunner().invoke(main, ["reallocate", "--plan", str(ledger_plan), "--out", str(target)])
    assert res.exit_code == 2
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert res.output == (
        f"error: cannot write {target} ({reason}); choose a folder you can write to; nothing was written\n"
    )
    assert decisions(ledger_plan) == []
    ok = ledger_plan.parent / "budgets.csv"
    res = CliRunner().invoke(main, ["reallocate", "--plan", str(ledger_plan), "--out", str(ok)])
    assert res.exit_code == 0, res.output
    assert len(decisions(ledger_plan)) == 1 and ok.read_text().startswith("date,creative_id,")


def test_reallocate_out_on_a_full_disk(ledger_plan, full_dir):
    target = full_dir / "budgets.csv"
    res = CliRunner().invoke(main, ["reallocate", "--plan", str(ledger_plan), "--out", str(target)])
    assert res.exit_code == 2 and res.output == (
        f"error: cannot write {target} (No space left on device); free some disk space or write elsewhere; "
        "nothing was written\n"
    )
    assert not target.exists() and decisions(ledger_plan) == []


def test_report_on_a_read_only_folder(ledger_plan, readonly_dir):
    CliRunner().invoke(main, ["reallocate", "--plan", str(ledger_plan)])
    out = readonly_dir / "report"
    res = CliRunner().invoke(main, ["report", "--plan", str(ledger_plan), "--out", str(out), "--date", "2026-11-02"])
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert res.exit_code == 2
    assert (
        res.output == f"error: cannot write {out} ({reason}); choose a folder you can write to; nothing was written\n"
    )
    assert not out.exists()


def test_report_files_are_readable_by_others(ledger_plan, tmp_path, umask_022):
    CliRunner().invoke(main, ["reallocate", "--plan", str(ledger_plan)])
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["report", "--plan", str(ledger_plan), "--out", str(out), "--date", "2026-11-02"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["budgets.png", "cpa_posterior.png", "index.html", "prob_best.png"]
    assert {mode(p) for p in out.iterdir()} == {0o644}


def test_library_never_imports_the_cli():
    """allocator.workflows.daily (and the other library modules) do not import allocator.cli.main: no cycle."""
    import subprocess
    import sys

    code = "import sys, allocator.workflows.daily, allocator.presentation.outputs, simulations.runner; print('allocator.cli.main' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"

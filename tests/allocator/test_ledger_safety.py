"""The ledger under kills and concurrent runs: before or after, never between; a clear message for the loser."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from allocator.plan import load_plan
from allocator.storage.ledger import Ledger, ingest_files
from allocator.storage.schema import PAUSE_BEFORE_COMMIT
from allocator.workflows.daily import campaign_status, reallocate_from_ledger
from models.errors import LedgerError

ROOT = Path(__file__).resolve().parents[2]
N_CREATIVES, N_DAYS = 300, 60  # 18,000 rows: the write phase takes a few hundred milliseconds
START = dt.date(2026, 8, 1)


def make_plan(folder: Path, n: int = N_CREATIVES) -> Path:
    lines = [
        "[campaign]",
        'name = "Big"',
        f"daily_budget = {40 * n}",
        "",
        "[guardrails]",
        "exploration_floor = 0.0",
        "learning_days = 0",
        "",
    ]
    for i in range(n):
        lines += ["[[creatives]]", f'id = "c{i:04d}"', ""]
    path = folder / "big.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def make_csv(path: Path, n: int, days: int, start: dt.date, seed: int, extra: float = 0.0) -> Path:
    rng = np.random.default_rng(seed)
    out = ["date,creative_id,impressions,clicks,conversions,spend"]
    for d in range(days):
        date = (start + dt.timedelta(days=d)).isoformat()
        imp = rng.integers(1000, 5000, n)
        clk = rng.binomial(imp, 0.01)
        conv = np.minimum(rng.binomial(clk, 0.1) + int(extra), clk)
        out += [f"{date},c{i:04d},{imp[i]},{clk[i]},{conv[i]},{imp[i] * 0.008:.2f}" for i in range(n)]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    plan = make_plan(folder)
    small = make_csv(folder / "small.csv", N_CREATIVES, 2, START - dt.timedelta(days=2), seed=1)
    large = make_csv(folder / "large.csv", N_CREATIVES, N_DAYS, START, seed=2)
    return plan, small, large


def fresh_ledger(big, tmp_path) -> tuple[Path, int]:
    """A copy of the plan in tmp_path with a ledger holding the small file; returns (plan, rows)."""
    plan_src, small, _ = big
    plan = tmp_path / plan_src.name
    plan.write_bytes(plan_src.read_bytes())
    ingest_files(load_plan(plan), [small])
    return plan, rows(plan)


def small_ledger(tmp_path: Path) -> Path:
    """A 5-creative plan with 10 days of results: deciding takes milliseconds."""
    plan = make_plan(tmp_path, 5)
    ingest_files(load_plan(plan), [make_csv(tmp_path / "five.csv", 5, 10, START - dt.timedelta(days=10), seed=4)])
    return plan


def rows(plan: Path, table: str = "results") -> int:
    with Ledger.open(plan.with_suffix(".ledger.sqlite3")) as ledger:  # opening rolls a hot journal back
        assert ledger.integrity_check() == "ok"
        return ledger.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "allocator", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_when(proc: subprocess.Popen, journal: Path, delay: float | None) -> bool:
    """SIGKILL proc after `delay` seconds, or (delay None) as soon as its rollback journal appears.
    Returns whether the process was still running when killed."""
    deadline = time.monotonic() + (30 if delay is None else delay)
    while proc.poll() is None and time.monotonic() < deadline:
        if delay is None and journal.exists():
            break
        time.sleep(0.0005)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return alive


def test_kill_mid_ingest_rolls_back(big, tmp_path):
    plan, before = fresh_ledger(big, tmp_path)
    ledger = plan.with_suffix(".ledger.sqlite3")
    journal = Path(str(ledger) + "-journal")
    proc = spawn("ingest", "--plan", str(plan), str(big[2]))
    assert kill_when(proc, journal, None), "the ingest finished before its transaction could be observed"
    assert journal.exists(), "killed inside the transaction: a hot journal is left behind"
    conn = sqlite3.connect(ledger)  # plain SQLite sees the state before the ingest too
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == before
    conn.close()
    assert rows(plan) == before
    assert rows(plan, "imports") == 1
    # and the same file imports completely afterwards
    summary = ingest_files(load_plan(plan), [big[2]])
    assert summary.added == N_CREATIVES * N_DAYS
    assert rows(plan) == before + N_CREATIVES * N_DAYS


@pytest.mark.parametrize("delay", [0.9, 1.4, 2.0])
def test_kill_at_any_moment_of_ingest(big, tmp_path, delay):
    plan, before = fresh_ledger(big, tmp_path)
    after = before + N_CREATIVES * N_DAYS
    kill_when(
        spawn("ingest", "--plan", str(plan), str(big[2])),
        Path(str(plan.with_suffix(".ledger.sqlite3")) + "-journal"),
        delay,
    )
    assert rows(plan) in (before, after)


@pytest.mark.slow
def test_kill_at_many_moments_of_ingest(big, tmp_path):
    # Each kill, wherever it lands, leaves the ledger before or after the ingest; which one is not asserted
    # (a random delay cannot promise either), so no set of outcomes is collected.
    rng = np.random.default_rng(0)
    for k in range(12):
        folder = tmp_path / str(k)
        folder.mkdir()
        plan, before = fresh_ledger(big, folder)
        after = before + N_CREATIVES * N_DAYS
        kill_when(spawn("ingest", "--plan", str(plan), str(big[2])), folder / "none", float(rng.uniform(0.5, 3.0)))
        got = rows(plan)
        assert got in (before, after)


def kill_before_commit(args: list[str], marker: Path, journal: Path) -> None:
    """Run sparkbandit with the ledger's PAUSE_BEFORE_COMMIT hook and SIGKILL it at that known point: its
    writes done, the COMMIT not. Asserts the kill landed there (the hook's marker names the process, and
    its rollback journal holds the uncommitted writes)."""
    marker.unlink(missing_ok=True)
    env = {**os.environ, PAUSE_BEFORE_COMMIT: str(marker)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "allocator", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + 60  # a bound on the wait only, not a timing assertion
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None and marker.exists(), proc.communicate()
    while not marker.read_text(encoding="utf-8"):  # written, maybe not yet flushed
        time.sleep(0.01)
    assert marker.read_text(encoding="utf-8") == str(proc.pid)
    assert journal.exists(), "paused before COMMIT: the rollback journal holds the writes"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def test_kill_during_reallocate(tmp_path):
    plan = small_ledger(tmp_path)
    ledger = plan.with_suffix(".ledger.sqlite3")
    journal = Path(str(ledger) + "-journal")
    marker = tmp_path / "paused"
    args = ["reallocate", "--plan", str(plan), "--date", "2026-08-01", "--json"]

    def in_force() -> list[str]:
        with Ledger.open(ledger) as led:
            got = led.conn.execute(
                "SELECT run_id FROM decisions WHERE superseded_by IS NULL AND date = '2026-08-01'"
            ).fetchall()
        return [r[0] for r in got]

    n = rows(plan, "decisions")
    kill_before_commit(args, marker, journal)  # the first decision for the date, killed before COMMIT
    assert rows(plan, "decisions") == n and in_force() == []
    done = subprocess.run([sys.executable, "-m", "allocator", *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    first = in_force()
    assert rows(plan, "decisions") == n + 1 and len(first) == 1
    kill_before_commit(args, marker, journal)  # re-deciding the date (supersedes the first), killed
    assert rows(plan, "decisions") == n + 1 and in_force() == first  # the first is still the one in force


def test_kill_after_every_row_of_an_ingest_is_written(big, tmp_path):
    # The known point the random-delay kills cannot promise: all 18,000 rows written, the COMMIT not.
    plan, before = fresh_ledger(big, tmp_path)
    journal = Path(str(plan.with_suffix(".ledger.sqlite3")) + "-journal")
    kill_before_commit(["ingest", "--plan", str(plan), str(big[2])], tmp_path / "paused", journal)
    assert rows(plan) == before and rows(plan, "imports") == 1


def test_second_run_gets_a_clear_message(big, tmp_path):
    plan, before = fresh_ledger(big, tmp_path)
    loaded = load_plan(plan)
    expected = f"ledger {loaded.ledger_path} is in use by another sparkbandit run; try again when it finishes"
    with Ledger.open(loaded.ledger_path) as holder, holder.write():
        holder.conn.execute("UPDATE campaigns SET currency = 'USD'")  # a write in progress
        # The holder keeps its lock until this block ends, so the ingest can only return by giving up with
        # the message (no wall-clock bound: how long it waited is SQLite's busy_timeout, not ours to time).
        with pytest.raises(LedgerError) as info:
            ingest_files(loaded, [big[1]], busy_timeout=0.2)
        assert str(info.value) == expected
        with pytest.raises(LedgerError) as info:
            reallocate_from_ledger(loaded, busy_timeout=0.2)
        assert str(info.value) == expected
        # readers are not blocked by a writer that has not committed yet
        assert campaign_status(loaded, dt.date(2026, 8, 1)).data_last == dt.date(2026, 7, 31)
    assert rows(plan) == before


def test_dry_run_reads_while_another_run_writes(tmp_path):
    loaded = load_plan(small_ledger(tmp_path))
    with Ledger.open(loaded.ledger_path) as holder, holder.write():
        holder.conn.execute("UPDATE campaigns SET currency = 'USD'")
        alloc = reallocate_from_ledger(loaded, dry_run=True, busy_timeout=0.2)
    assert alloc.date == START


def test_two_processes_at_once(big, tmp_path):
    plan, before = fresh_ledger(big, tmp_path)
    other = make_csv(tmp_path / "other.csv", N_CREATIVES, N_DAYS, START + dt.timedelta(days=N_DAYS), seed=3)
    procs = [spawn("ingest", "--plan", str(plan), str(big[2])), spawn("ingest", "--plan", str(plan), str(other))]
    results = [p.communicate() + (p.returncode,) for p in procs]
    committed = 0
    for _out, err, code in results:
        assert code in (0, 2), err
        if code == 0:
            committed += 1
        else:
            assert err.strip().endswith("is in use by another sparkbandit run; try again when it finishes"), err
    assert committed >= 1
    assert rows(plan) == before + committed * N_CREATIVES * N_DAYS

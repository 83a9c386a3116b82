"""Ledger figures: ingest of 1,000 creatives x 90 days (90,000 rows) and reallocate from that ledger.

Generates the plan and the CSV in a temporary folder and prints the times (targets: ingest <= 5 s,
reallocate <= 2 s). Reallocate is timed end to end and split into its ledger part (read the results and the
budget history, record the decision) and the engine (model, prob-best, policy, guardrails).

    python benchmarks/bench_ledger.py [--creatives 1000] [--days 90]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from allocator.inputs.importer import parse_file
from allocator.inputs.matching import match_rows
from allocator.plan import load_plan
from allocator.storage.ledger import Ledger, ingest_files
from allocator.workflows.daily import reallocate_from_ledger

START = dt.date(2026, 8, 1)


def write_plan(folder: Path, n: int) -> Path:
    lines = [
        "[campaign]",
        'name = "Bench"',
        f"daily_budget = {40 * n}",
        "",
        "[guardrails]",
        "exploration_floor = 0.0",
        "learning_days = 0",
        "",
    ]
    for i in range(n):
        lines += ["[[creatives]]", f'id = "c{i:04d}"', ""]
    path = folder / f"bench{n}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_csv(path: Path, n: int, days: int, start: dt.date, seed: int, lift: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    out = ["date,creative_id,impressions,clicks,conversions,spend"]
    for d in range(days):
        date = (start + dt.timedelta(days=d)).isoformat()
        imp = rng.integers(2000, 8000, n)
        clk = rng.binomial(imp, 0.011)
        conv = np.minimum(rng.binomial(imp, 0.0015) + lift, clk)
        out += [f"{date},c{i:04d},{imp[i]},{clk[i]},{conv[i]},{imp[i] * 0.008:.2f}" for i in range(n)]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench(folder: Path, n: int, days: int) -> None:
    plan = write_plan(folder, n)
    data = write_csv(folder / f"results{n}.csv", n, days, START, seed=1)
    loaded = load_plan(plan)
    print(f"--- {n} creatives x {days} days = {n * days:,} rows ({data.stat().st_size / 1e6:.1f} MB CSV)")

    parsed, t_parse = timed(parse_file, data)
    _, t_match = timed(match_rows, parsed.rows, loaded.plan, str(data))
    summary, t_ingest = timed(ingest_files, loaded, [data])
    assert summary.added == n * days
    print(
        f"ingest (new ledger, one transaction):  {t_ingest:6.2f} s   "
        f"[parse {t_parse:.2f} s, match {t_match:.2f} s, ledger write {t_ingest - t_parse - t_match:.2f} s]"
    )
    again, t_again = timed(ingest_files, loaded, [data])
    assert again.files[0].status == "already imported"
    print(f"ingest of the same file again:         {t_again:6.2f} s   (nothing changed)")
    restate = write_csv(folder / f"restate{n}.csv", n, 7, START + dt.timedelta(days=days - 7), seed=1, lift=1)
    s, t_restate = timed(ingest_files, loaded, [restate])
    print(
        f"ingest of a 7-day re-export:           {t_restate:6.2f} s   "
        f"({s.restated:,} restated, {s.unchanged:,} unchanged)"
    )

    with Ledger.open(loaded.ledger_path) as ledger:
        date = START + dt.timedelta(days=days)
        daily, t_daily = timed(ledger.daily, loaded.plan)
        history, t_hist = timed(ledger.history, loaded.plan, date)
    print(
        f"ledger read (results + history):       {t_daily + t_hist:6.2f} s   "
        f"[results {t_daily:.2f} s, budget history {t_hist:.3f} s]"
    )
    alloc, t_total = timed(reallocate_from_ledger, loaded)
    with Ledger.open(loaded.ledger_path) as ledger, ledger.write():
        _, t_record = timed(ledger.record_decision, loaded, alloc)  # a second record of the same date
    print(
        f"reallocate from the ledger, end to end:{t_total:6.2f} s   "
        f"[ledger read {t_daily + t_hist:.2f} s + record {t_record:.2f} s; engine the rest, "
        f"{t_total - t_daily - t_hist - t_record:.2f} s]"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--creatives", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bench(folder, args.creatives, args.days)
        bench(folder, 5, args.days)  # the realistic campaign: 3-5 creatives


if __name__ == "__main__":
    main()

"""Whole-process wall time of `sparkbandit reallocate` over many plans in one call (issue 14, item 2).

Usage:  python benchmarks/bench_many_plans.py [--plans 100] [--repeats 3]
Writes N copies of configs/example_plan.toml (each with its own campaign name and seed; the example's data
next to them) to a temporary folder and times `python -m allocator reallocate --plan FOLDER` (table and
--format json), next to one plan in one process, for the per-plan cost and what N separate runs would cost.
Target (issue 14): 100 plans in one call <= 3 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_plans(folder: Path, n: int) -> None:
    """N copies of the example plan, campaign names and seeds all different, reading the same data file."""
    shutil.copy(ROOT / "configs" / "example_data.csv", folder / "example_data.csv")
    text = (ROOT / "configs" / "example_plan.toml").read_text(encoding="utf-8")
    for k in range(n):
        copy = text.replace('name = "Winter skincare launch"', f'name = "Campaign {k:03d}"', 1)
        copy = copy.replace("seed = 7", f"seed = {1000 + k}", 1)
        (folder / f"plan-{k:03d}.toml").write_text(copy, encoding="utf-8")


def wall(args: list[str], repeats: int) -> float:
    """Median wall time of a new process running `sparkbandit ARGS` (exit code 0 required)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "allocator", *args], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(
        f"bench_many_plans  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}  {platform.platform()}  "
        f"python {platform.python_version()}  nproc {os.cpu_count()}  load {load}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "plans"
        folder.mkdir()
        write_plans(folder, args.plans)
        one = wall(["reallocate", "--plan", str(folder / "plan-000.toml")], args.repeats)
        ten_dir = Path(tmp) / "ten"
        ten_dir.mkdir()
        write_plans(ten_dir, 10)
        ten = wall(["reallocate", "--plan", str(ten_dir)], args.repeats)
        many = wall(["reallocate", "--plan", str(folder)], args.repeats)
        many_json = wall(["reallocate", "--plan", str(folder), "--format", "json"], args.repeats)
    per_plan = (many - ten) / (args.plans - 10)
    print(f"{'run':<42} {'wall s':>7}")
    print(f"{'1 plan, one process':<42} {one:>7.2f}")
    print(f"{'10 plans (folder), one process':<42} {ten:>7.2f}")
    print(f"{f'{args.plans} plans (folder), one process':<42} {many:>7.2f}   target <= 3 s")
    print(f"{f'{args.plans} plans (folder), --format json':<42} {many_json:>7.2f}")
    print(f"{'marginal cost per plan (10 -> N)':<42} {per_plan * 1000:>6.1f} ms")
    print(f"{f'{args.plans} separate processes (1 plan x N)':<42} {one * args.plans:>7.1f}   (estimate)")


if __name__ == "__main__":
    main()

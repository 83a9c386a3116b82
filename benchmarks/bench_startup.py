"""Whole-process wall time of each command, and where its start-up goes (`python -X importtime`).

Usage:  python benchmarks/bench_startup.py [--repeats 7]
Prints, per command, the median wall time of a new process and the import time of the packages it loads
(self times summed per top-level package, from -X importtime of one more run). Targets (issue 14): `--help`
<= 0.15 s, `reallocate` on the example <= 0.5 s, `simulate` 200 x 30 x 5 <= 1.0 s.
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


def commands(folder: Path) -> list[tuple[str, list[str]]]:
    plan = folder / "example_plan.toml"
    return [
        ("--help", ["--help"]),
        ("validate example", ["validate", str(plan)]),
        ("reallocate example", ["reallocate", "--plan", str(plan), "--dry-run"]),
        ("reallocate example --json", ["reallocate", "--plan", str(plan), "--json"]),
        (
            "simulate bernoulli 200 reps",
            ["simulate", str(ROOT / "configs/studies/bernoulli.toml"), "--replicates", "200", "--json"],
        ),
    ]


def wall(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "allocator", *args], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def imports(args: list[str], top: int = 6) -> list[tuple[str, float]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "allocator", *args], cwd=ROOT, capture_output=True, text=True
    )
    own: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        first, _, name = line.split("|")
        self_us = first.split(":")[1].strip()
        if not self_us.isdigit():
            continue  # the header line
        # Self times add up without counting a module twice: sum them per top-level package.
        package = name.strip().split(".")[0]
        own[package] = own.get(package, 0.0) + int(self_us) / 1e6
    return sorted(own.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(
        f"bench_startup  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}  {platform.platform()}  "
        f"python {platform.python_version()}  nproc {os.cpu_count()}  load {load}"
    )
    folder = Path(tempfile.mkdtemp())
    for name in ("example_plan.toml", "example_data.csv"):
        shutil.copy(ROOT / "configs" / name, folder / name)
    print(f"{'command':<30} {'wall s':>7}  import time by package (s, self times summed)")
    for label, argv in commands(folder):
        t = wall(argv, args.repeats)
        top = ", ".join(f"{name} {sec:.2f}" for name, sec in imports(argv))
        print(f"{label:<30} {t:>7.2f}  {top}")


if __name__ == "__main__":
    main()

"""Whole-process wall time of each command, and where its start-up goes (`python -X importtime`).

Usage:  python benchmarks/bench_startup.py [--repeats 7] [--before 6af869a]
Prints, per command, the median wall time of a new process and the import time of the packages it loads
(self times summed per top-level package, from -X importtime of one more run). With `--before COMMIT` the
same commands also run on that commit's tree (`git archive` into a temporary folder, put first on
PYTHONPATH), interleaved with this tree's runs so that both see the same machine load. Targets (issue 14):
`--help` <= 0.15 s, `reallocate` on the example <= 0.5 s, `simulate` 200 x 30 x 5 <= 1.0 s.
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
        ("reallocate example --format csv", ["reallocate", "--plan", str(plan), "--format", "csv"]),
        (
            "simulate bernoulli 200 reps",
            ["simulate", str(ROOT / "configs/studies/bernoulli.toml"), "--replicates", "200", "--json"],
        ),
    ]


CACHE = Path(tempfile.mkdtemp())


def env_for(root: Path) -> dict[str, str]:
    """The environment that runs the tree at `root` (first on the path, before any installed copy).

    Bytecode is cached as for an installed copy (PYTHONDONTWRITEBYTECODE, if set, would compile every module
    from source on every run, ~0.1 s), in a folder of its own so that the trees stay clean.
    """
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONPYCACHEPREFIX": str(CACHE / root.name)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def once(args: list[str], root: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "allocator", *args], cwd=root, env=env_for(root), capture_output=True, check=True
    )
    return time.perf_counter() - t0


def walls(args: list[str], roots: list[Path], repeats: int) -> list[float]:
    """Median wall time per tree, the trees' runs interleaved (same load for each)."""
    times: list[list[float]] = [[] for _ in roots]
    for _ in range(repeats):
        for i, root in enumerate(roots):
            times[i].append(once(args, root))
    return [statistics.median(t) for t in times]


def imports(args: list[str], root: Path = ROOT, top: int = 6) -> list[tuple[str, float]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "allocator", *args],
        cwd=root,
        env=env_for(root),
        capture_output=True,
        text=True,
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
    parser.add_argument("--before", help="a commit to time in the same run (e.g. 6af869a, main before issue 14)")
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
    roots = [ROOT]
    if args.before:
        before = Path(tempfile.mkdtemp()) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        roots.append(before)
    header = "wall s" if len(roots) == 1 else f"after / before {args.before} (wall s)"
    print(f"{'command':<32} {header:>24}  import time by package (s, self times summed)")
    for label, argv in commands(folder):
        for root in roots:
            once(argv, root)  # warm-up: bytecode written, files in the page cache
        t = walls(argv, roots, args.repeats)
        wall_text = " / ".join(f"{x:.2f}" for x in t)
        for i, root in enumerate(roots):
            top = ", ".join(f"{name} {sec:.2f}" for name, sec in imports(argv, root))
            name = label if i == 0 else "  (before)"
            print(f"{name:<32} {wall_text if i == 0 else '':>24}  {top}")


if __name__ == "__main__":
    main()

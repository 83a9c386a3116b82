"""Peak memory of `sparkbandit ingest` on a large Ads Manager export (issue 14 item 3: <= 3x the file).

Writes a realistic TikTok export CSV of about SIZE MB (24 columns as Ads Manager writes them, one row per
ad and day, 200 ads in the plan), then runs `ingest` into a fresh ledger in a subprocess per source tree and
reports its peak RSS (ru_maxrss of the child) and wall time. Trees: `--before PATH` (e.g. the main tree
before the change) and `--after PATH` (default: this tree), measured in the same run.

Run: .venv/bin/python benchmarks/bench_ingest_memory.py [--size 50] [--before /work/main] [--after .]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HEADER = (
    "By Day,Campaign name,Campaign ID,Ad group name,Ad group ID,Ad name,Ad ID,Currency,Cost,CPC (destination),"
    "CPM,Impressions,Clicks (destination),CTR (destination),Reach,Cost per 1000 people reached,Frequency,"
    "Conversions,Cost per conversion,Conversion rate (CVR),Video views,2-second video views,"
    "6-second video views,Average play time per video view"
)
ADS = 200


def build(folder: Path, megabytes: float, rng: np.random.Generator) -> tuple[Path, Path]:
    plan = folder / "plan.toml"
    lines = ['[campaign]\nname = "Big"\ndaily_budget = 10000\n\n[guardrails]\nexploration_floor = 0.001\n']
    lines += [f'[[creatives]]\nid = "17861000000{a:08d}"\nname = "Creator {a} hook"\n' for a in range(ADS)]
    plan.write_text("\n".join(lines), encoding="utf-8")
    export = folder / "export.csv"
    start = dt.date(2020, 1, 1)
    target = megabytes * 1e6
    with export.open("w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        day = 0
        while f.tell() < target:
            date = (start + dt.timedelta(days=day)).isoformat()
            imp = rng.integers(1000, 200_000, ADS)
            clicks = rng.binomial(imp, 0.01)
            conv = rng.binomial(clicks, 0.05)
            out = []
            for a in range(ADS):
                cost = imp[a] * 8 / 1000
                out.append(
                    f"{date},Q4 Spark,1786000000000000000,AG {a},17860000000{a:08d},Creator {a} hook,"
                    f'17861000000{a:08d},USD,"${cost:,.2f}",${cost / max(clicks[a], 1):.2f},$8.00,"{imp[a]:,}",'
                    f'{clicks[a]},{100 * clicks[a] / imp[a]:.2f}%,"{int(imp[a] * 0.8):,}",$10.00,1.25,{conv[a]},'
                    f'${cost / max(conv[a], 1):.2f},{100 * conv[a] / max(clicks[a], 1):.2f}%,"{int(imp[a] * 0.6):,}",'
                    f'"{int(imp[a] * 0.4):,}","{int(imp[a] * 0.2):,}",3.1\n'
                )
            f.write("".join(out))
            day += 1
    return plan, export


CHILD = """
import resource, sys, time
from allocator.plan import load_plan
from allocator.storage.ledger import ingest_files
import allocator
t = time.perf_counter()
s = ingest_files(load_plan(sys.argv[1]), [sys.argv[2]])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, s.added, allocator.__file__)
"""


def run(tree: Path, plan: Path, export: Path, python: str) -> tuple[float, float, int, str]:
    ledger = plan.with_suffix(".ledger.sqlite3")
    ledger.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [python, "-c", CHILD, str(plan), str(export)], env=env, cwd=tree, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    secs, rss, added, where = out.stdout.split()
    return float(secs), float(rss), int(added), where


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=float, default=50.0, help="export size in MB")
    parser.add_argument("--before", type=Path, help="source tree to compare with (e.g. /work/main)")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plan, export = build(Path(tmp), args.size, np.random.default_rng(0))
        size = export.stat().st_size / 1e6
        rows = sum(1 for _ in export.open()) - 1
        print(f"export: {size:.1f} MB, {rows:,} rows x 24 columns, {ADS} ads; load {os.getloadavg()[0]:.1f}")
        print(f"{'tree':40s} {'peak RSS MB':>12s} {'x file':>7s} {'wall s':>7s} {'rows added':>11s}")
        for name, tree in (("before", args.before), ("after", args.after)):
            if tree is None:
                continue
            secs, rss, added, _ = run(tree.resolve(), plan, export, sys.executable)
            print(f"{name + ' ' + str(tree):40s} {rss:12.0f} {rss / size:7.1f} {secs:7.2f} {added:11,d}")


if __name__ == "__main__":
    main()

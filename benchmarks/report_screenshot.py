"""Render `sparkbandit report` of the bundled example in headless Chromium and save a screenshot.

    python benchmarks/report_screenshot.py [--out benchmarks/figures/report_issue12.png]

Builds a ledger from configs/example_plan.toml and example_data.csv in a temporary folder, records a decision
for each of the last days (so the plots have a history), writes the report and asks Chromium
(`chromium`/`chromium-browser`/`google-chrome`, installed with `apt-get install chromium` if absent) for a
full-page PNG. Look at the PNG: the "Budgets to set today" box first, the per-creative table, legends that
hide no line. Prints the path of the PNG and of the report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no Chromium found: install it (apt-get install chromium)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "figures" / "report_issue12.png")
    ap.add_argument("--height", type=int, default=3200, help="Window height in pixels (the page is cut there).")
    args = ap.parse_args()

    from allocator.plan import load_plan
    from allocator.storage.ledger import ingest_files
    from allocator.workflows.daily import reallocate_from_ledger, write_report

    work = Path(tempfile.mkdtemp(prefix="sparkbandit-report-"))
    plan = work / "plan.toml"
    plan.write_text((ROOT / "configs" / "example_plan.toml").read_text().replace('data = "example_data.csv"', ""))
    loaded = load_plan(plan)
    ingest_files(loaded, [ROOT / "configs" / "example_data.csv"])
    for day in range(17, 25):
        reallocate_from_ledger(loaded, dt.date(2026, 11, day))
    rep = write_report(loaded, work / "report", dt.date(2026, 11, 24))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size=1100,{args.height}",
        f"--screenshot={args.out.resolve()}",
        rep.index.resolve().as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0 or not args.out.exists():
        sys.exit(f"chromium failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    print(f"screenshot {args.out}\nreport {rep.index}")


if __name__ == "__main__":
    main()

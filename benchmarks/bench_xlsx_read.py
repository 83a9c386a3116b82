"""Which library reads Ads Manager .xlsx exports: openpyxl (read-only mode) or python-calamine.

Builds a realistic export workbook (the 24 columns Ads Manager writes by default, one row per ad and day,
text and numeric cells mixed as in real exports, a "Total of ..." row), then reads every cell of its first
sheet with each library in a fresh subprocess, best of 3, and reports wall time, the import time of the
library and the peak RSS of the process. Then the full `parse_file` on the same workbook.

Run: .venv/bin/python benchmarks/bench_xlsx_read.py [ROWS]   (default 20,000 rows: 200 ads x 100 days)
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

COLUMNS = [
    "By Day",
    "Campaign name",
    "Campaign ID",
    "Ad group name",
    "Ad group ID",
    "Ad name",
    "Ad ID",
    "Currency",
    "Cost",
    "CPC (destination)",
    "CPM",
    "Impressions",
    "Clicks (destination)",
    "CTR (destination)",
    "Reach",
    "Cost per 1,000 people reached",
    "Frequency",
    "Conversions",
    "Cost per conversion",
    "Conversion rate (CVR)",
    "Video views",
    "2-second video views",
    "6-second video views",
    "Average play time per video view",
]


def build(path: Path, rows: int, rng: np.random.Generator) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Ads")
    sheet.append(COLUMNS)
    ads = max(1, rows // 100)
    start = dt.date(2026, 8, 1)
    for r in range(rows):
        ad, day = r % ads, r // ads
        imp = int(rng.integers(0, 200_000))
        clicks = int(rng.binomial(imp, 0.01))
        conv = int(rng.binomial(clicks, 0.05))
        cost = round(imp * 8 / 1000, 2)
        sheet.append(
            [
                (start + dt.timedelta(days=day)).isoformat(),
                "Q4 Spark",
                "1786000000000000000",
                f"AG {ad}",
                f"17860000000{ad:08d}",
                f"Creator {ad} hook",
                f"17861000000{ad:08d}",
                "USD",
                cost,
                round(cost / clicks, 2) if clicks else "-",
                8.0,
                imp,
                clicks,
                f"{100 * clicks / imp:.2f}%" if imp else "-",
                int(imp * 0.8),
                10.0,
                1.25,
                conv,
                round(cost / conv, 2) if conv else "-",
                f"{100 * conv / clicks:.2f}%" if clicks else "-",
                int(imp * 0.6),
                int(imp * 0.4),
                int(imp * 0.2),
                3.1,
            ]
        )
    sheet.append([f"Total of {rows} results"] + [None] * (len(COLUMNS) - 1))
    book.save(path)


READERS = {
    "openpyxl read-only": (
        "import openpyxl",
        (
            "book = openpyxl.load_workbook(path, read_only=True, data_only=True)\n"
            "n = sum(1 for row in book.worksheets[0].iter_rows(values_only=True) for _ in row)\nbook.close()"
        ),
    ),
    "python-calamine": (
        "from python_calamine import CalamineWorkbook",
        (
            "book = CalamineWorkbook.from_path(path)\n"
            "n = sum(1 for row in book.get_sheet_by_index(0).to_python(skip_empty_area=False) for _ in row)"
        ),
    ),
    "parse_file (calamine)": (
        "from allocator.inputs.importer import parse_file",
        "n = len(parse_file(path).rows)",
    ),
}

SCRIPT = """
import resource, sys, time
path = sys.argv[1]
t0 = time.perf_counter()
{imp}
t1 = time.perf_counter()
{read}
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n)
"""


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.xlsx"
        build(path, rows, np.random.default_rng(0))
        size = path.stat().st_size / 1e6
        print(f"workbook: {rows:,} rows x {len(COLUMNS)} columns, {size:.1f} MB")
        print(f"{'reader':24s} {'import s':>9s} {'read s':>8s} {'peak RSS MB':>12s} {'cells/rows':>11s}")
        for name, (imp, read) in READERS.items():
            runs = []
            for _ in range(3):
                out = subprocess.run(
                    [sys.executable, "-c", SCRIPT.format(imp=imp, read=read), str(path)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                runs.append(tuple(float(v) for v in out))
            best = min(runs, key=lambda r: r[1])
            print(f"{name:24s} {best[0]:9.3f} {best[1]:8.3f} {best[2]:12.0f} {int(best[3]):11,d}")


if __name__ == "__main__":
    main()

"""Wall time of the daily decision on the conjugate path.

Usage:  python benchmarks/bench_reallocate.py
(a) 2,000 campaigns x 5 creatives reallocated in one process (target <= 2 s total);
(b) `sparkbandit --help` in a new process (target <= 0.3 s, median of 5);
(c) `sparkbandit reallocate --plan configs/example_plan.toml` in a new process (target <= 1.5 s, median of 5);
(d) pymc / arviz must not be imported by the conjugate path.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
SPARKBANDIT = BIN / "sparkbandit"


def campaigns(n_campaigns: int, n_creatives: int = 5, n_days: int = 10, seed: int = 0):
    from allocator.plan import CampaignPlan
    from models.observations import DailyObservations

    rng = np.random.default_rng(seed)
    start = dt.date(2026, 11, 1)
    dates = np.arange(np.datetime64(start), np.datetime64(start) + np.timedelta64(n_days, "D"))
    out = []
    for k in range(n_campaigns):
        ids = [f"c{k}-{i}" for i in range(n_creatives)]
        plan = CampaignPlan.model_validate(
            {
                "campaign": {"name": f"campaign {k}", "daily_budget": 500.0, "seed": k},
                "creatives": [{"id": i, "budget": 100.0, "last_change": start} for i in ids],
            }
        )
        imps = rng.poisson(15_000, size=(n_days, n_creatives)).astype(float)
        rate = rng.lognormal(np.log(2e-4), 0.3, n_creatives)
        conv = rng.binomial(imps.astype(int), rate).astype(float)
        clicks = rng.binomial(imps.astype(int), 0.01).astype(float)
        daily = DailyObservations(tuple(ids), dates, imps, clicks, conv, imps / 125.0)
        out.append((plan, daily))
    return out, start + dt.timedelta(days=n_days)


def wall(cmd: list[str], repeats: int = 5) -> tuple[float, int]:
    times, rc = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True)
        times.append(time.perf_counter() - t0)
        rc = rc or r.returncode
    return float(np.median(times)), rc


def main() -> None:
    print(
        f"bench_reallocate  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}  {platform.platform()}  "
        f"python {platform.python_version()}  nproc {os.cpu_count()}"
    )
    print(f"{'measurement':<52} {'seconds':>9}  target")
    from allocator.decisions.engine import reallocate

    t0 = time.perf_counter()
    work, date = campaigns(2000)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    phases: dict[str, int] = {}
    for plan, daily in work:
        alloc = reallocate(plan, daily, date)
        phases[alloc.phase] = phases.get(alloc.phase, 0) + 1
    t_realloc = time.perf_counter() - t0
    print(f"{'(a) build 2,000 plans + observations (not timed)':<52} {t_build:>9.3f}")
    print(f"{'(a) reallocate 2,000 campaigns, one call each':<52} {t_realloc:>9.3f}  (reference)  phases {phases}")
    from allocator.decisions.engine import reallocate_many

    t0 = time.perf_counter()
    many = reallocate_many([(plan, daily, date, None) for plan, daily in work])
    t_many = time.perf_counter() - t0
    same = all(a.phase == b for a, b in zip(many, [reallocate(p, d, date).phase for p, d in work[:200]]))
    print(
        f"{'(a) reallocate_many, 2,000 campaigns x 5 creatives':<52} {t_many:>9.3f}  <= 2 s   "
        f"same phases as one by one (first 200): {same}"
    )

    t, rc = wall([str(SPARKBANDIT), "--help"])
    print(f"{'(b) sparkbandit --help, new process, median of 5':<52} {t:>9.3f}  <= 0.3 s  exit {rc}")
    t, rc = wall([str(SPARKBANDIT), "reallocate", "--plan", "configs/example_plan.toml"])
    print(f"{'(c) sparkbandit reallocate example plan, median of 5':<52} {t:>9.3f}  <= 1.5 s  exit {rc}")

    snippet = (
        "import sys, datetime as dt\n"
        "from allocator.plan import load_plan\n"
        "from allocator.decisions.engine import reallocate\n"
        "from allocator.inputs.importer import *\n"
        "from models.conjugate import ConjugateModel\n"
        "from models.observations import Observations\n"
        "import numpy as np\n"
        "o = Observations(('a','b'), np.array([1e4, 1e4]), np.array([100., 90.]), np.array([3., 5.]), np.array([80., 80.]))\n"
        "p = ConjugateModel().fit(o, rng=np.random.default_rng(0)); p.prob_best(); p.draws\n"
        "print(sorted(m for m in ('pymc', 'arviz', 'pytensor', 'nutpie') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True)
    got = r.stdout.strip() or r.stderr.strip().splitlines()[-1]
    print(f"{'(d) heavy modules after the conjugate path':<52} {'':>9}  {got} (want [])")


if __name__ == "__main__":
    main()

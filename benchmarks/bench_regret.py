"""Published behaviour of Thompson sampling, reproduced with the simulator.

In a stationary Bernoulli world (unit-cost mode, no guardrails, stopping rule off), Thompson sampling's
cumulative regret grows like log T (Agrawal & Goyal 2012; Kaufmann et al. 2012): from T to 10T periods it
should grow by about log(10 T n) / log(T n) (n impressions per period), while uniform's grows 10x and
explore-then-commit's grows linearly after any wrong commitment. With daily batches it stays far below
uniform and explore-then-commit.

Usage::

    python benchmarks/bench_regret.py            # T = 30 and 300 days, 200 replicates
    python benchmarks/bench_regret.py --quick    # 100 replicates
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from simulations.metrics import over_time  # noqa: E402
from simulations.runner import StudySpec, run_study  # noqa: E402
from simulations.study import parse_study  # noqa: E402

RATES = [0.05, 0.08, 0.10, 0.12, 0.15]
PER_DAY = 100


def study(periods: int, replicates: int, policies: list[str], min_days: int):
    return parse_study(
        {
            "study": {
                "name": f"stationary Bernoulli, {periods} days",
                "replicates": replicates,
                "periods": periods,
                "seed": 11,
                "policies": policies,
            },
            "world": {"impressions_per_period": PER_DAY, "conversion_rates": RATES},
            "prior": {"alpha": 1.0, "beta": 1.0},
            "decision": {"min_days": min_days},
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--days", type=int, default=30, help="T (the long study runs 10 T)")
    args = ap.parse_args()
    n = 100 if args.quick else 200
    T = args.days
    print(
        f"Stationary Bernoulli world: rates {RATES}, {PER_DAY} impressions/day, {n} replicates, "
        "no guardrails; Thompson/uniform/greedy with the stopping rule off, explore_then_commit exploring "
        "7 days then committing to the leader."
    )
    results = {}
    t0 = time.perf_counter()
    for periods in (T, 10 * T):
        res = run_study(StudySpec(study(periods, n, ["thompson", "uniform", "greedy"], 10**6)))
        etc = run_study(StudySpec(study(periods, n, ["explore_then_commit"], 7)))
        res.policies.update(etc.policies)
        results[periods] = res
    elapsed = time.perf_counter() - t0

    def fmt(x: np.ndarray) -> str:
        return f"{x.mean():8.1f} +/- {x.std(ddof=1) / np.sqrt(x.size):5.1f}"

    print(f"\n{'policy':<22}{'regret at T=' + str(T):>22}{'regret at 10T=' + str(10 * T):>24}{'ratio':>8}")
    for p in ("thompson", "uniform", "greedy", "explore_then_commit"):
        a, b = results[T].policies[p]["regret"], results[10 * T].policies[p]["regret"]
        print(f"{p:<22}{fmt(a):>22}{fmt(b):>24}{b.mean() / a.mean():>8.2f}")

    # Thompson's regret over time in the long study: R(t) against a + b log(t).
    curve = over_time(results[10 * T], "thompson")["regret"]
    days = np.arange(1, 10 * T + 1)
    X = np.column_stack([np.ones(days.size), np.log(days * PER_DAY)])
    coef, *_ = np.linalg.lstsq(X[T // 3 :], curve[T // 3 :], rcond=None)
    fit = X @ coef
    r2 = 1 - np.sum((curve[T // 3 :] - fit[T // 3 :]) ** 2) / np.sum((curve[T // 3 :] - curve[T // 3 :].mean()) ** 2)
    lin = np.polyfit(days[T // 3 :], curve[T // 3 :], 1)
    r2_lin = 1 - np.sum((curve[T // 3 :] - np.polyval(lin, days[T // 3 :])) ** 2) / np.sum(
        (curve[T // 3 :] - curve[T // 3 :].mean()) ** 2
    )
    print(
        f"\nThompson cumulative regret over days {T // 3}..{10 * T}: fit a + b ln(impressions) R^2 = {r2:.4f} "
        f"(b = {coef[1]:.1f}), linear fit R^2 = {r2_lin:.4f}"
    )
    a, b = results[T].policies["thompson"]["regret"].mean(), results[10 * T].policies["thompson"]["regret"].mean()
    print(
        f"log growth: 10x the horizon adds b ln 10 = {coef[1] * np.log(10):.1f} conversions of regret "
        f"(observed {b - a:.1f}); linear growth would multiply it by 10 (uniform: "
        f"{results[10 * T].policies['uniform']['regret'].mean() / results[T].policies['uniform']['regret'].mean():.1f}x)"
    )
    marks = [T, 2 * T, 5 * T, 10 * T]
    print("Thompson regret at day " + ", ".join(f"{d}: {curve[d - 1]:.1f}" for d in marks))
    print(f"({elapsed:.1f} s)")


if __name__ == "__main__":
    main()

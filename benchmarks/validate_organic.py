"""Issue 10: the portfolio fit of the organic coefficient (`learn`'s organic_coefficient) on synthetic
portfolios with a known coefficient (`simulations.history.synthetic_organic_portfolio`).

Run:  python benchmarks/validate_organic.py [n_portfolios] [coef ...]
Prints, per true coefficient: how often the diagnostics gate failed, the 90% interval's coverage (with its
binomial standard error), the mean error and the mean of (estimate - truth) / reported sd (0 with sd
1/sqrt(n) if the reported sd is right), and the seconds per fit.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from allocator.workflows.learn import organic_coefficient  # noqa: E402
from models.errors import ModelError  # noqa: E402
from simulations.history import synthetic_organic_portfolio  # noqa: E402


def validate(coef: float, n: int, seed0: int = 100) -> dict:
    z, err, cover, failed, secs = [], [], 0, 0, []
    for s in range(n):
        rng = np.random.default_rng(seed0 + s)
        dailies, organic = synthetic_organic_portfolio(coef, rng)
        t = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = organic_coefficient(dailies, organic, rng)
        except ModelError:
            failed += 1
            continue
        secs.append(time.perf_counter() - t)
        lo, hi = r["ci90"]
        cover += lo <= coef <= hi
        err.append(r["mean"] - coef)
        z.append((r["mean"] - coef) / r["sd"])
    m = len(z)
    return {
        "coef": coef,
        "fits": m,
        "gate_failed": failed,
        "coverage90": cover / max(m, 1),
        "coverage_se": float(np.sqrt(0.9 * 0.1 / max(m, 1))),
        "mean_error": float(np.mean(err)),
        "mean_error_se": float(np.std(err, ddof=1) / np.sqrt(m)),
        "mean_z": float(np.mean(z)),
        "sd_z": float(np.std(z, ddof=1)),
        "s_per_fit": float(np.median(secs)),
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    coefs = [float(c) for c in sys.argv[2:]] or [0.0, 0.4]
    for c in coefs:
        print(validate(c, n), flush=True)

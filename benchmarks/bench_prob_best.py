"""Exact probability of being best vs Monte Carlo: time and max error.

Usage:  python benchmarks/bench_prob_best.py
Targets: 5 creatives <= 5 ms (median); 1,000 creatives <= 100 ms with max error <= 1e-4 vs a reference
(Simpson's rule on a 40,001-point uniform grid over the creatives that can win).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.posterior import Posterior, ScaledBeta  # noqa: E402
from models.prob_best import prob_best_mc, prob_best_scaled_beta  # noqa: E402
from tests.models.test_prob_best import fine_grid_reference  # noqa: E402


def reference(alpha, beta, scale):
    """The tests' independent Simpson-rule reference, and how many creatives can win."""
    lo_q = special.betaincinv(alpha, beta, 1e-13) * scale
    hi_q = special.betaincinv(alpha, beta, 1 - 1e-13) * scale
    return fine_grid_reference(alpha, beta, scale), int((hi_q > lo_q.max()).sum())


def portfolio(n, sd, seed=7):
    rng = np.random.default_rng(seed)
    imps = rng.uniform(1_000_000, 2_000_000, n) if sd >= 1 else rng.uniform(150_000, 250_000, n)
    rate = rng.lognormal(np.log(2e-4), sd, n)
    conv = rng.binomial(imps.astype(int), rate).astype(float)
    return 1.0 + conv, 5000.0 + imps - conv, rng.uniform(110.0, 140.0, n)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def row(label, n, contenders, method, ms, err, target):
    print(f"{label:<28} {n:>6} {contenders:>6} {method:<24} {ms:>10.2f} {err:>10.1e}  {target}")


def main() -> None:
    print(f"bench_prob_best  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}  {platform.platform()}  "
          f"python {platform.python_version()}  nproc {os.cpu_count()}")
    print(f"{'case':<28} {'n':>6} {'contd':>6} {'method':<24} {'ms':>10} {'max err':>10}  target")
    rng = np.random.default_rng(1)
    cases = [
        ("5 creatives", np.array([31.0, 40, 35, 28, 38]), np.array([150e3, 160e3, 155e3, 149e3, 158e3]),
         np.array([125.0, 118, 130, 122, 127]), 201, "<= 5 ms"),
        ("1000, spread (sd 1.0)", *portfolio(1000, 1.0), 11, "<= 100 ms, err <= 1e-4"),
        ("1000, contested (sd 0.5)", *portfolio(1000, 0.5), 1, "<= 100 ms, err <= 1e-4"),
    ]
    for label, a, b, s, reps, target in cases:
        ref, contenders = reference(a, b, s)
        p, t = timed(lambda: prob_best_scaled_beta(a, b, s), reps)
        row(label, a.size, contenders, "prob_best_scaled_beta", t * 1e3, np.abs(p - ref).max(), target)
        if a.size <= 32:
            post = Posterior(tuple(map(str, range(a.size))), "x", np.zeros((1, a.size)),
                             marginals=ScaledBeta(a, b, s))
            p, t = timed(lambda: Posterior(post.creative_ids, "x", post.draws, post.marginals).prob_best("exact"), reps)
            row(label, a.size, contenders, "Posterior.prob_best exact", t * 1e3, np.abs(p - ref).max(), target)
        draws_t = []
        errs = []
        for _ in range(min(reps, 11)):
            t0 = time.perf_counter()
            d = rng.beta(a, b, size=(10_000, a.size)) * s
            p = prob_best_mc(d)
            draws_t.append(time.perf_counter() - t0)
            errs.append(np.abs(p - ref).max())
        row(label, a.size, contenders, "Monte Carlo 10,000 draws", np.median(draws_t) * 1e3, np.median(errs), "(median err)")


if __name__ == "__main__":
    main()

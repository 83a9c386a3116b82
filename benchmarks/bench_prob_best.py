"""Exact probability of being best: this code against an earlier revision and Monte Carlo, in the same run.

Usage:  python benchmarks/bench_prob_best.py [--before REV]
  REV (default 9ed94fe, the code before issue 14's panel rules) is loaded from git as a module of its own, so
  "before" and "after" are timed in one process on the same inputs.
The last rows time `betaincinv` on the simulator's (replicates x creatives) arrays against scipy's.
Targets (issue 14): 5 creatives <= 0.5 ms (the path the engine uses, `Posterior.prob_best("exact")`), 1,000
contested creatives <= 20 ms, max error <= 1e-6. References: adaptive quadrature (5 creatives) and Simpson's
rule on a 40,001-point grid over the creatives that can win (1,000 creatives; its own error is ~1e-12 there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.posterior import Posterior, ScaledBeta  # noqa: E402
from models.prob_best import prob_best_mc, prob_best_scaled_beta, scaled_beta_max  # noqa: E402
from tests.support.prob_best_reference import fine_grid_reference, quad_prob_best  # noqa: E402


def load_revision(rev: str):
    """models/prob_best.py as it was at `rev`, imported under another name."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:models/prob_best.py"], check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "prob_best_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("prob_best_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def portfolio(n, sd, seed=7):
    rng = np.random.default_rng(seed)
    imps = rng.uniform(1_000_000, 2_000_000, n) if sd >= 1 else rng.uniform(150_000, 250_000, n)
    rate = rng.lognormal(np.log(2e-4), sd, n)
    conv = rng.binomial(imps.astype(int), rate).astype(float)
    return 1.0 + conv, 5000.0 + imps - conv, rng.uniform(110.0, 140.0, n)


def timed(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def row(label, n, method, ms, err, target):
    print(f"{label:<26} {n:>5} {method:<38} {ms:>9.3f} {err:>9.1e}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="9ed94fe")
    args = parser.parse_args()
    before = load_revision(args.before)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(
        f"bench_prob_best  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}  {platform.platform()}  "
        f"python {platform.python_version()}  nproc {os.cpu_count()}  load {' '.join(load)}  before={args.before}"
    )
    print(f"{'case':<26} {'n':>5} {'method':<38} {'ms':>9} {'max err':>9}  target")
    rng = np.random.default_rng(1)
    a5 = np.array([31.0, 40, 35, 28, 38])
    b5 = np.array([150e3, 160e3, 155e3, 149e3, 158e3])
    s5 = np.array([125.0, 118, 130, 122, 127])
    ref5 = quad_prob_best(a5, b5, s5)
    ids = tuple(map(str, range(5)))

    def posterior_exact():
        return Posterior(ids, "x", np.zeros((1, 5)), marginals=ScaledBeta(a5, b5, s5)).prob_best("exact")

    p, t = timed(posterior_exact, 2001)
    row("5 creatives", 5, "after: Posterior.prob_best exact", t * 1e3, np.abs(p - ref5).max(), "<= 0.5 ms")
    p, t = timed(lambda: scaled_beta_max(a5, b5, s5)[0], 2001)
    row("5 creatives", 5, "after: scaled_beta_max", t * 1e3, np.abs(p - ref5).max(), "")
    p, t = timed(lambda: before.scaled_beta_max(a5, b5, s5)[0], 2001)
    row("5 creatives", 5, "before: scaled_beta_max", t * 1e3, np.abs(p - ref5).max(), "")
    p, t = timed(lambda: before.prob_best_scaled_beta(a5, b5, s5), 501)
    row("5 creatives", 5, "before: prob_best_scaled_beta", t * 1e3, np.abs(p - ref5).max(), "")
    p, t = timed(lambda: prob_best_mc(rng.beta(a5, b5, size=(10_000, 5)) * s5), 101)
    row("5 creatives", 5, "Monte Carlo 10,000 draws", t * 1e3, np.abs(p - ref5).max(), "")

    A, B, S = (np.tile(v, (2000, 1)) for v in (a5, b5, s5))
    _, t = timed(lambda: scaled_beta_max(A, B, S), 5)
    row("2,000 campaigns x 5", 5, "after: scaled_beta_max batched", t * 1e3, float("nan"), "(reallocate_many)")
    _, t = timed(lambda: before.scaled_beta_max(A, B, S), 5)
    row("2,000 campaigns x 5", 5, "before: scaled_beta_max batched", t * 1e3, float("nan"), "")

    for label, sd, target in (("1000, spread (sd 1.0)", 1.0, ""), ("1000, contested (sd 0.5)", 0.5, "<= 20 ms")):
        a, b, s = portfolio(1000, sd)
        ref = fine_grid_reference(a, b, s, n_grid=40_000)
        p, t = timed(lambda: prob_best_scaled_beta(a, b, s), 51)
        row(label, 1000, "after: prob_best_scaled_beta", t * 1e3, np.abs(p - ref).max(), target)
        p, t = timed(lambda: before.prob_best_scaled_beta(a, b, s), 21)
        row(label, 1000, "before: prob_best_scaled_beta", t * 1e3, np.abs(p - ref).max(), "")
        p, t = timed(lambda: prob_best_mc(rng.beta(a, b, size=(10_000, a.size)) * s), 5)
        row(label, 1000, "Monte Carlo 10,000 draws", t * 1e3, np.abs(p - ref).max(), "")

    # The simulator's Bayes-UCB quantile (models.batch) on (replicates x creatives) arrays: models.special
    # against scipy.special, which the conjugate path no longer imports (issue 14).
    from scipy import special as scipy_special

    from models import special

    for reps in (200, 10_000):
        a = 1.0 + rng.poisson(20, (reps, 5)).astype(float)
        b = 5000.0 + rng.uniform(1e4, 5e5, (reps, 5))
        q = (1.0 - 1.0 / np.arange(2, reps + 2))[:, None]
        want, t_scipy = timed(lambda: scipy_special.betaincinv(a, b, q), 21 if reps < 1000 else 5)
        got, t_ours = timed(lambda: special.betaincinv(a, b, q), 21 if reps < 1000 else 5)
        err = float(np.max(np.abs(got / want - 1.0)))
        row(f"betaincinv {reps} x 5", 5, "scipy.special", t_scipy * 1e3, float("nan"), "")
        row(f"betaincinv {reps} x 5", 5, f"models.special ({t_ours / t_scipy:.1f}x scipy)", t_ours * 1e3, err, "")


if __name__ == "__main__":
    main()

"""How often the hierarchical model passes its diagnostics gate with the default settings.

Fits simulated 5-creative campaigns (parameters drawn from the priors, as in SBC) of 7, 14 and 30 days
with the default sampler settings and gate (R-hat <= 1.01, bulk ESS >= 400 on every hyperparameter and
rate, no divergences, one retry), and counts: passed at once, passed on the retry, failed (fell back).
The compiled model is reused across campaigns of one length, so sampling dominates.

Usage::

    python benchmarks/gate_hierarchical.py                 # 30 campaigns per length
    python benchmarks/gate_hierarchical.py --campaigns 5   # a smoke run
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.hierarchical import HierarchicalModel, simulate_campaign  # noqa: E402


def fast_path(model: HierarchicalModel, args) -> None:
    """The default method as a plan runs it: which method's draws decided (fast path, NUTS after its gate
    failed, or the conjugate fallback) per campaign length."""
    print(
        f"# gate_hierarchical {time.strftime('%Y-%m-%d %H:%M')}  campaigns={args.campaigns} per length, "
        f"method=laplace_is (Pareto k <= 0.7, IS ESS >= {model.min_ess:g}; NUTS after a failure)"
    )
    print(f"{'days':>4} {'fast':>5} {'nuts':>5} {'conj':>5} {'median s':>9} {'median k':>9} {'median ESS':>11}")
    for days in (int(d) for d in args.days.split(",")):
        rng = np.random.default_rng(args.seed)
        used, secs, ks, ess = collections.Counter(), [], [], []
        for _ in range(args.campaigns):
            sim = simulate_campaign(rng, n_creatives=5, n_days=days)
            t0 = time.perf_counter()
            m = HierarchicalModel(reuse_compiled=True, organic_rate=sim.organic_rate)
            post = m.fit(sim.daily, rng=rng, n_draws=1000)
            secs.append(time.perf_counter() - t0)
            d = post.diagnostics
            used[d["method"]] += 1
            ks.append(d["pareto_k"])
            ess.append(d["ess"] if d["method"] == "laplace_is" else d.get("fast_path_ess", np.nan))
        print(
            f"{days:4d} {used['laplace_is']:5d} {used['nuts']:5d} {used['conjugate']:5d} {np.median(secs):9.2f} "
            f"{np.median(ks):9.2f} {np.nanmedian(ess):11.0f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=30)
    ap.add_argument("--days", default="7,14,30")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--method", choices=("laplace_is", "nuts"), default="nuts")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    model = HierarchicalModel(reuse_compiled=True, method=args.method)
    if args.method == "laplace_is":
        fast_path(model, args)
        return
    print(
        f"# gate_hierarchical {time.strftime('%Y-%m-%d %H:%M')}  campaigns={args.campaigns} per length, "
        f"draws={model.draws} tune={model.tune} chains={model.chains} target_accept={model.target_accept}"
    )
    print(
        f"{'days':>4} {'passed':>7} {'retried':>8} {'failed':>7} {'median s':>9}  failures (variable, ESS, R-hat, div)"
    )
    for days in (int(d) for d in args.days.split(",")):
        rng = np.random.default_rng(args.seed)
        gates, secs, failures = collections.Counter(), [], []
        for _ in range(args.campaigns):
            sim = simulate_campaign(rng, n_creatives=5, n_days=days)
            t0 = time.perf_counter()
            _, d = model.sample_posterior([sim.daily], [sim.organic_rate], rng=rng)
            secs.append(time.perf_counter() - t0)
            gates[d["gate"]] += 1
            if d["gate"] == "failed":
                failures.append((d["min_ess_var"], round(d["min_ess_bulk"]), round(d["max_rhat"], 3), d["divergences"]))
        # the first fit of each length compiles: leave it out of the median
        print(
            f"{days:4d} {gates['passed']:7d} {gates['retried']:8d} {gates['failed']:7d} {np.median(secs[1:]):9.2f}  {failures}"
        )


if __name__ == "__main__":
    main()

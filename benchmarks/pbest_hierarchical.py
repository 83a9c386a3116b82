"""P(best) of the hierarchical model's fast path (laplace_is) against NUTS on simulated campaigns.

For each campaign (5 creatives, priors drawn as in SBC): the probability that each creative has the highest
current conversion rate, from the fast path's resampled draws and from NUTS (nutpie, 2 x 2000 draws after
1000 tuning steps, compiled once and reused). Reports the max and mean absolute difference over every
(campaign, creative) entry, the mean's standard error, and the Monte Carlo noise floor expected from the two
estimates' own sampling error (sqrt(p (1 - p) / ESS) each), so a difference can be read against it.

    python benchmarks/pbest_hierarchical.py [--campaigns 50] [--days 14]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.hierarchical import HierarchicalModel, simulate_campaign  # noqa: E402


def prob_best(rate: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """P(each column is the largest) from draws (S, n), optionally weighted (S,) (normalised here)."""
    w = np.full(rate.shape[0], 1.0 / rate.shape[0]) if weights is None else weights / weights.sum()
    return np.clip(np.bincount(rate.argmax(axis=1), weights=w, minlength=rate.shape[1]), 0.0, 1.0)


def mc_floor(p_a: np.ndarray, ess_a: float, p_b: np.ndarray, ess_b: float) -> np.ndarray:
    """The |difference| of two independent Monte Carlo estimates of the same probabilities p expected from
    their sampling error alone: sqrt(2/pi) x the sd of the difference, with sd sqrt(p (1 - p) / ESS) each
    (the fast path's importance ESS; NUTS's min bulk ESS)."""
    se = np.sqrt(p_a * (1 - p_a) / max(ess_a, 1.0) + p_b * (1 - p_b) / max(ess_b, 1.0))
    return np.sqrt(2 / np.pi) * se


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=50)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(args.seed)
    nuts = HierarchicalModel(method="nuts", reuse_compiled=True, max_rhat=1e9, min_ess=0.0)
    diff_list: list[float] = []
    floor_list: list[float] = []
    t_fast: list[float] = []
    t_nuts: list[float] = []
    fast_gate = 0
    for i in range(args.campaigns):
        sim = simulate_campaign(rng, n_creatives=5, n_days=args.days)
        t0 = time.perf_counter()
        named, d_fast = HierarchicalModel().sample_fast([sim.daily], [sim.organic_rate], rng, n_draws=4000)
        t_fast.append(time.perf_counter() - t0)
        fast_gate += d_fast["gate"] == "passed"
        t0 = time.perf_counter()
        idata, d_nuts = nuts.sample_posterior([sim.daily], [sim.organic_rate], rng=rng)
        t_nuts.append(time.perf_counter() - t0)
        rate = np.asarray(idata["posterior"]["rate"].transpose("chain", "draw", "creative")).reshape(-1, 5)
        p_f, p_n = prob_best(named["rate"]), prob_best(rate)
        diff_list.extend(np.abs(p_f - p_n))
        floor_list.extend(mc_floor(p_f, d_fast["ess"], p_n, d_nuts["min_ess_bulk"]))
        print(
            f"  {i + 1:3d}/{args.campaigns}: max |diff| {np.abs(p_f - p_n).max():.3f} fast gate {d_fast['gate']}",
            file=sys.stderr,
            flush=True,
        )
    diffs, floors = np.asarray(diff_list), np.asarray(floor_list)
    print(
        f"# pbest_hierarchical {time.strftime('%Y-%m-%d %H:%M')}  campaigns={args.campaigns} creatives=5 "
        f"days={args.days} seed={args.seed}"
    )
    print(
        f"P(best) |fast - NUTS| over {diffs.size} entries: mean {diffs.mean():.4f} (se {diffs.std(ddof=1) / np.sqrt(diffs.size):.4f}), "
        f"max {diffs.max():.4f}; Monte Carlo floor (mean expected |diff| from sampling error alone) {floors.mean():.4f}"
    )
    print(
        f"fast path gate passed {fast_gate}/{args.campaigns}; median seconds: fast {np.median(t_fast):.2f}, "
        f"NUTS {np.median(t_nuts[1:]):.2f} (compiled once, reused)"
    )


if __name__ == "__main__":
    main()

"""Hierarchical vs conjugate model driving the same daily bandit: conversions over a young campaign.

Each world is a campaign of 5 creatives with true conversion rates drawn like `simulate_campaign`'s
(logit rate = intercept + organic_coef x standardised log organic engagement + creative_sd x z). Every
day, each model is fitted to what it has seen so far (conversions still arriving under the default 7-day
geometric attribution delay) and the day's impressions are split in proportion to each creative's
probability of being best (Thompson sampling in expectation), with a 5% floor per creative. Both models
play the same worlds with their own allocations; the conversions a creative produces are drawn with the
same random numbers for both wherever they give it the same impressions (common random numbers by day and
creative).

Reported per model, with standard errors over worlds:
- conversions: true (not yet reported ones included) conversions over the horizon, and the share of what
  the oracle (all impressions on the best creative) expects;
- P(best): how often its leader at the end is the truly best creative;
- fallbacks: daily hierarchical fits that failed the gate and used the conjugate posterior.

Models: ``conjugate`` (the engine's default: Beta(1, 5000), no delay correction, no organic signal),
``hierarchical`` (the default priors: organic coefficient ~ N(0, 0.5), learned from the campaign itself)
and ``hierarchical+prior`` (organic coefficient ~ N(0.5, 0.2), as a portfolio fit of past campaigns would
give when the world's coefficient is 0.5; shown separately because it knows more than a new user's
model does).

Usage::

    python benchmarks/bandit_hierarchical.py              # 100 worlds x 14 days
    python benchmarks/bandit_hierarchical.py --quick      # 4 worlds x 5 days, 300 draws
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import binom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.conjugate import ConjugateModel  # noqa: E402
from models.hierarchical import DEFAULT_DELAY_CDF, HierarchicalModel, standardise_organic  # noqa: E402
from models.observations import DailyObservations  # noqa: E402
from simulations.world import reported_by  # noqa: E402

FLOOR = 0.05
LAGS = np.diff(np.concatenate([[0.0], DEFAULT_DELAY_CDF]))  # P(reported exactly `lag` days late)


def play(model, world: dict, days: int, per_day: int, crn: np.random.Generator, n_draws: int) -> dict:
    """One model's campaign in one world: returns true conversions, expected conversions and the leader."""
    rate, organic = world["rate"], world["organic"]
    k = rate.size
    ids = tuple(f"cr{i}" for i in range(k))
    start = np.datetime64("2026-01-01", "D")
    imps = np.zeros((days, k))
    lag_counts = np.zeros((days, k, LAGS.size), dtype=np.int64)
    # common random numbers: the u's of each (day, creative) are the same for every model
    u_conv, u_lag = world["u_conv"], world["u_lag"]
    post = None
    fallbacks = 0
    for t in range(days):
        daily = DailyObservations(
            ids,
            start + np.arange(t),
            imps[:t],
            np.zeros((t, k)),
            reported_by(lag_counts, t).astype(float),
            imps[:t] * 8.0 / 1000.0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(model, HierarchicalModel):
                post = replace(model, organic_rate=organic).fit(daily, "conversion_rate", n_draws, crn)
            else:
                post = model.fit(daily, "conversion_rate", n_draws, crn)
        fallbacks += bool(post.diagnostics.get("fallback"))
        share = np.maximum(post.prob_best(), FLOOR)
        share /= share.sum()
        n = np.floor(share * per_day).astype(np.int64)
        n[np.argmax(share)] += per_day - n.sum()
        imps[t] = n
        # conversions by inverse CDF of the Binomial with the shared uniforms (monotone in n: CRN)
        conv = binom.ppf(u_conv[t], n, rate).astype(np.int64)
        if conv.max() > u_lag.shape[2]:
            raise SystemExit(f"more conversions ({conv.max()}) than lag uniforms; raise max_conv in make_world")
        for c in range(k):
            # each conversion's report lag from the shared stream: multinomial by inverse CDF
            lags = np.searchsorted(np.cumsum(LAGS), u_lag[t, c, : conv[c]], side="right")
            lag_counts[t, c] = np.bincount(np.minimum(lags, LAGS.size - 1), minlength=LAGS.size)
    return {
        "conversions": float(lag_counts.sum()),
        "by_day": lag_counts.sum(axis=(1, 2)).astype(float),
        "expected": float((imps * rate).sum()),
        "leader": post.leader() if post is not None else -1,
        "fallbacks": fallbacks,
    }


def make_world(rng: np.random.Generator, k: int, days: int, per_day: int, organic_coef: float, sd: float) -> dict:
    organic = np.exp(np.log(0.05) + 0.5 * rng.normal(size=k))
    x = standardise_organic([organic], [k])[0]
    logit = rng.normal(-8.8, 0.3) + organic_coef * x + sd * rng.normal(size=k)
    max_conv = int(per_day * 0.01) + 50
    return {
        "rate": 1.0 / (1.0 + np.exp(-logit)),
        "organic": organic,
        "u_conv": rng.uniform(size=(days, k)),
        "u_lag": rng.uniform(size=(days, k, max_conv)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worlds", type=int, default=100)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--creatives", type=int, default=5)
    ap.add_argument("--impressions", type=int, default=15_000, help="impressions a day, all creatives")
    ap.add_argument("--organic-coef", type=float, default=0.5)
    ap.add_argument("--creative-sd", type=float, default=0.4)
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    gate = {}
    if args.quick:
        args.worlds, args.days, args.draws = 4, 5, 300
        gate = {"min_ess": 100.0, "max_rhat": 1.05, "tune": 300}
    hier = HierarchicalModel(draws=args.draws, reuse_compiled=True, **gate)
    models = {
        "conjugate": ConjugateModel(),
        "hierarchical": hier,
        "hierarchical+prior": replace(hier, prior={"organic_mu": args.organic_coef, "organic_sd": 0.2}),
    }
    rng = np.random.default_rng(args.seed)
    res = {name: {"conv": [], "exp": [], "best": [], "fallback": 0, "by_day": []} for name in models}
    oracle = []
    t0 = time.perf_counter()
    for w in range(args.worlds):
        world = make_world(rng, args.creatives, args.days, args.impressions, args.organic_coef, args.creative_sd)
        oracle.append(world["rate"].max() * args.impressions * args.days)
        best = int(np.argmax(world["rate"]))
        for name, model in models.items():
            out = play(model, world, args.days, args.impressions, np.random.default_rng([args.seed, w]), 1000)
            res[name]["conv"].append(out["conversions"])
            res[name]["exp"].append(out["expected"])
            res[name]["best"].append(out["leader"] == best)
            res[name]["fallback"] += out["fallbacks"]
            res[name]["by_day"].append(out["by_day"])
        print(f"  world {w + 1:3d}/{args.worlds}  {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    n = args.worlds
    oracle = np.asarray(oracle)
    print(
        f"# bandit_hierarchical {time.strftime('%Y-%m-%d %H:%M')}  worlds={n} days={args.days} "
        f"creatives={args.creatives} impressions/day={args.impressions} organic_coef={args.organic_coef} "
        f"creative_sd={args.creative_sd} draws={args.draws}"
    )
    print(f"{'model':19} {'conversions':>11} {'+-se':>6} {'of oracle':>9} {'P(best)':>8} {'+-se':>6} {'fallbacks':>9}")
    for name, r in res.items():
        conv = np.asarray(r["conv"])
        share = np.asarray(r["exp"]) / oracle
        pb = np.mean(r["best"])
        print(
            f"{name:19} {conv.mean():11.2f} {conv.std(ddof=1) / np.sqrt(n):6.2f} {share.mean():9.3f} "
            f"{pb:8.3f} {np.sqrt(pb * (1 - pb) / n):6.3f} {r['fallback']:9d}"
        )
    base = np.asarray(res["conjugate"]["conv"])
    for name in list(models)[1:]:
        d = np.asarray(res[name]["conv"]) - base
        e = (np.asarray(res[name]["exp"]) - np.asarray(res["conjugate"]["exp"])) / oracle
        print(
            f"paired {name} - conjugate: {d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(n):.2f} conversions a campaign "
            f"({e.mean():+.4f} +- {e.std(ddof=1) / np.sqrt(n):.4f} of the oracle's expected)"
        )
        # where the gain comes from: paired differences over the first and the second half of the horizon
        by_day = np.asarray(res[name]["by_day"]) - np.asarray(res["conjugate"]["by_day"])
        half = args.days // 2
        for label, part in ((f"days 1-{half}", by_day[:, :half]), (f"days {half + 1}-{args.days}", by_day[:, half:])):
            tot = part.sum(axis=1)
            print(f"    {label}: {tot.mean():+.2f} +- {tot.std(ddof=1) / np.sqrt(n):.2f}")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

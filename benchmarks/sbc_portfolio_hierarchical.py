"""Simulation-based calibration of the hierarchical model's fast path on portfolios (the nested form).

For each simulated portfolio (K campaigns x n creatives x N days, every parameter drawn from the priors by
`simulate_portfolio(..., pooled_organic=True)`, which standardises organic engagement over the portfolio as
the model does): the fast path's draws as fitted, whatever its gate said (`HierarchicalModel.sample_fast`:
portfolios take the nested form), and the rank of each true value among L thinned draws. Uniform ranks on
0..L mean calibration. Reported: a chi-square uniformity p-value for each global (pass at 1%), the creatives'
rates tested per creative slot (independent across portfolios) with a Bonferroni correction, the 90%
interval coverage of the true rates, and how often the gate passed. ``--campaigns 1`` checks a single
campaign (the joint form) the same way, creative_sd included, which `sbc_hierarchical.py` does not rank.

    python benchmarks/sbc_portfolio_hierarchical.py [--sims 300] [--campaigns 3] [--creatives 4] [--days 14]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sbc_hierarchical import ranks_of, thin  # noqa: E402
from models.hierarchical import HierarchicalModel  # noqa: E402
from models.hierarchical.synthetic import simulate_portfolio  # noqa: E402

GLOBALS = ("intercept_mean", "campaign_sd", "organic_coef", "creative_sd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=300)
    ap.add_argument("--campaigns", type=int, default=3)
    ap.add_argument("--creatives", type=int, default=4)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--ranks", type=int, default=99, help="L: thinned draws per fit (ranks 0..L)")
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2027)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    model = HierarchicalModel(method="laplace_is")
    ranks: dict[str, list] = {k: [] for k in (*GLOBALS, "rate")}
    covered, passed, seconds, forms = [], 0, [], set()
    t_all, load0 = time.perf_counter(), os.getloadavg()[0]
    for i in range(args.sims):
        sims, truth = simulate_portfolio(rng, args.campaigns, args.creatives, args.days, pooled_organic=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            named, diag = model.sample_fast([s.daily for s in sims], [s.organic_rate for s in sims], rng, 4000)
        if args.campaigns == 1:
            # one campaign: the model's intercept_mean is the campaign's intercept, and it has no campaign_sd
            truth = {**truth, "intercept_mean": sims[0].truth["intercept"]}
        forms.add(diag["approximation"])
        passed += diag["gate"] == "passed"
        seconds.append(diag["sampling_seconds"])
        if not named:
            print(f"  sim {i + 1}: no draws ({diag['warnings']})", file=sys.stderr)
            continue
        for v in (v for v in GLOBALS if v in named):
            ranks[v].extend(ranks_of(np.array([truth[v]]), thin(named[v].reshape(-1, 1), args.ranks), rng))
        true_rate = np.concatenate([s.truth["rate"] for s in sims])
        ranks["rate"].extend(ranks_of(true_rate, thin(named["rate"], args.ranks), rng))
        lo, hi = np.quantile(named["rate"], [0.05, 0.95], axis=0)
        covered.extend((true_rate >= lo) & (true_rate <= hi))
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{args.sims} portfolios, {time.perf_counter() - t_all:.0f} s", file=sys.stderr, flush=True)
    L, B = args.ranks, args.bins
    edges = np.linspace(0, L + 1, B + 1)
    slots = args.campaigns * args.creatives
    print(
        f"# sbc_portfolio_hierarchical {time.strftime('%Y-%m-%d %H:%M')}  sims={args.sims} campaigns={args.campaigns} "
        f"creatives={args.creatives} days={args.days} L={L} bins={B} forms={sorted(forms)} load {load0:.1f} -> "
        f"{os.getloadavg()[0]:.1f}"
    )
    for v in (v for v in GLOBALS if ranks[v]):
        r = np.asarray(ranks[v])
        chi2, p = stats.chisquare(np.histogram(r, bins=edges)[0])
        print(f"{v:15} {r.size:5d} ranks  chi2 {chi2:6.2f}  p {p:.3f}  {'pass' if p >= 0.01 else 'FAIL'}")
    per = np.asarray(ranks["rate"]).reshape(-1, slots)
    slot_p = [stats.chisquare(np.histogram(per[:, j], bins=edges)[0])[1] for j in range(slots)]
    p_bonf = min(1.0, slots * min(slot_p))
    print(
        f"{'rates':15} {per.size:5d} ranks  Bonferroni over {slots} slots p {p_bonf:.3f}  "
        f"{'pass' if p_bonf >= 0.01 else 'FAIL'} (slots: {' '.join(f'{q:.2f}' for q in slot_p)})"
    )
    cov = float(np.mean(covered))
    print(
        f"90% interval coverage of true rates: {cov:.3f} (n={len(covered)}, se {np.sqrt(0.09 / len(covered)):.3f}); "
        f"gate passed {passed}/{args.sims}; median fit {np.median(seconds):.2f} s; total {time.perf_counter() - t_all:.0f} s"
    )


if __name__ == "__main__":
    main()

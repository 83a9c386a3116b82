"""`sparkbandit simulate` with the hierarchical model against the conjugate one, on the same worlds.

Runs a study (default configs/studies/hierarchical.toml) twice, once per model, and prints each policy's
figures and the paired differences (hierarchical - conjugate) per replicate: the worlds and the random
streams are the same for both runs (the seed contract of `simulations.runner`), so the pairs share their
luck. Also the wall time of each run.

Usage::

    python benchmarks/study_hierarchical.py --workers 2          # the study's replicates (300)
    python benchmarks/study_hierarchical.py --replicates 60
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

from simulations.metrics import policy_summary  # noqa: E402
from simulations.runner import load_spec, run_study  # noqa: E402


def _progress(label: str):
    """A one-line progress report on stderr per chunk (replicates done, elapsed)."""
    t0 = time.perf_counter()

    def tick(done: int, total: int) -> None:
        print(
            f"\r  {label}: chunk {done}/{total}, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True
        )
        if done == total:
            print(file=sys.stderr)

    return tick


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", nargs="?", default=str(ROOT / "configs" / "studies" / "hierarchical.toml"))
    ap.add_argument("--replicates", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    base = load_spec(args.study).with_overrides(replicates=args.replicates)
    results, seconds = {}, {}
    for model in ("conjugate", "hierarchical"):
        t0 = time.perf_counter()
        spec = base.with_overrides(model=model)
        results[model] = run_study(spec, workers=args.workers, progress=_progress(model))
        seconds[model] = time.perf_counter() - t0
    s = base.study.study
    print(
        f"# study_hierarchical {time.strftime('%Y-%m-%d %H:%M')}  {s.name}: {base.replicates} replicates x "
        f"{s.periods} periods; conjugate {seconds['conjugate']:.1f} s, hierarchical {seconds['hierarchical']:.1f} s"
    )
    print(f"{'model':13} {'policy':10} {'conversions':>14} {'regret':>14} {'P(correct)':>11} {'fallbacks':>9}")
    for model, res in results.items():
        for policy in s.policies:
            p = policy_summary(res, policy)
            print(
                f"{model:13} {policy:10} {p['conversions_mean']:8.1f} ± {p['conversions_se'] or 0:4.1f} "
                f"{p['regret_mean']:8.1f} ± {p['regret_se'] or 0:4.1f} {p['p_correct_winner'] or float('nan'):11.2f} "
                f"{p['model_fallbacks']:9d}"
            )
    n = base.replicates
    for policy in s.policies:
        if policy == "oracle":
            continue
        h, c = results["hierarchical"].policies[policy], results["conjugate"].policies[policy]
        for name in ("conversions", "regret"):
            d = h[name] - c[name]
            print(
                f"paired {policy} {name} (hierarchical - conjugate): {d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(n):.2f}"
            )


if __name__ == "__main__":
    main()

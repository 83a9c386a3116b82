"""Hierarchical vs conjugate model driving the production daily bandit: paired, on the same worlds.

Runs the shipped study `configs/studies/hierarchical.toml` through the simulator (`simulations.runner.run_study`)
twice, once with study.model = "hierarchical" (fast path, [model] method = "laplace_is") and once with
study.model = "conjugate". Everything else is the production code: the allocation policies of
`allocator.decisions.policies` (thompson, oracle), the plan's guardrails, the OR stopping rule and the
world's conversion delay. The two runs share the seed, so each replicate is the same world (same true rates,
CPMs, organic engagement) and its outcomes come from the same random stream (common random numbers; the
streams diverge only where the two models allocate differently).

Reported per model, with standard errors over replicates: true conversions a campaign, the share of the
oracle's conversions, P(correct) (declared winner, else final leader, is the true best), how often a winner
was declared and when, regret (expected conversions lost against the oracle) and the hierarchical fits that
fell back; then paired differences hierarchical - conjugate, overall and for the two halves of the horizon.

Usage::

    python benchmarks/bandit_hierarchical.py --replicates 300 --workers 2   # ~100 CPU s: ~0.02 s a hierarchical fit
    python benchmarks/bandit_hierarchical.py --quick              # 4 replicates, to check it runs
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations.runner import load_spec, run_study  # noqa: E402

MODELS = ("conjugate", "hierarchical")


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error over replicates (NaN entries ignored)."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if x.size < 2:
        return float(x.mean()) if x.size else float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


@contextlib.contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A `run_study` progress callback: a rich bar on a terminal, else one line a step on stderr (a log file
    shows how far a long run is, and its pace)."""
    t0 = time.perf_counter()
    if not sys.stderr.isatty():

        def line(done: int, n: int) -> None:
            print(
                f"  {label}: {done}/{n} steps, {time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, n: bar.update(task, completed=done, total=n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default=str(ROOT / "configs/studies/hierarchical.toml"))
    ap.add_argument("--replicates", type=int, default=60)
    ap.add_argument("--seed", type=int, default=None, help="default: the study's")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.replicates = 4
    base = load_spec(args.study)
    res = {}
    for model in MODELS:
        spec = base.with_overrides(replicates=args.replicates, seed=args.seed, model=model)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        with progress_bar(model, spec.n_chunks) as tick:
            res[model] = run_study(spec, workers=args.workers, progress=tick)
        print(
            f"  {model}: {time.perf_counter() - t0:.0f} s wall, {res[model].cpu_seconds:.0f} CPU s, "
            f"{args.workers} worker(s), load {load0:.1f} -> {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
        )
    s = base.study.study
    n = args.replicates
    print(
        f"# bandit_hierarchical {time.strftime('%Y-%m-%d %H:%M')}  study={Path(args.study).name} "
        f"replicates={n} periods={s.periods} seed={args.seed if args.seed is not None else s.seed} "
        f"method={base.study.model.method} policy=thompson (production), oracle as reference"
    )
    oracle = res["conjugate"].policies["oracle"]["conversions"]
    print(
        f"{'model':13} {'conversions':>11} {'+-se':>6} {'of oracle':>9} {'P(correct)':>10} {'+-se':>6} "
        f"{'declared':>8} {'on day':>6} {'regret':>7} {'fallbacks':>9}"
    )
    for model in MODELS:
        r = res[model].policies["thompson"]
        c, cse = mean_se(r["conversions"])
        pc, pse = mean_se(r["correct"])
        print(
            f"{model:13} {c:11.2f} {cse:6.2f} {np.mean(r['conversions'] / oracle):9.3f} {pc:10.3f} {pse:6.3f} "
            f"{mean_se(r['declared'])[0]:8.3f} {mean_se(r['decision_day'])[0]:6.1f} {mean_se(r['regret'])[0]:7.2f} "
            f"{int(np.sum(r['fallbacks'])):9d}"
        )
    o2 = res["hierarchical"].policies["oracle"]["conversions"]
    print(f"oracle conversions {mean_se(oracle)[0]:.2f} (identical in both runs: {bool(np.allclose(oracle, o2))})")
    h, cj = res["hierarchical"].policies["thompson"], res["conjugate"].policies["thompson"]
    for name in ("conversions", "regret", "correct"):
        d, se = mean_se(h[name] - cj[name])
        print(f"paired hierarchical - conjugate, {name}: {d:+.3f} +- {se:.3f}")
    half = s.periods // 2
    dr = h["regret_t"] - cj["regret_t"]
    for label, part in ((f"days 1-{half}", dr[:, :half]), (f"days {half + 1}-{s.periods}", dr[:, half:])):
        d, se = mean_se(part.sum(axis=1))
        print(f"    regret difference {label}: {d:+.3f} +- {se:.3f}")


if __name__ == "__main__":
    main()

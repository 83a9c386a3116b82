"""Speed of the simulator, and MABWiser's Thompson sampling on the same campaign.

1. 200 replicates x 30 days x 5 creatives, policy thompson, one core (configs/studies/realistic.toml with
   the plan's guardrails and stopping rule). Target <= 1 s.
2. 10,000 replicates of the same, with 1 and 2 local workers. Targets <= 30 s on 2 cores, speed-up >= 1.6x.
3. Thompson sampling on the textbook campaign of configs/studies/bernoulli.toml (5 arms, 1,000 impressions a
   day, 30 days, no guardrails, stopping rule off): sparkbandit's batched simulator against MABWiser 2.x
   (one posterior draw per impression via predict(contexts), partial_fit once a day). Time per replicate,
   their ratio, and the regret of both (they should agree within standard errors).

Usage::

    python benchmarks/bench_simulate.py            # everything (about 2 minutes on 2 cores)
    python benchmarks/bench_simulate.py --quick    # 2,000 instead of 10,000 replicates, 5 MABWiser replicates
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from simulations.runner import StudySpec, load_spec, run_study  # noqa: E402


def realistic(policies: list[str], replicates: int) -> StudySpec:
    spec = load_spec(ROOT / "configs" / "studies" / "realistic.toml")
    s = spec.study
    study = s.model_copy(update={"study": s.study.model_copy(update={"policies": policies, "replicates": replicates})})
    return StudySpec(study)


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_one_core() -> None:
    spec = realistic(["thompson"], 200)
    run_study(spec)  # warm-up (imports, caches)
    t, res = timed(lambda: run_study(spec), repeat=3)
    r = res.policies["thompson"]
    print(f"[1] 200 replicates x 30 days x 5 creatives, thompson, 1 core: {t:.2f} s (best of 3; target <= 1 s)")
    print(f"    regret {r['regret'].mean():.1f} +/- {r['regret'].std(ddof=1) / np.sqrt(200):.1f} conversions")


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def control_speedup(n: int = 10_000_000) -> float:
    """Speed-up of 2 processes on a trivial CPU-bound task: what the machine gives right now."""
    import multiprocessing

    t0 = time.perf_counter()
    _burn(n)
    _burn(n)
    serial = time.perf_counter() - t0
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        pool.map(_burn, [1, 1])  # start the workers first
        t0 = time.perf_counter()
        pool.map(_burn, [n, n])
        parallel = time.perf_counter() - t0
    return serial / parallel


def bench_scale(replicates: int) -> None:
    spec = realistic(["thompson"], replicates)
    control = control_speedup()
    t1, a = timed(lambda: run_study(spec, workers=1))
    t2, b = timed(lambda: run_study(spec, workers=2))
    same = all(
        np.array_equal(a.policies["thompson"][k], b.policies["thompson"][k], equal_nan=True)
        for k in a.policies["thompson"]
    )
    print(
        f"[2] {replicates:,} replicates x 30 days, thompson: 1 worker {t1:.1f} s, 2 workers {t2:.1f} s, "
        f"speed-up {t1 / t2:.2f}x (targets <= 30 s on 2 cores, >= 1.6x); identical numbers: {same}"
    )
    print(
        f"    CPU time in the chunks: 1 worker {a.cpu_seconds:.1f} s ({a.cpu_seconds / t1:.0%} of the wall time), "
        f"2 workers {b.cpu_seconds:.1f} s ({b.cpu_seconds / t2:.0%} of the wall time, 200% = both cores busy); "
        f"on 2 idle cores 10,000 replicates would take about {a.cpu_seconds / 2 * 10_000 / replicates:.0f} s"
    )
    print(
        f"    ({spec.n_chunks} chunks of {spec.chunk_size}; cores visible: {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}; control: a trivial CPU-bound task runs {control:.2f}x faster "
        "on 2 processes than on 1 right now)"
    )


def bench_mabwiser(replicates_mab: int, replicates_ours: int) -> None:
    from mabwiser.mab import MAB, LearningPolicy

    spec = load_spec(ROOT / "configs" / "studies" / "bernoulli.toml")
    s = spec.study
    rates = np.array(s.world.conversion_rates)
    per_day, days = s.world.impressions_per_period, s.study.periods
    arms = list(range(rates.size))

    def mabwiser_run(seed: int) -> float:
        rng = np.random.default_rng(seed)
        mab = MAB(arms, LearningPolicy.ThompsonSampling(), seed=seed)
        mab.fit(np.array([], dtype=int), np.array([]))  # Beta(1, 1): 1 success and 1 failure per arm
        regret = 0.0
        ctx = np.zeros((per_day, 1))
        for _ in range(days):
            decisions = np.asarray(mab.predict(ctx))
            rewards = (rng.random(per_day) < rates[decisions]).astype(int)
            regret += float((rates.max() - rates[decisions]).sum())
            mab.partial_fit(decisions, rewards)
        return regret

    t0 = time.perf_counter()
    mab_regret = np.array([mabwiser_run(i) for i in range(replicates_mab)])
    t_mab = (time.perf_counter() - t0) / replicates_mab

    ours_study = s.model_copy(
        update={
            "study": s.study.model_copy(
                update={"policies": ["thompson", "thompson_per_impression"], "replicates": replicates_ours}
            ),
            "decision": s.decision.model_copy(update={"min_days": 10**6}),  # stopping rule off, as MABWiser
        }
    )
    spec_ours = StudySpec(ours_study)
    one = ours_study.model_copy(update={"study": ours_study.study.model_copy(update={"policies": ["thompson"]})})
    t_ours, _ = timed(lambda: run_study(StudySpec(one)), repeat=2)
    t_ours /= replicates_ours
    res = run_study(spec_ours)

    def fmt(x: np.ndarray) -> str:
        return f"{x.mean():.1f} +/- {x.std(ddof=1) / np.sqrt(x.size):.1f}"

    print(
        f"[3] Thompson on the bernoulli.toml campaign (5 arms, {per_day:,} impressions/day, {days} days), "
        "stopping rule off:"
    )
    print(
        f"    MABWiser (draw per impression, {replicates_mab} replicates): {t_mab * 1e3:.1f} ms per replicate, "
        f"regret {fmt(mab_regret)}"
    )
    print(
        f"    sparkbandit thompson (shares, {replicates_ours} replicates): {t_ours * 1e3:.2f} ms per replicate, "
        f"regret {fmt(res.policies['thompson']['regret'])}"
    )
    print(f"    sparkbandit thompson_per_impression: regret {fmt(res.policies['thompson_per_impression']['regret'])}")
    print(f"    speed ratio MABWiser / sparkbandit: {t_mab / t_ours:.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    bench_one_core()
    bench_scale(2_000 if args.quick else 10_000)
    bench_mabwiser(5 if args.quick else 20, 200 if args.quick else 1000)


if __name__ == "__main__":
    main()

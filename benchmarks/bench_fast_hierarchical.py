"""Wall and CPU time of the hierarchical model's fast path (`[model] method = "laplace_is"`).

(a) `sparkbandit reallocate` on the bundled example plan with `model = "hierarchical"`, in a new process:
    warm (bytecode cached) and fresh (an empty bytecode cache via ``-X pycache_prefix``, as after a new
    install; PyTensor's cache does not matter: the fast path does not import it). Target <= 1.5 s / 3 s.
(b) Portfolios of 10, 30 and 100 campaigns x 5 creatives x 30 days (50, 150, 500 creatives) fitted in one
    model (the nested fast path above 60 parameters). Target for 500 <= 5 s.
Prints the load average, since the machine may be shared.

    python benchmarks/bench_fast_hierarchical.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cli(plan: Path, env: dict, extra: list[str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, *extra, "-m", "allocator", "reallocate", "--plan", str(plan), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    import json

    return wall, cpu, json.loads(out.stdout)["diagnostics"].get("method", "?")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(
        f"# bench_fast_hierarchical {time.strftime('%Y-%m-%d %H:%M')} UTC  nproc={os.cpu_count()}  "
        f"load {os.getloadavg()[0]:.1f}"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.toml"
        text = (ROOT / "configs" / "example_plan.toml").read_text()
        plan.write_text(text.replace('model = "conjugate"', 'model = "hierarchical"', 1))
        (Path(tmp) / "example_data.csv").write_text((ROOT / "configs" / "example_data.csv").read_text())
        _cli(plan, env, [])  # warm the bytecode cache
        for label, extra in (("warm", []), ("fresh", None)):
            rows = []
            for i in range(args.repeats):
                flags = extra if extra is not None else ["-X", f"pycache_prefix={tmp}/pyc{i}"]
                rows.append(_cli(plan, env, flags))
            walls = [r[0] for r in rows]
            print(
                f"(a) reallocate, hierarchical example, {label:5}: wall {np.median(walls):.2f} s "
                f"(runs {', '.join(f'{w:.2f}' for w in walls)}), CPU {np.median([r[1] for r in rows]):.2f} s, "
                f"method {rows[0][2]}; load {os.getloadavg()[0]:.1f}"
            )

    from models.hierarchical import HierarchicalModel, simulate_campaign

    for n_campaigns in (10, 30, 100):
        rng = np.random.default_rng(0)
        sims = [simulate_campaign(rng, n_creatives=5, n_days=30) for _ in range(n_campaigns)]
        model = HierarchicalModel()
        t0, c0 = time.perf_counter(), time.process_time()
        posts = model.fit_portfolio([s.daily for s in sims], [s.organic_rate for s in sims], n_draws=1000, rng=rng)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        d = posts[0].diagnostics
        print(
            f"(b) {5 * n_campaigns}-creative portfolio ({n_campaigns} x 5 x 30): wall {wall:.2f} s, CPU {cpu:.2f} s, "
            f"method {d['method']} ({d.get('approximation')}), Pareto k {d['pareto_k']}, conditional k "
            f"{d.get('conditional_k')}, ESS {d.get('ess')}, fast-path s {d.get('sampling_seconds')}; "
            f"load {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()

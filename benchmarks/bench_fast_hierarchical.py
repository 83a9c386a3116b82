"""Wall and CPU time of the hierarchical model's fast path (`[model] method = "laplace_is"`).

(a) `sparkbandit reallocate` on the bundled example plan with `model = "hierarchical"`, in a new process:
    warm (bytecode cached) and fresh (an empty bytecode cache via ``-X pycache_prefix``, as after a new
    install; PyTensor's cache does not matter: the fast path does not import it). Target <= 1.5 s / 3 s.
(c) With ``--fresh-venv DIR``: the real fresh install: a new venv at DIR (Python 3.12.1 through pyenv), ``pip
    install`` of this tree (pip byte-compiles the installed packages, as any install does), then the FIRST
    `sparkbandit reallocate` of the hierarchical example in it, and ``--repeats`` warm runs after it. The
    ``pycache_prefix`` row of (a) recompiles the standard library too, which no install leaves to the first
    run: it is the pessimistic bound, this the real first morning.
(b) Portfolios of 10, 30 and 100 campaigns x 5 creatives x 30 days (50, 150, 500 creatives) fitted in one
    model (the nested fast path above 60 parameters). Target for 500 <= 5 s.
Prints the load average, since the machine may be shared.

    python benchmarks/bench_fast_hierarchical.py [--repeats 3]
    python benchmarks/bench_fast_hierarchical.py --fresh-venv /tmp/fresh   # (c) only
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


def _cli(plan: Path, env: dict, extra: list[str], command: list[str] | None = None) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(
        [*(command or [sys.executable, *extra, "-m", "allocator"]), "reallocate", "--plan", str(plan), "--json"],
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


def _hierarchical_example(folder: Path) -> Path:
    """The bundled example plan with ``model = "hierarchical"`` and its data, copied to `folder`."""
    plan = folder / "plan.toml"
    text = (ROOT / "configs" / "example_plan.toml").read_text()
    plan.write_text(text.replace('model = "conjugate"', 'model = "hierarchical"', 1))
    (folder / "example_data.csv").write_text((ROOT / "configs" / "example_data.csv").read_text())
    return plan


def fresh_venv(venv: Path, repeats: int) -> None:
    """(c): a new venv, pip install of this tree, the first reallocate in it, then warm runs."""
    if venv.exists():
        raise SystemExit(f"{venv} exists: give a new folder (the point is a fresh install)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    t0 = time.perf_counter()
    subprocess.run(["python3", "-m", "venv", str(venv)], env={**env, "PYENV_VERSION": "3.12.1"}, check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], env=env, check=True)
    print(f"(c) new venv and pip install: {time.perf_counter() - t0:.0f} s; load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        plan = _hierarchical_example(Path(tmp))
        command = [str(venv / "bin" / "sparkbandit")]
        load = os.getloadavg()[0]
        wall, cpu, method = _cli(plan, env, [], command)
        print(
            f"(c) reallocate, hierarchical example, FIRST run after the install: wall {wall:.2f} s, CPU {cpu:.2f} s, "
            f"method {method}; load {load:.1f}"
        )
        rows = [_cli(plan, env, [], command) for _ in range(repeats)]
        walls = [r[0] for r in rows]
        print(
            f"(c) the same, warm runs after it: wall {np.median(walls):.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}), "
            f"CPU {np.median([r[1] for r in rows]):.2f} s; load {os.getloadavg()[0]:.1f}"
        )
        # the conjugate example in the same install, for the cost of choosing the hierarchical model
        conjugate = Path(tmp) / "conjugate.toml"
        conjugate.write_text((ROOT / "configs" / "example_plan.toml").read_text())
        rows = [_cli(conjugate, env, [], command) for _ in range(repeats)]
        walls = [r[0] for r in rows]
        print(
            f"(c) the conjugate example (configs/example_plan.toml as shipped), same install, warm: wall "
            f"{np.median(walls):.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}), CPU {np.median([r[1] for r in rows]):.2f} s; "
            f"load {os.getloadavg()[0]:.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fresh-venv", type=Path, help="measure (c) only, in a new venv at this folder")
    args = ap.parse_args()
    print(
        f"# bench_fast_hierarchical {time.strftime('%Y-%m-%d %H:%M')} UTC  nproc={os.cpu_count()}  "
        f"load {os.getloadavg()[0]:.1f}"
    )
    if args.fresh_venv is not None:
        fresh_venv(args.fresh_venv, args.repeats)
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        plan = _hierarchical_example(Path(tmp))
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

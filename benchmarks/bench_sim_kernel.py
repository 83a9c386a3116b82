"""The simulator's speed and kernel time (issue 14), for this tree and another commit in the same run.

1. Whole-process wall time and CPU of `sparkbandit simulate configs/studies/bernoulli.toml --replicates 200
   --json` (200 replicates x 30 days x 5 creatives, the study's policies), median of `--repeats` runs of each
   tree, interleaved so both see the same load; CPU (user + system of the child, `resource.getrusage`) is
   reported beside the wall time because other processes share the cores. Target (issue 14): <= 1.0 s wall
   on 2 quiet cores.
2. The same study in one process, simulation only (`run_study`, best of 5 by CPU), and per policy (the study
   with that policy alone): where the seconds go.
3. Kernel (system) CPU as a share of all CPU in a 10,000-replicate study, `sparkbandit simulate
   configs/studies/realistic.toml --replicates 10000 --workers 1` (`--replicates` to change), one run per tree:
   user and system seconds and minor page faults of the child. Target (issue 14): system < 5%.

Usage::

    python benchmarks/bench_sim_kernel.py --before main            # about 4 min on 2 shared cores
    python benchmarks/bench_sim_kernel.py --before main --quick    # 2,000 replicates in part 3

The other tree is `git archive COMMIT` unpacked into a temporary folder, run with PYTHONPATH set to it
(`benchmarks/bench_startup.py`'s `env_for` and `once`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_startup import env_for, once  # noqa: E402

BERNOULLI = ["simulate", str(ROOT / "configs/studies/bernoulli.toml"), "--replicates", "200", "--json"]


def tree(commit: str) -> Path:
    """The files of `commit` (of this repository) in a temporary folder."""
    folder = Path(tempfile.mkdtemp()) / commit.replace("/", "_")
    folder.mkdir()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def child_cpu() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def timed_once(args: list[str], root: Path) -> tuple[float, float, float]:
    """(wall, user, system) seconds of one `python -m allocator ARGS` run of the tree at `root`."""
    u0, s0, _ = child_cpu()
    wall = once(args, root)
    u1, s1, _ = child_cpu()
    return wall, u1 - u0, s1 - s0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def n_policies() -> int:
    import tomllib

    with open(ROOT / "configs/studies/bernoulli.toml", "rb") as f:
        return len(tomllib.load(f)["study"]["policies"])


def part1(roots: list[Path], names: list[str], repeats: int) -> None:
    for root in roots:
        once(BERNOULLI, root)  # warm-up: bytecode, page cache
    runs: list[list[tuple[float, float, float]]] = [[] for _ in roots]
    for _ in range(repeats):
        for i, root in enumerate(roots):
            runs[i].append(timed_once(BERNOULLI, root))
    print(
        f"[1] simulate bernoulli.toml, 200 replicates x 30 days x 5 creatives, {n_policies()} policies, whole process "
        f"(median of {repeats}; load {load()})"
    )
    for name, r in zip(names, runs):
        wall = statistics.median(x[0] for x in r)
        user = statistics.median(x[1] for x in r)
        sys_ = statistics.median(x[2] for x in r)
        print(
            f"    {name:<8} wall {wall:5.2f} s (best {min(x[0] for x in r):.2f})   CPU user {user:5.2f} + sys "
            f"{sys_:4.2f} s   (target <= 1.0 s wall)"
        )


# Runs in the child with PYTHONPATH set to the tree: simulation CPU only, whole study and each policy alone.
SNIPPET = """
import json, sys, time
from simulations.runner import load_spec, run_study
spec = load_spec(sys.argv[1]).with_overrides(replicates=int(sys.argv[2]))
s = spec.study
def alone(p):
    return type(spec)(s.model_copy(update={"study": s.study.model_copy(update={"policies": [p]})}))
def best(sp, n=5):
    run_study(sp)
    out = []
    for _ in range(n):
        t0 = time.process_time(); run_study(sp); out.append(time.process_time() - t0)
    return min(out)
res = {"all": best(spec)}
for p in s.study.policies:
    res[p] = best(alone(p), 3)
print(json.dumps(res))
"""


def part2(roots: list[Path], names: list[str]) -> None:
    study = str(ROOT / "configs/studies/bernoulli.toml")
    got = []
    for root in roots:
        done = subprocess.run(
            [sys.executable, "-c", SNIPPET, study, "200"], cwd=root, env=env_for(root), capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        got.append(json.loads(done.stdout))
    print(
        f"[2] the same study in one process, simulation CPU only (best of 5; each policy alone best of 3; "
        f"load {load()})"
    )
    header = "    " + f"{'':<28}" + "".join(f"{n:>10}" for n in names)
    print(header)
    for key in got[0]:
        label = f"all {len(got[0]) - 1} policies" if key == "all" else f"  {key} alone"
        print("    " + f"{label:<28}" + "".join(f"{g[key]:>9.3f}s" for g in got))


def part3(roots: list[Path], names: list[str], replicates: int) -> None:
    args = ["simulate", str(ROOT / "configs/studies/realistic.toml"), "--replicates", str(replicates),
            "--workers", "1", "--json"]  # fmt: skip
    print(f"[3] simulate realistic.toml --replicates {replicates:,} --workers 1, one run each (load {load()})")
    for name, root in zip(names, roots):
        u0, s0, f0 = child_cpu()
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "allocator", *args], cwd=root, env=env_for(root), capture_output=True, check=True
        )
        wall = time.perf_counter() - t0
        u1, s1, f1 = child_cpu()
        user, sys_ = u1 - u0, s1 - s0
        print(
            f"    {name:<8} wall {wall:6.1f} s   user {user:6.1f} s   sys {sys_:5.2f} s   system share "
            f"{sys_ / (user + sys_):5.1%}   minor page faults {f1 - f0:,}   (target: system < 5%; load {load()})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a commit to measure in the same run (e.g. main)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--replicates", type=int, default=10_000, help="replicates of part 3")
    parser.add_argument("--quick", action="store_true", help="2,000 replicates in part 3, 3 repeats in part 1")
    parser.add_argument("--skip", default="", help="parts to skip, e.g. 3")
    args = parser.parse_args()
    if args.quick:
        args.replicates, args.repeats = 2_000, 3
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(
        f"bench_sim_kernel  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}  {platform.platform()}  {cpu}  "
        f"python {platform.python_version()}  nproc {os.cpu_count()}  load {load()}"
    )
    roots, names = [ROOT], ["this"]
    if args.before:
        roots.append(tree(args.before))
        names.append(args.before[:8])
    if "1" not in args.skip:
        part1(roots, names, args.repeats)
    if "2" not in args.skip:
        part2(roots, names)
    if "3" not in args.skip:
        part3(roots, names, args.replicates)


if __name__ == "__main__":
    main()

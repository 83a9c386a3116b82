"""Issue 12 figures: the study-size estimate against a measured run, and how fast Ctrl-C stops a pool.

    python benchmarks/bench_trust.py

1. Runs configs/studies/realistic.toml with 250 replicates (one chunk) in this process and compares the
   CPU seconds with `simulations.study.estimate_size` (the constant CONJUGATE_SECONDS_PER_DRAW).
2. Starts `sparkbandit simulate realistic.toml --replicates 20000 --workers 2 --force` in a subprocess,
   waits for the pool, sends SIGINT and reports the seconds until the process exited (5 tries).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STUDY = ROOT / "configs" / "studies" / "realistic.toml"


def children(pid: int) -> int:
    parents = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat") as f:
                    parents[int(e)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return len(found)


def main() -> None:
    from simulations.runner import load_spec, run_study
    from simulations.study import estimate_size

    spec = load_spec(STUDY).with_overrides(replicates=250)
    t0 = time.process_time()
    res = run_study(spec)
    cpu = time.process_time() - t0
    est = estimate_size(spec.study, 250)
    print(
        f"realistic.toml, 250 replicates: measured {cpu:.2f} CPU s, estimated {est.cpu_seconds:.2f} CPU s "
        f"(ratio {cpu / est.cpu_seconds:.2f}); {res.replicates} replicates"
    )

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    stops = []
    for _ in range(5):
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "allocator",
                "simulate",
                str(STUDY),
                "--replicates",
                "20000",
                "--workers",
                "2",
                "--force",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while children(p.pid) < 3:
            time.sleep(0.05)
        time.sleep(1.0)
        t = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
        stops.append(time.monotonic() - t)
    print(
        f"Ctrl-C on --workers 2: exited after {statistics.median(stops):.2f} s median "
        f"(min {min(stops):.2f}, max {max(stops):.2f}, 5 tries)"
    )


if __name__ == "__main__":
    main()

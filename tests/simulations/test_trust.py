"""simulate: outputs whole or not at all, failures in one line, study size bound, Ctrl-C stops a pool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator.cli.main import main
from simulations.study import estimate_size, load_study

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "configs" / "studies"


def _run(*args: str):
    return CliRunner().invoke(main, ["simulate", *args])


def test_out_on_a_read_only_folder_is_one_line_and_writes_nothing(readonly_dir):
    out = readonly_dir / "out"
    r = _run(str(STUDIES / "bernoulli.toml"), "--replicates", "2", "--out", str(out), "--format", "json")
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert r.exit_code == 2
    assert r.output == f"error: cannot write {out} ({reason}); choose a folder you can write to; nothing was written\n"
    assert not out.exists()


def test_out_on_a_full_disk_leaves_no_half_written_results(full_dir):
    out = full_dir / "out"
    r = _run(str(STUDIES / "bernoulli.toml"), "--replicates", "2", "--out", str(out), "--format", "json")
    assert r.exit_code == 2
    assert r.output == (
        f"error: cannot write {out} (No space left on device); free some disk space or write elsewhere; "
        "nothing was written\n"
    )
    assert sorted(p.name for p in full_dir.iterdir()) == ["filler"]


def test_out_refuses_a_folder_of_other_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = _run(str(STUDIES / "bernoulli.toml"), "--replicates", "2", "--out", str(tmp_path), "--format", "json")
    assert r.exit_code == 2
    assert r.output == (
        f"error: {tmp_path} holds files sparkbandit did not write (keep.txt); give a new or empty folder\n"
    )


def test_format_csv_and_json_alias():
    r = _run(str(STUDIES / "bernoulli.toml"), "--replicates", "2", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("policy,conversions_mean,conversions_se,regret_mean")
    assert [line.split(",")[0] for line in lines[1:]] == [
        "thompson",
        "top_two_thompson",
        "uniform",
        "ab_test",
        "greedy",
        "ucb",
        "explore_then_commit",
        "oracle",
    ]
    r = _run(str(STUDIES / "bernoulli.toml"), "--replicates", "2", "--json", "--format", "csv")
    assert r.exit_code == 2 and r.output.endswith(
        "error: --json and --format csv contradict each other; give one of them\n"
    )


def test_a_study_of_ten_million_replicates_is_refused_with_its_estimate():
    study = STUDIES / "realistic.toml"
    size = estimate_size(load_study(study).study, 10_000_000)
    # 10^7 replicates x 30 periods x 8 policies x 5 creatives x 256 draws x 2e-8 s
    assert size.cpu_seconds == pytest.approx(1e7 * 30 * 8 * 5 * 256 * 2e-8)
    r = _run(str(study), "--replicates", "10000000")
    assert r.exit_code == 2
    assert r.output == (
        f"error: {study}: study.replicates: 10,000,000 replicates would take {size.describe()}, more than an hour; "
        "lower --replicates (or study.replicates), add --workers, or add --force to run it anyway\n"
    )
    # results: 2 copies x 8 policies x 10^7 replicates x (4 series x 30 periods + 9 scalars) x 8 bytes,
    # plus one chunk's working draws (250 x 5 x 256 x 8 x 4)
    assert size.memory_bytes == 2 * 8 * 10_000_000 * (4 * 30 + 9) * 8 + 250 * 5 * 256 * 8 * 4
    assert size.describe() == "about 17.1 hours on 1 worker and 153.8 GiB of memory"


def test_hierarchical_estimate_counts_fits():
    s = load_study(STUDIES / "realistic.toml").study
    h = type(s).model_validate({**s.model_dump(), "study": {**s.study.model_dump(), "model": "hierarchical"}})
    size = estimate_size(h, 100, workers=2)
    # seven learning policies (the oracle fits nothing), 0.03 s a fit on the default fast path
    assert h.model.method == "laplace_is"
    assert size.cpu_seconds == pytest.approx(100 * 30 * 7 * 0.03)
    assert size.workers == 1  # 100 replicates are one chunk of 250: one worker can run it
    nuts = type(h).model_validate({**h.model_dump(), "model": {**h.model.model_dump(), "method": "nuts"}})
    assert estimate_size(nuts, 100).cpu_seconds == pytest.approx(100 * 30 * 7 * 0.3)


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the worker processes")
def test_ctrl_c_stops_a_worker_pool_quickly_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The bound: a generous multiple of what starting the CLI costs on this machine right now.
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "allocator", "simulate", "--help"], env=env, capture_output=True, check=True)
    bound = 2.0 + 10 * (time.monotonic() - t0)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "allocator",
            "simulate",
            str(STUDIES / "realistic.toml"),
            "--replicates",
            "20000",
            "--workers",
            "2",
            "--out",
            str(out),
            "--force",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_descendants(proc.pid)) < 3 and time.monotonic() < deadline:  # forkserver + 2 workers
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        workers = _descendants(proc.pid)
        assert len(workers) >= 3, "the pool never started"
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "error: interrupted: the study was stopped and nothing was written"
    assert "Traceback" not in stderr and stdout == ""
    assert took < bound, (took, bound)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    time.sleep(0.5)
    alive = [
        p
        for p in workers
        if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
    ]
    assert alive == []


def test_os_errors_blame_what_failed():
    from simulations.cli import _os_error_line

    assert _os_error_line(PermissionError(13, "Permission denied", "past.csv"), None) == (
        "past.csv: cannot read (Permission denied); check the path and its permissions"
    )
    assert _os_error_line(ConnectionRefusedError(111, "Connection refused"), "tcp://h:8786") == (
        "scheduler tcp://h:8786: Connection refused; check the address and that the scheduler is running"
    )
    assert _os_error_line(OSError(24, "Too many open files"), None) == (
        "worker pool: Too many open files; try --workers 1"
    )


def test_progress_moves_within_a_chunk():
    """In one process the bar counts chunk-policies, so a single long (hierarchical) chunk still moves."""
    from simulations.runner import load_spec, run_study

    spec = load_spec(STUDIES / "bernoulli.toml").with_overrides(replicates=2)
    seen: list[tuple[int, int]] = []
    run_study(spec, progress=lambda done, total: seen.append((done, total)))
    n = len(spec.study.study.policies)
    assert seen == [(i, n) for i in range(1, n + 1)]

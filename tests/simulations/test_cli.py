"""`sparkbandit simulate` through click's CliRunner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator.cli.main import main

STUDIES = Path(__file__).resolve().parents[2] / "configs" / "studies"
KEYS = {
    "conversions_mean",
    "conversions_se",
    "regret_mean",
    "regret_se",
    "spend_mean",
    "cpa_mean",
    "share_on_best",
    "p_correct_winner",
    "decision_day_mean",
    "model_fallbacks",
}


def _run(*args: str):
    return CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)


def test_table():
    r = _run(str(STUDIES / "bernoulli.toml"), "--replicates", "4")
    assert r.exit_code == 0, r.output
    assert "textbook Bernoulli bandit: 4 replicates x 30 periods" in r.output
    for policy in ("thompson", "uniform", "explore_then_commit", "oracle"):
        assert policy in r.output


def test_json_keys_and_nulls():
    r = _run(str(STUDIES / "bernoulli.toml"), "--replicates", "3", "--seed", "9", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["study"] == "textbook Bernoulli bandit" and data["replicates"] == 3 and data["periods"] == 30
    assert set(data["policies"]) == {
        "thompson",
        "top_two_thompson",
        "uniform",
        "ab_test",
        "greedy",
        "ucb",
        "explore_then_commit",
        "oracle",
    }
    for figures in data["policies"].values():
        assert set(figures) == KEYS
        assert figures["cpa_mean"] is None and figures["spend_mean"] is None  # unit-cost mode: no money
    assert data["policies"]["oracle"]["regret_mean"] == 0
    assert data["policies"]["oracle"]["decision_day_mean"] is None
    again = json.loads(_run(str(STUDIES / "bernoulli.toml"), "--replicates", "3", "--seed", "9", "--json").output)
    assert again == data


def test_out_files(tmp_path):
    out = tmp_path / "out"
    r = _run(str(STUDIES / "realistic.toml"), "--replicates", "3", "--out", str(out), "--workers", "2")
    assert r.exit_code == 0, r.output
    names = {p.name for p in out.iterdir()}
    assert names == {
        "results.csv",
        "summary.json",
        "regret_over_time.png",
        "share_on_best_over_time.png",
        "prob_best_over_time.png",
    }
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 3 * 8 and rows[0]["policy"] == "thompson" and float(rows[0]["spend"]) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policies"]["thompson"]["cpa_mean"] > 0
    assert (out / "regret_over_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_study_is_one_line_and_exit_2(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[study]\nname = "x"\nseeed = 1\n[world]\nimpressions_per_period = 5\nconversion_rates = [0.1]\n')
    r = CliRunner().invoke(main, ["simulate", str(p)])
    assert r.exit_code == 2
    assert r.output == f"error: {p}: study.seeed: unknown key; did you mean 'seed'?\n"
    r = CliRunner().invoke(main, ["simulate", str(tmp_path / "missing.toml")])
    assert r.exit_code == 2 and "file not found; check the path" in r.output


def test_help_has_examples():
    r = _run("--help")
    assert "Examples:" in r.output and "--scheduler" in r.output


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(p.name, marks=pytest.mark.slow) if p.name == "hierarchical.toml" else p.name  # ~100 s of PyMC
        for p in sorted(STUDIES.glob("*.toml"))
    ],
)
def test_every_shipped_study_runs(name):
    r = _run(str(STUDIES / name), "--replicates", "2", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["replicates"] == 2


def test_scheduler_option_runs_on_a_dask_cluster():
    distributed = pytest.importorskip("dask.distributed")
    args = [str(STUDIES / "bernoulli.toml"), "--replicates", "3", "--json"]
    local = json.loads(_run(*args).output)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        remote = _run(*args, "--scheduler", cluster.scheduler_address)
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.output) == local


@pytest.mark.slow  # fits the hierarchical model (~60 s on 2 shared cores)
def test_model_option_overrides_the_study_and_is_validated():
    hier = STUDIES / "hierarchical.toml"
    conj = json.loads(_run(str(hier), "--replicates", "2", "--model", "conjugate", "--json").output)
    assert conj["replicates"] == 2
    # the same worlds either way: the oracle's figures do not depend on the model
    hier_run = json.loads(_run(str(hier), "--replicates", "2", "--json").output)
    assert hier_run["policies"]["oracle"] == conj["policies"]["oracle"]
    assert hier_run["policies"]["thompson"] != conj["policies"]["thompson"]


def test_model_option_is_validated_like_the_file(tmp_path):
    text = (STUDIES / "bernoulli.toml").read_text()
    p = tmp_path / "per_impression.toml"
    p.write_text(text.replace('policies = ["thompson", ', 'policies = ["thompson_per_impression", "thompson", '))
    assert _run(str(p), "--replicates", "2", "--json").exit_code == 0
    bad = _run(str(p), "--replicates", "2", "--model", "hierarchical")
    assert bad.exit_code == 2
    assert bad.output.strip().count("\n") == 0
    assert bad.output.startswith(f"error: {p}: study.policies: thompson_per_impression needs the conjugate model")

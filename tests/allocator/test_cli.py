"""CLI: every command of the v0 engine, the example, bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "configs" / "example_plan.toml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def copy_example(tmp_path: Path) -> Path:
    shutil.copy(PLAN, tmp_path / "plan.toml")
    shutil.copy(ROOT / "configs" / "example_data.csv", tmp_path / "example_data.csv")
    return tmp_path / "plan.toml"


def test_help_lists_commands(runner):
    res = runner.invoke(main, ["--help"])
    assert res.exit_code == 0
    for name in ("validate", "reallocate"):
        assert name in res.output


def test_validate_example(runner):
    res = runner.invoke(main, ["validate", str(PLAN)])
    assert res.exit_code == 0, res.output
    assert "ok: campaign 'Winter skincare launch', 5 creatives (5 active)" in res.output
    assert "10 days" in res.output


def test_reallocate_example_table(runner):
    res = runner.invoke(main, ["reallocate", "--plan", str(PLAN)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "budgets for 2026-11-24" in res.output
    assert "Cleo honest review" in res.output
    assert "phase: " in res.output
    assert "authorization ends 2026-11-26" in res.output


def test_reallocate_json_and_out(runner, tmp_path):
    out = tmp_path / "budgets.csv"
    res = runner.invoke(main, ["reallocate", "--plan", str(PLAN), "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    js = json.loads(res.output)
    assert js["campaign"] == "Winter skincare launch" and js["date"] == "2026-11-24"
    assert sum(c["budget"] for c in js["creatives"]) == pytest.approx(500.0)
    rows = list(csv.DictReader(out.open()))
    assert [r["creative_id"] for r in rows] == [c["id"] for c in js["creatives"]]
    assert sum(float(r["budget"]) for r in rows) == pytest.approx(500.0)


def test_reallocate_date_option(runner):
    res = runner.invoke(main, ["reallocate", "--plan", str(PLAN), "--json", "--date", "2026-11-20"])
    js = json.loads(res.output)
    assert js["date"] == "2026-11-20" and js["data_range"] == ["2026-11-14", "2026-11-19"]
    assert js["phase"] == "explore"


def test_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "allocator", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "reallocate" in res.stdout


def test_conjugate_path_never_imports_pymc():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from allocator.cli.main import main\n"
        f"r = CliRunner().invoke(main, ['reallocate', '--plan', {str(PLAN)!r}, '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pymc', 'arviz', 'pytensor', 'pandas'))\n"
        "print(bad)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- bad input
def bad(runner, args, tmp_path):
    out = tmp_path / "budgets.csv"
    res = runner.invoke(main, [*args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert not out.exists()
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


def test_bad_plan_unknown_key(runner, tmp_path):
    plan = copy_example(tmp_path)
    plan.write_text(plan.read_text().replace("min_budget = 20.0", "min_budgt = 20.0"))
    line = bad(runner, ["reallocate", "--plan", str(plan)], tmp_path)
    assert line == f"error: {plan}: guardrails.min_budgt: unknown key; did you mean 'min_budget'?"


def test_bad_plan_infeasible(runner, tmp_path):
    plan = copy_example(tmp_path)
    plan.write_text(plan.read_text().replace("daily_budget = 500.0", "daily_budget = 15.0"))
    line = bad(runner, ["reallocate", "--plan", str(plan)], tmp_path)
    assert line.startswith(f"error: {plan}: campaign.daily_budget: 15 is below guardrails.min_budget 20")


def test_bad_data_negative(runner, tmp_path):
    plan = copy_example(tmp_path)
    data = tmp_path / "example_data.csv"
    lines = data.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",-5.00"
    data.write_text("\n".join(lines) + "\n")
    line = bad(runner, ["reallocate", "--plan", str(plan)], tmp_path)
    assert line.startswith(f"error: {data}: row 4, column 'spend'")


def test_bad_data_missing_column(runner, tmp_path):
    plan = copy_example(tmp_path)
    data = tmp_path / "example_data.csv"
    text = data.read_text().replace(
        "date,creative_id,impressions,clicks,conversions,spend", "date,creative_id,impressions,clicks,spend"
    )
    data.write_text(
        "\n".join(",".join(r.split(",")[:4] + r.split(",")[5:]) if i else r for i, r in enumerate(text.splitlines()))
        + "\n"
    )
    line = bad(runner, ["reallocate", "--plan", str(plan)], tmp_path)
    assert "conversions" in line and str(data) in line


def test_bad_data_empty(runner, tmp_path):
    plan = copy_example(tmp_path)
    (tmp_path / "example_data.csv").write_text("")
    line = bad(runner, ["reallocate", "--plan", str(plan)], tmp_path)
    assert str(tmp_path / "example_data.csv") in line and "empty" in line


def test_bad_data_duplicate_rows(runner, tmp_path):
    plan = copy_example(tmp_path)
    data = tmp_path / "example_data.csv"
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines + [lines[1]]) + "\n")
    line = bad(runner, ["reallocate", "--plan", str(plan)], tmp_path)
    assert "duplicate creative-day rows" in line and "lines 2 and 52" in line


def test_bad_data_conversions_above_impressions(runner, tmp_path):
    plan = copy_example(tmp_path)
    data = tmp_path / "example_data.csv"
    lines = data.read_text().splitlines()
    f = lines[1].split(",")
    f[4] = str(int(f[2]) + 1)
    f[3] = f[2]
    lines[1] = ",".join(f)
    data.write_text("\n".join(lines) + "\n")
    line = bad(runner, ["reallocate", "--plan", str(plan)], tmp_path)
    assert "row 2" in line and "conversions" in line and "above" in line


def test_missing_plan_file(runner, tmp_path):
    line = bad(runner, ["reallocate", "--plan", str(tmp_path / "nope.toml")], tmp_path)
    assert line == f"error: {tmp_path / 'nope.toml'}: file not found; check the path"


def test_diagnose_without_a_fit(runner, tmp_path):
    plan = copy_example(tmp_path)
    res = runner.invoke(main, ["diagnose", "--plan", str(plan)])
    assert res.exit_code == 2
    assert res.output.strip() == (
        f"error: {tmp_path / 'plan.fit.nc'}: no saved fit; run `sparkbandit reallocate --plan {plan}` with "
        'model = "hierarchical" first'
    )


def test_hierarchical_reallocate_then_diagnose(runner, tmp_path):
    plan = copy_example(tmp_path)
    plan.write_text(plan.read_text().replace('model = "conjugate"', 'model = "hierarchical"'))
    res = runner.invoke(main, ["reallocate", "--plan", str(plan), "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.output[res.output.index("{") :])
    d = js["diagnostics"]
    assert d["model"] == "hierarchical" and d["method"] == "laplace_is" and d["gate"] == "passed", d
    assert d["pareto_k"] <= 0.7 and d["ess"] >= 400
    assert (tmp_path / "plan.fit.npz").exists()  # the fast path's draws (numpy, no xarray)
    res = runner.invoke(main, ["diagnose", "--plan", str(plan)])
    assert res.exit_code == 0, res.output
    assert "organic_coef" in res.output and "Pareto k" in res.output
    rows = list(
        csv.DictReader(runner.invoke(main, ["diagnose", "--plan", str(plan), "--format", "csv"]).output.splitlines())
    )
    assert "organic_coef" in {r["variable"] for r in rows} and all(float(r["sd"]) >= 0 for r in rows)
    js = json.loads(runner.invoke(main, ["diagnose", "--plan", str(plan), "--json"]).output)
    assert set(js) == {r["variable"] for r in rows} and "eti90_lb" in js["organic_coef"]

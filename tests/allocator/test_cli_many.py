"""`sparkbandit reallocate` with many plans: repeated --plan or a folder, decided in one process through
`reallocate_many`; results equal to deciding each plan alone, per-plan errors reported at the end (exit 2)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from allocator.cli.main import main
from allocator.plan import load_plan
from allocator.storage.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "configs" / "example_plan.toml").read_text(encoding="utf-8")
DATA = ROOT / "configs" / "example_data.csv"


def write_plan(folder: Path, stem: str, name: str, seed: int, extra: dict[str, str] | None = None) -> Path:
    """A copy of the example plan with its own campaign name and seed (and keys of [campaign] replaced)."""
    text = EXAMPLE.replace('name = "Winter skincare launch"', f'name = "{name}"', 1)
    text = text.replace("seed = 7", f"seed = {seed}", 1)
    text = text.replace('data = "example_data.csv"', f"data = {json.dumps(str(DATA))}", 1)
    for key, value in (extra or {}).items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    path = folder / f"{stem}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def plans(tmp_path: Path) -> list[Path]:
    # Different seeds, policies and budgets, so that a mix-up between plans in the batch would show.
    return [
        write_plan(tmp_path, "b-second", "Second", 11, {"policy": '"top_two_thompson"', "daily_budget": "800.0"}),
        write_plan(tmp_path, "a-first", "First", 3),
        write_plan(tmp_path, "c-third", "Third", 5, {"policy": '"uniform"', "daily_budget": "300.0"}),
    ]


def alone(runner: CliRunner, plan: Path, *args: str) -> str:
    res = runner.invoke(main, ["reallocate", "--plan", str(plan), *args])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_several_plans_json_equals_each_alone(runner, plans):
    res = runner.invoke(main, ["reallocate", *sum((["--plan", str(p)] for p in plans), []), "--json"])
    assert res.exit_code == 0, res.output
    many = json.loads(res.stdout)
    assert [m["plan"] for m in many] == [str(p) for p in plans]  # the order given, not sorted
    for plan, m in zip(plans, many, strict=True):
        single = json.loads(alone(runner, plan, "--json"))
        assert {k: v for k, v in m.items() if k != "plan"} == single
    assert [m["campaign"] for m in many] == ["Second", "First", "Third"]
    assert [sum(c["budget"] for c in m["creatives"]) for m in many] == pytest.approx([800.0, 500.0, 300.0])


def test_several_plans_csv_has_a_plan_column(runner, plans):
    res = runner.invoke(main, ["reallocate", "--plan", str(plans[0]), "--plan", str(plans[2]), "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    expected = []
    for plan in (plans[0], plans[2]):
        single = list(csv.reader(io.StringIO(alone(runner, plan, "--format", "csv"))))
        assert rows[0] == ["plan", *single[0]]
        expected += [[str(plan), *r] for r in single[1:]]
    assert rows[1:] == expected


def test_folder_of_plans_sorted_one_line_each(runner, plans, tmp_path):
    (tmp_path / "notes.txt").write_text("not a plan", encoding="utf-8")
    res = runner.invoke(main, ["reallocate", "--plan", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    order = sorted(plans)
    assert len(lines) == 4
    for line, plan in zip(lines, order, strict=False):
        js = json.loads(alone(runner, plan, "--json"))
        names = {c["id"]: c["name"] for c in js["creatives"]}
        total = sum(c["budget"] for c in js["creatives"])
        head = f"{plan}: campaign {js['campaign']!r}, {js['date']}, total USD {total:,.2f}, phase: {js['phase']}"
        who = "winner" if js["winner"] else "leader"
        assert line == f"{head}; {who}: {names[js[who]]}"
    warnings = sum(len(json.loads(alone(runner, p, "--json"))["warnings"]) for p in plans)
    assert lines[3] == f"3 plans: 3 decided, 0 failed; {warnings} warnings (on stderr)"
    assert f"warning: {order[0]}: Cleo honest review: Spark authorization ends 2026-11-26" in res.stderr


def test_one_bad_plan_does_not_stop_the_others(runner, plans, tmp_path):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[campaign\n", encoding="utf-8")
    bad_data = write_plan(tmp_path, "bad-data", "Bad data", 1, {"data": json.dumps(str(tmp_path / "missing.csv"))})
    args = ["reallocate", "--plan", str(plans[0]), "--plan", str(bad_toml), "--plan", str(plans[1])]
    res = runner.invoke(main, [*args, "--plan", str(bad_data), "--json"])
    assert res.exit_code == 2
    decided = json.loads(res.stdout)
    assert [d["plan"] for d in decided] == [str(plans[0]), str(plans[1])]
    assert {k: v for k, v in decided[1].items() if k != "plan"} == json.loads(alone(runner, plans[1], "--json"))
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {bad_toml}: not valid TOML")
    assert errors[1].startswith(f"error: {bad_data}: ") and "missing.csv" in errors[1]
    assert "Traceback" not in res.output

    table = runner.invoke(main, args)
    assert table.exit_code == 2
    assert table.stdout.splitlines()[-1].startswith("3 plans: 2 decided, 1 failed")


def test_ledger_plans_record_their_decisions(runner, tmp_path):
    # Two plans over their own ledgers (no `data` key) and one over a CSV, in one call.
    ledgers = []
    for k in range(2):
        folder = tmp_path / f"ledger{k}"
        folder.mkdir()
        plan = folder / "plan.toml"
        plan.write_text(
            EXAMPLE.replace('data = "example_data.csv"', "").replace("seed = 7", f"seed = {k + 1}"), encoding="utf-8"
        )
        assert runner.invoke(main, ["ingest", "--plan", str(plan), str(DATA)]).exit_code == 0
        ledgers.append(plan)
    csv_plan = write_plan(tmp_path, "csv", "Csv", 2)
    res = runner.invoke(
        main, ["reallocate", "--plan", str(ledgers[0]), "--plan", str(csv_plan), "--plan", str(ledgers[1]), "--json"]
    )
    assert res.exit_code == 0, res.output
    many = json.loads(res.stdout)
    for plan, m in zip(ledgers, (many[0], many[2]), strict=True):
        loaded = load_plan(plan)
        with Ledger.open(loaded.ledger_path) as ledger:
            recorded = ledger.decisions(loaded.plan)
        assert len(recorded) == 1 and recorded[0].date.isoformat() == m["date"] == "2026-11-24"
        assert [c["budget"] for c in recorded[0].allocation["creatives"]] == [c["budget"] for c in m["creatives"]]
    # --dry-run records nothing more (and tells it would replace today's decision).
    res = runner.invoke(main, ["reallocate", "--plan", str(ledgers[0]), "--plan", str(ledgers[1]), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would replace the decision for 2026-11-24" in res.stderr
    loaded = load_plan(ledgers[0])
    with Ledger.open(loaded.ledger_path) as ledger:
        assert len(ledger.decisions(loaded.plan, include_superseded=True)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--out", "x.csv"],
            "error: --out writes one plan's budgets; with several plans use --format csv (one CSV with a plan column)",
        ),
        (["--format", "adgroups"], "error: --format adgroups is the sheet of one plan; run it per plan"),
        (
            ["--data", "x.csv"],
            "error: --data names the results of one plan; with several plans each plan's own data (or ledger) is used",
        ),
    ],
)
def test_single_plan_options_refused_with_several(runner, plans, tmp_path, args, message):
    res = runner.invoke(main, ["reallocate", "--plan", str(plans[0]), "--plan", str(plans[1]), *args])
    assert res.exit_code == 2
    assert res.stderr.strip() == message and res.stdout == ""
    assert not (tmp_path / "x.csv").exists()


def test_empty_folder(runner, tmp_path):
    res = runner.invoke(main, ["reallocate", "--plan", str(tmp_path)])
    assert res.exit_code == 2
    assert (
        res.stderr.strip() == f"error: {tmp_path}: no *.toml plans in the folder; give plan files or a folder of them"
    )

"""Each command imports only what it uses: heavy modules stay out of `sys.modules` where a command has no use
for them (start-up is the product's speed: a marketer runs these by hand every morning)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pymc", "arviz", "pytensor", "nutpie", "matplotlib", "pandas", "httpx", "dask", "distributed", "openpyxl")

RUNNER = """
import json, sys
from allocator.cli.main import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
except Exception as exc:
    print("command failed:", type(exc).__name__, exc, file=sys.stderr)
    sys.exit(3)
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("guard")
    for name in ("example_plan.toml", "example_data.csv"):
        shutil.copy(ROOT / "configs" / name, folder / name)
    return folder / "example_plan.toml"


def loaded(*args: str) -> set[str]:
    """Top-level packages imported by `sparkbandit ARGS` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_numerics():
    mods = loaded("--help")
    assert not mods & {"numpy", "scipy", "pydantic", "rich", *HEAVY}


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "{plan}"),
        ("reallocate", "--plan", "{plan}", "--dry-run"),
        ("reallocate", "--plan", "{plan}", "--json"),
    ],
)
def test_conjugate_commands_import_nothing_heavy(plan, args):
    mods = loaded(*(a.format(plan=plan) for a in args))
    assert "numpy" in mods  # the command really ran
    assert not mods & set(HEAVY)


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "{plan}"),
        ("reallocate", "--plan", "{plan}"),
        ("reallocate", "--plan", "{plan}", "--json"),
        ("reallocate", "--plan", "{plan}", "--format", "csv"),
    ],
)
def test_conjugate_commands_import_no_scipy(plan, args):
    # `import scipy.special` alone costs 0.1-0.5 s of the 0.5 s a command may take: the conjugate model's
    # special functions are models/special/ (learn and the hierarchical model still use scipy).
    mods = loaded(*(a.format(plan=plan) for a in args))
    assert "numpy" in mods  # the command really ran
    assert "scipy" not in mods


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "{plan}"),
        ("reallocate", "--plan", "{plan}", "--json"),
        ("reallocate", "--plan", "{plan}", "--format", "csv"),
    ],
)
def test_commands_without_a_table_import_no_rich(plan, args):
    mods = loaded(*(a.format(plan=plan) for a in args))
    assert "numpy" in mods  # the command really ran
    assert "rich" not in mods  # rich is imported only to print a table


def test_table_output_imports_rich(plan):
    # The other side of the test above: the default output is the rich table.
    assert "rich" in loaded("reallocate", "--plan", str(plan), "--dry-run")


def test_ledger_commands_import_nothing_heavy(plan, tmp_path):
    data = plan.parent / "example_data.csv"
    text = plan.read_text().replace('data = "example_data.csv"', "")
    ledger_plan = tmp_path / "plan.toml"
    ledger_plan.write_text(text)
    for args in (
        ("ingest", "--plan", str(ledger_plan), str(data)),
        ("reallocate", "--plan", str(ledger_plan)),
        ("status", "--plan", str(ledger_plan)),
        ("history", "--plan", str(ledger_plan)),
    ):
        mods = loaded(*args)
        assert not mods & {"scipy", *HEAVY}, args


def test_simulate_imports_no_model_library_or_plots():
    mods = loaded("simulate", str(ROOT / "configs/studies/bernoulli.toml"), "--replicates", "4", "--json")
    assert "numpy" in mods
    assert not mods & set(HEAVY)  # no plots without --out, and the local process pool needs no Dask

"""Bad study files: one clear line each, with the key path and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import PlanError
from simulations.study import load_study

OK = """
[study]
name = "x"
[world]
impressions_per_period = 10
conversion_rates = [0.1, 0.2]
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text, encoding="utf-8")
    return p


def _error(tmp_path: Path, text: str) -> str:
    p = _write(tmp_path, text)
    with pytest.raises(PlanError) as e:
        load_study(p)
    return str(e.value).replace(str(p), "STUDY")


def test_a_good_study_loads(tmp_path):
    s = load_study(_write(tmp_path, OK)).study
    assert s.study.replicates == 200 and s.world.unit_cost


@pytest.mark.parametrize(
    "text, message",
    [
        (
            OK.replace('name = "x"', 'name = "x"\nreplicate = 5'),
            "STUDY: study.replicate: unknown key; did you mean 'replicates'?",
        ),
        (OK + "[world.delay]\nwindw = 3\n", "STUDY: world.delay.windw: unknown key; did you mean 'window'?"),
        (OK + "[guardrail]\nmin_budget = 3\n", "STUDY: guardrail: unknown key; did you mean 'guardrails'?"),
        (
            OK.replace('name = "x"', 'name = "x"\nperiods = 0'),
            "STUDY: study.periods: 0 is not valid (Input should be greater than or equal to 1); correct the value",
        ),
        (
            OK.replace("[0.1, 0.2]", "[0.1, 2.0]"),
            "STUDY: world.conversion_rates: every rate must be in (0, 1); fix the values",
        ),
        (
            OK.replace("impressions_per_period = 10", "impressions_per_period = 10\ndaily_budget = 100"),
            "STUDY: world: give exactly one of daily_budget (money) or impressions_per_period (unit-cost mode)",
        ),
        (
            OK.replace("impressions_per_period = 10", "daily_budget = 100"),
            "STUDY: world.cpms: required with daily_budget; give one CPM per conversion rate",
        ),
        (
            OK.replace('name = "x"', 'name = "x"\npolicies = ["thompson", "thompson"]'),
            "STUDY: study.policies: 'thompson' is listed twice; list each policy once",
        ),
        (
            OK + "[[world.creatives]]\nid = 'a'\nconversion_rate = 0.1\n",
            "STUDY: world: gives conversion_rates and creatives; give exactly one of conversion_rates, "
            "[[world.creatives]], [world.generator] or history",
        ),
        (
            OK.replace("impressions_per_period = 10", "history = 'nope.csv'").replace(
                "conversion_rates = [0.1, 0.2]", ""
            ),
            "STUDY: world.history: file '{dir}/nope.csv' not found; give a path relative to the study file",
        ),
        (
            OK.replace('name = "x"', 'name = "x"\nmodel = "hierarchical"\npolicies = ["thompson_per_impression"]'),
            "STUDY: study.policies: thompson_per_impression needs the conjugate model (one draw per impression); "
            'remove it or use study.model = "conjugate"',
        ),
        (
            OK.replace('name = "x"', 'name = "x"\nmodel = "pooled"'),
            "STUDY: study.model: 'pooled' is not valid (Input should be 'conjugate' or 'hierarchical'); correct the value",
        ),
        ("[study\nname = 1", None),
    ],
)
def test_bad_study_messages(tmp_path, text, message):
    got = _error(tmp_path, text)
    if message is None:
        assert got.startswith("STUDY: not valid TOML (") and got.endswith("; fix the syntax at that line")
    else:
        assert got == message.replace("{dir}", str(tmp_path))


def test_missing_file(tmp_path):
    p = tmp_path / "absent.toml"
    with pytest.raises(PlanError) as e:
        load_study(p)
    assert str(e.value) == f"{p}: file not found; check the path"


def test_money_budget_below_minimum(tmp_path):
    text = OK.replace("impressions_per_period = 10", "daily_budget = 10\ncpms = [5.0, 6.0]")
    assert _error(tmp_path, text) == (
        "STUDY: world.daily_budget: 10 is below guardrails.min_budget 20, so no creative could run; raise "
        "daily_budget or lower min_budget"
    )

"""Campaign plans: the example loads; every bad plan gives one exact line with the key path and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocator.plan import load_plan
from models.errors import PlanError

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
[campaign]
name = "Test"
daily_budget = 300.0

[guardrails]
min_budget = 20.0

[[creatives]]
id = "a"

[[creatives]]
id = "b"

[[creatives]]
id = "c"
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "plan.toml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def error(tmp_path: Path, text: str | bytes) -> str:
    p = write(tmp_path, text)
    with pytest.raises(PlanError) as e:
        load_plan(p)
    msg = str(e.value)
    assert "\n" not in msg
    return msg.removeprefix(f"{p}: ")


def test_example_plan_loads():
    loaded = load_plan(ROOT / "configs" / "example_plan.toml")
    plan = loaded.plan
    assert plan.campaign.daily_budget == 500.0
    assert plan.campaign.seed == 7
    assert plan.prior.cpm == 7.0
    assert len(plan.creatives) == 5
    assert plan.creative_ids[0] == "sp-aria-unboxing"
    assert plan.creatives[0].organic.views == 412000
    assert loaded.data_path == ROOT / "configs" / "example_data.csv"
    assert len(loaded.sha256) == 64


def test_base_plan_loads(tmp_path):
    assert load_plan(write(tmp_path, BASE)).plan.creative_ids == ("a", "b", "c")


def test_unknown_key_did_you_mean(tmp_path):
    text = BASE.replace("min_budget = 20.0", "min_budgt = 20.0")
    assert error(tmp_path, text) == "guardrails.min_budgt: unknown key; did you mean 'min_budget'?"


def test_unknown_key_no_hint(tmp_path):
    text = BASE.replace('name = "Test"', 'name = "Test"\nzzz = 1')
    assert error(tmp_path, text) == "campaign.zzz: unknown key; remove it (see the README for the keys)"


def test_unknown_key_in_creatives_has_index(tmp_path):
    text = BASE.replace('id = "b"', 'id = "b"\nauth_expire = 2027-01-01')
    assert error(tmp_path, text) == "creatives[2].auth_expire: unknown key; did you mean 'auth_expires'?"


def test_missing_required_key(tmp_path):
    text = BASE.replace("daily_budget = 300.0\n", "")
    assert error(tmp_path, text) == "campaign.daily_budget: required key is missing; add it"


def test_wrong_type(tmp_path):
    text = BASE.replace("daily_budget = 300.0", 'daily_budget = "lots"')
    msg = error(tmp_path, text)
    assert msg.startswith("campaign.daily_budget: 'lots' is not valid (")
    assert msg.endswith("); correct the value")
    text = BASE.replace('id = "c"', 'id = "c"\nstatus = "stopped"')
    msg = error(tmp_path, text)
    assert msg.startswith("creatives[3].status: 'stopped' is not valid (Input should be 'active' or 'paused')")


def test_daily_budget_below_min_budget(tmp_path):
    text = BASE.replace("daily_budget = 300.0", "daily_budget = 60.0").replace("min_budget = 20.0", "min_budget = 80.0")
    assert error(tmp_path, text) == (
        "campaign.daily_budget: 60 is below guardrails.min_budget 80, so no creative could run; "
        "raise daily_budget or lower min_budget"
    )


def test_max_budget_below_min_budget(tmp_path):
    text = BASE.replace("min_budget = 20.0", "min_budget = 20.0\nmax_budget = 10.0")
    assert error(tmp_path, text) == (
        "guardrails.max_budget: 10 is below guardrails.min_budget 20; raise max_budget or lower min_budget"
    )


def test_exploration_floor_too_high(tmp_path):
    text = BASE.replace("min_budget = 20.0", "min_budget = 20.0\nexploration_floor = 0.4")
    assert error(tmp_path, text) == (
        "guardrails.exploration_floor: 0.4 x 3 active creatives is above 100% of the budget; use at most 0.333"
    )


def test_max_budget_cannot_spend_budget(tmp_path):
    text = BASE.replace("min_budget = 20.0", "min_budget = 20.0\nmax_budget = 90.0")
    assert error(tmp_path, text) == (
        "guardrails.max_budget: 90 x 3 active creatives cannot spend campaign.daily_budget 300; "
        "raise max_budget to at least 100.00"
    )


def test_paused_creatives_do_not_count_as_active(tmp_path):
    text = BASE.replace('id = "c"', 'id = "c"\nstatus = "paused"').replace(
        "min_budget = 20.0", "min_budget = 20.0\nmax_budget = 140.0"
    )
    assert error(tmp_path, text).startswith("guardrails.max_budget: 140 x 2 active creatives cannot spend")


def test_duplicate_creative_ids(tmp_path):
    text = BASE.replace('id = "c"', 'id = "a"')
    assert error(tmp_path, text) == "creatives: id 'a' appears more than once; give every creative its own id"


def test_invalid_toml(tmp_path):
    msg = error(tmp_path, BASE.replace("daily_budget = 300.0", "daily_budget = = 300"))
    assert msg.startswith("not valid TOML (")
    assert "line 3" in msg
    assert msg.endswith("); fix the syntax at that line")


def test_empty_file(tmp_path):
    assert error(tmp_path, "  \n\n") == "file is empty; write the plan (see configs/example_plan.toml)"


def test_missing_file(tmp_path):
    p = tmp_path / "nope.toml"
    with pytest.raises(PlanError) as e:
        load_plan(p)
    assert str(e.value) == f"{p}: file not found; check the path"


def test_non_utf8_file(tmp_path):
    raw = BASE.replace('"Test"', '"Caf\u00e9"').encode("latin-1")
    assert error(tmp_path, raw) == "is not UTF-8 text; save it as UTF-8"


def test_utf8_bom_accepted(tmp_path):
    assert load_plan(write(tmp_path, "\ufeff".encode() + BASE.encode())).plan.campaign.name == "Test"

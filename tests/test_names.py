"""One source of truth for the names a plan or a study may choose (issue 11, item 3)."""

from __future__ import annotations

from typing import get_args

import pytest

from allocator.decisions.names import POLICY_NAMES, SIM_ONLY_POLICY_NAMES, check_registry
from allocator.decisions.policies import POLICIES
from allocator.plan import Campaign, ModelSettings
from models import choices
from simulations.sim_policies import SIM_POLICIES, sim_policy
from simulations.study import StudySection


def test_registries_are_keyed_by_the_names():
    assert set(POLICIES) == set(POLICY_NAMES)
    assert set(SIM_POLICIES) == set(SIM_ONLY_POLICY_NAMES)
    assert not set(POLICY_NAMES) & set(SIM_ONLY_POLICY_NAMES)


def test_a_registry_that_drifts_from_its_names_fails_at_import():
    with pytest.raises(RuntimeError, match="differ from the names"):
        check_registry({"thompson": None, "new_policy": None}, ("thompson",), "test registry")


def test_schemas_take_their_choices_from_the_names():
    plan_policy = Campaign.model_fields["policy"].annotation
    assert set(get_args(plan_policy)) == set(POLICY_NAMES)
    study_policies = get_args(StudySection.model_fields["policies"].annotation)[0]
    flat = {name for part in get_args(study_policies) for name in (get_args(part) or (part,))}
    assert flat == set(POLICY_NAMES) | set(SIM_ONLY_POLICY_NAMES)
    assert set(get_args(ModelSettings.model_fields["method"].annotation)) == set(choices.METHODS)
    assert set(get_args(ModelSettings.model_fields["sampler"].annotation)) == set(choices.SAMPLERS)
    assert set(get_args(ModelSettings.model_fields["fatigue"].annotation)) == set(choices.FATIGUE)


def test_simulator_flags():
    assert sim_policy("oracle").knows_truth and not sim_policy("oracle").draws_per_unit
    assert sim_policy("thompson_per_impression").draws_per_unit
    assert sim_policy("thompson") == sim_policy("ucb")  # the allocator's policies: every flag off
    assert not sim_policy("thompson").knows_truth

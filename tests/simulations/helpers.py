"""Small studies built in code for the simulator tests."""

from __future__ import annotations

import copy

import numpy as np

from simulations.days import run_policy_on_world
from simulations.runner import StudySpec
from simulations.study import Study, parse_study
from simulations.world import build_worlds, dynamics

MONEY = {
    "study": {"name": "t", "replicates": 20, "periods": 12, "seed": 1, "policies": ["thompson"]},
    "world": {
        "daily_budget": 500.0,
        "conversion_rates": [2.0e-4, 2.5e-4, 3.0e-4, 4.0e-4],
        "cpms": [5.0, 6.0, 7.0, 8.0],
    },
}

UNIT = {
    "study": {"name": "u", "replicates": 20, "periods": 12, "seed": 1, "policies": ["thompson"]},
    "world": {"impressions_per_period": 200, "conversion_rates": [0.05, 0.07, 0.10]},
}


def study(base: dict, **sections) -> Study:
    """A copy of `base` with sections updated (nested dicts merged one level deep)."""
    data = copy.deepcopy(base)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return parse_study(data)


def run_one(s: Study, policy: str, n_rep: int = 20, seed: int = 0, record: bool = True) -> dict:
    """One campaign world of `s`, `n_rep` replicates, one policy, with per-day records."""
    worlds = build_worlds(s, None, n_rep, np.random.default_rng(seed))
    return run_policy_on_world(worlds[0], dynamics(s), s, policy, np.random.default_rng(seed + 1), record=record)


def spec(s: Study) -> StudySpec:
    return StudySpec(s)

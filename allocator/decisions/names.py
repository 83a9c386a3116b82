"""The allocation policies a plan may name, and the simulator-only ones a study may add, each written once.

`allocator.decisions.policies.POLICIES` and `simulations.sim_policies.SIM_POLICIES` are keyed by exactly these
names (checked when those modules are imported), and the plan's and the study's schemas take the `Literal`s
as field types. Kept free of imports so that the plan's schema stays cheap to import.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

PolicyName = Literal["thompson", "top_two_thompson", "uniform", "ab_test", "greedy", "ucb", "explore_then_commit"]
#: Policies only the simulator runs: the oracle (knows the true values) and Thompson with one draw per impression.
SimOnlyPolicyName = Literal["oracle", "thompson_per_impression"]
SimPolicyName = Literal[PolicyName, SimOnlyPolicyName]

POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)
SIM_ONLY_POLICY_NAMES: tuple[str, ...] = get_args(SimOnlyPolicyName)


def check_registry(registry: Iterable[str], names: tuple[str, ...], what: str) -> None:
    """Fail at import when a registry and its names drift apart (a name added in one place only)."""
    keys = set(registry)
    if keys != set(names):
        raise RuntimeError(f"{what}: registry keys {sorted(keys)} differ from the names {sorted(names)}")

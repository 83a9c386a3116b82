"""The policies only the simulator runs, as a registry (the allocator's own are `allocator.decisions.policies`).

- `oracle` knows the true values: everything on today's truly best live creative, no posterior, no stopping
  rule, never paused (regret 0 in a stationary world; the yardstick of every other policy).
- `thompson_per_impression` is Thompson sampling with one posterior draw per budget unit (per impression in
  unit-cost worlds): the textbook bandit the daily batch approximates. It needs the conjugate model and runs
  one world at a time (batched, its draws would be rows x the largest volume).
"""

from __future__ import annotations

from dataclasses import dataclass

from allocator.decisions.names import SIM_ONLY_POLICY_NAMES, check_registry


@dataclass(frozen=True)
class SimOnlyPolicy:
    """How the runner treats a simulator-only policy."""

    knows_truth: bool = False  # targets the true best (no posterior, no stopping rule, no loser pauses)
    draws_per_unit: bool = False  # one posterior draw per budget unit (conjugate model only, never batched)


SIM_POLICIES: dict[str, SimOnlyPolicy] = {
    "oracle": SimOnlyPolicy(knows_truth=True),
    "thompson_per_impression": SimOnlyPolicy(draws_per_unit=True),
}
check_registry(SIM_POLICIES, SIM_ONLY_POLICY_NAMES, "simulations.sim_policies.SIM_POLICIES")

_PRODUCTION = SimOnlyPolicy()


def sim_policy(name: str) -> SimOnlyPolicy:
    """The runner's flags of a policy: those of the registry, or all off for the allocator's policies."""
    return SIM_POLICIES.get(name, _PRODUCTION)

"""Stopping rule: when is a winner declared?

After `min_days` days of data, the leader is declared the winner when its probability of being best is at
least `prob_best` and the 95th percentile of the value remaining, (best - leader) / leader, is below
`value_remaining` (the rule of Google Analytics content experiments).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.posterior import Posterior

PHASES = ("explore", "optimize", "winner")


@dataclass(frozen=True)
class PhaseDecision:
    phase: str  # "explore" (before min_days), "optimize", "winner"
    winner: int | None  # index into the posterior's creatives
    leader: int | None
    leader_prob_best: float
    value_remaining: float


def decide_phase(
    post: Posterior, day: int, min_days: int, prob_best: float, value_remaining: float
) -> PhaseDecision:
    if post.n_creatives == 0:
        return PhaseDecision("explore", None, None, 0.0, float("inf"))
    leader = post.leader()
    p = float(post.prob_best()[leader])
    vr = post.value_remaining(0.95)
    if day < min_days:
        return PhaseDecision("explore", None, leader, p, vr)
    if p >= prob_best and vr < value_remaining:
        return PhaseDecision("winner", leader, leader, p, vr)
    return PhaseDecision("optimize", None, leader, p, vr)

"""Stopping rule: when is a winner declared?

The rule of Google Analytics content experiments, which is an OR: after `min_days` days of data, the leader
is declared the winner when its probability of being best is at least `prob_best`, OR when the 95th
percentile of the value remaining, (best - leader) / leader, is below `value_remaining` (then no other
creative can plausibly be worth more than that fraction more than the leader, so a test of near-equal
creatives ends too). An AND of the two would be the first condition alone: when P(best) >= 0.95 the 95th
percentile of the value remaining is exactly 0.

`stop = False` (the plan's or study's `[decision] stop`) switches the rule off: no winner is ever declared
(textbook bandits, fixed-horizon tests). Policies in `allocator.decisions.policies.FIXED_HORIZON` ("uniform", an equal
split for the whole campaign) never stop either; "ab_test" is the equal split that stops on the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.contract import StoppingPosterior
from models.posterior import Posterior


@dataclass(frozen=True)
class PhaseDecision:
    phase: str  # "explore" (before min_days), "optimize", "winner"
    winner: int | None  # index into the posterior's creatives
    leader: int | None
    leader_prob_best: float
    value_remaining: float  # NaN where not needed (before min_days, the leader at prob_best, rule off)
    reason: str = ""  # "prob_best" or "value_remaining" when a winner is declared


def rule_applies(policy: str, stop: bool = True) -> bool:
    """Whether the stopping rule may declare a winner for `policy` ([decision] stop and the policy)."""
    from allocator.decisions.policies import FIXED_HORIZON

    return bool(stop) and policy not in FIXED_HORIZON


PHASE_EXPLORE, PHASE_OPTIMIZE, PHASE_WINNER = 0, 1, 2


@dataclass(frozen=True)
class BatchPhaseDecision:
    """The phases of a batch of campaigns; arrays of shape (n_campaigns,).

    phase : int8 codes PHASE_EXPLORE (0), PHASE_OPTIMIZE (1), PHASE_WINNER (2)
    winner, leader : creative index, -1 where none
    """

    phase: np.ndarray
    winner: np.ndarray
    leader: np.ndarray
    leader_prob_best: np.ndarray
    value_remaining: np.ndarray


def decide_phase_batch(
    post: StoppingPosterior,
    day: int | np.ndarray,
    min_days: int,
    prob_best: float,
    value_remaining: float,
    stop: bool = True,
) -> BatchPhaseDecision:
    """The stopping rule (see the module docstring), row by row: the one implementation, also of a single
    campaign (`decide_phase`, a batch of one).

    `post` (`models.contract.StoppingPosterior`) needs `leader()` -> (n_campaigns,) with -1 for a campaign without live creatives,
    `prob_best()` -> (n_campaigns, n_creatives) and `value_remaining(0.95, rows=mask)` -> (n_campaigns,),
    computed only for the campaigns in `mask` (past min_days with the leader below `prob_best`: only there
    can it decide); the returned value_remaining is inf elsewhere.
    `day` is an int or an array of shape (n_campaigns,).
    """
    leader = np.asarray(post.leader())
    n_camp = leader.shape[0]
    has = leader >= 0
    p_all = np.asarray(post.prob_best())
    p = np.where(has, p_all[np.arange(n_camp), np.maximum(leader, 0)], 0.0)
    day = np.broadcast_to(np.asarray(day), (n_camp,))
    past = has & (day >= min_days) & bool(stop)
    by_prob = past & (p >= prob_best)
    candidates = past & ~by_prob
    vr = np.full(n_camp, np.inf)
    if candidates.any():
        vr = np.where(candidates, np.asarray(post.value_remaining(0.95, rows=candidates), dtype=np.float64), vr)
    won = by_prob | (candidates & (vr < value_remaining))
    phase = np.where(~has | (day < min_days), PHASE_EXPLORE, np.where(won, PHASE_WINNER, PHASE_OPTIMIZE))
    return BatchPhaseDecision(phase.astype(np.int8), np.where(won, leader, -1), leader, p, vr)


class _BatchOfOne:
    """One campaign's `Posterior` as a `StoppingPosterior` batch of one row (its own exact answers kept)."""

    def __init__(self, post: Posterior) -> None:
        self.post = post
        self.asked = False  # whether the rule needed the value remaining (else it is reported as NaN)

    def leader(self) -> np.ndarray:
        return np.array([self.post.leader()])

    def prob_best(self) -> np.ndarray:
        return np.asarray(self.post.prob_best(), dtype=np.float64)[None, :]

    def value_remaining(self, q: float = 0.95, rows: np.ndarray | None = None) -> np.ndarray:
        self.asked = True
        return np.array([self.post.value_remaining(q)])


def decide_phase(
    post: Posterior, day: int, min_days: int, prob_best: float, value_remaining: float, stop: bool = True
) -> PhaseDecision:
    """The phase of one campaign after `day` days of data: `decide_phase_batch` on a batch of one."""
    if post.n_creatives == 0:
        return PhaseDecision("explore", None, None, 0.0, float("inf"))
    one = _BatchOfOne(post)
    b = decide_phase_batch(one, day, min_days, prob_best, value_remaining, stop)
    phase = {PHASE_EXPLORE: "explore", PHASE_OPTIMIZE: "optimize", PHASE_WINNER: "winner"}[int(b.phase[0])]
    leader, p = int(b.leader[0]), float(b.leader_prob_best[0])
    vr = float(b.value_remaining[0]) if one.asked else float("nan")
    if phase != "winner":
        return PhaseDecision(phase, None, leader, p, vr)
    # The value remaining needs joint draws: it is computed only where P(best) alone did not decide.
    return PhaseDecision("winner", leader, leader, p, vr, "value_remaining" if one.asked else "prob_best")

"""Why each creative got its budget: the reason codes and the sentence each one is shown as.

One hop for "why was creative X paused?": the guardrails (`allocator.decisions.guardrails`) pick a code,
`reason_text` below turns it into the sentence of `sparkbandit reallocate`; the sentences of the holds, of the
creatives that cannot run and of the stopping rule's branches are here too.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # guardrails imports Reason from here
    from allocator.decisions.guardrails import GuardrailSettings


class Reason(IntEnum):
    """Why a creative got its budget; `reason_text` turns a code into a sentence."""

    TARGET = 0  # the policy's target (rebalanced to spend the total)
    FLOOR = 1  # raised to the exploration floor
    MINIMUM = 2  # raised to the ad-group minimum
    CAP = 3  # capped at max_budget
    STEP_UP = 4  # limited by the step rule upwards
    STEP_DOWN = 5  # limited by the step rule downwards
    HELD = 6  # held: changed too recently, or in the learning phase
    PAUSED_TARGET = 7  # paused: target nearer 0 than the minimum
    PAUSED_CONFLICT = 8  # paused: floors of the creatives before it use the whole budget
    NOT_LIVE = 9  # paused in the plan or authorization expired
    STEP_RELAXED = 10  # above the step limit, to spend the total
    RELEASED = 11  # a held budget raised, to spend the total
    PAUSED_LOSER = 12  # paused: clearly losing (P(best) and expected loss past the plan's thresholds)


def money(x: float | None, currency: str) -> str:
    """An amount as the CLI, reports and reasons show it: "$1,234.50" in USD, "1,234.50 EUR" otherwise."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"${x:,.2f}" if currency == "USD" else f"{x:,.2f} {currency}"


def days(n: int) -> str:
    """ "1 day", "3 days"."""
    return f"{n} day{'s' if n != 1 else ''}"


# ---------------------------------------------------------------------- sentences of the engine's inputs
NOT_LIVE_PAUSED = "paused in the plan"


def not_live_expired(auth_expires: str) -> str:
    """The reason of a creative whose Spark authorization ends before the period ends (ISO date)."""
    return f"authorization ends {auth_expires}, before this period ends"


def held_recent(since: int, min_days_between_changes: int) -> str:
    """The reason of a budget held because it changed `since` days ago."""
    return f"held: changed {days(since)} ago, TikTok advises {days(min_days_between_changes)} between changes"


def held_learning(age: int, learning_days: int, conversions: float, learning_conversions: int) -> str:
    """The reason of a budget held in TikTok's learning phase."""
    return (
        f"held: in TikTok's learning phase (day {age} of {learning_days}, "
        f"{conversions:.0f} of {learning_conversions} conversions); a budget change would restart it"
    )


def stop_text(
    branch: str | None, leader_prob_best: float, value_remaining: float, prob_best_at: float, value_remaining_at: float
) -> str:
    """Which branch of the stopping rule (`allocator.decisions.stopping`) declared the winner, in words:
    "stopped by P(best): 96.2% >= 95%" or "stopped by value remaining: 0.40% < 1%" (the thresholds are the
    plan's `[decision] prob_best` and `value_remaining`); "" when no winner was declared."""
    if branch == "prob_best":
        return f"stopped by P(best): {leader_prob_best:.1%} >= {prob_best_at:.0%}"
    if branch == "value_remaining":
        return f"stopped by value remaining: {value_remaining:.2%} < {value_remaining_at:.0%}"
    return ""


def reason_text(
    code: Reason,
    creative_id: str,
    share: float,
    budget: float,
    previous: float,
    s: GuardrailSettings,
    cur: str,
    not_live: str,
    held: str,
    winner: str | None,
    prob_best: float = float("nan"),
    rel_loss: float = 0.0,
    stopped: str = "",
) -> str:
    """The reason for a creative's budget in words a marketer reads: what was done and which rule did it.

    `stopped` is the stopping rule's branch in words (`stop_text`), shown on the winner's reason.
    """

    def fmt(x: float) -> str:
        return money(x, cur)

    target = share * float(np.max(s.total))
    asks = f"the model suggests {fmt(target)} ({share:.0%})"
    if code == Reason.NOT_LIVE:
        return not_live
    if code == Reason.HELD:
        return held
    if code == Reason.PAUSED_LOSER:
        return (
            f"paused: clearly losing ({prob_best:.1%} chance of being best, expected {rel_loss:.0%} worse than "
            "the best); pausing one ad group does not restart the others' learning"
        )
    if code == Reason.PAUSED_TARGET:
        return f"paused: {asks}, nearer 0 than the {fmt(s.min_budget)} ad-group minimum"
    if code == Reason.PAUSED_CONFLICT:
        return "paused: the minimums of stronger creatives use the whole budget"
    if code == Reason.FLOOR:
        return f"kept at the {s.exploration_floor:.0%} exploration floor so it keeps being tested; {asks}"
    if code == Reason.MINIMUM:
        return f"raised to TikTok's {fmt(s.min_budget)} ad-group minimum; {asks}"
    if code == Reason.CAP:
        return f"capped at the {fmt(s.max_budget or 0)} maximum per creative; {asks}"
    if code in (Reason.STEP_UP, Reason.STEP_DOWN):
        up = code == Reason.STEP_UP
        limit = f"{'+' if up else '-'}{s.max_change:.0%} of yesterday's {fmt(previous)}"
        if (target > budget) == up or abs(target - budget) < 0.005:
            return f"{'raised' if up else 'lowered'} only as far as the step limit ({limit}); {asks}"
        # The limit binds, but the other way round from the target: the budget had to go somewhere.
        return f"{'raised to' if up else 'kept at'} the step limit ({limit}) to spend the whole budget; {asks}"
    if code == Reason.RELEASED:
        return f"raised from {fmt(previous)} despite the hold, so the whole budget is spent"
    if code == Reason.STEP_RELAXED:
        return (
            f"above the +{s.max_change:.0%} step limit so the whole budget is spent "
            "(set guardrails.spend_all = false to leave it unspent instead)"
        )
    if winner is not None:
        if creative_id == winner:
            return "winner: budget moves to it" + (f" ({stopped})" if stopped else "")
        if previous > 0 and budget > previous * (1.0 - s.max_change) + 0.005:
            return (
                "winner declared elsewhere: stepping down; kept above its step limit only so the whole "
                "budget is spent (guardrails.spend_all = false leaves it unspent instead)"
            )
        return "winner declared elsewhere: stepping down"
    if abs(budget - target) <= max(0.01, 0.005 * float(np.max(s.total))):
        return f"as the model suggests ({share:.0%} of the budget)"
    more = "more" if budget > target else "less"
    return f"{asks}; given {more} so the whole budget is spent within the limits"

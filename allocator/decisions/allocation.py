"""What a decision returns: the budgets' history in, one `Allocation` out (with its documented JSON).

`allocator.decisions.engine.reallocate` builds an `Allocation`; the CLI, the ledger and the reports read it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from allocator.plan import CampaignPlan


@dataclass(frozen=True)
class History:
    """What is known of the budgets before the decision date.

    previous : budget in force on the day before the decision date, per plan creative (0 = not running).
    last_change : the date each creative's budget last changed (took effect), None when unknown.
    """

    previous: np.ndarray
    last_change: tuple[dt.date | None, ...]

    @classmethod
    def from_plan(cls, plan: CampaignPlan) -> History:
        """Budgets stated in the plan (`budget`, `last_change` per creative); unknown -> not running."""
        prev = np.array([c.budget or 0.0 for c in plan.creatives], dtype=np.float64)
        return cls(prev, tuple(c.last_change for c in plan.creatives))


@dataclass(frozen=True)
class CreativeDecision:
    id: str
    label: str
    status: str  # "running", "paused", "expired"
    budget: float
    previous_budget: float
    share: float
    prob_best: float | None
    mean: float
    ci90: tuple[float, float]
    expected_loss: float | None
    cpa_mean: float | None
    cpa_ci90: tuple[float | None, float | None]
    impressions: float
    clicks: float
    conversions: float
    spend: float
    days_live: int
    reason: str
    reason_code: str
    observed_cpa: float | None = None  # spend / conversions, as Ads Manager's "Cost per conversion"
    yesterday_spend: float = 0.0  # results of the day before the decision date
    yesterday_conversions: float = 0.0


@dataclass(frozen=True)
class Allocation:
    campaign: str
    date: dt.date
    currency: str
    daily_budget: float
    model: str
    policy: str
    objective: str
    phase: str
    winner: str | None
    leader: str | None
    value_remaining: float | None
    data_first: dt.date | None
    data_last: dt.date | None
    warnings: list[str]
    creatives: list[CreativeDecision]
    diagnostics: dict = field(default_factory=dict)
    # The stopping rule's branch that declared the winner ("prob_best" or "value_remaining"), and in words
    # (`reasons.stop_text`, shown on the phase line).
    stopped_by: str | None = None
    stop_reason: str = ""

    def to_json(self) -> dict:
        """The documented JSON object of `sparkbandit reallocate --json`."""

        def num(x: float | None, nd: int = 6) -> float | None:
            if x is None or not np.isfinite(x):
                return None
            return round(float(x), nd)

        return {
            "campaign": self.campaign,
            "date": self.date.isoformat(),
            "currency": self.currency,
            "daily_budget": self.daily_budget,
            "model": self.model,
            "policy": self.policy,
            "objective": self.objective,
            "phase": self.phase,
            "winner": self.winner,
            "stopped_by": self.stopped_by,
            "stop_reason": self.stop_reason or None,
            "warnings": list(self.warnings),
            "leader": self.leader,
            "value_remaining": num(self.value_remaining),
            "data_range": [
                None if self.data_first is None else self.data_first.isoformat(),
                None if self.data_last is None else self.data_last.isoformat(),
            ],
            "diagnostics": _jsonable(self.diagnostics),
            "creatives": [
                {
                    "id": c.id,
                    "name": c.label,
                    "status": c.status,
                    "budget": round(c.budget, 2),
                    "previous_budget": round(c.previous_budget, 2),
                    "share": num(c.share),
                    "prob_best": num(c.prob_best),
                    "mean": num(c.mean, 9),
                    "ci90": [num(c.ci90[0], 9), num(c.ci90[1], 9)],
                    "expected_loss": num(c.expected_loss, 9),
                    "cpa_mean": num(c.cpa_mean, 4),
                    "cpa_ci90": [num(c.cpa_ci90[0], 4), num(c.cpa_ci90[1], 4)],
                    "impressions": int(c.impressions),
                    "clicks": int(c.clicks),
                    "conversions": int(c.conversions),
                    "spend": round(c.spend, 2),
                    "days_live": c.days_live,
                    "reason": c.reason,
                    "reason_code": c.reason_code,
                    "observed_cpa": num(c.observed_cpa, 4),
                    "yesterday": {"spend": round(c.yesterday_spend, 2), "conversions": int(c.yesterday_conversions)},
                }
                for c in self.creatives
            ],
        }


def _jsonable(d: object) -> object:
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.floating, float)):
        return float(d) if np.isfinite(d) else None
    if isinstance(d, np.integer):
        return int(d)
    if isinstance(d, (str, int, bool)) or d is None:
        return d
    return str(d)

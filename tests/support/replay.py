"""Replay a simulated campaign's days through the production `reallocate`, for tests that the simulator and
the engine decide to the cent alike."""

from __future__ import annotations

import datetime as dt

import numpy as np

from allocator.decisions.allocation import History
from allocator.decisions.engine import reallocate
from allocator.plan import CampaignPlan
from models.observations import DailyObservations

START = dt.date(2026, 1, 5)


def replay_matches_engine(plan: CampaignPlan, r: dict, n_rep: int = 3, days: int = 8) -> set[str]:
    """Assert that `reallocate` on each simulated day's data sets the simulator's next budgets.

    r : one policy's per-replicate arrays from `run_one` ("impressions", "reported", "budgets"), shape
    (periods, n_rep, n_creatives). Returns the reason codes `reallocate` gave along the way.
    """
    ids = tuple(plan.creative_ids)
    k = len(ids)
    codes: set[str] = set()
    for rep in range(n_rep):
        for t in range(1, days + 1):
            imps = r["impressions"][:t, rep]
            daily = DailyObservations(
                ids,
                np.array([np.datetime64(START + dt.timedelta(days=d)) for d in range(t)]),
                imps,
                np.zeros_like(imps),
                r["reported"][:t, rep],
                r["budgets"][:t, rep],
            )
            b = r["budgets"][:t, rep]
            changed = np.abs(np.diff(np.vstack([np.zeros(k), b]), axis=0)) > 1e-9
            last = tuple(
                START + dt.timedelta(days=int(np.flatnonzero(changed[:, i])[-1])) if changed[:, i].any() else None
                for i in range(k)
            )
            alloc = reallocate(plan, daily, START + dt.timedelta(days=t), History(b[-1].copy(), last))
            got = np.array([c.budget for c in alloc.creatives])
            assert np.allclose(got, r["budgets"][t, rep], atol=1e-9), (rep, t, got, r["budgets"][t, rep])
            codes |= {c.reason_code for c in alloc.creatives}
    return codes

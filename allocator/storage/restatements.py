"""The ledger's restatements, read for the attribution-delay estimate (`models.delay`).

Read-only SQL over the ledger's tables: every version of every result row (`results`, superseded ones
included) with the last date of the export it came from (`imports.last_date`), so a version's age is that
date minus the row's day. A later export that left a day unchanged adds no version, so how old each day
has been seen is taken from the date ranges of all the campaign's imports.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from allocator.plan import CampaignPlan
from allocator.storage.ledger import Ledger


def restated_versions(
    ledger: Ledger, plan: CampaignPlan
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """Per creative-day of the plan's campaign: the ages of its versions, their conversions, the oldest age
    at which any import covered the day, and the day (as days since 1970-01-01, the bootstrap cluster).

    Returns (ages, values, final_age, day); lists and arrays over creative-days, in a fixed order.
    """
    cid = ledger.campaign_id(plan)
    if cid is None:
        return [], [], np.zeros(0, int), np.zeros(0, int)
    with ledger.read(), ledger.errors():
        rows = ledger.conn.execute(
            """SELECT r.creative_ref, r.date, r.conversions, i.last_date
               FROM results r JOIN creatives c ON c.id = r.creative_ref JOIN imports i ON i.id = r.import_id
               WHERE c.campaign_id = ? AND i.last_date IS NOT NULL
               ORDER BY r.creative_ref, r.date, r.version""",
            (cid,),
        ).fetchall()
        spans = ledger.conn.execute(
            "SELECT first_date, last_date FROM imports WHERE campaign_id = ? AND last_date IS NOT NULL", (cid,)
        ).fetchall()

    def ordinal(s: object) -> int:
        return dt.date.fromisoformat(str(s)[:10]).toordinal()

    spans_o = np.array([(ordinal(f or last), ordinal(last)) for f, last in spans], dtype=np.int64).reshape(-1, 2)
    units: dict[tuple[int, int], tuple[list[int], list[float]]] = {}
    for ref, date, conv, last in rows:
        d = ordinal(date)
        a, v = units.setdefault((int(ref), d), ([], []))
        a.append(ordinal(last) - d)
        v.append(float(conv))
    keys = list(units)
    day = np.array([d for _, d in keys], dtype=np.int64)
    final_age = np.array(
        [max((int(hi - d) for lo, hi in spans_o if lo <= d <= hi), default=-1) for d in day], dtype=np.int64
    )
    ages = [np.array(units[k][0]) for k in keys]
    values = [np.array(units[k][1]) for k in keys]
    return ages, values, final_age, day - dt.date(1970, 1, 1).toordinal()

"""The ad-group budget sheet (`sparkbandit reallocate --out FILE --format adgroups`), for a bulk edit in Ads
Manager when there is no API access: one row per ad group with its id, name, daily budget and status.

One creative = one Spark Ad in its own ad group, so a creative's budget is its ad group's; a budget of 0
becomes DISABLE (TikTok refuses budgets under its minimum) with the budget left blank.
"""

from __future__ import annotations

import csv
import io

from allocator.plan import LoadedPlan
from models.errors import PlanError

ADGROUP_COLUMNS = ("Ad group ID", "Ad group name", "Budget", "Status")


def adgroups_csv(loaded: LoadedPlan, alloc) -> str:
    """CSV text of the ad-group sheet of `alloc` (an `allocator.decisions.allocation.Allocation`), in plan order.

    Raises
    ------
    PlanError
        A creative of the allocation without `adgroup_id` (the key path says which).
    """
    index = {c.id: (j, c) for j, c in enumerate(loaded.plan.creatives)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ADGROUP_COLUMNS)
    for a in alloc.creatives:
        j, c = index[a.id]
        if not c.adgroup_id:
            raise PlanError(
                str(loaded.path),
                f"creatives[{j + 1}].adgroup_id",
                "missing; the ad-group sheet needs every ad group",
                "add the creative's ad group id, quoted (sparkbandit init --from EXPORT lists them)",
            )
        running = a.budget > 0.005
        w.writerow(
            [
                c.adgroup_id,
                c.adgroup_name or c.label,
                f"{a.budget:.2f}" if running else "",
                "ENABLE" if running else "DISABLE",
            ]
        )
    return buf.getvalue()

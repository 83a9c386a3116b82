"""PNG plots of a study (matplotlib, Agg backend): regret, budget share and probability of best over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulations.metrics import over_time
from simulations.runner import StudyResult

PLOTS = {
    "regret_over_time.png": ("regret", "cumulative regret (expected conversions lost)"),
    "share_on_best_over_time.png": ("share_on_best", "share of the budget on the true best creative"),
    "prob_best_over_time.png": ("prob_best", "posterior probability that the true best is best"),
}


def write_plots(res: StudyResult, out_dir: Path) -> list[Path]:
    """Write the three PNGs into out_dir; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    series = {p: over_time(res, p) for p in res.policies}
    days = np.arange(1, res.periods + 1)
    paths = []
    for filename, (key, label) in PLOTS.items():
        fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
        for policy, s in series.items():
            y = s[key]
            if not np.isfinite(y).any():
                continue
            (line,) = ax.plot(days, y, label=policy)
            if key == "regret":
                ax.fill_between(
                    days,
                    y - 2 * s["regret_se"],
                    y + 2 * s["regret_se"],
                    color=line.get_color(),
                    alpha=0.15,
                    linewidth=0,
                )
        ax.set_xlabel("period (day)")
        ax.set_ylabel(label)
        if key != "regret":
            ax.set_ylim(0, 1.02)
        ax.set_title(f"{res.name}: {label} ({res.replicates} replicates)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths

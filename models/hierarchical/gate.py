"""The NUTS diagnostics gate: R-hat, bulk ESS, divergences, and the retry's draws."""

from __future__ import annotations

import warnings

import numpy as np

from models.hierarchical.design import SUMMARY_VARS


def gate_stats(idata) -> dict:
    """max R-hat and min bulk ESS over `SUMMARY_VARS` (those present), with the variable each comes from,
    and the number of divergences."""
    import arviz as az

    post = idata["posterior"]
    names = [v for v in SUMMARY_VARS if v in post.data_vars]
    with warnings.catch_warnings():
        # a constant variable divides 0 by 0 inside ArviZ; its NaN is handled below as the worst value
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        rhat = az.rhat(idata, var_names=names)
        ess = az.ess(idata, var_names=names, method="bulk")
    rhat_ds = getattr(rhat, "dataset", rhat)
    ess_ds = getattr(ess, "dataset", ess)

    def worst(ds, largest: bool) -> tuple[float, str]:
        # a NaN (constant or stuck chain) is the worst value there is
        per = {}
        for v in names:
            a = np.asarray(ds[v], dtype=float)
            if not np.all(np.isfinite(a)):
                per[v] = np.inf if largest else 0.0
            else:
                per[v] = float(a.max() if largest else a.min())
        name = (max if largest else min)(per, key=lambda v: per[v])
        return per[name], name

    max_rhat, rhat_var = worst(rhat_ds, largest=True)
    min_ess, ess_var = worst(ess_ds, largest=False)
    div = int(np.asarray(idata["sample_stats"]["diverging"]).sum())
    return {
        "max_rhat": max_rhat,
        "max_rhat_var": rhat_var,
        "min_ess_bulk": min_ess,
        "min_ess_var": ess_var,
        "divergences": div,
    }


def _gate_problems(stats: dict, max_rhat: float, min_ess: float) -> list[str]:
    out = []
    if not stats["max_rhat"] <= max_rhat:
        out.append(f"max R-hat {stats['max_rhat']:.3f} ({stats['max_rhat_var']}) > {max_rhat:g}")
    if not stats["min_ess_bulk"] >= min_ess:
        out.append(f"min bulk ESS {stats['min_ess_bulk']:.0f} ({stats['min_ess_var']}) < {min_ess:g}")
    if stats["divergences"] > 0:
        out.append(f"{stats['divergences']} divergences")
    return out


def _retry_draws(draws: int, stats: dict, min_ess: float) -> int:
    """Draws for the retry when the ESS fell short: ESS grows about linearly in draws, but its estimate is
    noisy (measured: creative_sd's bulk ESS of 2 x 2000 draws varies 300-1000 between fits of one campaign),
    so scale by 1.5x the shortfall, at least 2x and at most 4x. Unchanged when the ESS was not the problem."""
    ess = stats["min_ess_bulk"]
    if ess >= min_ess:
        return draws
    factor = 4.0 if not ess > 0 else min(4.0, max(2.0, 1.5 * min_ess / ess))
    return int(np.ceil(draws * factor / 100.0) * 100)

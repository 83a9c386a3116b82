"""The PyMC graph of the hierarchical model (the model's definition) and PyTensor's compile directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from models.hierarchical.design import CENTRED_MIN_CONVERSIONS, CENTRED_MIN_CREATIVES, PRIOR, _Design


# ---------------------------------------------------------------------------------------------- pymc
def _set_compile_dir(compile_dir: str | None) -> str | None:
    """Point PyTensor's cache at `compile_dir`; returns a warning when it cannot (already imported)."""
    if compile_dir is None:
        return None
    path = str(Path(compile_dir).expanduser().resolve())
    if "pytensor" in sys.modules:
        import pytensor

        current = str(pytensor.config.base_compiledir)
        if Path(current).resolve() != Path(path):
            return (
                f"compile_dir {path} ignored: PyTensor was already loaded with base_compiledir {current} "
                "(set it before the first fit in the process)"
            )
        return None
    Path(path).mkdir(parents=True, exist_ok=True)
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("base_compiledir")]
    os.environ["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={path}"])
    return None


#: The model's data: `_Design` fields held in PyMC ``Data`` containers (shared variables), so the compiled
#: logp does not depend on the data values or the number of cells. A later fit of a model with the same
#: structure (see `_structure_key`) swaps the data into the compiled sampler instead of compiling again.
DATA_FIELDS = (
    "organic_x",
    "current_exposure",
    "cell_creative",
    "cell_impressions",
    "cell_conversions",
    "cell_delay",
    "cell_exposure",
)


def _centred_mask(design: _Design, parameterization: str = "auto") -> np.ndarray:
    """Which creatives' effects are sampled centred (see `build_pymc_model`)."""
    n = len(design.creative_labels)
    if parameterization != "auto" or n < CENTRED_MIN_CREATIVES:
        return np.zeros(n, bool)
    conv = np.bincount(design.cell_creative, weights=design.cell_conversions, minlength=n)
    return conv >= CENTRED_MIN_CONVERSIONS


def _structure_key(design: _Design, fatigue: str, prior: dict | None, parameterization: str) -> tuple:
    """What the compiled model depends on besides `DATA_FIELDS`: two designs with equal keys share it."""
    return (
        design.creative_labels,
        design.campaign_labels,
        design.campaign_of.tobytes(),
        _centred_mask(design, parameterization).tobytes(),
        fatigue,
        tuple(sorted({**PRIOR, **(prior or {})}.items())),
    )


def build_pymc_model(
    design: _Design,
    fatigue: str = "none",
    prior: dict | None = None,
    parameterization: str = "auto",
    shared: bool = True,
):
    """The PyMC model of `design` (imports pymc). Observed variable: ``conversions`` over cells.

    ``parameterization="auto"``: creative effects are non-centred (``creative_z``) for creatives with fewer
    than `CENTRED_MIN_CONVERSIONS` observed conversions, the usual case here, and centred
    (``creative_logit``) for the data-rich ones, where the non-centred form makes NUTS take hundreds of
    steps per draw (measured: 100 creatives, 101 vs 18 steps per draw). The model (joint density of the
    rates) is the same either way. ``"noncentred"`` forces the non-centred form everywhere.

    The data (`DATA_FIELDS`) are ``pm.Data`` containers: ``pm.set_data`` or nutpie's ``with_data`` change
    them, with any number of cells, without rebuilding or recompiling.
    """
    import pymc as pm
    import pytensor.tensor as pt

    pr = {**PRIOR, **(prior or {})}
    n_campaigns = len(design.campaign_labels)
    coords = {"creative": list(design.creative_labels), "campaign": list(design.campaign_labels)}
    with pm.Model(coords=coords) as model:
        if shared:
            data = {f: pm.Data(f, getattr(design, f)) for f in DATA_FIELDS}
        else:
            data = {f: getattr(design, f) for f in DATA_FIELDS}
        mu = pm.Normal("intercept_mean", pr["intercept_mu"], pr["intercept_sd"])
        if n_campaigns > 1:
            tau = pm.HalfNormal("campaign_sd", pr["campaign_sd"])
            # Campaign intercepts stay non-centred: their spread is often near 0 (a centred funnel), and
            # the low-rank mass matrix absorbs their correlation with the effects.
            intercept = _mixed(pm, pt, "campaign", pt.zeros(n_campaigns) + mu, tau, np.zeros(n_campaigns, bool))
            base = intercept[design.campaign_of]
        else:
            base = mu
        beta = pm.Normal("organic_coef", pr["organic_mu"], pr["organic_sd"])
        sigma = pm.HalfNormal("creative_sd", pr["creative_sd"])
        # Centred only where the data pin a creative down AND there are enough creatives to keep
        # creative_sd away from 0; with a handful of creatives the centred form funnels.
        cen_c = _centred_mask(design, parameterization)
        logit_base = _mixed(pm, pt, "creative", base + beta * data["organic_x"], sigma, cen_c)
        cells = data["cell_creative"]
        if fatigue != "none":
            phi = pm.HalfNormal("fatigue", pr["fatigue_sd"])
            current = logit_base - phi * data["current_exposure"]
            cell_logit = logit_base[cells] - phi * data["cell_exposure"]
        else:
            current = logit_base
            cell_logit = logit_base[cells]
        pm.Deterministic("rate", pm.math.invlogit(current), dims="creative")
        p = pm.math.invlogit(cell_logit) * data["cell_delay"]
        pm.Binomial("conversions", n=data["cell_impressions"], p=p, observed=data["cell_conversions"])
    return model


def _mixed(pm, pt, level: str, mean, sd, centred: np.ndarray):
    """Normal(mean, sd) effects, non-centred where ``~centred`` (``{level}_z``), centred elsewhere
    (``{level}_logit``). `mean` is a tensor of shape (len(centred),)."""
    idx_nc, idx_c = np.flatnonzero(~centred), np.flatnonzero(centred)
    parts = []
    if idx_nc.size:
        z = pm.Normal(f"{level}_z", 0.0, 1.0, shape=idx_nc.size)
        parts.append(mean[idx_nc] + sd * z)
    if idx_c.size:
        parts.append(pm.Normal(f"{level}_logit", mean[idx_c], sd, shape=idx_c.size))
    if not idx_c.size:
        return parts[0]
    if not idx_nc.size:
        return parts[0]
    inverse = np.argsort(np.concatenate([idx_nc, idx_c]))
    return pt.concatenate(parts)[inverse]

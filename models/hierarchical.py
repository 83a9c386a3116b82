"""Hierarchical logit model of each creative's daily conversion rate, fitted with PyMC.

Model
-----
For creative c of campaign k on day d (age a = days before the campaign's as-of date, 0 = newest day)::

    logit p[d, c] = intercept[k] + organic_coef * x[c] + creative_sd * z[c] - fatigue * e[d, c]
    conversions[d, c] ~ Binomial(impressions[d, c], p[d, c] * F(a))

- ``x[c]``: standardised log organic engagement rate ((likes + comments + shares) / views, from the plan),
  standardised over the creatives that have one; creatives without organic data get 0 (the mean).
- ``z[c] ~ Normal(0, 1)``: the creative effect, non-centred partial pooling. In models of at least
  `CENTRED_MIN_CREATIVES` creatives, creatives with at least `CENTRED_MIN_CONVERSIONS` observed
  conversions are sampled in the equivalent centred form instead
  (``creative_logit ~ Normal(mean, creative_sd)``): with that much data the non-centred form needs ~5x the
  leapfrog steps (see `build_model`).
- ``e[d, c]``: exposure for the optional fatigue term: ``fatigue="days"`` counts the creative's earlier
  days with impressions, in weeks; ``fatigue="impressions"`` its cumulative earlier impressions, in units
  of 100,000. ``fatigue="none"`` drops the term.
- ``F``: the attribution-delay CDF, ``F[a]`` the share of a day's conversions already reported when the
  day is ``a`` days old (1 beyond the list). Without one, `DEFAULT_DELAY_CDF` is used: a geometric delay
  with 55% reported on the day, ``F(a) = 1 - 0.45**(a + 1)``, closed to 1.0 on day 7 (TikTok's default
  7-day click window). Pass ``delay_cdf=(1.0,)`` for no correction.
- Several campaigns in one model (`fit_portfolio`) share the hyperpriors:
  ``intercept[k] = intercept_mean + campaign_sd * campaign_z[k]``; with one campaign the intercept is
  ``intercept_mean`` itself.

Priors (logit scale; rate per impression ~1e-4 in this domain: CTR ~1% x click-to-conversion ~1.5%)::

    intercept_mean ~ Normal(-8.8, 1.0)      # logit(1.5e-4); 95% of campaigns in 1.4e-5 .. 1.7e-3
    campaign_sd    ~ HalfNormal(0.5)        # portfolio only
    organic_coef   ~ Normal(0, 0.5)         # per sd of log engagement rate (``prior`` may move it)
    creative_sd    ~ HalfNormal(0.5)        # creatives within a campaign differ by up to ~2.7x
    fatigue        ~ HalfNormal(0.3)        # per week live / per 100k impressions (decline only)

The prior predictive (tests/models/test_hierarchical.py) puts ~95% of creative rates in 1e-5 .. 1e-2.

Cost: impressions per currency unit per creative use the closed-form Gamma-Poisson of `models.cost`
(prior CPM ``prior_cpm``, weight ``prior_cpm_weight`` impressions), drawn independently of the rates.
The objective ``conversions_per_dollar`` is rate x impressions-per-dollar; ``conversion_rate`` the rate;
``click_rate`` is not modelled hierarchically: its draws are the conjugate Beta(1, 99) + clicks posterior
of `models.conjugate` (clicks are plentiful, pooling adds little), while the CPA draws still come from the
hierarchical conversion model.

Sampler
-------
``sampler="nutpie"`` (default) or ``"pymc"`` (PyMC's own NUTS, one core). Both compile through numba;
the model is compiled once per fit and the gate's retry reuses it (nutpie). Defaults: 2 chains x 2000
draws after 1000 tuning steps, ``target_accept`` 0.99. nutpie's mass matrix is diagonal below
`LOW_RANK_MIN_CREATIVES` creatives and above `LOW_RANK_MAX_CREATIVES` and low-rank between (measured; see
there). nutpie is the default: PyMC's NUTS was slower everywhere measured (5 x 30: 16.6 s cold, 6.5-12.9 s
warm; 500 creatives: 83 s against nutpie's 34 s, 2026-11-25 at 2 x 1000 draws) and diverged more often
(1-4 divergences at 5 x 30 where nutpie had none). Wall times of the defaults are in BENCHMARKS.md
(``benchmarks/bench_hierarchical.py``). nutpie prints no convergence warnings, so the diagnostics gate
below is always computed here.

Diagnostics gate
----------------
After sampling: max R-hat <= ``max_rhat`` and min bulk ESS >= ``min_ess`` (ArviZ rank R-hat and bulk ESS,
over every variable of `SUMMARY_VARS` present: the hyperparameters, the pooling scales included, and the
current rates) and no divergences. NaN R-hat counts as a failure. The slowest variable is nearly always
creative_sd, which 2 x 1000 draws did not mix to 400 in about half the fits of 5-creative campaigns; hence
the 2 x 2000 default. On failure the fit is retried once with ``tune`` doubled, ``target_accept``
`RETRY_TARGET_ACCEPT` and, when the ESS fell short, the draws scaled up by the shortfall (`_retry_draws`),
with the same compiled model and a new seed. If it still fails: ``on_failure="fallback"`` returns the
conjugate posterior (diagnostics ``fallback=True`` and a warning), ``on_failure="stop"`` raises
`ModelError`. Measured with the defaults on 90 simulated 5-creative campaigns (7, 14 and 30 days; priors
drawn as in SBC): 84 passed at once, 4 after the retry, 2 fell back (R-hat 1.012 and 1.02 on creative_sd).

Compile cache: ``compile_dir`` sets PyTensor's ``base_compiledir`` (numba's cache lives beneath it). It
must be set before PyTensor is first imported in the process (PyTensor reads it once); if PyTensor is
already loaded with another directory, a warning is recorded and the existing one is used. Most of a
small fit's time is nutpie compiling its logp and expansion into numba C callbacks, which numba cannot
cache ("dynamic globals"); the cache keeps the rest (measured at 5 x 30 in a new process: 12.9 s with
empty caches, 9.0 s warm; `benchmarks/bench_hierarchical.py`). Within one process, ``reuse_compiled=True`` keeps compiled models and swaps new
data into them (nutpie's ``with_data``) for later fits of the same structure: ~0.2-0.7 s a fit, for
studies and simulations that fit many campaigns.

Saved fits (``save_to``): netCDF through h5netcdf, which needs ``h5py`` installed; a ``.zarr`` path
writes zarr instead. `diagnose_summary` reads either.

``pymc``/``arviz`` are imported inside functions only: ``import models.hierarchical`` stays cheap.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.conjugate import BetaPrior, ConjugateModel
from models.cost import CostModel
from models.errors import ModelError
from models.objectives import OBJECTIVES
from models.observations import DailyObservations
from models.posterior import Posterior

#: Geometric attribution delay over TikTok's 7-day click window: F(a) = 1 - 0.45**(a+1), F(6) = 1.
DEFAULT_DELAY_CDF: tuple[float, ...] = tuple(round(1.0 - 0.45 ** (a + 1), 4) for a in range(6)) + (1.0,)

#: Prior constants (logit scale); see the module docstring.
PRIOR = {
    "intercept_mu": -8.8,
    "intercept_sd": 1.0,
    "campaign_sd": 0.5,
    "organic_mu": 0.0,
    "organic_sd": 0.5,
    "creative_sd": 0.5,
    "fatigue_sd": 0.3,
}

#: Observed conversions from which a creative's effect is sampled centred (x5 for a campaign intercept),
#: in models of at least `CENTRED_MIN_CREATIVES` creatives. With a handful of creatives creative_sd is
#: weakly identified and may be near 0, where the centred form funnels whatever the data: measured on the
#: bundled example (5 creatives, 14 to 50 conversions), centring from 10 or from 50 conversions gave 4 to 9
#: divergences after the retry (gate failed); all non-centred gave R-hat 1.00 and none. In a 500-creative
#: portfolio centring from 10 conversions sampled in 34 s, all non-centred took 156 s.
CENTRED_MIN_CONVERSIONS = 10
CENTRED_MIN_CREATIVES = 20

#: Models (in creatives) for which nutpie adapts a low-rank mass matrix; diagonal outside. Measured: at 5
#: creatives the diagonal one mixes creative_sd better (20 simulated campaigns x 30 days, 2 x 2000 draws,
#: target_accept 0.99: 19 vs 18 pass the gate, median min ESS 783 vs 578); at 100 creatives low-rank
#: takes 15 vs 18 steps per draw with ~4x the ESS; at 500 its per-step cost makes it ~40x slower.
LOW_RANK_MIN_CREATIVES = 20
LOW_RANK_MAX_CREATIVES = 100

#: Exposure units of the fatigue term.
FATIGUE_DAYS_UNIT = 7.0
FATIGUE_IMPRESSIONS_UNIT = 100_000.0

#: Floor of the organic engagement rate before the log (a post with no engagement at all).
ORGANIC_FLOOR = 1e-4

#: Variables the summary shows and whose R-hat the gate checks (those present in the fit).
SUMMARY_VARS = ("intercept_mean", "campaign_sd", "organic_coef", "creative_sd", "fatigue", "rate")
#: target_accept of the retry (or the plan's, when higher).
RETRY_TARGET_ACCEPT = 0.995

SAMPLERS = ("nutpie", "pymc")
FATIGUE = ("none", "days", "impressions")


# ---------------------------------------------------------------------------------------------- design
@dataclass(frozen=True)
class _Design:
    """Flattened model inputs for one or more campaigns.

    Creatives are numbered across campaigns (``n`` in all); cells are the observed (day, creative) pairs,
    merged where they share the creative, the delay factor and the fatigue exposure.
    """

    creative_labels: tuple[str, ...]  # creative ids; "c{k}/{id}" in a portfolio (unique across it)
    campaign_labels: tuple[str, ...]
    campaign_of: np.ndarray  # (n,) int
    organic_x: np.ndarray  # (n,) standardised log engagement rate, 0 where unknown
    current_exposure: np.ndarray  # (n,) fatigue exposure on each campaign's latest day
    cell_creative: np.ndarray  # (n_cells,) int
    cell_impressions: np.ndarray  # (n_cells,) int64
    cell_conversions: np.ndarray  # (n_cells,) int64
    cell_delay: np.ndarray  # (n_cells,) F(age)
    cell_exposure: np.ndarray  # (n_cells,)
    slices: tuple[slice, ...]  # creatives of each campaign


def _check_cdf(cdf: Sequence[float]) -> np.ndarray:
    arr = np.asarray(cdf, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or np.any(~(arr > 0) | (arr > 1)) or np.any(np.diff(arr) < 0):
        raise ModelError("delay_cdf must be a non-empty non-decreasing list of values in (0, 1]")
    return arr


def _exposure(daily: DailyObservations, fatigue: str) -> np.ndarray:
    """Fatigue exposure before each day, shape (n_days, n_creatives)."""
    shape = daily.impressions.shape
    if fatigue == "none" or daily.n_days == 0:
        return np.zeros(shape)
    if fatigue == "days":
        live = (daily.impressions > 0).astype(float)
        return (np.cumsum(live, axis=0) - live) / FATIGUE_DAYS_UNIT
    if fatigue == "impressions":
        imp = daily.impressions
        return (np.cumsum(imp, axis=0) - imp) / FATIGUE_IMPRESSIONS_UNIT
    raise ModelError(f"fatigue must be one of {FATIGUE}, got {fatigue!r}")


def standardise_organic(rates: Sequence[np.ndarray | None], sizes: Sequence[int]) -> list[np.ndarray]:
    """Standardised log engagement rates, pooled over every known value; 0 where unknown.

    Parameters
    ----------
    rates : one array of shape (n_creatives_k,) per campaign (NaN where unknown), or None
    sizes : n_creatives_k per campaign
    """
    logs = []
    for r, n in zip(rates, sizes, strict=True):
        if r is None:
            logs.append(np.full(n, np.nan))
            continue
        r = np.asarray(r, dtype=np.float64)
        if r.shape != (n,):
            raise ModelError(f"organic_rate: expected shape ({n},), got {r.shape}")
        with np.errstate(invalid="ignore", divide="ignore"):
            logs.append(np.where(np.isfinite(r) & (r >= 0), np.log(np.maximum(r, ORGANIC_FLOOR)), np.nan))
    known = np.concatenate([lg[np.isfinite(lg)] for lg in logs]) if logs else np.zeros(0)
    mean = known.mean() if known.size else 0.0
    sd = known.std() if known.size > 1 else 0.0
    sd = sd if sd > 1e-12 else 1.0
    return [np.where(np.isfinite(lg), (lg - mean) / sd, 0.0) for lg in logs]


def _design(
    campaigns: Sequence[DailyObservations],
    organic: Sequence[np.ndarray | None],
    fatigue: str,
    delay_cdf: Sequence[float] | None,
) -> _Design:
    cdf = _check_cdf(DEFAULT_DELAY_CDF if delay_cdf is None else delay_cdf)
    xs = standardise_organic(organic, [d.n_creatives for d in campaigns])
    labels, camp_labels, camp_of, cur_exp, slices = [], [], [], [], []
    cc, ci, cy, cf, ce = [], [], [], [], []
    offset = 0
    for k, daily in enumerate(campaigns):
        name = f"c{k}"
        camp_labels.append(name)
        n = daily.n_creatives
        labels.extend(cid if len(campaigns) == 1 else f"{name}/{cid}" for cid in daily.creative_ids)
        camp_of.append(np.full(n, k))
        slices.append(slice(offset, offset + n))
        exposure = _exposure(daily, fatigue)
        # the current rate is the latest day's: its exposure counts the days before it, as in the likelihood
        cur_exp.append(exposure[-1] if daily.n_days else np.zeros(n))
        if daily.n_days:
            age = daily.n_days - 1 - np.arange(daily.n_days)
            f_age = np.where(age < cdf.size, cdf[np.minimum(age, cdf.size - 1)], 1.0)
            mask = daily.observed & (daily.impressions > 0)
            d_idx, c_idx = np.nonzero(mask)
            cc.append(c_idx + offset)
            ci.append(np.rint(daily.impressions[d_idx, c_idx]).astype(np.int64))
            cy.append(np.rint(daily.conversions[d_idx, c_idx]).astype(np.int64))
            cf.append(f_age[d_idx])
            ce.append(exposure[d_idx, c_idx])
        offset += n

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    cell_c, cell_n, cell_y = cat(cc, np.int64), cat(ci, np.int64), cat(cy, np.int64)
    cell_f, cell_e = cat(cf, np.float64), cat(ce, np.float64)
    if cell_c.size:
        # Days of a creative with the same delay factor and exposure share p: their Binomials add up
        # exactly (Binomial(n1, p) + Binomial(n2, p) = Binomial(n1 + n2, p)), so merge them. Without
        # fatigue this leaves at most len(delay_cdf) + 1 cells per creative (30 days -> 8).
        keys = np.column_stack([cell_c.astype(np.float64), cell_f, cell_e])
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        cell_n = np.bincount(inverse, weights=cell_n).astype(np.int64)
        cell_y = np.bincount(inverse, weights=cell_y).astype(np.int64)
        cell_c, cell_f, cell_e = uniq[:, 0].astype(np.int64), uniq[:, 1], uniq[:, 2]

    return _Design(
        creative_labels=tuple(labels),
        campaign_labels=tuple(camp_labels),
        campaign_of=cat(camp_of, np.int64),
        organic_x=cat(xs, np.float64),
        current_exposure=cat(cur_exp, np.float64),
        cell_creative=cell_c,
        cell_impressions=cell_n,
        cell_conversions=cell_y,
        cell_delay=cell_f,
        cell_exposure=cell_e,
        slices=tuple(slices),
    )


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
    """Which creatives' effects are sampled centred (see `build_model`)."""
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


def build_model(
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


class _Sampler:
    """Compiles the model once and samples it per attempt (the retry reuses the compiled model).

    Compilation dominates a small fit (measured ~5-8 s of a ~6-9 s fit at 5 creatives), so neither the
    retry nor a later fit of a model with the same structure in the same process pays it again: see
    `set_data` and `_sampler_for`.
    """

    def __init__(self, model, sampler: str, progressbar: bool) -> None:
        self.model = model
        self.sampler = sampler
        self.progressbar = progressbar
        self.compiled = None
        # Low-rank mass-matrix adaptation learns the intercept/effect correlations of the hierarchy:
        # measured on 100 creatives, 15 vs 18 steps per draw and 4x the bulk ESS. Its per-step cost grows
        # with the dimension: on 500 creatives it took 193 s against 5 s for the diagonal one.
        n_creatives = len(model.coords["creative"])
        low_rank = LOW_RANK_MIN_CREATIVES <= n_creatives <= LOW_RANK_MAX_CREATIVES
        self.adaptation = "low_rank" if low_rank else "diag"
        if sampler == "nutpie":
            import nutpie

            self.compiled = nutpie.compile_pymc_model(model, backend="numba")

    def set_data(self, design: _Design) -> None:
        """Swap `design`'s data (same structure, any number of cells) into the model and the compiled logp."""
        import pymc as pm

        values = {f: getattr(design, f) for f in DATA_FIELDS}
        with self.model:
            pm.set_data(values)
        if self.compiled is not None:
            known = {var.name for var in self.compiled.shared_var_keys}  # those the graph uses
            self.compiled = self.compiled.with_data(**{k: v for k, v in values.items() if k in known})

    def __call__(self, draws: int, tune: int, chains: int, target_accept: float, seed: int):
        import pymc as pm

        if self.sampler == "nutpie":
            import nutpie
            from pymc.backends.arviz import patch_nutpie_idata

            t0 = time.perf_counter()
            idata = nutpie.sample(
                self.compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                cores=min(chains, os.cpu_count() or 1),
                seed=seed,
                target_accept=target_accept,
                progress_bar=self.progressbar,
                adaptation=self.adaptation,
            )
            patch_nutpie_idata(idata, self.model, sampling_time=time.perf_counter() - t0)
            return idata
        with self.model:
            return pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=1,  # measured: cores=2 is slower at these sizes on 2 cores
                target_accept=target_accept,
                random_seed=seed,
                nuts_sampler="pymc",
                progressbar=self.progressbar,
                compute_convergence_checks=False,
            )


#: Compiled samplers of this process by (sampler, structure key), most recently used last.
_SAMPLERS: dict[tuple, _Sampler] = {}
#: How many compiled models a process keeps (each holds its numba code; a 500-creative one ~50 MB).
SAMPLER_CACHE_SIZE = 8


def _sampler_for(
    design: _Design, fatigue: str, prior: dict | None, sampler: str, progressbar: bool, reuse: bool
) -> tuple[_Sampler, bool]:
    """A compiled sampler for `design`. With `reuse`: the process's cached one with the data swapped in
    when a model of the same structure was compiled before, else a new one kept for later. Without: a new
    one with the data as constants (compiles ~2-3 s faster, measured 5.4-7.3 s vs 8.6-8.9 s at 5 x 30).
    Returns (sampler, reused)."""
    if not reuse:
        return _Sampler(build_model(design, fatigue, prior, shared=False), sampler, progressbar), False
    key = (sampler, _structure_key(design, fatigue, prior, "auto"))
    cached = _SAMPLERS.pop(key, None)
    if cached is not None:
        cached.set_data(design)
        cached.progressbar = progressbar
        _SAMPLERS[key] = cached
        return cached, True
    built = _Sampler(build_model(design, fatigue, prior), sampler, progressbar)
    _SAMPLERS[key] = built
    while len(_SAMPLERS) > SAMPLER_CACHE_SIZE:
        _SAMPLERS.pop(next(iter(_SAMPLERS)))
    return built, False


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
        name = (max if largest else min)(per, key=per.get)
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


def _save(idata, path: Path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zarr":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr 3: "consolidated metadata is not part of the spec"
            idata.to_zarr(path, mode="w")
    else:
        try:
            idata.to_netcdf(path, engine="h5netcdf")
        except ImportError as e:  # h5netcdf is a dependency, its h5py backend may be missing
            raise ModelError(f"{path}: cannot write netCDF ({e}); pip install h5py, or save to a .zarr path") from None
    return str(path)


def diagnose_summary(path: str | Path, fmt: str = "table") -> str:
    """ArviZ's summary table of a saved fit (netCDF or zarr written by ``fit(save_to=...)``), as text
    (`fmt` "table"), CSV ("csv") or a JSON object keyed by variable ("json")."""
    import arviz as az
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no saved fit there; run a hierarchical fit with save_to first")
    if path.suffix == ".zarr" or path.is_dir():
        tree = xr.open_datatree(path, engine="zarr")
    else:
        tree = xr.open_datatree(path, engine="h5netcdf")
    names = [v for v in SUMMARY_VARS if v in tree["posterior"].data_vars]
    table = az.summary(tree, var_names=names or None)
    import pandas as pd

    if fmt == "csv":
        return table.to_csv(index_label="variable")
    if fmt == "json":
        return table.to_json(orient="index", indent=2) + "\n"
    with pd.option_context("display.width", 200, "display.max_rows", 1000, "display.max_columns", 20):
        return table.to_string()


# ---------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class HierarchicalModel:
    """Partially pooled logit model of conversion rates per impression; see the module docstring.

    Parameters
    ----------
    organic_rate : ndarray of shape (n_creatives,) or None
        Organic engagement rate per view of each creative, NaN where unknown.
    sampler : "nutpie" or "pymc"
    draws, tune, chains, target_accept : NUTS settings.
    fatigue : "none", "days" or "impressions"
    delay_cdf : attribution delay CDF by age in days, or None for `DEFAULT_DELAY_CDF`.
    on_failure : "fallback" (conjugate posterior) or "stop" (raise ModelError) after a failed gate.
    max_rhat, min_ess : gate thresholds.
    compile_dir : PyTensor/numba compile cache directory, or None for PyTensor's default (~/.pytensor).
    prior : overrides of `PRIOR` (e.g. ``{"organic_mu": 0.5, "organic_sd": 0.2}`` for an organic coefficient
        learned from past campaigns by a portfolio fit).
    reuse_compiled : keep the compiled model in the process and reuse it, with the new data swapped in,
        for later fits of the same structure (same creatives, campaigns, fatigue and centring): ~0.2-0.7 s
        a fit instead of ~6-9 s. For studies that fit many times in one process; a single fit compiles
        faster without it (the data are then constants of the compiled code).
    progressbar : show the sampler's progress bar.
    prior_cpm, prior_cpm_weight : Gamma prior of the cost model (see `models.cost`).
    conjugate_alpha, conjugate_beta : Beta prior of the conversion rate of the fallback model.
    """

    organic_rate: np.ndarray | None = None
    sampler: str = "nutpie"
    draws: int = 2000
    tune: int = 1000
    chains: int = 2
    target_accept: float = 0.99
    fatigue: str = "none"
    delay_cdf: tuple[float, ...] | None = None
    on_failure: str = "fallback"
    max_rhat: float = 1.01
    min_ess: float = 400.0
    compile_dir: str | None = None
    progressbar: bool = False
    reuse_compiled: bool = False
    prior: dict | None = None
    prior_cpm: float = 8.0
    prior_cpm_weight: float = 1000.0
    conjugate_alpha: float = 1.0
    conjugate_beta: float = 5000.0

    name = "hierarchical"

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ModelError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.fatigue not in FATIGUE:
            raise ModelError(f"fatigue must be one of {FATIGUE}, got {self.fatigue!r}")
        if self.on_failure not in ("fallback", "stop"):
            raise ModelError(f"on_failure must be 'fallback' or 'stop', got {self.on_failure!r}")
        if self.delay_cdf is not None:
            object.__setattr__(self, "delay_cdf", tuple(float(v) for v in _check_cdf(self.delay_cdf)))
        unknown = set(self.prior or {}) - set(PRIOR)
        if unknown:
            raise ModelError(f"prior: unknown keys {sorted(unknown)}; use some of {sorted(PRIOR)}")

    # ------------------------------------------------------------------ helpers
    @property
    def cost(self) -> CostModel:
        return CostModel(self.prior_cpm, self.prior_cpm_weight)

    def conjugate(self) -> ConjugateModel:
        """The fallback model."""
        return ConjugateModel(conversion_prior=BetaPrior(self.conjugate_alpha, self.conjugate_beta), cost=self.cost)

    def _run(self, design: _Design, seed: int, save_to: Path | None) -> tuple[object, dict]:
        """Sample with the gate and one retry; returns (the last DataTree, diagnostics)."""
        notes: list[str] = []
        msg = _set_compile_dir(self.compile_dir)
        if msg:
            notes.append(msg)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sample, reused = _sampler_for(
                design, self.fatigue, self.prior, self.sampler, self.progressbar, self.reuse_compiled
            )
        notes.extend(dict.fromkeys(str(w.message).splitlines()[0] for w in caught if w.message))
        compile_seconds = time.perf_counter() - t0
        total_seconds = compile_seconds
        stats: dict = {}
        idata = None
        gate = "failed"
        draws, tune, accept = self.draws, self.tune, self.target_accept
        for i in range(2):
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                idata = sample(draws, tune, self.chains, accept, seed + i)
            total_seconds += time.perf_counter() - t0
            notes.extend(dict.fromkeys(str(w.message).splitlines()[0] for w in caught if w.message))
            stats = gate_stats(idata)
            problems = _gate_problems(stats, self.max_rhat, self.min_ess)
            if not problems:
                gate = "passed" if i == 0 else "retried"
                break
            notes.append(
                f"diagnostics gate failed on attempt {i + 1} (draws={draws}, tune={tune}, "
                f"target_accept={accept:g}): " + ", ".join(problems)
            )
            # the retry: longer tuning, smaller steps, and more draws when the ESS fell short
            draws, tune, accept = _retry_draws(draws, stats, self.min_ess), 2 * tune, max(accept, RETRY_TARGET_ACCEPT)
        diag = {
            "model": "hierarchical",
            "sampler": self.sampler,
            **stats,
            "sampling_seconds": round(total_seconds, 3),
            "compile_seconds": round(compile_seconds, 3),
            "compile_reused": reused,
            "gate": gate,
            "fallback": False,
            "warnings": notes,
            "fit_path": None,
        }
        if save_to is not None and idata is not None:
            diag["fit_path"] = _save(idata, save_to)
        return idata, diag

    def _fail(self, diag: dict) -> str:
        return (
            f"hierarchical model failed its diagnostics gate after a retry "
            f"(max R-hat {diag['max_rhat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}, "
            f"{diag['divergences']} divergences; limits {self.max_rhat:g} / {self.min_ess:g} / 0)"
        )

    def _posterior(
        self,
        daily: DailyObservations,
        rate: np.ndarray,
        objective: str,
        n_draws: int,
        rng: np.random.Generator,
        diag: dict,
    ) -> Posterior:
        """Posterior of `objective` from joint rate draws (n_samples, n_creatives)."""
        spec = OBJECTIVES[objective]
        total = rate.shape[0]
        idx = rng.choice(total, size=n_draws, replace=n_draws > total)
        conv = rate[idx]
        totals = daily.totals()
        ipd = self.cost.draws(totals, n_draws, rng)
        if spec.event == "conversions":
            draws = conv * ipd if spec.per_dollar else conv
        else:
            a, b = ConjugateModel().rate_params(totals, "clicks")
            clicks = rng.beta(a, b, size=(n_draws, daily.n_creatives))
            draws = clicks * ipd if spec.per_dollar else clicks
        with np.errstate(divide="ignore"):
            cpa = 1.0 / (conv * ipd)
        return Posterior(daily.creative_ids, objective, draws, cpa_draws=cpa, diagnostics=dict(diag))

    def _fallback(
        self, daily: DailyObservations, objective: str, n_draws: int, rng: np.random.Generator, diag: dict
    ) -> Posterior:
        if self.on_failure == "stop":
            raise ModelError(self._fail(diag))
        post = self.conjugate().fit(daily, objective, n_draws, rng)
        warn = self._fail(diag) + "; fell back to the conjugate model"
        d = {**diag, "fallback": True, "warnings": [*diag["warnings"], warn]}
        warnings.warn(warn, RuntimeWarning, stacklevel=3)
        # Posterior's diagnostics dict is the one mutable part (works whether Posterior is a dataclass or not)
        post.diagnostics.clear()
        post.diagnostics.update(d)
        return post

    # ------------------------------------------------------------------ API
    def fit(
        self,
        daily: DailyObservations,
        objective: str = "conversions_per_dollar",
        n_draws: int = 4000,
        rng: np.random.Generator | None = None,
        save_to: Path | None = None,
    ) -> Posterior:
        """Posterior of `objective` for every creative of `daily`, at its current (latest-day) rate.

        Returns a Posterior with ``n_draws`` joint draws (resampled from the chains), ``cpa_draws`` and
        the diagnostics described in the module docstring. With ``save_to`` the sampler's DataTree is
        written there (netCDF, or zarr for a ``.zarr`` path).
        """
        return self.fit_portfolio([daily], [self.organic_rate], objective, n_draws, rng, save_to)[0]

    def fit_portfolio(
        self,
        campaigns: Sequence[DailyObservations],
        organic_rates: Sequence[np.ndarray | None] | None = None,
        objective: str = "conversions_per_dollar",
        n_draws: int = 4000,
        rng: np.random.Generator | None = None,
        save_to: Path | None = None,
    ) -> list[Posterior]:
        """Fit several campaigns in one model with shared hyperpriors; one Posterior per campaign.

        ``organic_rates``: one (n_creatives_k,) array (NaN where unknown) or None per campaign; None for
        all unknown. The diagnostics gate applies to the joint fit: a failure falls back (or stops) for all.
        """
        if objective not in OBJECTIVES:
            raise ModelError(f"unknown objective {objective!r}; use one of {sorted(OBJECTIVES)}")
        campaigns = list(campaigns)
        if not campaigns:
            return []
        rng = np.random.default_rng() if rng is None else rng
        organic = list(organic_rates) if organic_rates is not None else [None] * len(campaigns)
        if len(organic) != len(campaigns):
            raise ModelError(f"organic_rates: expected {len(campaigns)} entries, got {len(organic)}")
        design = _design(campaigns, organic, self.fatigue, self.delay_cdf)
        seed = int(rng.integers(2**31 - 2))
        idata, diag = self._run(design, seed, save_to)
        if diag["gate"] == "failed":
            return [self._fallback(d, objective, n_draws, rng, diag) for d in campaigns]
        rate = np.asarray(idata["posterior"]["rate"].transpose("chain", "draw", "creative"))
        rate = rate.reshape(-1, rate.shape[-1])
        return [
            self._posterior(d, rate[:, sl], objective, n_draws, rng, diag)
            for d, sl in zip(campaigns, design.slices, strict=True)
        ]


    def sample_posterior(
        self,
        campaigns: Sequence[DailyObservations],
        organic_rates: Sequence[np.ndarray | None] | None = None,
        rng: np.random.Generator | None = None,
        save_to: Path | None = None,
    ):
        """The raw fit: (DataTree of the last attempt, diagnostics), whatever the gate said.

        For calibration studies and inspection; `fit` / `fit_portfolio` are what decisions use. The
        posterior group holds ``intercept_mean``, ``organic_coef``, ``creative_sd``, ``rate`` (creatives
        labelled by id; ``"c{k}/{creative_id}"`` for campaign k = 0, 1, ... of a portfolio), and
        ``campaign_sd`` / ``fatigue`` when present.
        """
        campaigns = list(campaigns)
        rng = np.random.default_rng() if rng is None else rng
        organic = list(organic_rates) if organic_rates is not None else [None] * len(campaigns)
        design = _design(campaigns, organic, self.fatigue, self.delay_cdf)
        return self._run(design, int(rng.integers(2**31 - 2)), save_to)


def fit_portfolio(
    campaigns: Sequence[DailyObservations],
    organic_rates: Sequence[np.ndarray | None] | None = None,
    model: HierarchicalModel | None = None,
    **kwargs,
) -> list[Posterior]:
    """Module-level shortcut for ``(model or HierarchicalModel()).fit_portfolio(campaigns, organic_rates, ...)``."""
    return (model or HierarchicalModel()).fit_portfolio(campaigns, organic_rates, **kwargs)


def prior_predictive_rates(
    n_creatives: int = 5, n_samples: int = 2000, rng: np.random.Generator | None = None, prior: dict | None = None
) -> np.ndarray:
    """Prior draws of creative conversion rates per impression, shape (n_samples, n_creatives).

    Drawn with numpy from the priors in `PRIOR` (the same equations as `build_model`; organic x ~ N(0, 1),
    no fatigue), so the check needs no compilation.
    """
    rng = np.random.default_rng() if rng is None else rng
    pr = {**PRIOR, **(prior or {})}
    mu = rng.normal(pr["intercept_mu"], pr["intercept_sd"], size=(n_samples, 1))
    beta = rng.normal(0.0, pr["organic_sd"], size=(n_samples, 1))
    sigma = np.abs(rng.normal(0.0, pr["creative_sd"], size=(n_samples, 1)))
    x = rng.normal(size=(n_samples, n_creatives))
    z = rng.normal(size=(n_samples, n_creatives))
    eta = mu + beta * x + sigma * z
    return 1.0 / (1.0 + np.exp(-eta))


# ---------------------------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class SimulatedCampaign:
    """A campaign drawn from the model's generative story (for tests, SBC and benchmarks).

    Attributes
    ----------
    daily : the observed data (conversions thinned by the delay CDF)
    organic_rate : (n_creatives,) engagement rates per view
    truth : dict with "intercept", "organic_coef", "creative_sd", "fatigue" (floats) and "rate"
        ((n_creatives,) current rate per impression, latest day with fatigue), "daily_rate"
        ((n_days, n_creatives)).
    """

    daily: DailyObservations
    organic_rate: np.ndarray
    truth: dict


def simulate_campaign(
    rng: np.random.Generator,
    n_creatives: int = 5,
    n_days: int = 30,
    impressions_per_day: float = 8000.0,
    cpm: float = 8.0,
    delay_cdf: Sequence[float] | None = None,
    fatigue: str = "none",
    intercept: float | None = None,
    organic_coef: float | None = None,
    creative_sd: float | None = None,
    fatigue_rate: float | None = None,
    start: str = "2026-01-01",
) -> SimulatedCampaign:
    """Draw one campaign; parameters left None are drawn from `PRIOR` (as SBC needs).

    Impressions per creative and day vary x0.5..x1.5 around `impressions_per_day`; spend follows `cpm`.
    Organic engagement rates are log-normal around 5% per view; the world's logit uses their
    standardised log exactly as the model does (`standardise_organic`).
    """
    pr = PRIOR
    mu = rng.normal(pr["intercept_mu"], pr["intercept_sd"]) if intercept is None else intercept
    beta = rng.normal(0.0, pr["organic_sd"]) if organic_coef is None else organic_coef
    sigma = abs(rng.normal(0.0, pr["creative_sd"])) if creative_sd is None else creative_sd
    phi = 0.0
    if fatigue != "none":
        phi = abs(rng.normal(0.0, pr["fatigue_sd"])) if fatigue_rate is None else fatigue_rate
    organic = np.exp(np.log(0.05) + 0.5 * rng.normal(size=n_creatives))
    x = standardise_organic([organic], [n_creatives])[0]
    z = rng.normal(size=n_creatives)
    base = mu + beta * x + sigma * z
    imps = np.rint(impressions_per_day * rng.uniform(0.5, 1.5, size=(n_days, n_creatives)))
    spend = imps * cpm / 1000.0 * rng.uniform(0.9, 1.1, size=imps.shape)
    dates = np.datetime64(start, "D") + np.arange(n_days)
    probe = DailyObservations(tuple(f"cr{i}" for i in range(n_creatives)), dates, imps, imps * 0, imps * 0, spend)
    exposure = _exposure(probe, fatigue)
    logit = base[None, :] - phi * exposure
    p = 1.0 / (1.0 + np.exp(-logit))
    true_conv = rng.binomial(imps.astype(np.int64), p)
    cdf = _check_cdf(DEFAULT_DELAY_CDF if delay_cdf is None else delay_cdf)
    age = n_days - 1 - np.arange(n_days)
    f_age = np.where(age < cdf.size, cdf[np.minimum(age, cdf.size - 1)], 1.0)
    conv = rng.binomial(true_conv, f_age[:, None])
    clicks = rng.binomial(imps.astype(np.int64), 0.01)
    clicks = np.maximum(clicks, conv)
    daily = DailyObservations(probe.creative_ids, dates, imps, clicks, conv, spend)
    truth = {
        "intercept": float(mu),
        "organic_coef": float(beta),
        "creative_sd": float(sigma),
        "fatigue": float(phi),
        "rate": p[-1].copy(),
        "daily_rate": p,
        "true_conversions": true_conv,
    }
    return SimulatedCampaign(daily, organic, truth)

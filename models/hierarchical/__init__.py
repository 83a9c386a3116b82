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
  leapfrog steps (see `build_pymc_model`).
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

Methods
-------
``method="laplace_is"`` (default): the fast path of `models.hierarchical.laplace` on the numpy coding of this
model (`models.hierarchical.logdensity`, equal to PyMC's ``compile_logp``): the posterior mode (L-BFGS-B,
analytic gradient), the Hessian there, a multivariate t proposal refitted to the weighted draws in up to
`laplace.MAX_STAGES` stages, Pareto-smoothed importance sampling (`models.hierarchical.psis`). Its gate:
Pareto k <= 0.7 and importance-sampling ESS >= ``min_ess``. For portfolios, and above
`laplace.MAX_ADAPT_DIM` parameters, the nested form of `models.hierarchical.nested` (INLA-style: the globals
importance-sampled on their Laplace marginal, the creative effects from their conditional Gaussians
corrected by importance sampling within each campaign; its gate adds the conditional check's Pareto k,
``diagnostics.conditional_k``; ``diagnostics.approximation`` says "joint" or "nested"). On failure NUTS runs (below), then the
conjugate fallback. It imports neither pymc, pytensor nor arviz. ``method="nuts"``: NUTS only.
Diagnostics: ``method`` (whose draws decided: "laplace_is", "nuts" or "conjugate"), ``pareto_k`` (the fast
path's), ``ess`` (importance-sampling ESS, or NUTS's min bulk ESS).

Sampler (NUTS)
--------------
``sampler="nutpie"`` (default) or ``"pymc"`` (PyMC's own NUTS, one core). Both compile through numba;
the model is compiled once per fit and the gate's retry reuses it (nutpie). Defaults: 2 chains x 2000
draws after 1000 tuning steps, ``target_accept`` 0.99. nutpie's mass matrix is diagonal below
`LOW_RANK_MIN_CREATIVES` creatives and above `LOW_RANK_MAX_CREATIVES` and low-rank between (measured; see
there). nutpie is the default: PyMC's NUTS was slower everywhere measured (5 x 30: 16.6 s cold, 6.5-12.9 s
warm; 500 creatives: 83 s against nutpie's 34 s, 2026-11-25 at 2 x 1000 draws) and diverged more often
(1-4 divergences at 5 x 30 where nutpie had none). Wall times of the defaults are in BENCHMARKS.md
(``benchmarks/bench_hierarchical.py``). nutpie prints no convergence warnings, so the diagnostics gate
below is always computed here.

Diagnostics gate (NUTS)
-----------------------
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

Package layout (one job a module): ``design`` (constants, `_Design`), ``graph`` (the PyMC model),
``sampling`` (NUTS samplers and their cache), ``gate`` (NUTS diagnostics), ``saved`` (saved fits),
``logdensity`` (the same model's log density and gradient in numpy), ``nested`` (the globals' Laplace
marginal and the conditional draws for large models), ``laplace`` (mode, Hessian,
multivariate-t importance sampling), ``psis`` (Pareto-smoothed importance sampling), ``model``
(`HierarchicalModel`) and ``synthetic`` (simulated campaigns). Everything below is re-exported here, so
``from models.hierarchical import ...`` works as before the split.
"""

from models.hierarchical.design import (  # noqa: F401 (re-exports)
    CENTRED_MIN_CONVERSIONS,
    CENTRED_MIN_CREATIVES,
    DEFAULT_DELAY_CDF,
    FATIGUE,
    FATIGUE_DAYS_UNIT,
    FATIGUE_IMPRESSIONS_UNIT,
    LOW_RANK_MAX_CREATIVES,
    LOW_RANK_MIN_CREATIVES,
    METHODS,
    ORGANIC_FLOOR,
    PRIOR,
    RETRY_TARGET_ACCEPT,
    SAMPLERS,
    SUMMARY_VARS,
    _check_cdf,
    _Design,
    _design,
    _exposure,
    standardise_organic,
)
from models.hierarchical.gate import _gate_problems, _retry_draws, gate_stats  # noqa: F401
from models.hierarchical.graph import (  # noqa: F401
    DATA_FIELDS,
    _centred_mask,
    _mixed,
    _set_compile_dir,
    _structure_key,
    build_pymc_model,
)
from models.hierarchical.laplace import LaplaceFit, laplace_is  # noqa: F401
from models.hierarchical.logdensity import LogDensity  # noqa: F401
from models.hierarchical.model import HierarchicalModel, fit_portfolio  # noqa: F401
from models.hierarchical.psis import PARETO_K_MAX, psis  # noqa: F401
from models.hierarchical.sampling import _SAMPLERS, SAMPLER_CACHE_SIZE, _Sampler, _sampler_for  # noqa: F401
from models.hierarchical.saved import _save, _save_draws, diagnose_summary  # noqa: F401
from models.hierarchical.synthetic import SimulatedCampaign, prior_predictive_rates, simulate_campaign  # noqa: F401

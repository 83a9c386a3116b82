"""`HierarchicalModel`: the fit with its gate and fallbacks, and the posterior of an objective."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.conjugate import BetaPrior, ConjugateModel
from models.cost import CostModel
from models.errors import ModelError
from models.hierarchical.design import (
    FATIGUE,
    METHODS,
    PRIOR,
    RETRY_TARGET_ACCEPT,
    SAMPLERS,
    _check_cdf,
    _Design,
    _design,
)
from models.hierarchical.gate import _gate_problems, _retry_draws, gate_stats
from models.hierarchical.graph import _centred_mask, _set_compile_dir
from models.hierarchical.laplace import IS_DRAWS, LaplaceFit, laplace_is
from models.hierarchical.logdensity import LogDensity
from models.hierarchical.sampling import _sampler_for
from models.hierarchical.saved import _save, _save_draws
from models.objectives import OBJECTIVES
from models.observations import DailyObservations
from models.posterior import Posterior


@dataclass(frozen=True)
class HierarchicalModel:
    """Partially pooled logit model of conversion rates per impression; see the module docstring.

    Parameters
    ----------
    organic_rate : ndarray of shape (n_creatives,) or None
        Organic engagement rate per view of each creative, NaN where unknown.
    method : "laplace_is" (default: Laplace approximation + Pareto-smoothed importance sampling, numpy only,
        falling back to NUTS when its gate fails) or "nuts" (NUTS only).
    is_draws : importance draws per stage of the fast path.
    sampler : "nutpie" or "pymc" (the NUTS path)
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
    click_alpha, click_beta : Beta prior of the click rate (objective ``click_rate``, the fallback too).
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
    click_alpha: float = 1.0
    click_beta: float = 99.0
    method: str = "laplace_is"
    is_draws: int = IS_DRAWS

    name = "hierarchical"

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ModelError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.fatigue not in FATIGUE:
            raise ModelError(f"fatigue must be one of {FATIGUE}, got {self.fatigue!r}")
        if self.method not in METHODS:
            raise ModelError(f"method must be one of {METHODS}, got {self.method!r}")
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
        return ConjugateModel(
            conversion_prior=BetaPrior(self.conjugate_alpha, self.conjugate_beta),
            click_prior=BetaPrior(self.click_alpha, self.click_beta),
            cost=self.cost,
        )

    def _run(self, design: _Design, seed: int, save_to: Path | None) -> tuple[Any, dict]:
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
            "method": "nuts",
            "sampler": self.sampler,
            **stats,
            "ess": stats.get("min_ess_bulk"),
            "pareto_k": None,
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
            a, b = self.conjugate().rate_params(totals, "clicks")
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
        d = {**diag, "method": "conjugate", "fallback": True, "warnings": [*diag["warnings"], warn]}
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
        fast_diag = None
        if self.method == "laplace_is":
            fast, fast_diag = self._run_fast(design, seed, save_to)
            if fast.passed:
                ld = self._log_density(design)
                rate = ld.current_rate(fast.resample(max(n_draws, 1), np.random.default_rng(seed + 1)))
                return [
                    self._posterior(d, rate[:, sl], objective, n_draws, rng, fast_diag)
                    for d, sl in zip(campaigns, design.slices, strict=True)
                ]
        idata, diag = self._run(design, seed, save_to)
        if fast_diag is not None:
            # the reason NUTS ran, and what it cost, stay in the output
            diag["warnings"] = [*fast_diag["warnings"], *diag["warnings"]]
            diag["pareto_k"] = fast_diag["pareto_k"]
            diag["fast_path_ess"] = fast_diag["ess"]
            diag["sampling_seconds"] = round(diag["sampling_seconds"] + fast_diag["sampling_seconds"], 3)
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

    def sample_fast(
        self,
        campaigns: Sequence[DailyObservations],
        organic_rates: Sequence[np.ndarray | None] | None = None,
        rng: np.random.Generator | None = None,
        n_draws: int = 4000,
    ) -> tuple[dict[str, np.ndarray], dict]:
        """The fast path's raw fit, whatever its gate said: (draws by variable, diagnostics).

        The draws are resampled with the importance weights: ``intercept_mean``, ``organic_coef``,
        ``creative_sd`` of shape (n_draws,), ``rate`` (n_draws, n_creatives), and ``campaign_sd`` /
        ``fatigue`` when the model has them. For calibration studies; `fit` is what decisions use.
        """
        campaigns = list(campaigns)
        rng = np.random.default_rng() if rng is None else rng
        organic = list(organic_rates) if organic_rates is not None else [None] * len(campaigns)
        design = _design(campaigns, organic, self.fatigue, self.delay_cdf)
        seed = int(rng.integers(2**31 - 2))
        fast, diag = self._run_fast(design, seed, None)
        ld = self._log_density(design)
        if fast.draws.shape[0] == 0:
            return {}, diag
        theta = fast.resample(n_draws, np.random.default_rng(seed + 1))
        return ld.named(theta), diag

    def _log_density(self, design: _Design) -> LogDensity:
        return LogDensity(design, self.fatigue, self.prior, _centred_mask(design, "auto"))

    def _run_fast(self, design: _Design, seed: int, save_to: Path | None) -> tuple[LaplaceFit, dict]:
        """The Laplace + PSIS fit of `design` and its diagnostics (gate passed or failed)."""
        fit = laplace_is(self._log_density(design), np.random.default_rng(seed), self.min_ess, self.is_draws)
        notes = []
        if not fit.passed:
            notes.append("fast path (laplace_is) failed its gate: " + ", ".join(fit.problems) + "; ran NUTS instead")
        diag = {
            "model": "hierarchical",
            "method": "laplace_is",
            "sampler": "laplace_is",
            "pareto_k": round(fit.pareto_k, 4) if np.isfinite(fit.pareto_k) else float("inf"),
            "ess": round(fit.ess, 1),
            "importance_draws": int(fit.draws.shape[0]),
            "optimizer_iterations": fit.optimizer_iterations,
            "approximation": fit.approximation,
            "conditional_k": None if fit.conditional_k is None else round(fit.conditional_k, 4),
            "sampling_seconds": round(fit.seconds, 3),
            "gate": "passed" if fit.passed else "failed",
            "fallback": False,
            "warnings": notes,
            "fit_path": None,
        }
        if save_to is not None and fit.passed:
            ld = self._log_density(design)
            theta = fit.resample(2000, np.random.default_rng(seed + 2))
            diag["fit_path"] = _save_draws(ld, theta, save_to, fit.pareto_k, fit.ess)
        return fit, diag


def fit_portfolio(
    campaigns: Sequence[DailyObservations],
    organic_rates: Sequence[np.ndarray | None] | None = None,
    model: HierarchicalModel | None = None,
    **kwargs,
) -> list[Posterior]:
    """Module-level shortcut for ``(model or HierarchicalModel()).fit_portfolio(campaigns, organic_rates, ...)``."""
    return (model or HierarchicalModel()).fit_portfolio(campaigns, organic_rates, **kwargs)

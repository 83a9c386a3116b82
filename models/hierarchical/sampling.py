"""NUTS samplers (nutpie or PyMC) of the hierarchical model, compiled once and cached per process."""

from __future__ import annotations

import os
import time

from models.hierarchical.design import LOW_RANK_MAX_CREATIVES, LOW_RANK_MIN_CREATIVES, _Design
from models.hierarchical.graph import DATA_FIELDS, _structure_key, build_pymc_model


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
        return _Sampler(build_pymc_model(design, fatigue, prior, shared=False), sampler, progressbar), False
    key = (sampler, _structure_key(design, fatigue, prior, "auto"))
    cached = _SAMPLERS.pop(key, None)
    if cached is not None:
        cached.set_data(design)
        cached.progressbar = progressbar
        _SAMPLERS[key] = cached
        return cached, True
    built = _Sampler(build_pymc_model(design, fatigue, prior), sampler, progressbar)
    _SAMPLERS[key] = built
    while len(_SAMPLERS) > SAMPLER_CACHE_SIZE:
        _SAMPLERS.pop(next(iter(_SAMPLERS)))
    return built, False

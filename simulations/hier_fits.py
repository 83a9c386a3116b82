"""The hierarchical model inside a study: one fit per replicate and simulated day (`study.model = "hierarchical"`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.batch import DrawsBatchPosterior
from simulations.study import Study
from simulations.world import (
    CampaignWorld,
    Dynamics,
    reported_by,
    study_delay_cdf,
    study_prior,
)


class _HierarchicalFits:
    """The hierarchical model's posterior for every replicate of one campaign, refitted each day.

    Keeps the impressions, spend and conversions by day and report lag, so each day's fit sees what the
    engine would: each past day's conversions reported so far. One fit per replicate and day (~0.03 s on
    the fast path, ~0.3 s on NUTS with the compiled model reused). The model's attribution delay is the
    study's ``[model] delay_cdf``, else the world's true delay.
    """

    def __init__(self, study: Study, world: CampaignWorld, dyn: Dynamics, periods: int) -> None:
        from allocator.decisions.settings import hierarchical_model

        m = study.model
        cdf = study_delay_cdf(study, dyn) or (1.0,)
        self.model = hierarchical_model(
            m, study_prior(study), delay_cdf=cdf, on_failure="fallback", reuse_compiled=True
        )
        n_rep, k = world.shape
        window = 1 if dyn.delay_pmf is None else dyn.delay_pmf.size
        self.world = world
        self.imps = np.zeros((periods, n_rep, k))
        self.spend = np.zeros((periods, n_rep, k))
        self.lagged = np.zeros((periods, n_rep, k, window))  # conversions of day d reported after lag days
        self.dates = np.datetime64("2026-01-05", "D") + np.arange(periods)

    def record(self, t: int, imps: np.ndarray, spend: np.ndarray, lagged: np.ndarray) -> None:
        self.imps[t], self.spend[t], self.lagged[t] = imps, spend, lagged

    def reported(self, t: int) -> np.ndarray:
        """Conversions of days 0..t-1 reported by the end of day t-1, shape (t, n_replicates, n_creatives)."""
        return reported_by(self.lagged, t)

    def posterior(
        self, t: int, live: np.ndarray, scale: np.ndarray, n_draws: int, rng: np.random.Generator
    ) -> tuple[DrawsBatchPosterior, np.ndarray]:
        """The posterior of the objective before day t's delivery (data of days 0..t-1), and which
        replicates' fits fell back to the conjugate model."""
        import warnings

        from models.observations import DailyObservations

        n_rep, k = live.shape
        reported = self.reported(t)
        samples = np.empty((n_rep, n_draws, k))
        fell_back = np.zeros(n_rep, dtype=bool)
        organic = self.world.organic
        for r in range(n_rep):
            daily = DailyObservations(
                self.world.creative_ids,
                self.dates[:t],
                self.imps[:t, r],
                np.zeros((t, k)),
                reported[:, r],
                self.spend[:t, r],
            )
            model = replace(self.model, organic_rate=None if organic is None else organic[r])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                post = model.fit(daily, "conversion_rate", n_draws, rng)
            samples[r] = post.draws * scale[r]
            fell_back[r] = bool(post.diagnostics.get("fallback"))
        return DrawsBatchPosterior(samples, live), fell_back

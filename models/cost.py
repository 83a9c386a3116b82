"""Cost model: impressions per dollar (currency unit) for each creative.

Impressions bought with spend S are modelled as Poisson with rate lambda * S, lambda the impressions per
currency unit, with a Gamma prior centred on a prior CPM. The posterior is Gamma(shape0 + impressions,
rate0 + spend). Its relative sd is 1/sqrt(impressions) (0.2% at 250,000 impressions), two orders of magnitude
below the conversion rate's 1/sqrt(conversions); the conjugate model therefore uses the posterior mean as
a known scale, which keeps the objective an exactly scaled Beta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.observations import Observations


@dataclass(frozen=True)
class CostModel:
    """Gamma-Poisson model of impressions per currency unit.

    Parameters
    ----------
    prior_cpm : float
        Prior cost per 1,000 impressions (currency units).
    prior_impressions : float
        Weight of the prior, in impressions' worth of evidence.
    """

    prior_cpm: float = 8.0
    prior_impressions: float = 1000.0

    def posterior_params(self, obs: Observations) -> tuple[np.ndarray, np.ndarray]:
        """(shape, rate) of the Gamma posterior of impressions per currency unit, each (n_creatives,)."""
        shape0 = self.prior_impressions
        rate0 = self.prior_impressions * self.prior_cpm / 1000.0
        return shape0 + obs.impressions, rate0 + obs.spend

    def impressions_per_dollar(self, obs: Observations) -> np.ndarray:
        """Posterior mean impressions per currency unit, shape (n_creatives,)."""
        return self.mean_impressions_per_dollar(obs.impressions, obs.spend)

    def mean_impressions_per_dollar(self, impressions: np.ndarray, spend: np.ndarray) -> np.ndarray:
        """Posterior mean impressions per currency unit from counts of any shape (the simulator's batches)."""
        shape0 = self.prior_impressions
        rate0 = self.prior_impressions * self.prior_cpm / 1000.0
        return (shape0 + np.asarray(impressions)) / (rate0 + np.asarray(spend))

    def draws(self, obs: Observations, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Posterior draws of impressions per currency unit, shape (n_draws, n_creatives)."""
        shape, rate = self.posterior_params(obs)
        return rng.gamma(shape, 1.0 / rate, size=(n_draws, shape.size))

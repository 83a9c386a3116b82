"""Conjugate Beta-Binomial model of each creative's rate per impression.

With a Beta(alpha, beta) prior and c events in n impressions, the posterior of the rate is
Beta(alpha + c, beta + n - c), independently per creative. The objective conversions_per_dollar is the
conversion rate times impressions per dollar (see `models.cost`), so its posterior is a scaled Beta too.
Fitting is closed-form: microseconds per creative, plus the draws.

Attribution delay (`delay_cdf`, see `models.delay`): the newest days' conversions are not all reported yet,
so with daily observations a day of age a (0 = the newest day) counts n x F(a) effective impressions in the
conversion rate's Beta posterior (fractional counts): Beta(alpha + c, beta + sum_d n_d F(a_d) - c). Without
it the last days read as worse than they are. Clicks are not delayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.cost import CostModel
from models.delay import effective_impressions
from models.objectives import OBJECTIVES
from models.observations import DailyObservations, Observations
from models.posterior import Posterior, ScaledBeta


def beta_update(
    alpha0: float | tuple[float, ...] | np.ndarray,
    beta0: float | tuple[float, ...] | np.ndarray,
    events: np.ndarray,
    exposure: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The conjugate update, the one copy used by `ConjugateModel` and the simulator's batched posteriors
    (`models.batch.BatchPosterior.from_counts`): Beta(alpha0 + c, beta0 + n - c) for c events in n (effective)
    impressions. Effective impressions can fall a little below the conversions reported (F is an estimate),
    so n - c is floored at 0."""
    return np.asarray(alpha0) + events, np.asarray(beta0) + np.maximum(exposure - events, 0.0)


@dataclass(frozen=True)
class BetaPrior:
    """Beta(alpha, beta) prior of a rate per impression: one for every creative (floats), or one per creative
    (sequences of shape (n_creatives,), e.g. each creative's creator's learned prior)."""

    alpha: float | tuple[float, ...] = 1.0
    beta: float | tuple[float, ...] = 5000.0

    def __post_init__(self) -> None:
        if not (np.all(np.asarray(self.alpha) > 0) and np.all(np.asarray(self.beta) > 0)):
            raise ValueError("Beta prior parameters must be > 0")


@dataclass(frozen=True)
class ConjugateModel:
    """Independent Beta-Binomial posteriors per creative.

    Parameters
    ----------
    conversion_prior : BetaPrior
        Prior of the conversion rate per impression.
    click_prior : BetaPrior
        Prior of the click rate per impression (objective click_rate).
    cost : CostModel
        Impressions per currency unit.
    delay_cdf : tuple of float, optional
        F(a), the share of a day's final conversions reported by age a = 0, 1, ... (1 from the end of the
        list on); None: no correction.
    """

    conversion_prior: BetaPrior = field(default_factory=BetaPrior)
    click_prior: BetaPrior = field(default_factory=lambda: BetaPrior(1.0, 99.0))
    cost: CostModel = field(default_factory=CostModel)
    delay_cdf: tuple[float, ...] | None = None

    name = "conjugate"

    def rate_params(
        self, obs: Observations, event: str, exposure: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior (alpha, beta) of the rate of `event` per impression, each shape (n_creatives,).

        exposure : (n_creatives,) effective impressions (delay-corrected) in place of the impressions
        """
        prior = self.conversion_prior if event == "conversions" else self.click_prior
        events = getattr(obs, event)
        n = obs.impressions if exposure is None else exposure
        return beta_update(prior.alpha, prior.beta, events, n)

    def fit(
        self,
        obs: Observations | DailyObservations,
        objective: str = "conversions_per_dollar",
        n_draws: int = 4000,
        rng: np.random.Generator | None = None,
    ) -> Posterior:
        """Posterior of `objective` for every creative.

        Returns a Posterior with exact ScaledBeta marginals (of the objective and of conversions per currency
        unit) and `n_draws` joint draws made on first use.
        """
        exposure = None
        if isinstance(obs, DailyObservations):
            if self.delay_cdf is not None:
                exposure = effective_impressions(obs.impressions, self.delay_cdf)
            obs = obs.totals()
        rng = np.random.default_rng() if rng is None else rng
        spec = OBJECTIVES[objective]
        a, b = self.rate_params(obs, spec.event, exposure if spec.event == "conversions" else None)
        ipd = self.cost.impressions_per_dollar(obs)
        scale = ipd if spec.per_dollar else np.ones(obs.n_creatives)
        ca, cb = self.rate_params(obs, "conversions", exposure)
        n = obs.n_creatives

        def sampler() -> tuple[np.ndarray, np.ndarray]:
            # Drawn only when asked for (value remaining, Monte Carlo checks): every other answer is exact.
            rate_draws = rng.beta(a, b, size=(n_draws, n))
            conv_draws = rate_draws if spec.event == "conversions" else rng.beta(ca, cb, size=(n_draws, n))
            with np.errstate(divide="ignore"):
                cpa_draws = 1.0 / (conv_draws * ipd)
            return rate_draws * scale, cpa_draws

        return Posterior(
            obs.creative_ids,
            objective,
            marginals=ScaledBeta(a, b, scale),
            diagnostics={"model": "conjugate"},
            cpa_marginals=ScaledBeta(ca, cb, ipd),
            sampler=sampler,
        )

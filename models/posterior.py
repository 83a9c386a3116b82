"""The Posterior type: what every model produces and every policy consumes.

A posterior holds joint draws of the objective (the quantity to maximise) for each creative. When every
creative's objective is an independent scaled Beta (the conjugate model), it also holds those marginals,
and the probability of being best is integrated exactly instead of counted from draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import special

from models.prob_best import prob_best_mc, prob_best_scaled_beta


@dataclass(frozen=True)
class ScaledBeta:
    """Independent marginals X_i = scale_i * Beta(alpha_i, beta_i); arrays of shape (n_creatives,)."""

    alpha: np.ndarray
    beta: np.ndarray
    scale: np.ndarray

    def subset(self, index: np.ndarray) -> ScaledBeta:
        return ScaledBeta(self.alpha[index], self.beta[index], self.scale[index])

    def mean(self) -> np.ndarray:
        return self.scale * self.alpha / (self.alpha + self.beta)

    def quantile(self, q: float) -> np.ndarray:
        return self.scale * special.betaincinv(self.alpha, self.beta, q)


@dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior of the objective for each creative.

    Attributes
    ----------
    creative_ids : tuple of str, length n_creatives
    objective : str
        Name of the objective the draws are of (e.g. "conversions_per_dollar").
    draws : ndarray, shape (n_draws, n_creatives)
        Joint posterior draws of the objective.
    marginals : ScaledBeta or None
        Exact independent marginals when the model has them; enables exact probability of best.
    cpa_draws : ndarray, shape (n_draws, n_creatives) or None
        Draws of cost per conversion (currency), for display.
    diagnostics : dict
        Model-specific facts (sampler, R-hat, ESS, divergences, timings, warnings).
    """

    creative_ids: tuple[str, ...]
    objective: str
    draws: np.ndarray
    marginals: ScaledBeta | None = None
    cpa_draws: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        draws = np.asarray(self.draws, dtype=np.float64)
        if draws.ndim != 2 or draws.shape[1] != len(self.creative_ids):
            raise ValueError(
                f"draws must have shape (n_draws, {len(self.creative_ids)}), got {draws.shape}"
            )
        object.__setattr__(self, "draws", draws)

    @property
    def n_creatives(self) -> int:
        return len(self.creative_ids)

    def subset(self, index: np.ndarray | list[int]) -> Posterior:
        """The posterior of only the creatives at `index` (e.g. the live ones)."""
        index = np.asarray(index, dtype=int)
        return Posterior(
            tuple(self.creative_ids[i] for i in index),
            self.objective,
            self.draws[:, index],
            None if self.marginals is None else self.marginals.subset(index),
            None if self.cpa_draws is None else self.cpa_draws[:, index],
            self.diagnostics,
        )

    def mean(self) -> np.ndarray:
        """Posterior mean of the objective, shape (n_creatives,)."""
        if self.marginals is not None:
            return self.marginals.mean()
        return self.draws.mean(axis=0)

    def interval(self, prob: float = 0.9) -> np.ndarray:
        """Equal-tailed credible interval, shape (n_creatives, 2)."""
        lo, hi = (1.0 - prob) / 2.0, (1.0 + prob) / 2.0
        if self.marginals is not None:
            return np.column_stack([self.marginals.quantile(lo), self.marginals.quantile(hi)])
        return np.quantile(self.draws, [lo, hi], axis=0).T

    def quantile(self, q: float) -> np.ndarray:
        """Posterior quantile q of the objective, shape (n_creatives,)."""
        if self.marginals is not None:
            return self.marginals.quantile(q)
        return np.quantile(self.draws, q, axis=0)

    @cached_property
    def _prob_best(self) -> np.ndarray:
        if self.marginals is not None:
            m = self.marginals
            return prob_best_scaled_beta(m.alpha, m.beta, m.scale)
        return prob_best_mc(self.draws)

    def prob_best(self, method: str = "auto") -> np.ndarray:
        """Probability that each creative has the highest objective, shape (n_creatives,), sums to 1.

        method: "auto" (exact when the marginals are scaled Betas, else Monte Carlo), "exact", "mc".
        """
        if method == "auto":
            return self._prob_best
        if method == "mc":
            return prob_best_mc(self.draws)
        if method == "exact":
            if self.marginals is None:
                raise ValueError("exact probability of best needs independent scaled-Beta marginals")
            return self._prob_best
        raise ValueError(f"unknown method {method!r}; use 'auto', 'exact' or 'mc'")

    def leader(self) -> int:
        """Index of the creative most likely to be best (ties: higher mean)."""
        p = self.prob_best()
        return int(np.lexsort((self.mean(), p))[-1])

    def expected_loss(self) -> np.ndarray:
        """E[max_j X_j - X_i]: what choosing creative i forgoes on average, shape (n_creatives,)."""
        best = self.draws.max(axis=1, keepdims=True)
        return (best - self.draws).mean(axis=0)

    def value_remaining(self, q: float = 0.95) -> float:
        """Quantile q of (max_j X_j - X_leader) / X_leader over draws (Google's 'value remaining')."""
        if self.n_creatives <= 1:
            return 0.0
        lead = self.draws[:, self.leader()]
        best = self.draws.max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(lead > 0, (best - lead) / lead, np.inf)
        return float(np.quantile(ratio, q))

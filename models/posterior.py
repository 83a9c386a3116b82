"""The Posterior type: what every model produces and every policy consumes.

A posterior holds joint draws of the objective (the quantity to maximise) for each creative. When every
creative's objective is an independent scaled Beta (the conjugate model), it also holds those marginals,
and the probability of being best is integrated exactly instead of counted from draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models import special
from models.prob_best import prob_best_mc, prob_best_scaled_beta, scaled_beta_max

# Up to this many creatives the exact answers come from composite Gauss-Legendre (`scaled_beta_max`), which
# also gives E[max]; above it, from the reversed-hazard quadrature, which skips creatives that cannot win.
SMALL = 32


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

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        return self.scale * special.betaincinv(self.alpha, self.beta, q)


class Posterior:
    """Posterior of the objective for each creative.

    Attributes
    ----------
    creative_ids : tuple of str, length n_creatives
    objective : str
        Name of the objective the draws are of (e.g. "conversions_per_dollar").
    draws : ndarray, shape (n_draws, n_creatives)
        Joint posterior draws of the objective. A model with exact marginals may pass `sampler` instead: the
        draws are then made on first use only (the conjugate decision needs none unless the stopping rule
        has to compute the value remaining).
    marginals : ScaledBeta or None
        Exact independent marginals when the model has them; enables exact probability of best, expected loss,
        mean and intervals without draws.
    cpa_draws : ndarray, shape (n_draws, n_creatives) or None
        Draws of cost per conversion (currency), for display.
    cpa_marginals : ScaledBeta or None
        Exact marginals of conversions per currency unit (CPA = 1 / that), for exact CPA summaries.
    diagnostics : dict
        Model-specific facts (sampler, R-hat, ESS, divergences, timings, warnings).
    sampler : callable returning (draws, cpa_draws), optional
    """

    def __init__(
        self,
        creative_ids: tuple[str, ...],
        objective: str,
        draws: np.ndarray | None = None,
        marginals: ScaledBeta | None = None,
        cpa_draws: np.ndarray | None = None,
        diagnostics: dict | None = None,
        *,
        cpa_marginals: ScaledBeta | None = None,
        sampler: Callable[[], tuple[np.ndarray, np.ndarray | None]] | None = None,
    ) -> None:
        self.creative_ids = tuple(creative_ids)
        self.objective = objective
        self.marginals = marginals
        self.cpa_marginals = cpa_marginals
        self.diagnostics = {} if diagnostics is None else diagnostics
        if draws is None and sampler is None:
            raise ValueError("a Posterior needs draws or a sampler")
        self._sampler = sampler
        self._draws: np.ndarray | None = None
        self._cpa_draws = cpa_draws
        if draws is not None:
            self._draws = self._check(draws)

    def _check(self, draws: np.ndarray) -> np.ndarray:
        draws = np.asarray(draws, dtype=np.float64)
        if draws.ndim != 2 or draws.shape[1] != len(self.creative_ids):
            raise ValueError(f"draws must have shape (n_draws, {len(self.creative_ids)}), got {draws.shape}")
        return draws

    def _materialise(self) -> None:
        draws, cpa = self._sampler()  # type: ignore[misc]
        self._draws = self._check(draws)
        if self._cpa_draws is None:
            self._cpa_draws = cpa
        self._sampler = None

    @property
    def draws(self) -> np.ndarray:
        if self._draws is None:
            self._materialise()
        return self._draws  # type: ignore[return-value]

    @property
    def cpa_draws(self) -> np.ndarray | None:
        if self._draws is None and self._sampler is not None:
            self._materialise()
        return self._cpa_draws

    @property
    def n_creatives(self) -> int:
        return len(self.creative_ids)

    def subset(self, index: np.ndarray | list[int]) -> Posterior:
        """The posterior of only the creatives at `index` (e.g. the live ones)."""
        index = np.asarray(index, dtype=int)

        def sampler() -> tuple[np.ndarray, np.ndarray | None]:
            cpa = self.cpa_draws
            return self.draws[:, index], None if cpa is None else cpa[:, index]

        return Posterior(
            tuple(self.creative_ids[i] for i in index),
            self.objective,
            None if self._draws is None else self._draws[:, index],
            None if self.marginals is None else self.marginals.subset(index),
            None if self._cpa_draws is None else self._cpa_draws[:, index],
            self.diagnostics,
            cpa_marginals=None if self.cpa_marginals is None else self.cpa_marginals.subset(index),
            sampler=None if self._draws is not None else sampler,
        )

    def cpa_summary(self, prob: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and equal-tailed interval of the cost per conversion, each shape (n_creatives,); inf where
        the posterior allows no conversions (mean with alpha <= 1)."""
        lo_q, hi_q = (1.0 - prob) / 2.0, (1.0 + prob) / 2.0
        m = self.cpa_marginals
        if m is not None:
            with np.errstate(divide="ignore"):
                # CPA = 1 / (s B), B ~ Beta(a, b): E[1/B] = (a + b - 1) / (a - 1) for a > 1.
                mean = np.where(m.alpha > 1, (m.alpha + m.beta - 1) / np.maximum(m.alpha - 1, 1e-300), np.inf)
                mean = mean / m.scale
                return mean, 1.0 / m.quantile(hi_q), 1.0 / m.quantile(lo_q)
        cpa = self.cpa_draws
        if cpa is None or not cpa.size:
            nan = np.full(self.n_creatives, np.nan)
            return nan, nan, nan
        with np.errstate(invalid="ignore", over="ignore"):
            lo, hi = np.quantile(cpa, [lo_q, hi_q], axis=0)
            return cpa.mean(axis=0), lo, hi

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

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Posterior quantile q of the objective, shape (n_creatives,) (q a scalar or a 0-d array)."""
        if self.marginals is not None:
            return self.marginals.quantile(q)
        return np.quantile(self.draws, q, axis=0)

    @cached_property
    def _exact(self) -> tuple[np.ndarray, float | None]:
        """(probability of best, E[max] or None) from the scaled-Beta marginals."""
        m = self.marginals
        if m.alpha.size <= SMALL:  # type: ignore[union-attr]
            p, e_max = scaled_beta_max(m.alpha, m.beta, m.scale)  # type: ignore[union-attr]
            return p, float(e_max)
        return prob_best_scaled_beta(m.alpha, m.beta, m.scale), None  # type: ignore[union-attr]

    def set_exact(self, prob_best: np.ndarray, e_max: float) -> None:
        """Provide the exact probability of best and E[max] computed elsewhere (a batch of campaigns)."""
        self.__dict__["_exact"] = (np.asarray(prob_best, dtype=np.float64), float(e_max))

    @cached_property
    def _prob_best(self) -> np.ndarray:
        if self.marginals is not None:
            return self._exact[0]
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
        if self.marginals is not None and self.n_creatives and self._exact[1] is not None:
            return np.maximum(self._exact[1] - self.marginals.mean(), 0.0)
        best = self.draws.max(axis=1, keepdims=True)
        return (best - self.draws).mean(axis=0)

    def value_remaining(self, q: float = 0.95) -> float:
        """Quantile q of (max_j X_j - X_leader) / X_leader (Google's 'value remaining').

        The value remaining V is >= 0 and V = 0 exactly when the leader is best, so P(V <= 0) is the
        leader's probability of being best: when that is at least q (known exactly from the marginals) the
        quantile is exactly 0 and no draws are needed. Otherwise it is counted from the joint draws.
        """
        if self.n_creatives <= 1:
            return 0.0
        leader = self.leader()
        if self.marginals is not None and self.prob_best()[leader] >= q:
            return 0.0
        lead = self.draws[:, leader]
        best = self.draws.max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(lead > 0, (best - lead) / lead, np.inf)
        return float(np.quantile(ratio, q))

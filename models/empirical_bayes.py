"""Empirical-Bayes priors from past campaigns: the account's own creatives tell how creatives convert.

Each past creative i has n_i impressions and k_i events (conversions or clicks). With its rate drawn from a
Beta(alpha, beta) and k_i ~ Binomial(n_i, rate_i), the counts are beta-binomial; the prior is the
(alpha, beta) that maximises the marginal likelihood

    log L(alpha, beta) = sum_i [log C(n_i, k_i) + log B(alpha + k_i, beta + n_i - k_i) - log B(alpha, beta)],

found with scipy.optimize (L-BFGS-B on log alpha, log beta with the exact gradient) from a method-of-moments
start. Standard errors come from the observed information (the exact Hessian, trigamma functions), by the
delta method for the mean rate. Counts may be fractional (delay-corrected effective impressions).

The CPM prior is a Gamma prior of impressions per currency unit (`models.cost.CostModel`: mean 1000 / cpm,
shape cpm_weight), fitted by moments: cpm_weight = mean^2 / variance of the creatives' impressions per
currency unit, net of their Poisson noise.

`cross_validate` checks a fitted prior against another (the plan's current one) by k-fold cross-validation
over campaigns: the log predictive density of each held-out creative's counts, with a standard error
clustered by campaign (creatives of one campaign share its audience).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from models.errors import ModelError

#: Beta strength alpha + beta at which the fit stops: no spread between creatives detectable beyond it.
MAX_STRENGTH = 1e9


# ---------------------------------------------------------------------------------------------- likelihood
def beta_binomial_logpmf(k: np.ndarray, n: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """log P(k | n, alpha, beta) of the beta-binomial, elementwise; real-valued k and n allowed."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    log_choose = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    return log_choose + special.betaln(alpha + k, beta + n - k) - special.betaln(alpha, beta)


def beta_binomial_loglik(k: np.ndarray, n: np.ndarray, alpha: float, beta: float) -> float:
    """The marginal log-likelihood of all creatives (sum of `beta_binomial_logpmf`)."""
    return float(beta_binomial_logpmf(k, n, alpha, beta).sum())


def _grad(k: np.ndarray, n: np.ndarray, a: float, b: float) -> np.ndarray:
    dg = special.digamma
    common = dg(a + b) - dg(a + b + n)
    return np.array([np.sum(dg(a + k) - dg(a) + common), np.sum(dg(b + n - k) - dg(b) + common)])


def _hessian(k: np.ndarray, n: np.ndarray, a: float, b: float) -> np.ndarray:
    def tg(x):
        return special.polygamma(1, x)

    common = np.sum(tg(a + b) - tg(a + b + n))
    return np.array(
        [
            [np.sum(tg(a + k) - tg(a)) + common, common],
            [common, np.sum(tg(b + n - k) - tg(b)) + common],
        ]
    )


def method_of_moments(k: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """A start for the fit: the pooled rate m and a strength s = alpha + beta from the spread of the
    creatives' observed rates, net of binomial noise: Var(k/n) = m(1-m) [1/n + (1 - 1/n)/(s + 1)]."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    m = float(np.clip(k.sum() / n.sum(), 1e-9, 1 - 1e-9))
    rates = k / n
    w = n / n.sum()
    var = float(np.sum(w * (rates - m) ** 2)) * len(n) / max(len(n) - 1, 1)
    inv_n = float(np.sum(w / n))
    excess = (var - m * (1 - m) * inv_n) / (m * (1 - m) * max(1 - inv_n, 1e-12))
    s = 1.0 / excess - 1.0 if excess > 0 else MAX_STRENGTH / 10
    s = float(np.clip(s, 2.0 / m * 1e-3 + 1e-3, MAX_STRENGTH / 10))
    return m * s, (1 - m) * s


@dataclass(frozen=True)
class BetaFit:
    """A fitted Beta prior of a rate per impression, with its uncertainty.

    cov : (2, 2) covariance of (alpha, beta) from the observed information (inf where singular)
    at_bound : the strength reached MAX_STRENGTH (no spread between creatives detectable: every creative
        is believed to convert at the pooled rate)
    """

    alpha: float
    beta: float
    se_alpha: float
    se_beta: float
    se_mean: float
    log_likelihood: float
    n_creatives: int
    cov: np.ndarray
    at_bound: bool = False
    spread_lr: float = float("nan")  # 2 x log-likelihood ratio against no spread (every creative at the pooled rate)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def quantile(self, q: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Quantiles of the prior (of a new creative's rate), same shape as q."""
        return np.asarray(stats.beta.ppf(q, self.alpha, self.beta), dtype=np.float64)

    def words(self, verb: str = "convert") -> str:
        """What the prior means: 'a new creative is expected to convert at 0.031% (90% of creatives between
        0.012% and 0.062%)'."""
        lo, hi = self.quantile([0.05, 0.95])
        return (
            f"a new creative is expected to {verb} at {pct(self.mean)} (90% of creatives between "
            f"{pct(lo)} and {pct(hi)})"
        )

    def to_json(self, prefix: str = "") -> dict:
        return {f"{prefix}alpha": self.alpha, f"{prefix}beta": self.beta}


def pct(x: float) -> str:
    """A rate as a percentage with two significant digits (0.031%, 1.2%)."""
    v = 100.0 * float(x)
    if v == 0:
        return "0%"
    digits = max(0, 1 - int(np.floor(np.log10(abs(v)))))
    return f"{v:.{digits}f}%"


def fit_beta_binomial(k: np.ndarray, n: np.ndarray, start: tuple[float, float] | None = None) -> BetaFit:
    """Maximum marginal likelihood Beta prior of the rate k / n; arrays of shape (n_creatives,).

    Raises ModelError when fewer than 2 creatives have impressions (no spread to learn from).
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    keep = n > 0
    k, n = k[keep], n[keep]
    if k.size < 2:
        raise ModelError("a prior needs at least 2 past creatives with impressions")
    if np.any(k > n + 1e-9) or np.any(k < 0):
        raise ModelError("events must be between 0 and the impressions of each creative")
    if k.sum() <= 0:
        raise ModelError("no events in the past creatives: a prior cannot be learned from zeros")
    a0, b0 = start if start is not None else method_of_moments(k, n)

    def neg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = np.exp(theta)
        ll = beta_binomial_loglik(k, n, a, b)
        g = _grad(k, n, a, b) * np.array([a, b])  # chain rule for the log parameters
        return -ll, -g

    # Bounds keep the strength below MAX_STRENGTH (alpha + beta -> inf is the no-spread limit).
    lo, hi = np.log(1e-4), np.log(MAX_STRENGTH)
    res = optimize.minimize(neg, np.log([a0, b0]), jac=True, method="L-BFGS-B", bounds=[(lo, hi), (lo, hi)])
    a, b = (float(v) for v in np.exp(res.x))
    m = k.sum() / n.sum()
    pooled = (
        float(np.sum(stats.binom.logpmf(k, n, m)))
        if np.allclose(k, np.rint(k)) and np.allclose(n, np.rint(n))
        else float(
            np.sum(
                special.xlogy(k, m)
                + special.xlog1py(n - k, -m)
                + special.gammaln(n + 1)
                - special.gammaln(k + 1)
                - special.gammaln(n - k + 1)
            )
        )
    )
    spread_lr = max(2.0 * (-float(res.fun) - pooled), 0.0)
    # The likelihood keeps rising towards infinite strength when the creatives' rates do not differ beyond
    # binomial noise: the optimum is then the bound (or a flat plateau short of it).
    at_bound = a + b >= 0.99 * MAX_STRENGTH or spread_lr < 1e-3
    info = -_hessian(k, n, a, b)
    try:
        cov = np.linalg.inv(info)
        if np.any(np.diag(cov) < 0) or at_bound:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.inf)
    s = a + b
    grad_m = np.array([b / s**2, -a / s**2])
    var_m = float(grad_m @ cov @ grad_m) if np.all(np.isfinite(cov)) else np.inf
    return BetaFit(
        a,
        b,
        float(np.sqrt(cov[0, 0])),
        float(np.sqrt(cov[1, 1])),
        float(np.sqrt(var_m)),
        float(-res.fun),
        int(k.size),
        cov,
        at_bound,
        spread_lr,
    )


# ---------------------------------------------------------------------------------------------- CPM
@dataclass(frozen=True)
class CpmFit:
    """Gamma prior of impressions per currency unit as the plan's keys: `cpm` and `cpm_weight`."""

    cpm: float
    cpm_weight: float
    se_cpm: float
    n_creatives: int


def fit_cpm(impressions: np.ndarray, spend: np.ndarray, max_weight: float = 1e7) -> CpmFit:
    """Moments of the creatives' impressions per currency unit (those with spend): mean -> cpm = 1000 / mean,
    shape = mean^2 / (variance - mean Poisson noise) -> cpm_weight (pseudo-impressions of the prior)."""
    imps = np.asarray(impressions, dtype=np.float64)
    spend = np.asarray(spend, dtype=np.float64)
    keep = (spend > 0) & (imps > 0)
    if keep.sum() < 2:
        raise ModelError("a CPM prior needs at least 2 past creatives with spend and impressions")
    lam = imps[keep] / spend[keep]
    mean = float(lam.mean())
    var = float(lam.var(ddof=1))
    noise = float(np.mean(lam / spend[keep]))  # Var(imps / spend) of Poisson impressions given the spend
    excess = var - noise
    weight = float(np.clip(mean**2 / excess if excess > 0 else max_weight, 1.0, max_weight))
    se_lam = np.sqrt(var / keep.sum())
    return CpmFit(1000.0 / mean, weight, float(1000.0 * se_lam / mean**2), int(keep.sum()))


# ---------------------------------------------------------------------------------------------- CV
def fold_of(campaigns: Sequence[str], folds: int, rng: np.random.Generator) -> dict[str, int]:
    """Each distinct campaign's fold (0..folds-1), balanced, in a random order from `rng`."""
    names = sorted(set(campaigns))
    order = rng.permutation(len(names))
    return {names[j]: int(i % folds) for i, j in enumerate(order)}


def cross_validate(
    campaign: Sequence[str] | np.ndarray,
    k: np.ndarray,
    n: np.ndarray,
    current: tuple[float, float],
    folds: int = 5,
    rng: np.random.Generator | None = None,
) -> dict:
    """k-fold cross-validation over campaigns of the learned prior against `current` (alpha, beta).

    For each fold, the prior is fitted on the other folds' creatives and both priors score the held-out
    creatives by their log predictive density log P(k_i | n_i). Returns a dict with "folds", "creatives",
    "lpd_learned" and "lpd_current" (mean per creative), "gain" (their mean difference per creative) and
    "gain_se" (standard error clustered by campaign), "better" (gain > 2 SE).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    camp = np.asarray(list(campaign))
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    names = sorted(set(camp.tolist()))
    folds = int(min(folds, len(names)))
    if folds < 2:
        raise ModelError("cross-validation needs at least 2 past campaigns")
    fold = fold_of(camp.tolist(), folds, rng)
    f = np.array([fold[c] for c in camp])
    use = n > 0
    learned = np.full(k.size, np.nan)
    for j in range(folds):
        train, test = (f != j) & use, (f == j) & use
        if not test.any():
            continue
        fit = fit_beta_binomial(k[train], n[train])
        learned[test] = beta_binomial_logpmf(k[test], n[test], fit.alpha, fit.beta)
    cur = beta_binomial_logpmf(k, n, *current)
    d = learned - cur
    ok = use & np.isfinite(d)
    n_ok = int(ok.sum())
    gain = float(d[ok].mean())
    # Clustered by campaign: the sum of each campaign's deviations from the mean gain.
    by_camp: dict[str, float] = {}
    for c, x in zip(camp[ok], d[ok] - gain):
        by_camp[c] = by_camp.get(c, 0.0) + x
    g = len(by_camp)
    dev = np.array(list(by_camp.values()))
    se = float(np.sqrt(g / max(g - 1, 1) * np.sum(dev**2)) / n_ok)
    return {
        "folds": folds,
        "creatives": n_ok,
        "lpd_learned": float(learned[ok].mean()),
        "lpd_current": float(cur[ok].mean()),
        "gain": gain,
        "gain_se": se,
        "better": bool(gain > 2 * se),
    }

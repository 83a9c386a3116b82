"""The fast path: Laplace approximation corrected by Pareto-smoothed importance sampling (numpy/scipy only).

1. The posterior mode of `LogDensity` (PyMC's unconstrained space) by L-BFGS-B with the analytic gradient.
2. The Hessian there, by central differences of the analytic gradient (one batched gradient call).
3. A multivariate t proposal (``DF`` degrees of freedom) centred at the mode with the inverse negative
   Hessian as its scale: heavier tails than the posterior's in every direction, as importance sampling needs.
4. Importance weights target / proposal, Pareto-smoothed (`models.hierarchical.psis`); the gate: Pareto k
   <= `PARETO_K_MAX` and ESS = 1 / sum(w^2) >= ``min_ess``. While it fails, up to `MAX_STAGES` stages of
   adaptive multiple importance sampling refit the t to the weighted draws (see `laplace_is`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from scipy.special import gammaln, logsumexp

from models.hierarchical.logdensity import LogDensity
from models.hierarchical.psis import PARETO_K_MAX, ess, psis

#: Degrees of freedom of the multivariate t proposal. Measured on simulated 5 x 30 campaigns: lower df
#: (heavier tails) keeps k low when creative_sd's posterior is skewed on the log scale; see BENCHMARKS.md.
DF = 4.0
#: Importance draws per stage, the number of stages at most, and the widening of each adapted proposal.
IS_DRAWS = 2000
MAX_STAGES = 8
INFLATE = 1.3
#: Above this many parameters only the first (Laplace) stage runs: refitting a t to weighted draws needs
#: many more draws than dimensions, and each stage's mixture density costs O(draws x stages x dim^2)
#: (measured: a 500-creative portfolio, ~600 parameters, spent 200 s in 8 stages and still failed, k 4.1).
MAX_ADAPT_DIM = 60
#: Above this many parameters the fast path is not tried at all (NUTS runs at once): measured, the
#: 500-creative portfolio spent 111 s in the mode search and one stage, and failed (Pareto k 4.1).
MAX_DIM = 150
#: Step of the central differences of the gradient (unconstrained scale, O(1) parameters).
HESSIAN_STEP = 1e-5


@dataclass
class LaplaceFit:
    """The result of `laplace_is`: weighted draws of theta and the gate's figures."""

    draws: np.ndarray  # (S, dim) proposal draws
    log_weights: np.ndarray  # (S,) Pareto-smoothed, normalised
    mode: np.ndarray
    pareto_k: float
    ess: float
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    optimizer_iterations: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems

    def resample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of theta resampled with the importance weights (with replacement), shape (n, dim)."""
        w = np.exp(self.log_weights)
        idx = rng.choice(w.size, size=n, replace=True, p=w / w.sum())
        return self.draws[idx]


def _start(ld: LogDensity) -> np.ndarray:
    """A start near the mode: the pooled delay-corrected rate for the intercepts, small creative spread."""
    d = ld.design
    theta = np.zeros(ld.dim)
    exposure = float(np.sum(d.cell_impressions * d.cell_delay))
    rate = (float(d.cell_conversions.sum()) + 0.5) / (exposure + 1.0) if exposure > 0 else 1.5e-4
    logit = np.log(rate) - np.log1p(-rate)
    s = ld.slices
    theta[s["intercept_mean"]] = logit
    theta[s["creative_sd_log__"]] = np.log(0.2)
    theta[s["creative_logit"]] = logit
    if "campaign_sd_log__" in s:
        theta[s["campaign_sd_log__"]] = np.log(0.2)
    if "fatigue_log__" in s:
        theta[s["fatigue_log__"]] = np.log(0.1)
    return theta


def _mode(ld: LogDensity) -> tuple[np.ndarray, int, str | None]:
    def f(theta):
        lp, g = ld.logp_grad(theta)
        if not np.isfinite(lp):
            return 1e300, np.zeros_like(theta)
        return -lp, -g

    res = minimize(f, _start(ld), jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-7})
    problem = None
    if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun) or res.fun >= 1e299:
        problem = f"no posterior mode found ({res.message})"
    return res.x, int(res.nit), problem


def _hessian(ld: LogDensity, theta: np.ndarray) -> np.ndarray:
    """Symmetrised central-difference Hessian of logp from its analytic gradient."""
    dim = theta.size
    h = HESSIAN_STEP * np.maximum(1.0, np.abs(theta))
    pts = np.concatenate([theta + np.diag(h), theta - np.diag(h)])
    _, g = ld._logp_grad(pts, grad=True)
    hess = (g[:dim] - g[dim:]) / (2.0 * h[:, None])
    return 0.5 * (hess + hess.T)


class _TProposal:
    """A multivariate t distribution (location, scale matrix via its Cholesky factor, df)."""

    def __init__(self, loc: np.ndarray, cov: np.ndarray, df: float) -> None:
        self.loc, self.df = loc, df
        self.chol = np.linalg.cholesky(0.5 * (cov + cov.T))
        dim = loc.size
        self.log_norm = float(
            gammaln((df + dim) / 2)
            - gammaln(df / 2)
            - dim / 2 * np.log(df * np.pi)
            - np.sum(np.log(np.diag(self.chol)))
        )

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, self.loc.size))
        w = rng.chisquare(self.df, size=n) / self.df
        return self.loc + (z / np.sqrt(w)[:, None]) @ self.chol.T

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        u = solve_triangular(self.chol, (x - self.loc).T, lower=True).T
        return self.log_norm - 0.5 * (self.df + self.loc.size) * np.log1p(np.sum(u * u, axis=1) / self.df)


def laplace_is(ld: LogDensity, rng: np.random.Generator, *args, **kwargs) -> LaplaceFit:
    """Mode, Hessian, t proposal and PSIS for `ld` (see `_laplace_is`), with BLAS on one thread.

    The matrices are small (dim ~10 to ~500): OpenBLAS's threads only contend, most of all on a shared
    machine (measured 5 x 10 campaign, load ~9 on 2 cores: 1.54 s a fit with its default threads, 0.53 s
    with one).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        return _laplace_is(ld, rng, *args, **kwargs)


def _laplace_is(
    ld: LogDensity,
    rng: np.random.Generator,
    min_ess: float = 400.0,
    n_draws: int = IS_DRAWS,
    df: float = DF,
    max_k: float = PARETO_K_MAX,
) -> LaplaceFit:
    """Mode, Hessian, t proposal and PSIS for `ld`; the fit's ``problems`` say why the gate failed (if so)."""
    t0 = time.perf_counter()
    empty = np.zeros((0, ld.dim))
    if ld.dim > MAX_DIM:
        problem = f"{ld.dim} parameters > {MAX_DIM}: not tried (importance sampling degrades with the dimension)"
        return LaplaceFit(empty, np.zeros(0), np.zeros(ld.dim), np.inf, 0.0, [problem], 0.0, 0)
    mode, nit, problem = _mode(ld)
    if problem:
        return LaplaceFit(empty, np.zeros(0), mode, np.inf, 0.0, [problem], time.perf_counter() - t0, nit)
    neg_h = -_hessian(ld, mode)
    try:
        proposals = [_TProposal(mode, np.linalg.inv(neg_h), df)]
    except np.linalg.LinAlgError:
        problem = "the Hessian at the mode is not negative definite (a flat or improper direction)"
        return LaplaceFit(empty, np.zeros(0), mode, np.inf, 0.0, [problem], time.perf_counter() - t0, nit)
    # Adaptive multiple importance sampling (Cornuet et al. 2012): each stage draws from a t fitted to the
    # weighted draws so far (the Laplace t widened where the posterior is skewed, e.g. creative_sd's long
    # tail towards 0), and every draw is weighted against the equal mixture of all stages' proposals.
    chunks: list[np.ndarray] = []
    logp_chunks: list[np.ndarray] = []
    k, e, lw, all_draws = np.inf, 0.0, np.zeros(0), empty
    for stage in range(MAX_STAGES):
        new = proposals[-1].draw(n_draws, rng)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logp_chunks.append(ld.logp(new))
        chunks.append(new)
        all_draws = np.concatenate(chunks)
        logq = logsumexp(np.stack([q.logpdf(all_draws) for q in proposals]), axis=0) - np.log(len(proposals))
        lw, k = psis(np.concatenate(logp_chunks) - logq)
        e = ess(lw)
        if (k <= max_k and e >= min_ess) or stage == MAX_STAGES - 1 or ld.dim > MAX_ADAPT_DIM:
            break
        w = np.exp(lw)
        mean = w @ all_draws
        centred = all_draws - mean
        cov = (centred * w[:, None]).T @ centred
        try:
            proposals.append(_TProposal(mean, cov * INFLATE, df))
        except np.linalg.LinAlgError:
            break  # the weighted draws span fewer dimensions than the model: no better proposal from them
    problems = []
    if not k <= max_k:
        problems.append(f"Pareto k {k:.2f} > {max_k:g}")
    if not e >= min_ess:
        problems.append(f"importance-sampling ESS {e:.0f} < {min_ess:g}")
    return LaplaceFit(all_draws, lw, mode, float(k), float(e), problems, time.perf_counter() - t0, nit)

"""The fast path: Laplace approximation corrected by Pareto-smoothed importance sampling (numpy/scipy only).

1. The posterior mode of `LogDensity` (PyMC's unconstrained space) by L-BFGS-B with the analytic gradient.
2. The Hessian there, by central differences of the analytic gradient (one batched gradient call).
3. A multivariate t proposal (``DF`` degrees of freedom) centred at the mode with the inverse negative
   Hessian as its scale: heavier tails than the posterior's in every direction, as importance sampling needs.
4. Importance weights target / proposal, Pareto-smoothed (`models.hierarchical.psis`); the gate: Pareto k
   <= `PARETO_K_MAX` and ESS = 1 / sum(w^2) >= ``min_ess``. While it fails, up to `MAX_STAGES` stages of
   adaptive multiple importance sampling refit the t to the weighted draws (see `_stages`).

For portfolios, and above `MAX_ADAPT_DIM` parameters (large campaigns: a t in hundreds of dimensions cannot
pass Pareto k), only the 3-5 globals are importance-sampled, on their Laplace marginal, and the creative
effects are drawn from their conditional Gaussians and importance-corrected block by block, with a
per-block check (`models.hierarchical.nested`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from scipy.special import gammaln, logsumexp

from models.hierarchical.logdensity import LogDensity
from models.hierarchical.nested import CHUNK, NestedLaplace, conditional_k
from models.hierarchical.psis import PARETO_K_MAX, ess, psis

#: Degrees of freedom of the multivariate t proposal. Measured on simulated 5 x 30 campaigns: lower df
#: (heavier tails) keeps k low when creative_sd's posterior is skewed on the log scale; see BENCHMARKS.md.
DF = 4.0
#: Importance draws per stage, the number of stages at most, and the widening of each adapted proposal.
IS_DRAWS = 2000
MAX_STAGES = 8
INFLATE = 1.3
#: Above this many parameters (or in any portfolio) the joint importance sampling is not tried: only the globals are importance
#: sampled, the creative effects drawn from their conditional Gaussians (`_nested_is`). Measured: a
#: 500-creative portfolio, ~600 parameters, spent 200 s in 8 joint stages and still failed, Pareto k 4.1.
MAX_ADAPT_DIM = 60
#: Candidates per block and draw of the globals in the nested form (`NestedLaplace.draw_locals`): one is kept
#: by its importance ratio, and their mean ratio corrects the globals' weights. Measured against NUTS
#: (15 campaigns x 5 creatives x 14 days): with 1 (the conditional Gaussian as it is) the rates' posterior
#: means were off by a median 0.09 NUTS sd (MC se 0.03) and their sds 3% too wide, with 4 by 0.02 and 0%;
#: a 500-creative portfolio costs ~1 s more (BENCHMARKS.md, "Issue 13: the remaining evidence").
INNER_DRAWS = 4
#: At most this many candidates per block, pooled in rounds of `INNER_DRAWS` while the gate fails.
MAX_INNER_DRAWS = 32
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
    #: "joint" (every parameter importance-sampled) or "nested" (the globals only; `_nested_is`)
    approximation: str = "joint"
    #: the nested form's conditional check: the largest Pareto k over blocks (None for "joint")
    conditional_k: float | None = None

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
    assert g is not None  # grad=True always returns the gradient
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


def _stages(
    logp,
    loc: np.ndarray,
    neg_h: np.ndarray,
    rng: np.random.Generator,
    min_ess: float,
    n_draws: int,
    df: float,
    max_k: float,
    adapt: bool,
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray] | None:
    """Importance sampling of `logp` (a callable (S, dim) -> (S,)) from the t at `loc` with scale
    ``inv(neg_h)``, adapted in stages while the gate fails; (draws, smoothed log weights, k, ESS, raw log
    ratios), or None when ``neg_h`` is not positive definite.

    Adaptive multiple importance sampling (Cornuet et al. 2012): each stage draws from a t fitted to the
    weighted draws so far (the Laplace t widened where the posterior is skewed, e.g. creative_sd's long tail
    towards 0), and every draw is weighted against the equal mixture of all stages' proposals.
    """
    try:
        proposals = [_TProposal(loc, np.linalg.inv(neg_h), df)]
    except np.linalg.LinAlgError:
        return None
    chunks: list[np.ndarray] = []
    logp_chunks: list[np.ndarray] = []
    k, e, lw, all_draws, raw = np.inf, 0.0, np.zeros(0), np.zeros((0, loc.size)), np.zeros(0)
    for stage in range(MAX_STAGES):
        new = proposals[-1].draw(n_draws, rng)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logp_chunks.append(logp(new))
        chunks.append(new)
        all_draws = np.concatenate(chunks)
        logq = logsumexp(np.stack([q.logpdf(all_draws) for q in proposals]), axis=0) - np.log(len(proposals))
        raw = np.concatenate(logp_chunks) - logq
        lw, k = psis(raw)
        e = ess(lw)
        if (k <= max_k and e >= min_ess) or stage == MAX_STAGES - 1 or not adapt:
            break
        w = np.exp(lw)
        mean = w @ all_draws
        centred = all_draws - mean
        cov = (centred * w[:, None]).T @ centred
        try:
            proposals.append(_TProposal(mean, cov * INFLATE, df))
        except np.linalg.LinAlgError:
            break  # the weighted draws span fewer dimensions than the model: no better proposal from them
    return all_draws, lw, float(k), float(e), raw


def _gate(k: float, e: float, max_k: float, min_ess: float) -> list[str]:
    problems = []
    if not k <= max_k:
        problems.append(f"Pareto k {k:.2f} > {max_k:g}")
    if not e >= min_ess:
        problems.append(f"importance-sampling ESS {e:.0f} < {min_ess:g}")
    return problems


def _laplace_is(
    ld: LogDensity,
    rng: np.random.Generator,
    min_ess: float = 400.0,
    n_draws: int = IS_DRAWS,
    df: float = DF,
    max_k: float = PARETO_K_MAX,
) -> LaplaceFit:
    """The fast path for `ld`: the nested form (`_nested_is`) for portfolios and above `MAX_ADAPT_DIM`
    parameters, else the joint form (`_joint_is`); the fit's ``problems`` say why the gate failed (if so).

    Portfolios take the nested form at any size: measured on 3 campaigns x 8 creatives against long NUTS
    chains (4 x 5000), the joint form's campaign_sd was 0.17 NUTS sd too high and its sd 13% too narrow (the
    t proposal on the log scale misses the tail towards 0 without Pareto k seeing it), the nested form's
    within 0.02 sd; and on 30 small portfolios the nested form passed its gate on 25 (median 0.26 s), the
    joint on 16 (median 1.1 s, up to 40 s). See BENCHMARKS.md, "Issue 13: the remaining evidence"."""
    if ld.dim > MAX_ADAPT_DIM or ld.n_campaigns > 1:
        return _nested_is(ld, rng, min_ess, n_draws, df, max_k)
    return _joint_is(ld, rng, min_ess, n_draws, df, max_k)


def _joint_is(
    ld: LogDensity, rng: np.random.Generator, min_ess: float, n_draws: int, df: float, max_k: float
) -> LaplaceFit:
    """Mode, Hessian, t proposal and PSIS on every parameter of `ld` at once (adaptive stages)."""
    t0 = time.perf_counter()
    empty = np.zeros((0, ld.dim))
    mode, nit, problem = _mode(ld)
    if problem:
        return LaplaceFit(empty, np.zeros(0), mode, np.inf, 0.0, [problem], time.perf_counter() - t0, nit)
    out = _stages(ld.logp, mode, -_hessian(ld, mode), rng, min_ess, n_draws, df, max_k, adapt=True)
    if out is None:
        problem = "the Hessian at the mode is not negative definite (a flat or improper direction)"
        return LaplaceFit(empty, np.zeros(0), mode, np.inf, 0.0, [problem], time.perf_counter() - t0, nit)
    all_draws, lw, k, e, _ = out
    problems = _gate(k, e, max_k, min_ess)
    return LaplaceFit(all_draws, lw, mode, k, e, problems, time.perf_counter() - t0, nit)


def _nested_is(
    ld: LogDensity,
    rng: np.random.Generator,
    min_ess: float,
    n_draws: int,
    df: float,
    max_k: float,
    inner: int = INNER_DRAWS,
) -> LaplaceFit:
    """Importance sampling of the globals only, the locals from their conditional Gaussians with `inner`
    candidates per block (`models.hierarchical.nested`; 1: the Gaussians as they are, uncorrected); the gate
    adds the conditional check's largest Pareto k."""
    t0 = time.perf_counter()
    nl = NestedLaplace(ld)
    empty = np.zeros((0, ld.dim))
    g_mode, nit, problem = nl.mode()
    if problem:
        return LaplaceFit(empty, np.zeros(0), np.zeros(ld.dim), np.inf, 0.0, [problem], time.perf_counter() - t0, nit)
    # warm start of every inner solve: the locals' conditional mode at the globals' mode
    start = nl.warm_start(g_mode)
    solved: list = []  # each stage's conditional solutions, in the order of the draws (chunks of CHUNK rows)
    out = _stages(
        lambda g: nl.log_marginal(g, start, solved),
        g_mode,
        nl.neg_hessian(g_mode),
        rng,
        min_ess,
        n_draws,
        df,
        max_k,
        True,
    )
    if out is None:
        problem = "the Hessian of the globals' marginal at its mode is not negative definite"
        return LaplaceFit(empty, np.zeros(0), np.zeros(ld.dim), np.inf, 0.0, [problem], time.perf_counter() - t0, nit)
    g_draws, lw, k, e, raw = out
    # stages draw n_draws each; chunks of CHUNK rows line up with the draws when CHUNK divides n_draws
    aligned = n_draws % CHUNK == 0
    sol = solved if aligned else None
    theta, check, log_corr = nl.draw_locals(g_draws, rng, start, sol, inner)
    if inner > 1:
        # the globals' weights against the exact marginal, estimated block by block (importance sampling
        # squared): the gate's k and ESS are those of the whole draw. The estimate's noise grows with the
        # number and size of the blocks (4 campaigns x 40 creatives: ESS ~250 with 4 candidates, ~550 with
        # 8), so while the gate fails, more rounds of candidates are pooled, up to `MAX_INNER_DRAWS`.
        m, checks = inner, [check]
        lw, k = psis(raw + log_corr.sum(axis=1))
        e = ess(lw)
        while not (k <= max_k and e >= min_ess) and m < MAX_INNER_DRAWS:
            theta_b, check_b, corr_b = nl.draw_locals(g_draws, rng, start, sol, inner)
            theta, log_corr, m = nl.merge((theta, log_corr, m), (theta_b, corr_b, inner), rng)
            checks.append(check_b)
            lw, k = psis(raw + log_corr.sum(axis=1))
            e = ess(lw)
        check = np.concatenate(checks)
    cond_k = conditional_k(check.reshape(-1, check.shape[-1]))
    worst = float(cond_k.max()) if cond_k.size else 0.0
    problems = _gate(k, e, max_k, min_ess)
    if not worst <= max_k:
        problems.append(
            f"conditional Gaussian check: Pareto k {worst:.2f} > {max_k:g} in {int(np.sum(~(cond_k <= max_k)))} "
            f"of {cond_k.size} blocks"
        )
    fit = LaplaceFit(theta, lw, np.zeros(ld.dim), k, e, problems, time.perf_counter() - t0, nit)
    fit.approximation = "nested"
    fit.conditional_k = worst
    return fit

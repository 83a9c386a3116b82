"""Probability that each creative is the best one.

`prob_best_scaled_beta` integrates exactly (numerically, to ~1e-5 with the default grid, converging with points_per_creative) when every creative's objective is an
independent scaled Beta, X_i = s_i * Beta(a_i, b_i). `prob_best_mc` counts argmax over joint posterior
draws and serves every other posterior.

Method of the exact integral: with F_i the CDF and f_i the density of X_i, and G = prod_j F_j the CDF of
the maximum,

    P(i best) = int f_i(x) prod_{j != i} F_j(x) dx = int r_i(x) dG(x),   r_i = h_i / sum_j h_j,

where h_i = f_i / F_i is the reversed hazard. The ratios r_i lie in [0, 1] and sum to 1 at every x, so the
shares sum to 1 to rounding. Creatives whose upper tail lies below another's lower tail cannot win
(probability < 1e-12) and are skipped before any grid work.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special

TAIL = 1e-12
PRUNE_ABOVE = 8  # contenders above which the region of the maximum is found first
MANY = 64  # contenders above which a shared Gauss-Legendre rule replaces the per-creative grid
GRID_POINTS = 2048  # quantile points in all, at most (before midpoints) when contenders are many


def prob_best_mc(draws: np.ndarray) -> np.ndarray:
    """Share of joint draws in which each creative is the largest.

    Parameters
    ----------
    draws : ndarray, shape (n_draws, n_creatives)

    Returns
    -------
    ndarray, shape (n_creatives,), sums to 1.
    """
    draws = np.asarray(draws)
    n_draws, n = draws.shape
    if n == 0:
        return np.zeros(0)
    counts = np.bincount(np.argmax(draws, axis=1), minlength=n)
    return counts / n_draws


def _grid(alpha: np.ndarray, beta: np.ndarray, levels: np.ndarray, lo: float, hi: float) -> np.ndarray:
    q = special.betaincinv(alpha[:, None], beta[:, None], levels[None, :]).ravel()
    q = q[(q > lo) & (q < hi)]
    return np.unique(np.concatenate(([lo, hi], q)))


def prob_best_scaled_beta(
    alpha: np.ndarray,
    beta: np.ndarray,
    scale: np.ndarray | None = None,
    points_per_creative: int = 96,
) -> np.ndarray:
    """Exact probability of being best for independent X_i = scale_i * Beta(alpha_i, beta_i).

    Parameters
    ----------
    alpha, beta : ndarray, shape (n_creatives,), all > 0
    scale : ndarray, shape (n_creatives,), all > 0; 1 when omitted
    points_per_creative : int
        Quantile points each contending creative adds to the integration grid.

    Returns
    -------
    ndarray, shape (n_creatives,), non-negative, sums to 1 within 1e-12; within 1e-4 of the integral
    (typically 1e-5) with the default grid.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    n = alpha.size
    if n == 0:
        return np.zeros(0)
    scale = np.ones(n) if scale is None else np.asarray(scale, dtype=np.float64)
    if n == 1:
        return np.ones(1)
    # Work on the unscaled variable per creative: F_i(x) = I_{x / s_i}(a_i, b_i).
    lo_q = special.betaincinv(alpha, beta, TAIL) * scale
    hi_q = special.betaincinv(alpha, beta, 1.0 - TAIL) * scale
    floor = lo_q.max()
    contenders = np.flatnonzero(hi_q > floor)
    out = np.zeros(n)
    if contenders.size == 1:
        out[contenders[0]] = 1.0
        return out
    lo, hi = floor, hi_q[contenders].max()
    if contenders.size > PRUNE_ABOVE:
        # Many contenders: the maximum lives only where G = prod_j F_j is not negligible. A coarse scan finds
        # the point below which G < 1e-13; creatives whose upper tail lies below it cannot win either.
        a, b, s = alpha[contenders], beta[contenders], scale[contenders]
        xc = np.linspace(lo, hi, 129)
        with np.errstate(divide="ignore"):
            log_g = np.log(special.betainc(a[:, None], b[:, None], np.clip(xc / s[:, None], 0, 1))).sum(0)
        first = int(np.argmax(log_g > np.log(1e-13)))
        lo = xc[max(first - 1, 0)]
        contenders = contenders[hi_q[contenders] > lo]
        if contenders.size == 1:
            out[contenders[0]] = 1.0
            return out
    a, b, s = alpha[contenders], beta[contenders], scale[contenders]
    if contenders.size > MANY:
        # Hundreds of creatives that can all win are alike in width (else most could not win): a shared
        # composite Gauss-Legendre rule over the region of the maximum resolves them all, at a cost linear
        # in the number of contenders instead of quadratic.
        x0, w0 = _gauss_legendre(4)
        edges = np.linspace(lo, hi, 97)
        left, right = edges[:-1, None], edges[1:, None]
        x = (0.5 * (left + right) + 0.5 * (right - left) * x0).ravel()
        w = (0.5 * (right - left) * w0).ravel()
        u = np.clip(x[None, :] / s[:, None], 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_cdf = np.log(special.betainc(a[:, None], b[:, None], u))
            log_pdf = np.where(
                (u > 0) & (u < 1),
                special.xlogy(a[:, None] - 1.0, u)
                + special.xlog1py(b[:, None] - 1.0, -u)
                - (special.betaln(a, b) + np.log(s))[:, None],
                -np.inf,
            )
            dens = np.exp(np.where(np.isfinite(log_cdf), log_pdf + log_cdf.sum(0) - log_cdf, -np.inf))
        mass = dens @ w
        out[contenders] = mass / mass.sum()
        return out
    # Each contender's quantile points are spread evenly in logit over the part of its distribution above
    # `lo` (below it the maximum has no mass); with many contenders each brings fewer points, the grid
    # being dense already.
    k = int(min(points_per_creative, max(16, GRID_POINTS // contenders.size)))
    with np.errstate(divide="ignore"):
        start = special.logit(np.clip(special.betainc(a, b, np.clip(lo / s, 0, 1)), 1e-12, 1 - 1e-9))
    logits = start[:, None] + (27.0 - start[:, None]) * np.linspace(0.0, 1.0, k)[None, :]
    q = (special.betaincinv(a[:, None], b[:, None], special.expit(logits)) * s[:, None]).ravel()
    # Just above each contender's upper tail its reversed hazard drops to 0: a point there keeps that
    # step from being smeared over a whole grid interval (it matters for bounded supports, b <= 1).
    ends = hi_q[contenders] * (1.0 + 1e-9)
    q = np.concatenate((q, ends))
    q = q[(q > lo) & (q < hi)]
    x = np.unique(np.concatenate(([lo, hi], q)))
    # Midpoints refine the grid where the quantile points are sparse.
    x = np.sort(np.concatenate((x, 0.5 * (x[1:] + x[:-1]))))
    u = np.clip(x[None, :] / s[:, None], 0.0, 1.0)  # (m, n_grid)
    cdf = special.betainc(a[:, None], b[:, None], u)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The density is 0 outside the open support (x >= s_i included: a Beta with b <= 1 must not keep
        # its value at u = 1 beyond the scale).
        logpdf = np.where(
            (u > 0) & (u < 1),
            special.xlogy(a[:, None] - 1.0, u)
            + special.xlog1py(b[:, None] - 1.0, -u)
            - special.betaln(a, b)[:, None]
            - np.log(s)[:, None],
            -np.inf,
        )
        log_hazard = np.where(cdf > 0, logpdf - np.log(cdf), -np.inf)
        top = log_hazard.max(axis=0)
        top = np.where(np.isfinite(top), top, 0.0)
        w = np.exp(log_hazard - top)
        total = w.sum(axis=0)
        ratio = np.where(total > 0, w / total, 1.0 / w.shape[0])
        log_g = np.sum(np.log(cdf), axis=0)
    g = np.exp(log_g)
    dg = np.diff(g)
    shares = 0.5 * (ratio[:, 1:] + ratio[:, :-1]) @ dg
    shares = np.clip(shares, 0.0, None)
    out[contenders] = shares / shares.sum()
    return out


@lru_cache(maxsize=8)
def _gauss_legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(nodes)


def scaled_beta_max(
    alpha: np.ndarray,
    beta: np.ndarray,
    scale: np.ndarray | None = None,
    levels: int = 12,
    nodes: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Probability of being best and E[max] for independent scaled Betas, by composite Gauss-Legendre.

    Used for small campaigns (the common 3 to 5 creatives, and simulated batches of them), where it is about
    ten times cheaper than `prob_best_scaled_beta` at the same accuracy.

    Method: P(i best) = int f_i(x) prod_{j != i} F_j(x) dx over [floor, top] (the largest lower and upper
    1e-10 tails). The interval is cut into panels at `levels` quantiles of every creative (evenly spaced in
    logit), so each panel is narrow wherever any creative's distribution changes fast, and each panel gets a
    `nodes`-point Gauss-Legendre rule. E[max] = int x sum_i f_i prod_{j != i} F_j dx on the same nodes, so the
    expected loss E[max] - E[X_i] comes at no extra cost. Measured against the reference quadrature at 600
    points per creative: max error ~1e-5 (homogeneous, small-count and prior-vs-huge-count campaigns).

    Parameters
    ----------
    alpha, beta, scale : ndarray, shape (n_creatives,) or (n_campaigns, n_creatives)

    Returns
    -------
    prob_best : same shape as alpha, rows sum to 1
    e_max : shape () or (n_campaigns,)
    """
    a = np.asarray(alpha, dtype=np.float64)
    single = a.ndim == 1
    a = np.atleast_2d(a)
    b = np.broadcast_to(np.asarray(beta, dtype=np.float64), a.shape)
    s = np.ones_like(a) if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), a.shape)
    n_camp, n = a.shape
    if n == 1:
        p, e = np.ones_like(a), (s * a / (a + b))[:, 0]
        return (p[0], e[0]) if single else (p, e)
    lv = special.expit(np.linspace(special.logit(1e-10), -special.logit(1e-10), levels))
    qs = special.betaincinv(a[:, :, None], b[:, :, None], lv) * s[:, :, None]  # (R, n, L)
    floor = qs[:, :, 0].max(axis=1, keepdims=True)
    top = qs[:, :, -1].max(axis=1, keepdims=True)
    edges = np.sort(np.clip(qs.reshape(n_camp, -1), floor, top), axis=1)  # floor and top are among them
    x0, w0 = _gauss_legendre(nodes)
    left, right = edges[:, :-1, None], edges[:, 1:, None]
    x = (0.5 * (left + right) + 0.5 * (right - left) * x0).reshape(n_camp, -1)  # (R, m)
    w = (0.5 * (right - left) * w0).reshape(n_camp, -1)
    u = np.clip(x[:, None, :] / s[:, :, None], 0.0, 1.0)  # (R, n, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_cdf = np.log(special.betainc(a[:, :, None], b[:, :, None], u))
        log_pdf = np.where(
            (u > 0) & (u < 1),
            special.xlogy(a[:, :, None] - 1.0, u)
            + special.xlog1py(b[:, :, None] - 1.0, -u)
            - (special.betaln(a, b) + np.log(s))[:, :, None],
            -np.inf,
        )
        others = log_cdf.sum(axis=1, keepdims=True) - log_cdf
        dens = np.exp(np.where(np.isfinite(log_cdf), log_pdf + others, -np.inf))  # (R, n, m)
    mass = (dens * w[:, None, :]).sum(axis=2)
    e_max = (dens.sum(axis=1) * x * w).sum(axis=1) / mass.sum(axis=1)
    p = mass / mass.sum(axis=1, keepdims=True)
    return (p[0], e_max[0]) if single else (p, e_max)

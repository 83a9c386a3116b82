"""Independent references for the probability of being best: adaptive quadrature and a fine Simpson grid."""

from __future__ import annotations

import numpy as np
from scipy import integrate, special, stats


def quad_prob_best(alpha, beta, scale) -> np.ndarray:
    """Independent reference: P(i best) = int f_i(x) prod_{j != i} F_j(x) dx by adaptive quadrature."""
    dists = [stats.beta(a, b, scale=s) for a, b, s in zip(alpha, beta, scale)]
    out = []
    for i, di in enumerate(dists):
        others = [d for j, d in enumerate(dists) if j != i]
        lo, hi = di.ppf(1e-14), di.ppf(1 - 1e-14)
        pts = list(di.ppf([0.01, 0.1, 0.5, 0.9, 0.99]))
        val, _ = integrate.quad(
            lambda x, di=di, others=others: di.pdf(x) * np.prod([d.cdf(x) for d in others]),
            lo,
            hi,
            points=pts,
            limit=400,
            epsabs=1e-12,
            epsrel=1e-10,
        )
        out.append(val)
    return np.array(out)


def fine_grid_reference(alpha, beta, scale, n_grid=40_000):
    """Independent reference: P(i best) = int f_i(x) prod_{j != i} F_j(x) dx by Simpson's rule on a
    uniform grid over the contenders (a creative whose 1 - 1e-13 quantile is below another's 1e-13
    quantile cannot win)."""
    lo_q = special.betaincinv(alpha, beta, 1e-13) * scale
    hi_q = special.betaincinv(alpha, beta, 1 - 1e-13) * scale
    keep = np.flatnonzero(hi_q > lo_q.max())
    a, b, s = alpha[keep], beta[keep], scale[keep]
    x = np.linspace(lo_q.max(), hi_q[keep].max(), n_grid + 1)
    w = np.full(x.size, 2.0)
    w[1::2], w[0], w[-1] = 4.0, 1.0, 1.0
    w *= (x[1] - x[0]) / 3.0
    out = np.zeros(keep.size)
    for chunk in np.array_split(np.arange(x.size), 50):
        xs = x[chunk]
        dists = stats.beta(a[:, None], b[:, None], scale=s[:, None])
        logcdf = dists.logcdf(xs[None, :])
        logpdf = dists.logpdf(xs[None, :])
        integrand = np.exp(logpdf - logcdf + logcdf.sum(axis=0))
        out += np.nan_to_num(integrand) @ w[chunk]
    full = np.zeros(alpha.size)
    full[keep] = out
    return full

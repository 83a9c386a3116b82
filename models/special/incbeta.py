"""The regularised incomplete Beta function (TOMS 708 `bfrac` with the `brcomp` prefactor) and its inverse."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from models.special._base import _EPS, _TINY, _f64, _quiet
from models.special.gamma import _betaln_and_constant, _log_constant, _rlog1, betaln


def _prefactor(
    a: np.ndarray, b: np.ndarray, lnx: np.ndarray, lny: np.ndarray, lam: np.ndarray, const: np.ndarray
) -> np.ndarray:
    """x^a (1 - x)^b / B(a, b) (TOMS 708 `brcomp`); lnx, lny the logarithms of x and 1 - x, lam = a - (a + b) x,
    all computed from whichever of x and 1 - x is exact; const = `_log_constant(a, b)`. 1-d arrays, 0 < x < 1.

    For a, b >= 8: with x0 = a / (a + b) (where lam = 0), x / x0 = 1 - lam / a and (1 - x) / (1 - x0) =
    1 + lam / b, so a log x + b log(1 - x) = a log x0 + b log(1 - x0) - (a u + b v), u = rlog1(-lam / a),
    v = rlog1(lam / b), and Stirling's formula turns x0^a (1 - x0)^b / B(a, b) into exp(const): no large terms
    cancel. Otherwise exp(a log x + b log(1 - x) - log B(a, b)).
    """
    big = np.minimum(a, b) >= 8.0
    every = big.all()
    if not every and not big.any():
        return np.exp(a * lnx + b * lny + const)
    # u = rlog1(-lam / a), v = rlog1(lam / b); away from 0 from the logarithms (log x - log x0, ...)
    e = np.concatenate((-lam / a, lam / b))
    near = np.abs(e) <= 0.5
    if near.all():
        uv = _rlog1(e)
    else:
        uv = e - np.concatenate((lnx + np.log1p(b / a), lny + np.log1p(a / b)))
        if near.any():
            uv = np.where(near, _rlog1(e), uv)
    exponent = const - (a * uv[: a.size] + b * uv[a.size :])
    return np.exp(exponent if every else np.where(big, exponent, a * lnx + b * lny + const))


_CF_BLOCK = 32  # terms of the continued fraction per step (the project's regime needs 5-60, a ~ 1e4 up to 160)
_CF_MAX = 4096
_CF_SMALL = 256  # elements up to which the block products beat Lentz's method (numpy's per-call cost)


@lru_cache(maxsize=64)
def _block_terms(n0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n, n - 1 and 2n - 1 for the terms n = n0 + 1 .. n0 + `_CF_BLOCK` of the continued fraction."""
    n = np.arange(n0 + 1.0, n0 + _CF_BLOCK + 1.0)
    return n, n - 1.0, 2.0 * n - 1.0


def _bfrac(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The continued fraction of TOMS 708 `bfrac`: I_x(a, b) = prefactor / (b_0 + a_1 / (b_1 + a_2 / ...)),
    lam = a - (a + b) x >= 0 (x at or below the mean); returns 1 / (b_0 + ...). 1-d arrays.

    b_0 = a (lam + 1) / (a + 1),
    a_n = (a + n - 1) (a + b + n - 1) n (b - n) x^2 / (a + 2n - 1)^2,
    b_n = n + n (b - n) x / (a + 2n - 1) + (a + n) / (a + 2n + 1) (lam + 1 + n (1 + y)).

    The convergents follow the three-term recurrence X_n = b_n X_{n-1} + a_n X_{n-2}, i.e. the product of the
    2 x 2 matrices [[b_n, a_n], [1, 0]]: each step multiplies `_CF_BLOCK` of them by pairwise halving (five
    batched matrix products instead of 32 Python-level iterations of Lentz's method), then
    stops where two successive convergents agree to 4 ulp. Arrays of more than `_CF_SMALL` elements go to
    Lentz's method, which does less arithmetic per element.
    """
    if a.size > _CF_SMALL:
        return _bfrac_lentz(a, b, x, y, lam)
    b0 = a * (lam + 1.0) / (a + 1.0)
    out = 1.0 / b0
    prod = None
    idx = np.arange(a.size)
    aa, bb, xx, ab, l1, y1, b0a = (
        a[:, None],
        b[:, None],
        x[:, None],
        (a + b)[:, None],
        (lam + 1.0)[:, None],
        (1.0 + y)[:, None],
        b0,
    )
    for n0 in range(0, _CF_MAX, _CF_BLOCK):
        n, n1, n2 = _block_terms(n0)
        s = aa + n2
        w = (bb - n) * (xx * n)
        alpha = (aa + n1) * (ab + n1) * (w * xx) / (s * s)
        inv_beta = 1.0 / (n + w / s + (aa + n) * (l1 + n * y1) / (s + 2.0))
        # Each matrix divided by its b_n (the ratio of the convergents does not change): the products of a
        # block stay of moderate size without rescaling every level.
        m = np.empty((idx.size, _CF_BLOCK, 2, 2))
        m[:, :, 0, 0] = 1.0
        m[:, :, 0, 1] = alpha * inv_beta
        m[:, :, 1, 0] = inv_beta
        m[:, :, 1, 1] = 0.0
        while m.shape[1] > 1:
            m = m[:, 1::2] @ m[:, 0::2]
        p = m[:, 0] if prod is None else m[:, 0] @ prod
        p /= np.abs(p[:, :1, :1]) + np.abs(p[:, :1, 1:])
        r = p[:, 0, 0] / (p[:, 0, 0] * b0a + p[:, 0, 1])
        r_prev = p[:, 1, 0] / (p[:, 1, 0] * b0a + p[:, 1, 1])
        out[idx] = r
        going = np.abs(r - r_prev) > 4.0 * _EPS * np.abs(r)
        if not going.any():
            break
        if not going.all():
            idx, p, b0a = idx[going], p[going], b0a[going]
            aa, bb, xx, ab, l1, y1 = a[idx, None], b[idx, None], x[idx, None], ab[going], l1[going], y1[going]
        prod = p
    return out


def _bfrac_lentz(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """`_bfrac` by the modified Lentz method, converged elements dropped every 4 terms."""
    f = a * (lam + 1.0) / (a + 1.0)
    c = f.copy()
    d = np.zeros_like(f)
    out = np.empty_like(f)
    idx = np.arange(f.size)
    aa, ab, bb, xx, l1, y1 = a, a + b, b, x, lam + 1.0, 1.0 + y
    for n in range(1, _CF_MAX + 1):
        s = aa + (2.0 * n - 1.0)
        w = (bb - n) * xx * n
        alpha = (aa + (n - 1.0)) * (ab + (n - 1.0)) * (w * xx) / (s * s)
        beta = n + w / s + (aa + n) * (l1 + n * y1) / (s + 2.0)
        d = 1.0 / (beta + alpha * d)
        c = beta + alpha / c
        delta = c * d
        f *= delta
        if n % 4 == 0 or n == _CF_MAX:
            going = np.abs(delta - 1.0) > 2.0 * _EPS
            if not going.all():
                out[idx[~going]] = f[~going]
                if not going.any():
                    break
                idx, f, c, d = idx[going], f[going], c[going], d[going]
                aa, ab, bb, xx, l1, y1 = a[idx], ab[going], b[idx], x[idx], l1[going], y1[going]
    else:
        out[idx] = f
    return 1.0 / out


def _logs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(1 - x, log x, log(1 - x)), each from whichever of x and 1 - x is exact (1 - x is, for x >= 1/2)."""
    y = 1.0 - x
    if not (x >= 0.5).any():
        return y, np.log(x), np.log1p(-x)
    upper = x >= 0.5
    return y, np.where(upper, np.log1p(-y), np.log(x)), np.where(upper, np.log(y), np.log1p(-x))


def _ibeta(
    a: np.ndarray, b: np.ndarray, x: np.ndarray, const: np.ndarray | None = None, logs: tuple | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(I_x(a, b), 1 - I_x(a, b)), each to full relative accuracy; 1-d arrays with a, b > 0 and 0 < x < 1;
    const = `_log_constant(a, b)` and logs = `_logs(x)` when the caller has them (the inverse evaluates the
    same a, b many times)."""
    y, lnx, lny = _logs(x) if logs is None else logs
    # lam from the exact one of x, 1 - x; where x < 1/2, y (rounded) only enters the harmless 1 + y
    lam = a - (a + b) * x
    if (x >= 0.5).any():
        lam = np.where(x >= 0.5, (a + b) * y - b, lam)
    pre = _prefactor(a, b, lnx, lny, lam, _log_constant(a, b) if const is None else const)
    lower = lam >= 0.0
    if lower.all():
        w = pre * _bfrac(a, b, x, y, lam)
        return w, 1.0 - w
    if not lower.any():
        w1 = pre * _bfrac(b, a, y, x, -lam)
        return 1.0 - w1, w1
    # Above the mean the fraction gives 1 - I_x(a, b) = I_{1-x}(b, a): swap, one call for both sides.
    v = pre * _bfrac(
        np.where(lower, a, b), np.where(lower, b, a), np.where(lower, x, y), np.where(lower, y, x), np.abs(lam)
    )
    return np.where(lower, v, 1.0 - v), np.where(lower, 1.0 - v, v)


def _ibeta_both(a: ArrayLike, b: ArrayLike, x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast, handle the edges (x <= 0, x >= 1, nan, non-positive parameters as scipy), and return
    (I_x(a, b), 1 - I_x(a, b)) of the broadcast shape."""
    a, b, x = np.broadcast_arrays(_f64(a), _f64(b), _f64(x))
    shape = a.shape
    a, b, x = a.ravel(), b.ravel(), x.ravel()
    inner = (x > 0.0) & (x < 1.0) & (np.minimum(a, b) > 0.0) & (np.maximum(a, b) < np.inf)
    if inner.all():
        w, w1 = _ibeta(a, b, x)
        return w.reshape(shape), w1.reshape(shape)
    w = np.full(a.size, np.nan)
    w1 = np.full(a.size, np.nan)
    valid = (a >= 0.0) & (b >= 0.0) & (x >= 0.0) & (x <= 1.0)
    valid &= ~((a == 0.0) & (b == 0.0)) & ~(np.isinf(a) & np.isinf(b))
    # As scipy: a = 0 or b = inf is a point mass at 0 (I = 1 for x > 0), b = 0 or a = inf one at 1.
    at0 = valid & ((x == 0.0) | (((b == 0.0) | np.isinf(a)) & (x < 1.0)))
    at1 = valid & ~at0 & ((x == 1.0) | (a == 0.0) | np.isinf(b))
    w[at0], w1[at0] = 0.0, 1.0
    w[at1], w1[at1] = 1.0, 0.0
    if inner.any():
        w[inner], w1[inner] = _ibeta(a[inner], b[inner], x[inner])
    return w.reshape(shape), w1.reshape(shape)


@_quiet
def betainc(a: ArrayLike, b: ArrayLike, x: ArrayLike) -> np.ndarray:
    """Regularised incomplete Beta function I_x(a, b) = P(Beta(a, b) <= x); broadcasts; nan outside
    a, b >= 0 (not both 0), 0 <= x <= 1, as scipy.special.betainc."""
    return _ibeta_both(a, b, x)[0]


@_quiet
def betaincc(a: ArrayLike, b: ArrayLike, x: ArrayLike) -> np.ndarray:
    """1 - I_x(a, b) = P(Beta(a, b) > x), to full relative accuracy also where it is tiny."""
    return _ibeta_both(a, b, x)[1]


def _ndtri_rough(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile, absolute error < 4.5e-4 (Abramowitz & Stegun 26.2.23): a start only."""
    q = np.minimum(p, 1.0 - p)
    t = np.sqrt(-2.0 * np.log(np.maximum(q, _TINY)))
    z = t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308)))
    return np.where(p < 0.5, -z, z)


def _start(a: np.ndarray, b: np.ndarray, p: np.ndarray, q: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """A first guess at x with I_x(a, b) = p (q = 1 - p exactly, lb = log B(a, b)), 1-d arrays, 0 < p < 1."""
    z = _ndtri_rough(p)
    # Abramowitz & Stegun 26.5.22 (a, b > 1): x = a / (a + b exp(2 w)), in logarithms.
    ra, rb = 1.0 / (2.0 * np.maximum(a, 0.51) - 1.0), 1.0 / (2.0 * np.maximum(b, 0.51) - 1.0)
    h = 2.0 / (ra + rb)
    lm = (z * z - 3.0) / 6.0
    w = -z * np.sqrt(h + lm) / h - (rb - ra) * (lm + 5.0 / 6.0 - 2.0 / (3.0 * h))
    x = 1.0 / (1.0 + b / a * np.exp(2.0 * w))
    # The tails of a small shape: I_x ~ x^a / (a B(a, b)) as x -> 0, 1 - I_x ~ (1 - x)^b / (b B(a, b)) as x -> 1.
    x_lo = np.exp((np.log(p) + np.log(a) + lb) / a)
    y_hi = np.exp((np.log(q) + np.log(b) + lb) / b)
    mean = a / (a + b)
    fit = np.isfinite(x) & (h + lm > 0) & (a > 1.0) & (b > 1.0)
    x = np.where(fit, x, mean)
    x = np.where((x_lo < x) & ((x_lo * b < 0.2) | ~fit), x_lo, x)
    x = np.where((y_hi < 1.0 - x) & ((y_hi * a < 0.2) | ~fit), 1.0 - y_hi, x)
    return np.clip(x, _TINY, 1.0 - _EPS / 2)


@_quiet
def betaincinv(a: ArrayLike, b: ArrayLike, p: ArrayLike, *, evaluations: int | None = None) -> np.ndarray:
    """x with I_x(a, b) = p (the p-quantile of Beta(a, b)); broadcasts; 0 at p = 0, 1 at p = 1, nan for p
    outside [0, 1], non-positive a or b, or nan, as scipy.special.betaincinv. Relative error ~1e-13 (the
    round trip I_x(a, b) / p - 1 ~1e-14).

    evaluations: at most this many evaluations of I_x, each followed by a Halley step (default: until
    converged, 2-3 from the start). One gives ~1e-4 relative, enough for the limits of an integral; 0 returns
    the start (Abramowitz & Stegun 26.5.22, or the leading power-series term in a far tail), a few percent
    off in the tails; for a few creatives the cost is per evaluation, not per element.
    """
    a, b, p = np.broadcast_arrays(_f64(a), _f64(b), _f64(p))
    shape = a.shape
    a, b, p = a.ravel(), b.ravel(), p.ravel()
    inner = (p > 0.0) & (p < 1.0) & (np.minimum(a, b) > 0.0) & (np.maximum(a, b) < np.inf)
    limit = _INV_MAX if evaluations is None else evaluations
    if inner.all():
        return _invert(a, b, p, limit).reshape(shape)
    out = np.full(a.size, np.nan)
    valid = (a > 0.0) & (b > 0.0) & (p >= 0.0) & (p <= 1.0) & np.isfinite(a) & np.isfinite(b)
    out[valid & (p == 0.0)] = 0.0
    out[valid & (p == 1.0)] = 1.0
    if inner.any():
        out[inner] = _invert(a[inner], b[inner], p[inner], limit)
    return out.reshape(shape)


_INV_MAX = 60  # evaluations, at most; from the start below 2-4 suffice (Halley's steps triple the digits)
_INV_RTOL = 1e-5  # a Halley step this small (relative) leaves an error of order its cube (measured <= 2e-13): accepted


def _invert(a: np.ndarray, b: np.ndarray, p: np.ndarray, evaluations: int) -> np.ndarray:
    """Solve I_x(a, b) = p for 0 < p < 1; 1-d arrays.

    Halley's method on the logarithm of the tail that is below 1/2 (h = log(I_x / p) in t = log x where
    p <= 1/2, h = log((1 - I_x) / (1 - p)) in s = log(1 - x) above): the tails are then nearly linear (I_x ~
    C x^a as x -> 0, 1 - I_x ~ C (1 - x)^b as x -> 1, ~ exp(-b x) for a large b), so a start orders of
    magnitude off converges in a few steps, and no step subtracts numbers close to 1. A bracket [lo, hi]
    narrowed by every evaluation catches steps that leave it (bisection, geometric in the far tails).
    """
    q = 1.0 - p  # exact where p >= 1/2, which is where it is used
    if evaluations == 0:
        return _start(a, b, p, q, betaln(a, b))
    upper = p > 0.5
    lb, const = _betaln_and_constant(a, b)
    x = _start(a, b, p, q, lb)
    # Per element: the target tail, and the exponents of x and 1 - x in g's numerator (x f or (1 - x) f).
    target = np.where(upper, q, p)
    ex = np.where(upper, a - 1.0, a)
    ey = np.where(upper, b, b - 1.0)
    lo = np.zeros_like(x)
    hi = np.ones_like(x)
    out = x.copy()
    idx = np.arange(x.size)
    aa, bb, up, tg, c, lbi, exi, eyi = a, b, upper, target, const, lb, ex, ey
    for _ in range(evaluations):
        logs = _logs(x)
        y, lnx, lny = logs
        w, w1 = _ibeta(aa, bb, x, c, logs)
        tail = np.where(up, w1, w)
        log_tail = np.log(tail)
        h = log_tail - np.log(tg)
        g = np.exp(exi * lnx + eyi * lny - lbi - log_tail)  # dh/dt or dh/ds
        # k = h'' / h' = d log g: a - (b - 1) x / (1 - x) - g, or b - (a - 1) (1 - x) / x - g
        odds = np.exp(lnx - lny)
        k = np.where(up, bb - (aa - 1.0) / odds, aa - (bb - 1.0) * odds) - g
        newton = h / g
        half = 0.5 * newton * k
        step = np.where(np.abs(half) < 0.5, newton / (1.0 - half), newton)
        new = np.where(up, x - y * np.expm1(-step), x * np.exp(-step))
        if evaluations == 1:  # the limits of an integral: one step, kept where it stays inside (0, 1)
            return np.where((new > 0.0) & (new < 1.0), new, x)
        # The lower tail rises with x, the upper one falls: keep the bracket on the side of the root.
        below = (h > 0) == up
        left = np.where(below, x, lo[idx])
        right = np.where(below, hi[idx], x)
        lo[idx], hi[idx] = left, right
        done = (np.abs(new - x) <= _INV_RTOL * np.minimum(x, y)) | (h == 0.0) | (right - left <= 4.0 * _EPS * right)
        bad = ~done & (~np.isfinite(new) | (new <= left) | (new >= right))
        if bad.any():
            # Outside the bracket: bisect it, geometrically where it spans orders of magnitude (far tails).
            mid = 0.5 * (left + right)
            mid = np.where((right <= 0.5) & (right > 4.0 * left), np.sqrt(np.maximum(left, 1e-8 * right) * right), mid)
            cl, cr = 1.0 - left, 1.0 - right
            mid = np.where((left >= 0.5) & (cl > 4.0 * cr), 1.0 - np.sqrt(np.maximum(cr, 1e-8 * cl) * cl), mid)
            new = np.where(bad, mid, new)
        out[idx] = np.where(done & ~np.isfinite(new), x, new)
        if done.all():
            break
        if done.any():
            keep = ~done
            idx, new = idx[keep], new[keep]
            aa, bb, up, tg, c, lbi, exi, eyi = (
                a[idx],
                b[idx],
                upper[idx],
                target[idx],
                const[idx],
                lb[idx],
                ex[idx],
                ey[idx],
            )
        x = new
    return out

"""The special functions of the conjugate path, in numpy: no scipy on the commands a marketer runs by hand.

`import scipy.special` costs ~0.2 s (it loads scipy.linalg and scipy's array-API layer, and numpy.testing) of
the 0.5 s a `reallocate` may take (BENCHMARKS.md, "Issue 14: scipy off the conjugate path"). What the
conjugate model needs is small: log-Gamma and log-Beta, the regularised incomplete Beta function I_x(a, b) and
its inverse, and a few elementwise helpers. Tested against scipy.special and a 50-digit reference in
`tests/models/test_special.py` (relative error <= 1e-12 over alpha 0.5-1e4, beta 1-1e8, +-40 sd). Known
limit: a below ~1e-3 with b above ~1e5 loses digits (TOMS 708 switches to power series there).

Method (DiDonato & Morris 1992, ACM TOMS 708, the algorithm behind R's `pbeta`)
------------------------------------------------------------------------------------
- `gammaln`: Stirling's series with 9 Bernoulli terms for x >= 8; below, the Taylor series of log Gamma(2 + z)
  (coefficients (zeta(k) - 1) / k) after an exact shift into [1.5, 2.5), so the zeros at 1 and 2 keep their
  relative accuracy.
- `betaln`: for a, b >= 8 and for min(a, b) < 8 <= max(a, b) the large terms are combined analytically
  (log1p of the ratio of the parameters) and only the Stirling corrections (`_bcorr`, `_algdiv`) are
  added: lgamma differences would cancel ~log(b) * b against a result of order a log(b), losing ~1e-9 relative
  at b ~ 1e7 (BENCHMARKS.md, issue 14).
- `betainc`: I_x(a, b) = x^a (1 - x)^b / B(a, b) times a continued fraction in lambda = a - (a + b) x (TOMS 708
  `bfrac`), on the side where lambda >= 0 (x below the mean, else the symmetry I_x(a, b) = 1 - I_{1-x}(b, a)),
  as products of 2 x 2 matrices 32 terms at a time for small arrays, by Lentz's method for large ones. lambda is formed from whichever of x and 1 - x is exact, so the
  fraction never subtracts two numbers close to 1 (the plain fraction in 1 - x does, and loses up to 1e-9
  relative at b ~ 1e8). The prefactor is computed as TOMS 708 `brcomp`: for a, b >= 8 as
  sqrt(a b / (2 pi (a + b))) exp(-(a u + b v) - bcorr) with u, v = rlog1(-lambda / a), rlog1(lambda / b)
  (rlog1(e) = e - log(1 + e), no cancellation), else from logarithms and `betaln`.
- `betaincinv`: a start from Abramowitz & Stegun 26.5.22 (or the leading power-series term in the tails of
  a small shape), then Halley steps on the logarithm of the tail that is below 1/2 (I_x or 1 - I_x, both
  computed without cancellation), kept inside a bracket that every evaluation narrows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import cast

import numpy as np
from numpy.typing import ArrayLike


def _quiet[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` with numpy's floating-point warnings off (the edges, log 0 and inf - inf in branches that
    np.where discards, are handled explicitly, and one errstate per call is cheaper than one per branch), and
    return a numpy scalar for scalar arguments, as scipy's ufuncs do."""

    @wraps(fn)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> R:
        with np.errstate(all="ignore"):
            out = fn(*args, **kwargs)
        if isinstance(out, np.ndarray) and out.ndim == 0:
            return cast(R, out[()])
        return out

    return quiet


_LN_SQRT_2PI = 0.9189385332046727  # log(sqrt(2 pi))
_EULER = 0.5772156649015329
_EPS = 2.220446049250313e-16
_TINY = 1e-300

# B_2k / (2k (2k - 1)), k = 1..9: Stirling's series log Gamma(x) - ((x - 1/2) log x - x + log sqrt(2 pi)). At
# x = 8 the first omitted term is 1e-17.
_STIRLING = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
    43867.0 / 244188.0,
)
# Bernoulli numbers B_2, B_4, ..., B_12 for the Euler-Maclaurin tail of zeta.
_BERNOULLI = (1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0, 5.0 / 66.0, -691.0 / 2730.0)
_SERIES_TERMS = 30  # of log Gamma(2 + z) around z = 0: |z| <= 1/2, terms ~ (z / 2)^k / k


def _f64(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


@lru_cache(maxsize=1)
def _lgamma2_coefficients() -> np.ndarray:
    """c_k of log Gamma(2 + z) = sum_{k>=1} c_k z^k: c_1 = 1 - gamma, c_k = (-1)^k (zeta(k) - 1) / k.

    zeta(k) - 1 by Euler-Maclaurin: the terms n = 2..9 summed, the tail from n = 10 by its integral, half its
    first term and six Bernoulli corrections (the first omitted one is below 1e-20 for every k >= 2).
    """
    k = np.arange(2, _SERIES_TERMS + 1, dtype=np.float64)
    n = 10.0
    head = (np.arange(2, 10, dtype=np.float64)[:, None] ** -k).sum(axis=0)
    tail = n ** (1.0 - k) / (k - 1.0) + 0.5 * n**-k
    rising = k.copy()  # k (k + 1) ... (k + 2j - 2)
    factorial = 2.0
    for j, bern in enumerate(_BERNOULLI, start=1):
        tail += bern / factorial * rising * n ** (-k - 2 * j + 1)
        rising = rising * (k + 2 * j - 1) * (k + 2 * j)
        factorial *= (2 * j + 1) * (2 * j + 2)
    zeta_minus_1 = head + tail
    return np.concatenate(([1.0 - _EULER], (-1.0) ** k * zeta_minus_1 / k))


def _lgamma2(z: np.ndarray) -> np.ndarray:
    """log Gamma(2 + z) for |z| <= 1/2 (z given exactly: the argument's offset from 2)."""
    c = _lgamma2_coefficients()
    s = np.full_like(z, c[-1])
    for ck in c[-2::-1]:
        s = s * z + ck
    return s * z


def _stirling_delta(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) - ((x - 1/2) log x - x + log sqrt(2 pi)) for x >= 8, to 1e-18 absolute: only as many terms
    as the smallest x needs (9 at 8, 4 at 60, 2 beyond 3000)."""
    if not x.size:
        return x.copy()
    smallest = max(float(x.min()), 8.0)
    terms = next((k for k, c in enumerate(_STIRLING) if abs(c) * smallest ** (1 - 2 * k) < 1e-18), len(_STIRLING))
    t = (1.0 / x) ** 2
    s = np.full_like(x, _STIRLING[terms - 1])
    for c in _STIRLING[terms - 2 :: -1]:
        s = s * t + c
    return s / x


@_quiet
def gammaln(x: ArrayLike) -> np.ndarray:
    """log Gamma(x) for x > 0 (inf at 0, nan below 0 and for nan); any shape."""
    x = _f64(x)
    out = np.full(x.shape, np.nan)
    big = x >= 8.0
    if big.any():
        xb = x[big]
        out[big] = np.where(
            np.isinf(xb), np.inf, (xb - 0.5) * np.log(xb) - xb + _LN_SQRT_2PI + _stirling_delta(np.minimum(xb, 1e300))
        )
    mid = (x >= 1.5) & (x < 8.0)
    if mid.any():
        xm = x[mid]
        shift = np.floor(xm - 1.5)  # 0..6: xm - shift in [1.5, 2.5), exactly
        prod = np.ones_like(xm)
        for i in range(1, 7):
            prod *= np.where(shift >= i, xm - i, 1.0)
        out[mid] = _lgamma2(xm - shift - 2.0) + np.log(prod)
    low = (x > 0.0) & (x < 1.5)
    if low.any():
        xl = x[low]
        # log Gamma(x) = log Gamma(x + 1) - log x, and once more below 1/2; z = the offset from 2, exact.
        out[low] = np.where(
            xl >= 0.5,
            _lgamma2(xl - 1.0) - np.log(xl),
            _lgamma2(np.minimum(xl, 0.5)) - np.log(xl) - np.log1p(np.minimum(xl, 0.5)),
        )
    out[x == 0.0] = np.inf
    return out


def _algdiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Gamma(b) / Gamma(a + b)) for b >= 8, the large terms combined before the Stirling corrections."""
    return -(a + b - 0.5) * np.log1p(a / b) - a * (np.log(b) - 1.0) + (_stirling_delta(b) - _stirling_delta(a + b))


def _bcorr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stirling corrections of log B(a, b) for a, b >= 8: delta(a) + delta(b) - delta(a + b)."""
    d = _stirling_delta(np.concatenate((a, b, a + b)))
    n = a.size
    return d[:n] + d[n : 2 * n] - d[2 * n :]


@_quiet
def betaln(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """log B(a, b) = log(Gamma(a) Gamma(b) / Gamma(a + b)) for a, b > 0 (inf if either is 0, nan below);
    broadcasts."""
    a, b = np.broadcast_arrays(_f64(a), _f64(b))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    out = np.full(a.shape, np.nan)
    both = lo >= 8.0
    if both.any():
        p, q = lo[both], hi[both]
        # Stirling's formula for all three Gammas: the (x - 1/2) log x - x terms combine into these three.
        out[both] = np.where(
            np.isinf(q),
            -np.inf,
            _LN_SQRT_2PI
            - 0.5 * np.log(q)
            - (p - 0.5) * np.log1p(q / p)
            - q * np.log1p(p / q)
            + _bcorr(p, np.minimum(q, 1e300)),
        )
    one = (lo > 0.0) & (lo < 8.0) & (hi >= 8.0)
    if one.any():
        p, q = lo[one], hi[one]
        out[one] = np.where(np.isinf(q), -np.inf, gammaln(p) + _algdiv(p, np.minimum(q, 1e300)))
    small = (lo > 0.0) & (hi < 8.0)
    if small.any():
        p, q = lo[small], hi[small]
        out[small] = gammaln(p) + gammaln(q) - gammaln(p + q)
    out[(lo == 0.0) & ~np.isnan(hi)] = np.inf
    return out


def _rlog1(e: np.ndarray) -> np.ndarray:
    """e - log(1 + e) without cancellation near 0 (TOMS 708 `rlog1`), e > -1.

    With r = e / (2 + e), log(1 + e) = 2 atanh(r), so e - log(1 + e) = 2 r^2 (1 / (1 - r) - r w),
    w = sum_k r^(2k) / (2k + 3); |e| <= 1/4 gives |r| <= 1/7 and 10 terms. Beyond, directly (at |e| = 1/4
    the subtraction loses at most 3 bits).
    """
    near = np.abs(e) <= 0.25
    en = np.where(near, e, 0.0)
    r = en / (2.0 + en)
    r2 = r * r
    # terms while r^(2k) > 1e-17 for the largest r here (2 when |e| < 1e-4, as near a Beta's mean)
    largest = float(r2.max()) if r2.size else 0.0
    terms = next((k for k in range(1, 10) if largest**k < 1e-17), 10)
    w = np.full_like(r, 1.0 / (2 * terms + 3))
    for k in range(terms - 1, -1, -1):
        w = w * r2 + 1.0 / (2 * k + 3)
    return np.where(near, 2.0 * r2 * (1.0 / (1.0 - r) - r * w), e - np.log1p(e))


def _log_constant(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The part of log(x^a (1 - x)^b / B(a, b)) that does not depend on x, as `_prefactor` uses it: for
    a, b >= 8 log(sqrt(a b / (a + b) / (2 pi))) - bcorr(a, b), else -log B(a, b). 1-d arrays."""
    big = np.minimum(a, b) >= 8.0
    if big.all():
        return 0.5 * np.log(a * b / (a + b)) - _LN_SQRT_2PI - _bcorr(a, b)
    out = -betaln(a, b)
    if big.any():
        p, q = a[big], b[big]
        out[big] = 0.5 * np.log(p * q / (p + q)) - _LN_SQRT_2PI - _bcorr(p, q)
    return out


def _betaln_and_constant(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log B(a, b), `_log_constant(a, b)`), sharing the Stirling corrections where a, b >= 8 everywhere."""
    if not (np.minimum(a, b) >= 8.0).all():
        return betaln(a, b), _log_constant(a, b)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    bc = _bcorr(a, b)
    lb = _LN_SQRT_2PI - 0.5 * np.log(hi) - (lo - 0.5) * np.log1p(hi / lo) - hi * np.log1p(lo / hi) + bc
    return lb, 0.5 * np.log(a * b / (a + b)) - _LN_SQRT_2PI - bc


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


@_quiet
def xlogy(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """x * log(y), 0 where x = 0 (and y is not nan), as scipy.special.xlogy."""
    x, y = np.broadcast_arrays(_f64(x), _f64(y))
    return np.where((x == 0.0) & ~np.isnan(y), 0.0, x * np.log(y))


@_quiet
def xlog1py(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """x * log1p(y), 0 where x = 0 (and y is not nan), as scipy.special.xlog1py."""
    x, y = np.broadcast_arrays(_f64(x), _f64(y))
    return np.where((x == 0.0) & ~np.isnan(y), 0.0, x * np.log1p(y))


@_quiet
def expit(x: ArrayLike) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)), without overflow for large |x|."""
    x = _f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@_quiet
def logit(p: ArrayLike) -> np.ndarray:
    """log(p / (1 - p)); -inf at 0, inf at 1, nan outside [0, 1]."""
    p = _f64(p)
    return np.log(p) - np.log1p(-p)

"""log Gamma and log Beta (TOMS 708 `algdiv`, `bcorr`), and the Beta function's constants of the
incomplete Beta function's prefactor."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from models.special._base import _EULER, _LN_SQRT_2PI, _f64, _quiet

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

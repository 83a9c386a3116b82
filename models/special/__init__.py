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

from models.special.elementary import expit, logit, xlog1py, xlogy
from models.special.gamma import betaln, gammaln
from models.special.incbeta import betainc, betaincc, betaincinv

__all__ = ["betainc", "betaincc", "betaincinv", "betaln", "expit", "gammaln", "logit", "xlog1py", "xlogy"]

"""Elementwise helpers: x log y, x log(1 + y), the logistic function and its inverse."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from models.special._base import _f64, _quiet


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

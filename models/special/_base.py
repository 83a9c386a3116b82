"""Shared pieces of `models.special`: the floating-point wrapper of every public function, constants."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
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


def _f64(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)

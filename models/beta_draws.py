"""Batched Beta draws for the simulator's posteriors, written into buffers that are reused day after day.

`beta_draws` returns X_ckd ~ Beta(alpha_ck, beta_ck) (times scale_ck), shape (n_campaigns, n_creatives,
n_draws), float32, the draws of a creative contiguous. It is the hot path of a simulation study (one call per
policy, day and chunk of replicates), so it is built for speed and for memory that is allocated once:

- Normals by Box-Muller from float32 uniforms (two uniforms, a log, a square root, a cosine and a sine per
  two normals: about a third of the cost of numpy's float32 ziggurat on the 2-core benchmark machine). The
  uniforms are multiples of 2^-24, so |z| <= 5.77 (a tail of probability 8e-9 is cut).
- Where both shapes are at least `WILSON_HILFERTY_MIN` (the Beta's second shape, prior beta + impressions -
  conversions, always is with money; the first after about 30 conversions), one normal per Beta draw. The
  Wilson-Hilferty approximation Gamma(s) ~ s (1 - c + z sqrt(c))^3, c = 1 / (9 s) (CDF within 2e-4 of the
  Gamma's at s = 30, 5e-6 at 1,000) makes the cube roots of both Gammas normal, so the Beta draw
  G_a / (G_a + G_b) it defines has a closed-form CDF (Paulson's approximation of the F distribution):
  P(X <= x) = Phi((r beta - alpha) / sqrt(sigma_a^2 + r^2 sigma_b^2)), r = (x / (1 - x))^(1/3), with
  alpha = a^(1/3) (1 - c_a), sigma_a = a^(1/3) sqrt(c_a) and the same for b. Its inverse at a normal z,

      r = (alpha beta + z sqrt(alpha^2 sigma_b^2 + beta^2 sigma_a^2 - z^2 sigma_a^2 sigma_b^2))
          / (beta^2 - z^2 sigma_b^2),   x = r^3 / (1 + r^3),

  is therefore a draw from exactly the distribution of the two-Gamma Wilson-Hilferty draw, at half the
  normals (valid for |z| < sqrt(9 min(a, b)) >= 16).
- Smaller shapes: each Gamma exactly, by Marsaglia and Tsang's method vectorised over the entries (a
  normal and a uniform per draw, a few per cent rejected and redrawn; shape < 1 by Gamma(s + 1) U^(1/s);
  shape 1, the prior of a creative without conversions, by -log U), or by Wilson-Hilferty for the other
  shape when it is large; then G_a / (G_a + G_b).

The entries that are not live hold -inf and cost no random numbers beyond those of a full batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WILSON_HILFERTY_MIN = 30.0
_TWO_PI = np.float32(2.0 * np.pi)


class DrawBuffers:
    """Named arrays reused from call to call (grown when a larger one is asked for, never shrunk).

    One instance serves every posterior of a simulated policy run, or of several runs in turn: a large
    array allocated and freed every simulated day costs page faults (kernel time) every day, a reused one
    only the first time. `generation` counts the posteriors that took the buffers, so a posterior can tell
    that a later one has overwritten its draws.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self.generation = 0
        # Two sets of standard normals, shape (2, n_campaigns, n_creatives, n_draws), for `beta_draws` to use
        # instead of its own: set by a caller that runs several policies on the same replicates day by day,
        # fresh each day, so their posterior draws share them (common random numbers across policies; each
        # policy's draws stay independent from day to day and of its own outcomes). One normal per draw
        # serves the one-normal Beta draws; the entries drawn as two Gammas take one from each set. None:
        # each call draws its own.
        self.common_normals: np.ndarray | None = None

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """An uninitialised array of `shape`, backed by the buffer `name`."""
        size = 1
        for n in shape:
            size *= int(n)
        buf = self._arrays.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(max(size, 1), dtype=dtype)
            self._arrays[name] = buf
        return buf[:size].reshape(shape)

    def checkout(self) -> int:
        """Start a new posterior's draws: returns its generation."""
        self.generation += 1
        return self.generation


def standard_normal(rng: np.random.Generator, out: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Fill `out` (float32, C-contiguous) with standard normal draws by Box-Muller; returns `out`.

    scratch : float32 array of at least ceil(out.size / 2) elements, or None (allocated)
    """
    flat = out.reshape(-1)
    n = flat.size
    h = (n + 1) // 2
    if n == 0:
        return out
    if n % 2:  # an odd count: one spare normal, drawn separately
        flat[-1] = rng.standard_normal(dtype=np.float32)
        flat = flat[:-1]
        n -= 1
        h = n // 2
        if n == 0:
            return out
    rng.random(n, dtype=np.float32, out=flat)
    radius, angle = flat[:h], flat[h:]
    np.subtract(np.float32(1.0), radius, out=radius)  # (0, 1]
    np.log(radius, out=radius)
    np.multiply(radius, np.float32(-2.0), out=radius)
    np.sqrt(radius, out=radius)
    np.multiply(angle, _TWO_PI, out=angle)
    cos = np.empty(h, np.float32) if scratch is None else scratch.reshape(-1)[:h]
    np.cos(angle, out=cos)
    np.sin(angle, out=angle)
    np.multiply(angle, radius, out=angle)
    np.multiply(radius, cos, out=radius)
    return out


def _normals(rng: np.random.Generator, shape: tuple[int, ...], bufs: DrawBuffers, name: str) -> np.ndarray:
    n = 1
    for s in shape:
        n *= int(s)
    return standard_normal(rng, bufs.array(name, shape), bufs.array("bm_scratch", ((n + 1) // 2,)))


def gamma_draws(
    shape: np.ndarray,
    n_draws: int,
    rng: np.random.Generator,
    bufs: DrawBuffers | None = None,
    name: str = "gamma_draws",
    normals: np.ndarray | None = None,
) -> np.ndarray:
    """Gamma(shape_i, 1) draws, shape (n_entries, n_draws), float32, for a 1-d array of shapes > 0:
    Wilson-Hilferty from `WILSON_HILFERTY_MIN` up, -log U at shape 1 (the exponential), Marsaglia-Tsang
    (exact) elsewhere below. The result is the buffer `name` of `bufs`. `normals` (n_entries, n_draws),
    optional: the standard normals to use (Wilson-Hilferty's, Marsaglia-Tsang's first candidates; not
    modified) instead of drawing them."""
    bufs = DrawBuffers() if bufs is None else bufs
    shape = np.asarray(shape, dtype=np.float64).reshape(-1)
    out = bufs.array(name, (shape.size, n_draws))
    kinds = np.where(shape >= WILSON_HILFERTY_MIN, 0, np.where(shape == 1.0, 1, 2))
    methods = (_wilson_hilferty, _exponential, _marsaglia_tsang)
    src = _Source(rng, bufs, normals)
    for kind in np.unique(kinds):
        rows = kinds == kind
        if rows.all():
            methods[kind](shape, out, src)
        else:
            part = bufs.array("gamma_part", (int(rows.sum()), n_draws))
            out[rows] = methods[kind](shape[rows], part, src.rows(rows))
    return out


@dataclass(frozen=True)
class _Source:
    """Where a Gamma sampler takes its random numbers and scratch arrays: `rng`, the buffers, and optionally
    the standard normals to use (n_entries, n_draws; Wilson-Hilferty's, Marsaglia-Tsang's first candidates)."""

    rng: np.random.Generator
    bufs: DrawBuffers
    normals: np.ndarray | None = None

    def normals_in(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The buffer `name` holding the given normals (copied: the caller's stay as they are) or fresh ones."""
        if self.normals is None:
            return _normals(self.rng, shape, self.bufs, name)
        z = self.bufs.array(name, shape)
        np.copyto(z, self.normals)
        return z

    def rows(self, rows: np.ndarray) -> _Source:
        return self if self.normals is None else _Source(self.rng, self.bufs, self.normals[rows])


def _wilson_hilferty(shape: np.ndarray, out: np.ndarray, src: _Source) -> np.ndarray:
    """Gamma(shape) ~ shape (1 - c + z sqrt(c))^3, c = 1 / (9 shape), into `out` (n_entries, n_draws)."""
    s = shape.astype(np.float32)[:, None]
    c = np.float32(1.0) / (np.float32(9.0) * s)
    z = src.normals_in("wh_normals", out.shape)
    z *= np.sqrt(c)
    z += np.float32(1.0) - c
    np.multiply(z, z, out=out)
    out *= z
    out *= s
    return out


def _exponential(shape: np.ndarray, out: np.ndarray, src: _Source) -> np.ndarray:
    """Gamma(1) = -log U, U uniform on (0, 1], into `out`."""
    src.rng.random(dtype=np.float32, out=out)
    np.subtract(np.float32(1.0), out, out=out)
    np.log(out, out=out)
    np.negative(out, out=out)
    return out


def _marsaglia_tsang(shape: np.ndarray, out: np.ndarray, src: _Source) -> np.ndarray:
    """Exact Gamma(shape) draws (Marsaglia & Tsang 2000) into `out` (n_entries, n_draws), float32.

    One vectorised pass over every candidate (a normal z and a uniform u per draw, v = (1 + z / sqrt(9 d))^3,
    d = shape - 1/3, accepted when v > 0 and log u < z^2 / 2 + d (1 - v + log v)); the few rejected get fresh
    candidates until none is left. Shapes below 1: Gamma(s + 1) U^(1/s)."""
    boost = shape < 1.0
    s = np.where(boost, shape + 1.0, shape)
    d = s - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    full = out.shape
    rng, bufs, n_draws = src.rng, src.bufs, out.shape[1]
    z = src.normals_in("mt_normals", full)
    u = rng.random(dtype=np.float32, out=bufs.array("mt_uniforms", full))
    v = bufs.array("mt_v", full)
    np.multiply(z, c.astype(np.float32)[:, None], out=v)
    v += np.float32(1.0)
    np.multiply(v, v, out=out)
    np.multiply(out, v, out=v)  # v = (1 + c z)^3
    # The test log u < z^2 / 2 + d (1 - v + log v) over every candidate, in float32 as numpy's own float32
    # Gamma does (the squeeze u < 1 - 0.0331 z^4 would leave about 10% to a slower second pass).
    rhs = np.log(np.maximum(v, np.float32(1e-30), out=out), out=out)
    rhs -= v
    rhs += np.float32(1.0)
    rhs *= d.astype(np.float32)[:, None]
    np.multiply(z, z, out=z)
    z *= np.float32(0.5)
    rhs += z
    with np.errstate(divide="ignore"):  # u = 0 (probability 2^-24): log u = -inf, accepted
        np.log(u, out=u)
    reject = np.greater_equal(u, rhs, out=bufs.array("mt_reject", full, bool))
    reject |= v <= 0
    np.multiply(v, d.astype(np.float32)[:, None], out=out)
    todo = np.flatnonzero(reject)
    flat = out.reshape(-1)
    while todo.size:  # fresh candidates for the rejected (a few per cent), in float64
        row = todo // n_draws
        zt, ut = rng.standard_normal(todo.size), rng.random(todo.size)
        vt = (1.0 + c[row] * zt) ** 3
        positive = vt > 0
        with np.errstate(divide="ignore"):
            good = positive & (np.log(ut) < 0.5 * zt * zt + d[row] * (1.0 - vt + np.log(np.where(positive, vt, 1.0))))
        flat[todo[good]] = d[row[good]] * vt[good]
        todo = todo[~good]
    if boost.any():
        power = (1.0 / shape[boost]).astype(np.float32)[:, None]
        out[boost] *= rng.random((int(boost.sum()), n_draws), dtype=np.float32) ** power
    return out


def beta_draws(
    alpha: np.ndarray,
    beta: np.ndarray,
    live: np.ndarray,
    n_draws: int,
    rng: np.random.Generator,
    bufs: DrawBuffers | None = None,
    scale: np.ndarray | None = None,
    name: str = "beta_draws",
) -> np.ndarray:
    """Draws of scale x Beta(alpha, beta), shape (n_campaigns, n_creatives, n_draws), float32; -inf where not
    live. `alpha`, `beta`, `live` (and `scale`, None for 1) have shape (n_campaigns, n_creatives). The result
    is the buffer `name` of `bufs`: valid until the next call that uses it."""
    bufs = DrawBuffers() if bufs is None else bufs
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    live = np.asarray(live, dtype=bool)
    n_camp, n = alpha.shape
    full = (n_camp, n, n_draws)
    fast = live & (alpha >= WILSON_HILFERTY_MIN) & (beta >= WILSON_HILFERTY_MIN)
    x = bufs.array(name, full)
    common = bufs.common_normals
    if common is not None and common.shape != (2, *full):
        common = None
    n_fast = int(fast.sum())
    if n_fast == fast.size:  # every entry: in place over the whole array
        z = common[0] if common is not None else _normals(rng, full, bufs, "beta_normals")
        _paulson(alpha, beta, z, x, bufs.array("beta_scratch", full))
    elif n_fast:  # some: on those rows only (the others would be computed for nothing), then scattered
        part = (n_fast, n_draws)
        z = common[0][fast] if common is not None else _normals(rng, part, bufs, "beta_normals")
        x[fast] = _paulson(alpha[fast], beta[fast], z, bufs.array("beta_part", part), bufs.array("beta_scratch", part))
    slow = live & ~fast
    if slow.any():
        ga = gamma_draws(alpha[slow], n_draws, rng, bufs, "gamma_a", None if common is None else common[0][slow])
        gb = gamma_draws(beta[slow], n_draws, rng, bufs, "gamma_b", None if common is None else common[1][slow])
        gb += ga
        x[slow] = np.divide(ga, gb, out=ga)
    if not live.all():
        x[~live] = -np.inf
    if scale is not None:
        # -inf stays -inf: the scale of an entry that is not live (padding: no spend, no CPM) is set to 1
        x *= np.where(live, scale, 1.0).astype(np.float32)[:, :, None]
    return x


def _paulson(alpha: np.ndarray, beta: np.ndarray, z: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Beta draws from the normals `z` by Paulson's inverse (module docstring) into `out`, for shapes
    alpha, beta >= `WILSON_HILFERTY_MIN` of shape z.shape[:-1] (the draws on the last axis); `z` is not
    modified. Divided through by beta^2 for float32's range."""
    ca, cb = 1.0 / (9.0 * alpha), 1.0 / (9.0 * beta)
    ra, rb = np.cbrt(alpha), np.cbrt(beta)
    mu_b = rb * (1.0 - cb)
    p = ra * (1.0 - ca) / mu_b  # alpha / beta
    q = rb * rb * cb / (mu_b * mu_b)  # sigma_b^2 / beta^2
    r = ra * ra * ca / (mu_b * mu_b)  # sigma_a^2 / beta^2

    def col(v: np.ndarray) -> np.ndarray:
        return v.astype(np.float32)[..., None]

    w = scratch
    np.multiply(z, z, out=out)  # z^2
    np.multiply(out, col(-r * q), out=w)
    np.add(w, col(p * p * q + r), out=w)
    np.sqrt(w, out=w)
    np.multiply(w, z, out=w)
    np.add(w, col(p), out=w)  # numerator
    np.multiply(out, col(-q), out=out)
    np.add(out, np.float32(1.0), out=out)  # denominator
    np.divide(w, out, out=w)  # r
    np.multiply(w, w, out=out)
    np.multiply(out, w, out=out)  # r^3
    np.add(out, np.float32(1.0), out=w)
    np.divide(out, w, out=out)  # r^3 / (1 + r^3)
    return out


def count_best(x: np.ndarray) -> np.ndarray:
    """How often each creative holds the largest draw, shape (n_campaigns, n_creatives), float64, from draws
    `x` of shape (n_campaigns, n_creatives, n_draws) (ties to the first, as numpy's argmax). Every draw is
    compared with its row maximum at once; the rows where a tie made the counts overshoot n_draws (rare with
    continuous draws) are counted again, each tie given to the first creative that holds it."""
    n_camp, n, n_draws = x.shape
    if n == 0 or n_draws == 0:
        return np.zeros((n_camp, n))
    top = x.max(axis=1)
    # bools summed as bytes into the narrowest sufficient integer: several times faster than count_nonzero
    wide = np.uint16 if n_draws < 2**16 else np.int64
    counts = (x == top[:, None, :]).view(np.uint8).sum(axis=2, dtype=wide).astype(np.float64)
    tied = np.flatnonzero(counts.sum(axis=1) > n_draws)
    if tied.size:
        winners = np.argmax(x[tied], axis=1)  # (n_tied, n_draws)
        counts[tied] = (winners[:, None, :] == np.arange(n)[None, :, None]).sum(axis=2)
    return counts

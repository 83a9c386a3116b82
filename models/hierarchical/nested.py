"""The fast path for large models: importance sampling of the few global parameters only (INLA-style).

Given the globals ``g`` (intercept_mean, campaign_sd, organic_coef, creative_sd, fatigue: 3 to 5 numbers on
PyMC's unconstrained scale), the locals (each campaign's intercept ``b[k]`` in a portfolio, each creative's
logit ``l[c]``, both coded centred here) are conditionally independent by campaign (by creative in a single
campaign), and each block's negative Hessian is an arrowhead (``b[k]`` against its creatives). So:

1. For each ``g``, the conditional mode of every block by vectorised Newton steps (closed-form arrowhead
   solves), and the Laplace approximation of the block's marginal likelihood
   ``log p(y_b | g) ~ log p(y_b, x_hat | g) + m_b/2 log 2 pi - 1/2 log det P_b``; summed with the prior of ``g``
   this is the approximate marginal posterior ``log p~(g | y)`` (Rue, Martino and Chopin 2009).
2. Its mode (L-BFGS-B, batched central-difference gradient), its Hessian, and the t proposal with adaptive
   stages of `models.hierarchical.laplace` on ``g`` alone; PSIS weights and the gate (Pareto k, ESS) are
   computed on these low-dimensional draws.
3. For each draw of ``g``, the locals from their conditional Gaussians ``N(x_hat(g), P(g)^-1)``, corrected by
   importance sampling within each block (`NestedLaplace.draw_locals`, ``inner`` candidates per block: one
   kept by its ratio, their mean ratio multiplying the draw's weight).

The Gaussian conditional alone is an approximation: the logit of a creative with c conversions has a
posterior skewed like a log-gamma's (long tail towards low rates), so a Gaussian at the mode puts the rate's
mean about 1 / (2 sqrt(c)) posterior sds too high (measured against NUTS on 15 x 5 x 14 portfolios: median
0.09 sd) and its sd a few percent too wide, and step 1's marginal of the globals inherits the same error.
The block's ratio ``exp(check)``, with ``check = log p(y_b, x_b | g) - log N(x_b) - [the same at x_hat]``,
removes both: with ``inner`` candidates per block its mean is an unbiased estimate of
``p(y_b | g) / Laplace_b(g)``, so the weights ``p~(g | y) / q(g) x prod_b mean exp(check)`` and one candidate
per block resampled by exp(check) are a consistent importance sample of the exact posterior (importance
sampling squared; Tran, Scharth, Pitt and Kohn 2014), and the gate's Pareto k and ESS are those of the whole
draw. The check's Pareto k per block (``conditional_k``, the largest over blocks) must be <= 0.7 too, else
the gate fails: with heavier tails than that, a few candidates neither correct the skew nor estimate the
ratio. Binomial likelihoods with a logit link are log-concave, so the conditionals are unimodal and close
to Gaussian except for blocks with a few conversions on many impressions, where the check sees the skew.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from models.hierarchical.logdensity import _HALF_LOG_2PI, LogDensity, _halfnormal_log, _normal
from models.hierarchical.psis import psis

#: Rows of g per vectorised inner solve (bounds memory: rows x cells floats per temporary).
CHUNK = 250
#: Newton steps at most, their tolerance (max |step|), and the largest step on the logit scale.
NEWTON_ITER = 60
NEWTON_TOL = 1e-8
MAX_STEP = 2.0
#: Finite-difference step on g (unconstrained, O(1)); the inner solve is converged to ~1e-10.
FD_STEP = 1e-4
#: Candidates of `NestedLaplace.draw_locals` in antithetic pairs (z, -z).
ANTITHETIC = True


class NestedLaplace:
    """Laplace marginal of the globals of `ld`'s model, and conditional Gaussian draws of its locals."""

    def __init__(self, ld: LogDensity) -> None:
        self.ld = ld
        d = ld.design
        order = np.argsort(d.cell_creative, kind="stable")
        self.cell_c = d.cell_creative[order]
        self.y = d.cell_conversions[order].astype(float)
        self.n = d.cell_impressions[order].astype(float)
        self.e = d.cell_exposure[order]
        with np.errstate(divide="ignore"):
            self.log_f = np.log(d.cell_delay[order])
            self.log_1mf = np.log1p(-d.cell_delay[order])
        self.one_m_f = 1.0 - d.cell_delay[order]
        self.n_y = self.n - self.y
        self.y_log_f = np.where(self.y > 0, self.y * self.log_f, 0.0)
        self.fatigue = ld.fatigue != "none"
        n_cr = ld.n_creatives
        self.starts = np.searchsorted(self.cell_c, np.arange(n_cr))
        self.has_cells = np.bincount(self.cell_c, minlength=n_cr) > 0
        self.all_have_cells = bool(self.has_cells.all())
        self.starts_with_cells = self.starts[self.has_cells]
        self.portfolio = ld.n_campaigns > 1
        self.camp_starts = np.array([s.start for s in d.slices])
        self.camp_of = d.campaign_of
        self.names = ["intercept_mean"] + (["campaign_sd_log__"] if self.portfolio else [])
        self.names += ["organic_coef", "creative_sd_log__"] + (["fatigue_log__"] if ld.fatigue != "none" else [])
        self.dim = len(self.names)
        self.n_blocks = ld.n_campaigns if self.portfolio else n_cr
        # the block of each column of `ld`'s parameter vector (-1: a global), for `merge`
        block_of = np.full(ld.dim, -1)
        owner = self.camp_of if self.portfolio else np.arange(n_cr)
        block_of[ld.slices["creative_z"]] = owner[ld._idx_nc]  # type: ignore[attr-defined]
        block_of[ld.slices["creative_logit"]] = owner[ld._idx_c]  # type: ignore[attr-defined]
        if self.portfolio:
            block_of[ld.slices["campaign_z"]] = np.arange(ld.n_campaigns)
        self.block_of_column = block_of

    # ------------------------------------------------------------------ pieces
    def _per_creative(self, x: np.ndarray) -> np.ndarray:
        """Sum over each creative's cells of x (S, cells) -> (S, n)."""
        if self.all_have_cells:
            return np.add.reduceat(x, self.starts, axis=1)
        out = np.zeros((x.shape[0], self.has_cells.size))
        if self.starts_with_cells.size:
            out[:, self.has_cells] = np.add.reduceat(x, self.starts_with_cells, axis=1)
        return out

    def _per_campaign(self, x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, self.camp_starts, axis=1)

    def _globals(self, g: np.ndarray) -> dict[str, np.ndarray]:
        """Named columns of g (S, dim), each (S, 1), on the natural scale where the model uses it."""
        p = {name: g[:, i : i + 1] for i, name in enumerate(self.names)}
        out = {"mu": p["intercept_mean"], "beta": p["organic_coef"], "sigma": np.exp(p["creative_sd_log__"])}
        out["tau"] = np.exp(p["campaign_sd_log__"]) if self.portfolio else np.ones_like(out["mu"])
        out["phi"] = np.exp(p["fatigue_log__"]) if "fatigue_log__" in p else np.zeros_like(out["mu"])
        return out

    def _prior_g(self, g: np.ndarray) -> np.ndarray:
        pr = self.ld._pr  # type: ignore[attr-defined]  # set in LogDensity.__post_init__
        lp = _normal(g[:, :1], pr["intercept_mu"], pr["intercept_sd"])
        i = 1
        if self.portfolio:
            lp = lp + _halfnormal_log(g[:, i], pr["campaign_sd"])
            i += 1
        lp = lp + _normal(g[:, i : i + 1], pr["organic_mu"], pr["organic_sd"])
        lp = lp + _halfnormal_log(g[:, i + 1], pr["creative_sd"])
        if self.ld.fatigue != "none":
            lp = lp + _halfnormal_log(g[:, i + 2], pr["fatigue_sd"])
        return lp

    def _lik(self, logit: np.ndarray, phi: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
        """Per-creative log likelihood (S, n) for order 0; for order 1 its first and minus second derivative."""
        eta = logit[:, self.cell_c]
        if self.fatigue:
            eta = eta - phi * self.e
        if order == 0:
            if eta.size and (eta.min() < -700.0 or eta.max() > 700.0):
                # far from any mode (an optimiser's trial step): the overflow-safe form
                with np.errstate(divide="ignore", invalid="ignore"):
                    log_sig = -np.logaddexp(0.0, -eta)
                    log_1m = np.logaddexp(0.0, self.log_1mf + eta) - np.logaddexp(0.0, eta)
                    return (self._per_creative(self.y_log_f + self.y * log_sig + self.n_y * log_1m),)
            # with u = exp(-eta): y log(F sigmoid) + (n - y) log(1 - F sigmoid)
            #   = y log F + (n - y) log(1 - F + u) - n log(1 + u); one exp, one log1p and one log, in place
            # (~5x faster than three logaddexp: the draws' stage is most of a large model's time)
            u = np.exp(-eta)
            n_log1p_u = np.log1p(u)
            n_log1p_u *= self.n
            u += self.one_m_f
            with np.errstate(divide="ignore"):
                np.log(u, out=u)  # -inf only where F = 1 and u underflows: excluded by the range check above
            u *= self.n_y
            u -= n_log1p_u
            u += self.y_log_f
            return (self._per_creative(u),)
        # one exp for both sigmoids: s = sigmoid(eta), sa = sigmoid(log(1 - F) + eta) = a / (a + e^-eta)
        # 1 - s = u s and 1 - sa = u r with r = 1 / (1 - F + u); eta clipped so that u stays finite (the
        # sigmoids are saturated there: the derivatives do not change)
        u = np.exp(-np.clip(eta, -700.0, 700.0))
        s = np.reciprocal(u + 1.0)
        r = np.reciprocal(u + self.one_m_f)
        us = u * s
        sa = r * self.one_m_f
        d1 = self.y * us + self.n_y * (sa - s)
        d2 = self.n * s * us - self.n_y * sa * (u * r)  # minus the second derivative
        return self._per_creative(d1), self._per_creative(d2)

    def _block_joint(self, gl: dict, b: np.ndarray | None, logit: np.ndarray) -> np.ndarray:
        """log p(y_b, x_b | g) per block (S, n_blocks), constants of the binomial coefficients excluded."""
        x = self.ld.design.organic_x
        base = gl["mu"] if b is None else b[:, self.camp_of]
        per_c = self._lik(logit, gl["phi"], 0)[0]
        per_c = per_c - 0.5 * ((logit - base - gl["beta"] * x) / gl["sigma"]) ** 2 - np.log(gl["sigma"]) - _HALF_LOG_2PI
        if b is None:
            return per_c
        prior_b = -0.5 * ((b - gl["mu"]) / gl["tau"]) ** 2 - np.log(gl["tau"]) - _HALF_LOG_2PI
        return prior_b + self._per_campaign(per_c)

    def _solve(
        self, g: np.ndarray, start: tuple | None
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None]:
        """Conditional modes (b (S, K) or None, l (S, n)), the creatives' precisions P_cc (S, n) and the
        campaigns' Schur complements S_k (S, K) or None, by Newton steps on all blocks at once."""
        gl = self._globals(g)
        x = self.ld.design.organic_x
        rows = g.shape[0]
        if start is None:
            b = np.repeat(gl["mu"], self.ld.n_campaigns, axis=1) if self.portfolio else None
            logit = (gl["mu"] + gl["beta"] * x).copy()
        else:
            # the start's modes moved by the linear response to the new prior mean (a creative's share of
            # prior precision, w = (1/sigma^2) / P_cc, follows it): Newton then needs a few steps
            b0, l0, mean0, w = start
            shift = gl["mu"] - mean0[0] if b0 is None else 0.0
            logit = l0 + w * (shift + (gl["beta"] - mean0[1]) * x)
            b = None if b0 is None else np.broadcast_to(b0 + (gl["mu"] - mean0[0]), (rows, b0.shape[-1])).copy()
            logit = logit + (0.0 if b is None else w * (b - b0)[:, self.camp_of])
        inv_s2 = 1.0 / gl["sigma"] ** 2
        for _ in range(NEWTON_ITER):
            base = gl["mu"] if b is None else b[:, self.camp_of]
            resid = logit - base - gl["beta"] * x
            d1, lc = self._lik(logit, gl["phi"], 1)
            grad_c = d1 - resid * inv_s2
            p_cc = inv_s2 + lc
            if b is None:
                step_c, step_b = grad_c / p_cc, None
            else:
                grad_b = -(b - gl["mu"]) / gl["tau"] ** 2 + self._per_campaign(resid) * inv_s2
                schur = 1.0 / gl["tau"] ** 2 + self._per_campaign(lc / (1.0 + lc / inv_s2))
                step_b = (grad_b + self._per_campaign(grad_c / p_cc) * inv_s2) / schur
                step_c = (grad_c + step_b[:, self.camp_of] * inv_s2) / p_cc
            big = np.max(np.abs(step_c), axis=1, keepdims=True)
            if step_b is not None:
                big = np.maximum(big, np.max(np.abs(step_b), axis=1, keepdims=True))
            scale = np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))
            logit = logit + scale * step_c
            if b is not None and step_b is not None:
                b = b + scale * step_b
            if float(big.max()) < NEWTON_TOL:
                break
        _, lc = self._lik(logit, gl["phi"], 1)
        p_cc = inv_s2 + lc
        schur = None if b is None else 1.0 / gl["tau"] ** 2 + self._per_campaign(lc / (1.0 + lc / inv_s2))
        return b, logit, p_cc, schur

    def _log_det(self, p_cc: np.ndarray, schur: np.ndarray | None) -> np.ndarray:
        """log det of each block's precision (S, n_blocks)."""
        if schur is None:
            return np.log(p_cc)
        return self._per_campaign(np.log(p_cc)) + np.log(schur)

    def _block_size(self) -> np.ndarray:
        if not self.portfolio:
            return np.ones(self.n_blocks)
        return np.diff(np.append(self.camp_starts, self.ld.n_creatives)) + 1.0

    # ------------------------------------------------------------------ API
    def log_marginal(self, g: np.ndarray, start=None, keep: list | None = None) -> np.ndarray:
        """log p~(g | y) up to a constant, g (S, dim) -> (S,); with `keep`, each chunk's conditional solution
        is appended to it (for `draw_locals`, which then need not solve again)."""
        g = np.atleast_2d(np.asarray(g, float))
        out = np.empty(g.shape[0])
        for lo in range(0, g.shape[0], CHUNK):
            gi = g[lo : lo + CHUNK]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                b, logit, p_cc, schur = self._solve(gi, start)
                if keep is not None:
                    keep.append((b, logit, p_cc, schur))
                joint = self._block_joint(self._globals(gi), b, logit)
                lap = joint + self._block_size() * _HALF_LOG_2PI - 0.5 * self._log_det(p_cc, schur)
                val = self._prior_g(gi) + lap.sum(axis=1)
            out[lo : lo + CHUNK] = np.where(np.isfinite(val), val, -np.inf)
        return out

    def draw_locals(
        self, g: np.ndarray, rng: np.random.Generator, start=None, solved: list | None = None, inner: int = 1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draws of the locals given each row of g, as full parameter vectors of `ld` (S, ld.dim); the check's
        log ratios per block (inner, S, n_blocks); and each block's log correction of the Laplace marginal
        (S, n_blocks).

        For each row and block, `inner` candidates are drawn from the conditional Gaussian and one is kept
        with probability proportional to its ratio exp(check) (sampling-importance-resampling within the
        block; Gumbel-max), and ``log mean exp(check)`` over the candidates is an unbiased estimate of the
        ratio of the block's exact marginal likelihood to its Laplace approximation. Added to the globals' log
        weights, it makes the whole draw a consistent importance sample of the exact posterior (importance
        sampling squared: Tran, Scharth, Pitt and Kohn 2014), whatever the conditional's skew. With
        ``inner=1`` the candidate is kept as drawn (the conditional Gaussian itself)."""
        ld = self.ld
        rows_all = g.shape[0]
        theta = np.empty((rows_all, ld.dim))
        check = np.empty((inner, rows_all, self.n_blocks))
        log_corr = np.empty((rows_all, self.n_blocks))
        x = ld.design.organic_x
        sl = ld.slices
        solved = solved or [None] * len(range(0, rows_all, CHUNK))
        for lo, sol in zip(range(0, rows_all, CHUNK), solved, strict=True):
            gi = g[lo : lo + CHUNK]
            rows = gi.shape[0]
            gl = self._globals(gi)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                b_hat, l_hat, p_cc, schur = self._solve(gi, start) if sol is None else sol
                joint_hat = self._block_joint(gl, b_hat, l_hat)
                best = np.full((rows, self.n_blocks), -np.inf)
                lse = np.full((rows, self.n_blocks), -np.inf)
                logit, b = l_hat, b_hat
                z: tuple = ()
                for m in range(inner):
                    # antithetic pairs (z, -z): each candidate is still drawn from the Gaussian, which is all
                    # the unbiasedness of the correction and the resampling need, and the pair's mean ratio
                    # cancels the skew's odd terms (measured: a fraction of the correction's noise)
                    z = self._normals(b_hat, l_hat, rng) if m % 2 == 0 or not ANTITHETIC else tuple(-v for v in z)
                    logit_m, b_m, half_sq = self._conditional_draw(gl, b_hat, l_hat, p_cc, schur, z)
                    check_m = self._block_joint(gl, b_m, logit_m) - joint_hat + half_sq
                    check[m, lo : lo + rows] = check_m
                    lse = np.logaddexp(lse, check_m)
                    if inner == 1:
                        logit, b = logit_m, b_m
                        break
                    # Gumbel-max: the candidate with the largest check + Gumbel noise is a draw with
                    # probabilities proportional to exp(check); a non-finite check never wins
                    key = check_m + rng.gumbel(size=check_m.shape)
                    keep = (key > best) | (m == 0)
                    best = np.where(keep & np.isfinite(key), key, best)
                    logit = np.where(keep[:, self.camp_of] if self.portfolio else keep, logit_m, logit)
                    b = b_m if b_m is None or m == 0 else np.where(keep, b_m, b)
                log_corr[lo : lo + rows] = lse - np.log(inner)
                theta[lo : lo + rows] = self._theta(gi, gl, b, logit, x, sl)
        return theta, check, log_corr

    def merge(
        self,
        a: tuple[np.ndarray, np.ndarray, int],
        b: tuple[np.ndarray, np.ndarray, int],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Two rounds of `draw_locals` on the same globals as one with all their candidates: each round is
        (theta (S, dim), log correction (S, n_blocks), candidates); per row and block the kept candidate
        comes from round b with probability (its candidates' summed ratio) / (both rounds'), and the log
        correction is that of the pooled mean."""
        theta_a, corr_a, m_a = a
        theta_b, corr_b, m_b = b
        with np.errstate(invalid="ignore"):
            la, lb = np.log(m_a) + corr_a, np.log(m_b) + corr_b
            pooled = np.logaddexp(la, lb)
            take_b = np.log(rng.uniform(size=la.shape)) < lb - pooled
        local = self.block_of_column >= 0
        theta = theta_a.copy()
        theta[:, local] = np.where(take_b[:, self.block_of_column[local]], theta_b[:, local], theta_a[:, local])
        return theta, pooled - np.log(m_a + m_b), m_a + m_b

    @staticmethod
    def _normals(b_hat, l_hat: np.ndarray, rng: np.random.Generator) -> tuple:
        """Standard normals for one conditional draw: (creatives,) or (creatives, campaigns), each (S, .)."""
        z_c = rng.standard_normal(l_hat.shape)
        return (z_c,) if b_hat is None else (z_c, rng.standard_normal(b_hat.shape))

    def _conditional_draw(self, gl: dict, b_hat, l_hat, p_cc, schur, z: tuple):
        """One draw of the locals from their conditional Gaussians given standard normals `z` (`_normals`):
        (logit (S, n), b (S, K) or None, and minus the Gaussian's log density ratio to its mode, 0.5 |z|^2 per
        block (S, n_blocks))."""
        z_c = z[0]
        half_sq = 0.5 * z_c**2
        if b_hat is None or schur is None:
            return l_hat + z_c / np.sqrt(p_cc), None, half_sq
        z_b = z[1]
        b = b_hat + z_b / np.sqrt(schur)
        shift = (b - b_hat)[:, self.camp_of] * (1.0 / gl["sigma"] ** 2) / p_cc
        return l_hat + shift + z_c / np.sqrt(p_cc), b, 0.5 * z_b**2 + self._per_campaign(half_sq)

    def _theta(self, gi: np.ndarray, gl: dict, b, logit: np.ndarray, x: np.ndarray, sl: dict) -> np.ndarray:
        """Globals and locals back in the coding of `ld` (non-centred where it is: z = (l - mean) / sigma)."""
        ld = self.ld
        base = gl["mu"] if b is None else b[:, self.camp_of]
        mean = base + gl["beta"] * x
        t = np.zeros((gi.shape[0], ld.dim))
        for i, name in enumerate(self.names):
            t[:, sl[name]] = gi[:, i : i + 1]
        nc, c = ld._idx_nc, ld._idx_c  # type: ignore[attr-defined]
        t[:, sl["creative_z"]] = (logit[:, nc] - mean[:, nc]) / gl["sigma"]
        t[:, sl["creative_logit"]] = logit[:, c]
        if b is not None:
            t[:, sl["campaign_z"]] = (b - gl["mu"]) / gl["tau"]
        return t

    def warm_start(self, g: np.ndarray) -> tuple:
        """The conditional modes at one point g (dim,) and what `_solve` needs to move them to other g."""
        b, logit, p_cc, _ = self._solve(g[None, :], None)
        gl = self._globals(g[None, :])
        w = (1.0 / gl["sigma"] ** 2) / p_cc
        return b, logit, (float(gl["mu"][0, 0]), float(gl["beta"][0, 0])), w

    def start(self) -> np.ndarray:
        """A start for the globals: the pooled delay-corrected rate, small spreads."""
        exposure = float(np.sum(self.n * np.exp(self.log_f)))
        rate = (float(self.y.sum()) + 0.5) / (exposure + 1.0) if exposure > 0 else 1.5e-4
        g = np.zeros(self.dim)
        g[0] = np.log(rate) - np.log1p(-rate)
        for i, name in enumerate(self.names):
            if name.endswith("_log__"):
                g[i] = np.log(0.1 if name == "fatigue_log__" else 0.2)
        return g

    def mode(self) -> tuple[np.ndarray, int, str | None]:
        """The mode of log p~(g | y), by L-BFGS-B with a batched central-difference gradient."""
        eye = np.eye(self.dim) * FD_STEP

        def f(g: np.ndarray) -> tuple[float, np.ndarray]:
            vals = self.log_marginal(np.vstack([g, g + eye, g - eye]))
            if not np.all(np.isfinite(vals)):
                return 1e300, np.zeros_like(g)
            return -float(vals[0]), -(vals[1 : 1 + self.dim] - vals[1 + self.dim :]) / (2 * FD_STEP)

        res = minimize(f, self.start(), jac=True, method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-6})
        problem = None
        if not np.all(np.isfinite(res.x)) or not res.fun < 1e299:
            problem = f"no posterior mode of the globals found ({res.message})"
        return res.x, int(res.nit), problem

    def neg_hessian(self, g: np.ndarray) -> np.ndarray:
        """Minus the Hessian of log p~ at g by central differences of function values (one batch)."""
        h, dim = 10 * FD_STEP, self.dim
        pts, index = [g], {}
        for i in range(dim):
            for j in range(i, dim):
                for si in (1, -1):
                    for sj in (1, -1):
                        p = g.copy()
                        p[i] += si * h
                        p[j] += sj * h
                        index[(i, j, si, sj)] = len(pts)
                        pts.append(p)
        v = self.log_marginal(np.vstack(pts))
        hess = np.empty((dim, dim))
        for i in range(dim):
            for j in range(i, dim):
                a = v[index[(i, j, 1, 1)]] - v[index[(i, j, 1, -1)]] - v[index[(i, j, -1, 1)]]
                hess[i, j] = hess[j, i] = (a + v[index[(i, j, -1, -1)]]) / (4 * h * h)
        return -hess


def conditional_k(check: np.ndarray) -> np.ndarray:
    """Pareto k of each block's check ratios (S, n_blocks) -> (n_blocks,)."""
    ks = np.zeros(check.shape[1])
    for j in range(check.shape[1]):
        col = check[:, j]
        # an exactly Gaussian conditional (a creative without data) gives equal ratios: k 0, not undefined
        if np.all(np.isfinite(col)) and np.ptp(col) < 1e-8:
            continue
        ks[j] = psis(col)[1]
    return ks

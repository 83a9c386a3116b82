"""The hierarchical model's log density and its analytic gradient in numpy, on PyMC's unconstrained space.

This is a second coding of the model of `models.hierarchical.graph.build_pymc_model` (which stays the model's
definition): the same parameters, in the same unconstrained form PyMC samples (scale parameters as their
logs, with the log-Jacobian added), and the same normalising constants, so that `LogDensity.logp` equals
``build_pymc_model(...).compile_logp()`` exactly (tests/models/test_hierarchical_fast.py checks it at random
points). The fast path (`models.hierarchical.laplace`) optimises and importance-samples it without pymc.

Parameter vector, in this order (each block present only when the model has it)::

    intercept_mean                     1
    campaign_sd_log__                  1   portfolio only
    campaign_z                         K   portfolio only (non-centred campaign intercepts)
    organic_coef                       1
    creative_sd_log__                  1
    creative_z                         n_nc (non-centred effects)
    creative_logit                     n_c  (centred effects; see `_centred_mask`)
    fatigue_log__                      1   fatigue != "none"

Log density (exact, with constants): Normal and HalfNormal priors as PyMC writes them, the log-Jacobian
``log sd`` of each log-transformed scale, and ``Binomial(n, p * F)`` per cell with its binomial coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, gammaln

from models.hierarchical.design import PRIOR, _Design

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_LOG_2 = np.log(2.0)


def _normal(x: np.ndarray, mu, sd) -> np.ndarray:
    """log Normal(x; mu, sd), summed over the last axis (x: (..., m))."""
    r = (x - mu) / sd
    return np.sum(-0.5 * r * r - np.log(sd) - _HALF_LOG_2PI, axis=-1)


def _halfnormal_log(y: np.ndarray, sd: float) -> np.ndarray:
    """log HalfNormal(exp(y); sd) + y (the log-Jacobian of the log transform); y: (...,)."""
    s = np.exp(y)
    return _LOG_2 - _HALF_LOG_2PI - np.log(sd) - 0.5 * (s / sd) ** 2 + y


@dataclass(frozen=True)
class LogDensity:
    """Log density of `design`'s model on the unconstrained space (see the module docstring).

    Parameters
    ----------
    design : the flattened data
    fatigue : "none", "days" or "impressions" (adds ``fatigue_log__`` unless "none")
    prior : overrides of `PRIOR`
    centred : (n,) bool, which creatives' effects are centred (``creative_logit``); None for none
    """

    design: _Design
    fatigue: str = "none"
    prior: dict | None = None
    centred: np.ndarray | None = None
    #: the parameter vector's length and its named blocks (set in __post_init__)
    dim: int = field(init=False)
    slices: dict[str, slice] = field(init=False)
    # set in __post_init__ from the inputs: the prior, the constant of the binomial terms, log F and log(1 - F)
    # of each cell's delay, the indices of the non-centred and centred creatives
    _pr: dict = field(init=False, repr=False, compare=False)
    _const: float = field(init=False, repr=False, compare=False)
    _log_f: np.ndarray = field(init=False, repr=False, compare=False)
    _log_1mf: np.ndarray = field(init=False, repr=False, compare=False)
    _idx_nc: np.ndarray = field(init=False, repr=False, compare=False)
    _idx_c: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.design.creative_labels)
        cen = np.zeros(n, bool) if self.centred is None else np.asarray(self.centred, bool)
        object.__setattr__(self, "centred", cen)
        object.__setattr__(self, "_pr", {**PRIOR, **(self.prior or {})})
        # binomial coefficients and log(1 - F) do not depend on the parameters: computed once
        d = self.design
        n_i, y_i = d.cell_impressions.astype(float), d.cell_conversions.astype(float)
        object.__setattr__(self, "_const", float(np.sum(gammaln(n_i + 1) - gammaln(y_i + 1) - gammaln(n_i - y_i + 1))))
        with np.errstate(divide="ignore"):
            object.__setattr__(self, "_log_f", np.log(d.cell_delay))
            object.__setattr__(self, "_log_1mf", np.log1p(-d.cell_delay))  # -inf where F = 1
        blocks: list[tuple[str, int]] = [("intercept_mean", 1)]
        if self.n_campaigns > 1:
            blocks += [("campaign_sd_log__", 1), ("campaign_z", self.n_campaigns)]
        blocks += [("organic_coef", 1), ("creative_sd_log__", 1)]
        blocks += [("creative_z", int((~cen).sum())), ("creative_logit", int(cen.sum()))]
        if self.fatigue != "none":
            blocks.append(("fatigue_log__", 1))
        slices, start = {}, 0
        for name, size in blocks:
            slices[name] = slice(start, start + size)
            start += size
        object.__setattr__(self, "slices", slices)
        object.__setattr__(self, "dim", start)
        object.__setattr__(self, "_idx_nc", np.flatnonzero(~cen))
        object.__setattr__(self, "_idx_c", np.flatnonzero(cen))

    @property
    def n_campaigns(self) -> int:
        return len(self.design.campaign_labels)

    @property
    def n_creatives(self) -> int:
        return len(self.design.creative_labels)

    # ------------------------------------------------------------------ the model's pieces
    def _unpack(self, theta: np.ndarray) -> dict:
        """Named blocks of theta (..., dim), each (..., size)."""
        return {k: theta[..., s] for k, s in self.slices.items()}

    def _logits(self, p: dict) -> tuple[np.ndarray, np.ndarray]:
        """(base mean of each creative (..., n), creative logit before fatigue (..., n))."""
        d = self.design
        mu = p["intercept_mean"]  # (..., 1)
        if self.n_campaigns > 1:
            tau = np.exp(p["campaign_sd_log__"])
            intercept = mu + tau * p["campaign_z"]  # (..., K)
            base = intercept[..., d.campaign_of]
        else:
            base = np.broadcast_to(mu, mu.shape[:-1] + (self.n_creatives,))
        mean = base + p["organic_coef"] * d.organic_x
        sigma = np.exp(p["creative_sd_log__"])
        logit = np.empty_like(mean)
        logit[..., self._idx_nc] = mean[..., self._idx_nc] + sigma * p["creative_z"]
        logit[..., self._idx_c] = p["creative_logit"]
        return mean, logit

    def current_rate(self, theta: np.ndarray) -> np.ndarray:
        """Each creative's rate on its campaign's latest day (the model's ``rate``), shape (..., n)."""
        p = self._unpack(np.asarray(theta, float))
        _, logit = self._logits(p)
        if self.fatigue != "none":
            logit = logit - np.exp(p["fatigue_log__"]) * self.design.current_exposure
        return expit(logit)

    def logp(self, theta: np.ndarray) -> np.ndarray:
        """The log density at theta, shape (dim,) -> float or (S, dim) -> (S,)."""
        theta = np.asarray(theta, float)
        return self._logp_grad(theta, grad=False)[0]

    def logp_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """(log density, its gradient) at one point theta of shape (dim,)."""
        lp, g = self._logp_grad(np.asarray(theta, float)[None, :], grad=True)
        assert g is not None  # grad=True always returns the gradient
        return float(lp[0]), g[0]

    def _logp_grad(self, theta: np.ndarray, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        single = theta.ndim == 1
        th = theta[None, :] if single else theta
        pr, d = self._pr, self.design
        p = self._unpack(th)
        mean, logit = self._logits(p)
        cells = d.cell_creative
        eta = logit[:, cells]
        phi = None
        if self.fatigue != "none":
            phi = np.exp(p["fatigue_log__"])  # (S, 1)
            eta = eta - phi * d.cell_exposure
        y, n = d.cell_conversions.astype(float), d.cell_impressions.astype(float)
        # log p = log F + log sigmoid(eta); log(1 - F sigmoid(eta)) = log(1 + (1-F) e^eta) - log(1 + e^eta)
        log_sig = -np.logaddexp(0.0, -eta)
        log_1m = np.logaddexp(0.0, self._log_1mf + eta) - np.logaddexp(0.0, eta)
        lp = self._const + np.sum(y * (self._log_f + log_sig) + (n - y) * log_1m, axis=-1)
        # priors
        lp = lp + _normal(p["intercept_mean"], pr["intercept_mu"], pr["intercept_sd"])
        if self.n_campaigns > 1:
            lp = lp + _halfnormal_log(p["campaign_sd_log__"][:, 0], pr["campaign_sd"])
            lp = lp + _normal(p["campaign_z"], 0.0, 1.0)
        lp = lp + _normal(p["organic_coef"], pr["organic_mu"], pr["organic_sd"])
        lp = lp + _halfnormal_log(p["creative_sd_log__"][:, 0], pr["creative_sd"])
        sigma = np.exp(p["creative_sd_log__"])  # (S, 1)
        lp = lp + _normal(p["creative_z"], 0.0, 1.0)
        if self._idx_c.size:
            lp = lp + _normal(p["creative_logit"], np.take(mean, self._idx_c, axis=1), sigma)
        if phi is not None:
            lp = lp + _halfnormal_log(p["fatigue_log__"][:, 0], pr["fatigue_sd"])
        if not grad:
            return (lp[0] if single else lp), None

        # ---- gradient (one row per point), by the chain rule through eta and the creative logits
        g = np.zeros_like(th)
        s = self.slices
        d_eta = y * (1.0 - expit(eta)) + (n - y) * (expit(self._log_1mf + eta) - expit(eta))  # (S, cells)
        d_logit = np.zeros_like(logit)
        for row in range(th.shape[0]):
            d_logit[row] = np.bincount(cells, weights=d_eta[row], minlength=self.n_creatives)
        if phi is not None:
            g[:, s["fatigue_log__"]] = (
                -phi * np.sum(d_eta * d.cell_exposure, axis=-1, keepdims=True) + 1.0 - (phi / pr["fatigue_sd"]) ** 2
            )
        # d lp / d mean (creative means): through the non-centred logits, and the centred effects' prior
        d_mean = np.zeros_like(mean)
        nc, c = self._idx_nc, self._idx_c
        d_mean[:, nc] = d_logit[:, nc]
        z = p["creative_z"]
        g[:, s["creative_z"]] = d_logit[:, nc] * sigma - z
        g_log_sigma = np.sum(d_logit[:, nc] * z, axis=-1) * sigma[:, 0]
        if c.size:
            r = (p["creative_logit"] - mean[:, c]) / sigma
            g[:, s["creative_logit"]] = d_logit[:, c] - r / sigma
            d_mean[:, c] = r / sigma
            g_log_sigma = g_log_sigma + np.sum(r * r - 1.0, axis=-1)
        g[:, s["creative_sd_log__"]] = (g_log_sigma + 1.0 - (sigma[:, 0] / pr["creative_sd"]) ** 2)[:, None]
        g[:, s["organic_coef"]] = (
            np.sum(d_mean * d.organic_x, axis=-1) - (p["organic_coef"][:, 0] - pr["organic_mu"]) / pr["organic_sd"] ** 2
        )[:, None]
        d_base = d_mean
        g_mu = -(p["intercept_mean"][:, 0] - pr["intercept_mu"]) / pr["intercept_sd"] ** 2
        if self.n_campaigns > 1:
            d_int = np.zeros((th.shape[0], self.n_campaigns))
            for row in range(th.shape[0]):
                d_int[row] = np.bincount(d.campaign_of, weights=d_base[row], minlength=self.n_campaigns)
            tau = np.exp(p["campaign_sd_log__"])  # (S, 1)
            cz = p["campaign_z"]
            g[:, s["campaign_z"]] = d_int * tau - cz
            g[:, s["campaign_sd_log__"]] = (
                np.sum(d_int * cz, axis=-1) * tau[:, 0] + 1.0 - (tau[:, 0] / pr["campaign_sd"]) ** 2
            )[:, None]
            g_mu = g_mu + d_int.sum(axis=-1)
        else:
            g_mu = g_mu + d_base.sum(axis=-1)
        g[:, s["intercept_mean"]] = g_mu[:, None]
        return (lp[0] if single else lp), (g[0] if single else g)

    def named(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Draws theta (S, dim) as the model's variables on their natural scale (as PyMC's posterior names
        them): intercept_mean, organic_coef, creative_sd (S,), rate (S, n), campaign_sd / fatigue when present."""
        p = self._unpack(np.asarray(theta, float))
        out = {
            "intercept_mean": p["intercept_mean"][:, 0],
            "organic_coef": p["organic_coef"][:, 0],
            "creative_sd": np.exp(p["creative_sd_log__"][:, 0]),
            "rate": self.current_rate(theta),
        }
        if "campaign_sd_log__" in p:
            out["campaign_sd"] = np.exp(p["campaign_sd_log__"][:, 0])
        if "fatigue_log__" in p:
            out["fatigue"] = np.exp(p["fatigue_log__"][:, 0])
        return out

    def pymc_point(self, theta: np.ndarray) -> dict:
        """theta as the point dict of PyMC's ``compile_logp`` (value variable names)."""
        p = self._unpack(np.asarray(theta, float))
        out = {}
        for name, v in p.items():
            if v.size == 0:
                continue
            out[name] = float(v[0]) if name in ("intercept_mean", "organic_coef") or name.endswith("_log__") else v
        return out

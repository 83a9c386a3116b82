"""Synthetic data from the model's generative story: prior predictive rates and simulated campaigns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.hierarchical.design import DEFAULT_DELAY_CDF, PRIOR, _check_cdf, _exposure, standardise_organic
from models.observations import DailyObservations


def prior_predictive_rates(
    n_creatives: int = 5, n_samples: int = 2000, rng: np.random.Generator | None = None, prior: dict | None = None
) -> np.ndarray:
    """Prior draws of creative conversion rates per impression, shape (n_samples, n_creatives).

    Drawn with numpy from the priors in `PRIOR` (the same equations as `build_pymc_model`; organic x ~ N(0, 1),
    no fatigue), so the check needs no compilation.
    """
    rng = np.random.default_rng() if rng is None else rng
    pr = {**PRIOR, **(prior or {})}
    mu = rng.normal(pr["intercept_mu"], pr["intercept_sd"], size=(n_samples, 1))
    beta = rng.normal(0.0, pr["organic_sd"], size=(n_samples, 1))
    sigma = np.abs(rng.normal(0.0, pr["creative_sd"], size=(n_samples, 1)))
    x = rng.normal(size=(n_samples, n_creatives))
    z = rng.normal(size=(n_samples, n_creatives))
    eta = mu + beta * x + sigma * z
    return 1.0 / (1.0 + np.exp(-eta))


# ---------------------------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class SimulatedCampaign:
    """A campaign drawn from the model's generative story (for tests, SBC and benchmarks).

    Attributes
    ----------
    daily : the observed data (conversions thinned by the delay CDF)
    organic_rate : (n_creatives,) engagement rates per view
    truth : dict with "intercept", "organic_coef", "creative_sd", "fatigue" (floats) and "rate"
        ((n_creatives,) current rate per impression, latest day with fatigue), "daily_rate"
        ((n_days, n_creatives)).
    """

    daily: DailyObservations
    organic_rate: np.ndarray
    truth: dict


def simulate_campaign(
    rng: np.random.Generator,
    n_creatives: int = 5,
    n_days: int = 30,
    impressions_per_day: float = 8000.0,
    cpm: float = 8.0,
    delay_cdf: Sequence[float] | None = None,
    fatigue: str = "none",
    intercept: float | None = None,
    organic_coef: float | None = None,
    creative_sd: float | None = None,
    fatigue_rate: float | None = None,
    start: str = "2026-01-01",
    organic: tuple[np.ndarray, np.ndarray] | None = None,
) -> SimulatedCampaign:
    """Draw one campaign; parameters left None are drawn from `PRIOR` (as SBC needs).

    Impressions per creative and day vary x0.5..x1.5 around `impressions_per_day`; spend follows `cpm`.
    Organic engagement rates are log-normal around 5% per view; the world's logit uses their
    standardised log exactly as the model does (`standardise_organic`). ``organic``: (rates, standardised
    values) given instead, for portfolios, where the model standardises over all campaigns.
    """
    pr = PRIOR
    mu = rng.normal(pr["intercept_mu"], pr["intercept_sd"]) if intercept is None else intercept
    beta = rng.normal(0.0, pr["organic_sd"]) if organic_coef is None else organic_coef
    sigma = abs(rng.normal(0.0, pr["creative_sd"])) if creative_sd is None else creative_sd
    phi = 0.0
    if fatigue != "none":
        phi = abs(rng.normal(0.0, pr["fatigue_sd"])) if fatigue_rate is None else fatigue_rate
    if organic is None:
        organic_rate = np.exp(np.log(0.05) + 0.5 * rng.normal(size=n_creatives))
        x = standardise_organic([organic_rate], [n_creatives])[0]
    else:
        organic_rate, x = organic
    z = rng.normal(size=n_creatives)
    base = mu + beta * x + sigma * z
    imps = np.rint(impressions_per_day * rng.uniform(0.5, 1.5, size=(n_days, n_creatives)))
    spend = imps * cpm / 1000.0 * rng.uniform(0.9, 1.1, size=imps.shape)
    dates = np.datetime64(start, "D") + np.arange(n_days)
    probe = DailyObservations(tuple(f"cr{i}" for i in range(n_creatives)), dates, imps, imps * 0, imps * 0, spend)
    exposure = _exposure(probe, fatigue)
    logit = base[None, :] - phi * exposure
    p = 1.0 / (1.0 + np.exp(-logit))
    true_conv = rng.binomial(imps.astype(np.int64), p)
    cdf = _check_cdf(DEFAULT_DELAY_CDF if delay_cdf is None else delay_cdf)
    age = n_days - 1 - np.arange(n_days)
    f_age = np.where(age < cdf.size, cdf[np.minimum(age, cdf.size - 1)], 1.0)
    conv = rng.binomial(true_conv, f_age[:, None])
    clicks = rng.binomial(imps.astype(np.int64), 0.01)
    clicks = np.maximum(clicks, conv)
    daily = DailyObservations(probe.creative_ids, dates, imps, clicks, conv, spend)
    truth = {
        "intercept": float(mu),
        "organic_coef": float(beta),
        "creative_sd": float(sigma),
        "fatigue": float(phi),
        "rate": p[-1].copy(),
        "daily_rate": p,
        "true_conversions": true_conv,
    }
    return SimulatedCampaign(daily, organic_rate, truth)


def simulate_portfolio(
    rng: np.random.Generator,
    n_campaigns: int,
    n_creatives: int = 5,
    n_days: int = 14,
    pooled_organic: bool = False,
    **kwargs,
) -> tuple[list[SimulatedCampaign], dict]:
    """Draw a portfolio from the portfolio model's generative story: intercept_mean, campaign_sd,
    organic_coef and creative_sd once from `PRIOR`, each campaign's intercept
    ``intercept_mean + campaign_sd * z[k]``; the campaigns as `simulate_campaign` (``kwargs`` go there).
    With ``pooled_organic`` the organic rates are standardised over the whole portfolio, as the model does
    (what calibration needs); without, each campaign's on its own (the worlds of `nested_vs_nuts.py` as
    recorded in BENCHMARKS.md: both fits see the same data, so the comparison holds either way).
    Returns (campaigns, truth of the globals)."""
    pr = PRIOR
    truth = {
        "intercept_mean": float(rng.normal(pr["intercept_mu"], pr["intercept_sd"])),
        "campaign_sd": float(abs(rng.normal(0.0, pr["campaign_sd"]))),
        "organic_coef": float(rng.normal(0.0, pr["organic_sd"])),
        "creative_sd": float(abs(rng.normal(0.0, pr["creative_sd"]))),
    }
    intercepts = truth["intercept_mean"] + truth["campaign_sd"] * rng.normal(size=n_campaigns)
    organic: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n_campaigns
    if pooled_organic:
        rates = [np.exp(np.log(0.05) + 0.5 * rng.normal(size=n_creatives)) for _ in range(n_campaigns)]
        xs = standardise_organic(rates, [n_creatives] * n_campaigns)
        organic = list(zip(rates, xs))
    sims = [
        simulate_campaign(
            rng,
            n_creatives=n_creatives,
            n_days=n_days,
            intercept=float(b),
            organic_coef=truth["organic_coef"],
            creative_sd=truth["creative_sd"],
            organic=org,
            **kwargs,
        )
        for b, org in zip(intercepts, organic)
    ]
    return sims, truth

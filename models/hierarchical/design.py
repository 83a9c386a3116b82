"""Constants of the hierarchical model and its flattened inputs (`_Design`): cells, delay, exposure, organic x."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.choices import FATIGUE, METHODS, SAMPLERS  # noqa: F401 (re-exported to the model)
from models.delay import cdf_at, delay_ages
from models.errors import ModelError
from models.observations import DailyObservations

#: Geometric attribution delay over TikTok's 7-day click window: F(a) = 1 - 0.45**(a+1), F(6) = 1.
DEFAULT_DELAY_CDF: tuple[float, ...] = tuple(round(1.0 - 0.45 ** (a + 1), 4) for a in range(6)) + (1.0,)

#: Prior constants (logit scale); see the module docstring.
PRIOR = {
    "intercept_mu": -8.8,
    "intercept_sd": 1.0,
    "campaign_sd": 0.5,
    "organic_mu": 0.0,
    "organic_sd": 0.5,
    "creative_sd": 0.5,
    "fatigue_sd": 0.3,
}

#: Observed conversions from which a creative's effect is sampled centred (x5 for a campaign intercept),
#: in models of at least `CENTRED_MIN_CREATIVES` creatives. With a handful of creatives creative_sd is
#: weakly identified and may be near 0, where the centred form funnels whatever the data: measured on the
#: bundled example (5 creatives, 14 to 50 conversions), centring from 10 or from 50 conversions gave 4 to 9
#: divergences after the retry (gate failed); all non-centred gave R-hat 1.00 and none. In a 500-creative
#: portfolio centring from 10 conversions sampled in 34 s, all non-centred took 156 s.
CENTRED_MIN_CONVERSIONS = 10
CENTRED_MIN_CREATIVES = 20

#: Models (in creatives) for which nutpie adapts a low-rank mass matrix; diagonal outside. Measured: at 5
#: creatives the diagonal one mixes creative_sd better (20 simulated campaigns x 30 days, 2 x 2000 draws,
#: target_accept 0.99: 19 vs 18 pass the gate, median min ESS 783 vs 578); at 100 creatives low-rank
#: takes 15 vs 18 steps per draw with ~4x the ESS; at 500 its per-step cost makes it ~40x slower.
LOW_RANK_MIN_CREATIVES = 20
LOW_RANK_MAX_CREATIVES = 100

#: Exposure units of the fatigue term.
FATIGUE_DAYS_UNIT = 7.0
FATIGUE_IMPRESSIONS_UNIT = 100_000.0

#: Floor of the organic engagement rate before the log (a post with no engagement at all).
ORGANIC_FLOOR = 1e-4

#: Variables the summary shows and whose R-hat the gate checks (those present in the fit).
SUMMARY_VARS = ("intercept_mean", "campaign_sd", "organic_coef", "creative_sd", "fatigue", "rate")
#: target_accept of the retry (or the plan's, when higher).
RETRY_TARGET_ACCEPT = 0.995


# ---------------------------------------------------------------------------------------------- design
@dataclass(frozen=True)
class _Design:
    """Flattened model inputs for one or more campaigns.

    Creatives are numbered across campaigns (``n`` in all); cells are the observed (day, creative) pairs,
    merged where they share the creative, the delay factor and the fatigue exposure.
    """

    creative_labels: tuple[str, ...]  # creative ids; "c{k}/{id}" in a portfolio (unique across it)
    campaign_labels: tuple[str, ...]
    campaign_of: np.ndarray  # (n,) int
    organic_x: np.ndarray  # (n,) standardised log engagement rate, 0 where unknown
    current_exposure: np.ndarray  # (n,) fatigue exposure on each campaign's latest day
    cell_creative: np.ndarray  # (n_cells,) int
    cell_impressions: np.ndarray  # (n_cells,) int64
    cell_conversions: np.ndarray  # (n_cells,) int64
    cell_delay: np.ndarray  # (n_cells,) F(age)
    cell_exposure: np.ndarray  # (n_cells,)
    slices: tuple[slice, ...]  # creatives of each campaign


def _check_cdf(cdf: Sequence[float]) -> np.ndarray:
    arr = np.asarray(cdf, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or np.any(~(arr > 0) | (arr > 1)) or np.any(np.diff(arr) < 0):
        raise ModelError("delay_cdf must be a non-empty non-decreasing list of values in (0, 1]")
    return arr


def _exposure(daily: DailyObservations, fatigue: str) -> np.ndarray:
    """Fatigue exposure before each day, shape (n_days, n_creatives)."""
    shape = daily.impressions.shape
    if fatigue == "none" or daily.n_days == 0:
        return np.zeros(shape)
    if fatigue == "days":
        live = (daily.impressions > 0).astype(float)
        return (np.cumsum(live, axis=0) - live) / FATIGUE_DAYS_UNIT
    if fatigue == "impressions":
        imp = daily.impressions
        return (np.cumsum(imp, axis=0) - imp) / FATIGUE_IMPRESSIONS_UNIT
    raise ModelError(f"fatigue must be one of {FATIGUE}, got {fatigue!r}")


def standardise_organic(rates: Sequence[np.ndarray | None], sizes: Sequence[int]) -> list[np.ndarray]:
    """Standardised log engagement rates, pooled over every known value; 0 where unknown.

    Parameters
    ----------
    rates : one array of shape (n_creatives_k,) per campaign (NaN where unknown), or None
    sizes : n_creatives_k per campaign
    """
    logs = []
    for r, n in zip(rates, sizes, strict=True):
        if r is None:
            logs.append(np.full(n, np.nan))
            continue
        r = np.asarray(r, dtype=np.float64)
        if r.shape != (n,):
            raise ModelError(f"organic_rate: expected shape ({n},), got {r.shape}")
        with np.errstate(invalid="ignore", divide="ignore"):
            logs.append(np.where(np.isfinite(r) & (r >= 0), np.log(np.maximum(r, ORGANIC_FLOOR)), np.nan))
    known = np.concatenate([lg[np.isfinite(lg)] for lg in logs]) if logs else np.zeros(0)
    mean = known.mean() if known.size else 0.0
    sd = known.std() if known.size > 1 else 0.0
    sd = sd if sd > 1e-12 else 1.0
    return [np.where(np.isfinite(lg), (lg - mean) / sd, 0.0) for lg in logs]


def _design(
    campaigns: Sequence[DailyObservations],
    organic: Sequence[np.ndarray | None],
    fatigue: str,
    delay_cdf: Sequence[float] | None,
) -> _Design:
    cdf = _check_cdf(DEFAULT_DELAY_CDF if delay_cdf is None else delay_cdf)
    xs = standardise_organic(organic, [d.n_creatives for d in campaigns])
    labels: list[str] = []
    camp_labels, camp_of, cur_exp, slices = [], [], [], []
    cc, ci, cy, cf, ce = [], [], [], [], []
    offset = 0
    for k, daily in enumerate(campaigns):
        name = f"c{k}"
        camp_labels.append(name)
        n = daily.n_creatives
        labels.extend(cid if len(campaigns) == 1 else f"{name}/{cid}" for cid in daily.creative_ids)
        camp_of.append(np.full(n, k))
        slices.append(slice(offset, offset + n))
        exposure = _exposure(daily, fatigue)
        # the current rate is the latest day's: its exposure counts the days before it, as in the likelihood
        cur_exp.append(exposure[-1] if daily.n_days else np.zeros(n))
        if daily.n_days:
            f_age = cdf_at(cdf, delay_ages(daily.n_days))  # the one age definition of models.delay
            mask = daily.observed & (daily.impressions > 0)
            d_idx, c_idx = np.nonzero(mask)
            cc.append(c_idx + offset)
            ci.append(np.rint(daily.impressions[d_idx, c_idx]).astype(np.int64))
            cy.append(np.rint(daily.conversions[d_idx, c_idx]).astype(np.int64))
            cf.append(f_age[d_idx])
            ce.append(exposure[d_idx, c_idx])
        offset += n

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    cell_c, cell_n, cell_y = cat(cc, np.int64), cat(ci, np.int64), cat(cy, np.int64)
    cell_f, cell_e = cat(cf, np.float64), cat(ce, np.float64)
    if cell_c.size:
        # Days of a creative with the same delay factor and exposure share p: their Binomials add up
        # exactly (Binomial(n1, p) + Binomial(n2, p) = Binomial(n1 + n2, p)), so merge them. Without
        # fatigue this leaves at most len(delay_cdf) + 1 cells per creative (30 days -> 8).
        keys = np.column_stack([cell_c.astype(np.float64), cell_f, cell_e])
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        cell_n = np.bincount(inverse, weights=cell_n).astype(np.int64)
        cell_y = np.bincount(inverse, weights=cell_y).astype(np.int64)
        cell_c, cell_f, cell_e = uniq[:, 0].astype(np.int64), uniq[:, 1], uniq[:, 2]

    return _Design(
        creative_labels=tuple(labels),
        campaign_labels=tuple(camp_labels),
        campaign_of=cat(camp_of, np.int64),
        organic_x=cat(xs, np.float64),
        current_exposure=cat(cur_exp, np.float64),
        cell_creative=cell_c,
        cell_impressions=cell_n,
        cell_conversions=cell_y,
        cell_delay=cell_f,
        cell_exposure=cell_e,
        slices=tuple(slices),
    )

"""The simulated ad world: true conversion rates and CPMs, and how they move from day to day.

A `CampaignWorld` is one campaign in n_replicates replicates (arrays of shape (n_replicates, n_creatives));
`Dynamics` holds the realism switches shared by every campaign of a study:

- CPM noise: each creative's CPM is multiplied every day by a mean-one lognormal factor (sd `noise`).
- Audience saturation: CPM x (1 + spend / saturation_spend) ** saturation, so a creative's CPM rises as its
  own daily spend grows (diminishing returns of scaling one creative).
- Conversion delay: each conversion is reported d days after its impression, d drawn from a pmf over the
  window (geometric with half-life `half_life` days by default, 7-day window). Until then it is missing
  from the data the engine sees: recent days are restated upwards as reports arrive, as in TikTok exports.
- Creative fatigue: the rate is multiplied by 0.5 ** (days live / half_life) or
  0.5 ** (cumulative impressions / half_life).
- Weekday seasonality: multipliers of the conversion rate (and optionally the CPM) by day of the week.
- Authorization expiry (`expires`: first period without budget) and arrivals (`arrives`: first period with).

The "true value" of a creative is its expected conversions per budget unit today at its base CPM: rate x
fatigue x weekday / (CPM x CPM weekday / 1000) per currency unit, or the rate per impression in unit-cost
mode. The oracle puts the budget on the highest true value. Regret (`simulations.days`) is the oracle's
expected conversions minus the policy's, both with the CPM noise and saturation their spend meets
(`Dynamics.spend_yield`): a creative's expected conversions are spend x true value x yield(spend), so
concentrating spend pays the saturation in the regret as it does in the conversions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulations.history import PastCampaign
from simulations.study import Study

NEVER = 10**9


@dataclass(frozen=True)
class CampaignWorld:
    """One campaign in n_replicates replicates.

    rates : (n_replicates, n_creatives) base conversion rate per impression
    cpm : (n_replicates, n_creatives) base CPM, or None in unit-cost mode
    arrives, expires : (n_creatives,) int, first period live and first period not live
    volume : daily budget (currency) or impressions per period (unit-cost mode)
    spend_cpm : (n_replicates, n_creatives) CPM used to account spend in unit-cost mode (history), or None
    organic : (n_replicates, n_creatives) organic engagement rate, or None
    mask : (n_replicates, n_creatives) bool, the slots that hold a creative (False for the padding of a
        batch of campaigns with fewer creatives, `stack_worlds`), or None (all)
    prior_alpha, prior_beta : (n_replicates,) the policies' Beta prior per row (cross-fitted priors of a
        history replay), or None (the study's [prior])
    volume may be an array of shape (n_replicates,) (a batch of campaigns of different sizes).
    """

    creative_ids: tuple[str, ...]
    rates: np.ndarray
    cpm: np.ndarray | None
    arrives: np.ndarray
    expires: np.ndarray
    volume: float | np.ndarray
    spend_cpm: np.ndarray | None = None
    organic: np.ndarray | None = None
    mask: np.ndarray | None = None
    prior_alpha: np.ndarray | None = None
    prior_beta: np.ndarray | None = None

    @property
    def unit_cost(self) -> bool:
        return self.cpm is None

    @property
    def shape(self) -> tuple[int, int]:
        return self.rates.shape  # type: ignore[return-value]

    def present(self, t: int) -> np.ndarray:
        """Creatives that may receive budget in period t, shape (n_creatives,), or (n_replicates,
        n_creatives) for a padded batch."""
        base = (self.arrives <= t) & (t < self.expires)
        return base if self.mask is None else base & self.mask


@dataclass(frozen=True)
class Dynamics:
    cpm_noise: float = 0.0
    saturation: float = 0.0
    saturation_spend: float = 100.0
    delay_pmf: np.ndarray | None = None  # (window,), sums to 1
    fatigue_by: str | None = None  # "days", "impressions" or None
    fatigue_half_life: float = np.inf
    weekday_rate: np.ndarray | None = None  # (7,)
    weekday_cpm: np.ndarray | None = None  # (7,)
    start_weekday: int = 0

    def weekday(self, t: int) -> int:
        return (self.start_weekday + t) % 7

    def rate_multiplier(self, t: int, days_live: np.ndarray, cum_impressions: np.ndarray) -> np.ndarray:
        """Fatigue x seasonality factor of the conversion rate, shape of days_live."""
        m = np.ones(days_live.shape)
        if self.fatigue_by == "days":
            m = m * 0.5 ** (days_live / self.fatigue_half_life)
        elif self.fatigue_by == "impressions":
            m = m * 0.5 ** (cum_impressions / self.fatigue_half_life)
        if self.weekday_rate is not None:
            m = m * self.weekday_rate[self.weekday(t)]
        return m

    def cpm_multiplier(self, t: int) -> float:
        return 1.0 if self.weekday_cpm is None else float(self.weekday_cpm[self.weekday(t)])

    def spend_yield(self, spend: np.ndarray) -> np.ndarray:
        """Expected impressions bought per currency unit at `spend` a day, relative to the base CPM: E[1 / CPM
        today] x base CPM x weekday factor = exp(noise^2) (the mean-one lognormal on the CPM) x
        (1 + spend / saturation_spend) ** -saturation. Expected conversions of a creative are its spend x
        true value x this yield."""
        out = np.full(np.shape(spend), np.exp(self.cpm_noise**2))
        if self.saturation > 0:
            out = out * (1.0 + spend / self.saturation_spend) ** -self.saturation
        return out

    def cpm_today(self, cpm: np.ndarray, spend: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        """Realised CPM of each creative today given its spend, shape (n_replicates, n_creatives)."""
        out = cpm * self.cpm_multiplier(t)
        if self.cpm_noise > 0:
            s = self.cpm_noise
            out = out * np.exp(s * rng.standard_normal(cpm.shape) - 0.5 * s * s)
        if self.saturation > 0:
            out = out * (1.0 + spend / self.saturation_spend) ** self.saturation
        return out


def delay_pmf(window: int, half_life: float, pmf: list[float] | None) -> np.ndarray:
    """Probability that a conversion is reported d = 0..window-1 days after its impression."""
    if pmf is not None:
        p = np.asarray(pmf, dtype=np.float64)
    else:
        p = 0.5 ** (np.arange(window) / half_life)
    return p / p.sum()


def dynamics(study: Study) -> Dynamics:
    w = study.world
    kw: dict = {}
    if w.cpm is not None and w.cpm.enabled:
        kw.update(cpm_noise=w.cpm.noise, saturation=w.cpm.saturation, saturation_spend=w.cpm.saturation_spend)
    if w.delay is not None and w.delay.enabled:
        kw["delay_pmf"] = delay_pmf(w.delay.window, w.delay.half_life, w.delay.pmf)
    if w.fatigue is not None and w.fatigue.enabled:
        kw.update(fatigue_by=w.fatigue.by, fatigue_half_life=w.fatigue.half_life)
    if w.seasonality is not None and w.seasonality.enabled:
        s = w.seasonality
        kw.update(
            weekday_rate=np.asarray(s.weekday, dtype=np.float64),
            start_weekday=s.start_weekday,
            weekday_cpm=None if s.cpm_weekday is None else np.asarray(s.cpm_weekday, dtype=np.float64),
        )
    return Dynamics(**kw)


def _tile(x: list[float] | np.ndarray, n_rep: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.float64), (n_rep, len(x))).copy()


def generate(study: Study, n_rep: int, rng: np.random.Generator) -> CampaignWorld:
    """Creatives drawn from [world.generator]: per replicate, log rate_k = log(rate) + spread * z_k and an
    organic engagement rate whose log is organic_strength * z_k + sqrt(1 - strength^2) * e_k (scaled), so the
    organic signal predicts the paid rate with correlation `organic_strength`."""
    g = study.world.generator
    assert g is not None
    k = g.n_creatives
    z = rng.standard_normal((n_rep, k))
    e = rng.standard_normal((n_rep, k))
    rates = np.clip(g.rate * np.exp(g.spread * z - 0.5 * g.spread**2), 1e-9, 0.5)
    signal = g.organic_strength * z + np.sqrt(1.0 - g.organic_strength**2) * e
    organic = np.clip(g.organic_engagement * np.exp(0.5 * signal), 0.0, 1.0)
    cpm = None if study.world.unit_cost else rng.uniform(g.cpm_low, g.cpm_high, (n_rep, k))
    ids = tuple(f"creative-{i + 1}" for i in range(k))
    vol = study.world.daily_budget or float(study.world.impressions_per_period or 0)
    return CampaignWorld(ids, rates, cpm, np.zeros(k, int), np.full(k, NEVER), vol, organic=organic)


def listed(study: Study, n_rep: int) -> CampaignWorld:
    """Creatives listed in the study (conversion_rates or [[world.creatives]]), the same in every replicate."""
    w = study.world
    vol = w.daily_budget or float(w.impressions_per_period or 0)
    if w.conversion_rates is not None:
        k = len(w.conversion_rates)
        ids = tuple(f"creative-{i + 1}" for i in range(k))
        cpm = None if w.unit_cost else _tile(w.cpms or [], n_rep)
        return CampaignWorld(ids, _tile(w.conversion_rates, n_rep), cpm, np.zeros(k, int), np.full(k, NEVER), vol)
    cs = w.creatives or []
    cpm = None if w.unit_cost else _tile([c.cpm or 0.0 for c in cs], n_rep)
    organic = None
    if any(c.organic is not None for c in cs):
        organic = _tile([(c.organic.engagement_rate() if c.organic else None) or np.nan for c in cs], n_rep)
    return CampaignWorld(
        tuple(c.id for c in cs),
        _tile([c.conversion_rate for c in cs], n_rep),
        cpm,
        np.array([c.arrives for c in cs], dtype=int),
        np.array([NEVER if c.expires is None else c.expires for c in cs], dtype=int),
        vol,
        organic=organic,
    )


def replay(study: Study, past: PastCampaign, n_rep: int, rng: np.random.Generator) -> CampaignWorld:
    """A past campaign as a simulated one: each replicate draws the creatives' true rates from the Beta
    posterior of their observed counts (the study's prior). With spend in the data (and `history_money`),
    a money world: each creative's observed CPM (the campaign's average for a creative without
    impressions) and the campaign's spend spread evenly over the periods as the daily budget, so policies
    maximise conversions per dollar. Otherwise unit-cost mode: the campaign's impressions spread evenly,
    spend (if any) accounted at the observed CPMs."""
    prior = study_prior(study)
    a = prior.alpha + past.conversions
    b = prior.beta + past.impressions - past.conversions
    k = a.size
    rates = rng.beta(a, b, size=(n_rep, k))
    periods = study.study.periods
    cpm = None
    if past.spend is not None:
        avg = 1000.0 * past.spend.sum() / past.impressions.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(past.impressions > 0, 1000.0 * past.spend / past.impressions, avg)
        cpm = _tile(np.where(c > 0, c, avg if avg > 0 else 1.0), n_rep)
    if cpm is not None and past.spend is not None and not study.world.unit_cost:
        volume = float(np.floor(100.0 * past.spend.sum() / periods) / 100.0)
        return CampaignWorld(past.creative_ids, rates, cpm, np.zeros(k, int), np.full(k, NEVER), volume)
    volume = float(max(np.floor(past.impressions.sum() / periods), 1.0))
    return CampaignWorld(past.creative_ids, rates, None, np.zeros(k, int), np.full(k, NEVER), volume, spend_cpm=cpm)


def stack_worlds(worlds: list[CampaignWorld]) -> CampaignWorld:
    """Campaigns of different sizes as one batch: rows campaign-major (row = campaign x n_rep + replicate),
    padded with empty slots (mask False, rate 0) up to the largest creative count, per-row volumes. Only for
    worlds without arrivals, expiry or organic data (history replay)."""
    n_rep = worlds[0].shape[0]
    k = max(w.shape[1] for w in worlds)
    rows = n_rep * len(worlds)

    def pad(get, fill=0.0) -> np.ndarray:
        out = np.full((len(worlds), n_rep, k), fill, dtype=np.float64)
        for c, w in enumerate(worlds):
            v = get(w)
            out[c, :, : v.shape[1]] = v
        return out.reshape(rows, k)

    mask = pad(lambda w: np.ones(w.shape), 0.0).astype(bool)
    rates = pad(lambda w: w.rates)
    spend = None if any(w.spend_cpm is None for w in worlds) else pad(lambda w: w.spend_cpm)
    cpm = None if any(w.cpm is None for w in worlds) else pad(lambda w: w.cpm, 1.0)
    volume = np.repeat([float(w.volume) for w in worlds], n_rep)
    prior = None
    if all(w.prior_alpha is not None for w in worlds):
        prior = (np.concatenate([w.prior_alpha for w in worlds]), np.concatenate([w.prior_beta for w in worlds]))
    ids = tuple(f"slot-{i + 1}" for i in range(k))
    return CampaignWorld(
        ids,
        rates,
        cpm,
        np.zeros(k, int),
        np.full(k, NEVER),
        volume,
        spend_cpm=spend,
        mask=mask,
        prior_alpha=None if prior is None else prior[0],
        prior_beta=None if prior is None else prior[1],
    )


def study_prior(study: Study):
    """The study's [prior]; without one, Beta(1, 1) in unit-cost mode (textbook Bernoulli arms) and the
    plan's default (Beta(1, 5000), CPM 8) with money."""
    from allocator.plan import Prior

    if study.prior is not None:
        return study.prior
    return Prior(alpha=1.0, beta=1.0) if study.world.unit_cost else Prior()


def build_worlds(
    study: Study, history: list[PastCampaign] | None, n_rep: int, rng: np.random.Generator
) -> list[CampaignWorld]:
    """The campaigns of one chunk of replicates: one for a listed or generated world, one per past campaign
    for history replay."""
    w = study.world
    if w.history is not None:
        return [replay(study, past, n_rep, rng) for past in history or []]
    if w.generator is not None:
        return [generate(study, n_rep, rng)]
    return [listed(study, n_rep)]


def reported_by(lagged: np.ndarray, t: int) -> np.ndarray:
    """Conversions of days 0..t-1 reported by the end of day t-1, from `lagged` (days, ..., lags): the
    conversions of each day by report lag. Day d is t-1-d days old then, so its lags 0..t-1-d are in.
    Returns shape (t, ...)."""
    window = lagged.shape[-1]
    age = (t - 1) - np.arange(t)
    return np.cumsum(lagged[:t], axis=-1)[np.arange(t), ..., np.minimum(age, window - 1)]


def study_delay_cdf(study: Study, dyn: Dynamics) -> tuple[float, ...] | None:
    """The delay CDF F(age) every model of a study corrects with: `[model] delay_cdf`, else the world's true
    delay, else None (no delay). `delay_cdf = [1.0]` switches the correction off in a delayed world."""
    if study.model.delay_cdf is not None:
        return tuple(study.model.delay_cdf)
    if dyn.delay_pmf is not None:
        # reported within `lag` days; F(0) > 0 is required, and F is 1 from the window's end
        return tuple(np.clip(np.cumsum(dyn.delay_pmf) / dyn.delay_pmf.sum(), 1e-3, 1.0)[:-1]) + (1.0,)
    return None

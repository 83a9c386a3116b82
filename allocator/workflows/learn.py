"""Learning from the account's history: priors, attribution delay and the organic coefficient.

`PastCreatives` gathers past creatives' totals from a history CSV (the replay format of
`simulations.history`) or from campaign plans' ledgers; `learn` fits the empirical-Bayes priors of
`models.empirical_bayes` (conversion rate, click rate, CPM; optionally per group), checks them by k-fold
cross-validation against the current prior, and, from ledgers, estimates the attribution-delay CDF from the
restated versions of each day (`models.delay`) and the hierarchical model's organic coefficient across
campaigns where organic data exists (`models.hierarchical.fit_portfolio`). `LearnResult.to_toml` is the
priors file plans read with `[prior] file = "priors.toml"`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from allocator.plan import LoadedPlan, Prior
from models.delay import DelayFit, estimate_delay_cdf, versions_to_known
from models.empirical_bayes import (
    BetaFit,
    CpmFit,
    cross_validate,
    fit_beta_binomial,
    fit_cpm,
)
from models.errors import DataError, ModelError

#: The group of past creatives without a value in the grouping column (learned and reported, never written:
#: a plan's creative without a creator takes [prior] alpha and beta).
NO_GROUP = "(none)"


@dataclass(frozen=True)
class PastCreatives:
    """One entry per past creative; arrays of shape (n_creatives,). clicks, spend and group are None when
    the source has none."""

    campaign: np.ndarray
    creative: np.ndarray
    impressions: np.ndarray
    conversions: np.ndarray
    clicks: np.ndarray | None = None
    spend: np.ndarray | None = None
    group: np.ndarray | None = None
    # from ledgers only: per campaign the daily observations and organic rates (portfolio fit), and the
    # restated versions of each creative-day (delay)
    dailies: list = field(default_factory=list)
    organic: list = field(default_factory=list)
    versions: tuple | None = None
    group_by: str | None = None  # the column (or "creator") `group` holds

    @property
    def n_campaigns(self) -> int:
        return len(set(self.campaign.tolist()))

    @classmethod
    def from_history(cls, path: str | Path, by: str | None = None) -> PastCreatives:
        """The creatives of a past-tests CSV; `by` names a column to group by (e.g. creator)."""
        from simulations.history import read_history

        past = read_history(path)
        extra = _extra_columns(Path(path), [c for c in ("clicks", by) if c])
        if by is not None and by not in extra:
            raise DataError(
                str(path), "header", f"column {by!r} (given with --by) is missing", "add the column or drop --by"
            )
        camp, creative = [], []
        for p in past:
            camp += [p.campaign_id] * len(p.creative_ids)
            creative += list(p.creative_ids)
        keys = list(zip(camp, creative))
        clicks = None
        if "clicks" in extra:
            clicks = np.array([_number(extra["clicks"][key], path, "clicks") for key in keys])
        spend = None
        if all(p.spend is not None for p in past):
            spend = np.concatenate([p.spend for p in past])
        group = None if by is None else np.array([extra[by][key] or NO_GROUP for key in keys])
        return cls(
            np.array(camp),
            np.array(creative),
            np.concatenate([p.impressions for p in past]),
            np.concatenate([p.conversions for p in past]),
            clicks,
            spend,
            group,
            group_by=by,
        )

    @classmethod
    def from_plans(cls, plans: Sequence[LoadedPlan], by: str | None = None, window: int = 7) -> PastCreatives:
        """The creatives of campaigns in their ledgers (current values), with each day's versions.
        `by` = "creator" groups by the plan's creator (creatives without one form "(none)")."""
        from allocator.decisions.settings import organic_rates
        from allocator.storage.ledger import Ledger
        from allocator.storage.restatements import restated_versions

        camp, creative, group = [], [], []
        imps, conv, clicks, spend = [], [], [], []
        dailies, organic = [], []
        ages, values, final_age, days = [], [], [], []
        for j, loaded in enumerate(plans):
            plan = loaded.plan
            with Ledger.open(loaded.ledger_path, create=False) as ledger:
                daily = ledger.daily(plan)
                a, v, f, d = restated_versions(ledger, plan)
            totals = daily.totals()
            name = plan.campaign.name
            camp += [name] * len(plan.creatives)
            creative += list(plan.creative_ids)
            group += [getattr(c, by) or NO_GROUP if by else "" for c in plan.creatives]
            imps.append(totals.impressions)
            conv.append(totals.conversions)
            clicks.append(totals.clicks)
            spend.append(totals.spend)
            if daily.n_days:
                dailies.append(daily)
                organic.append(organic_rates(plan))
            ages += a
            values += v
            final_age.append(f)
            days.append(d + j * 1_000_000)  # days of different campaigns are different clusters
        cat = np.concatenate
        versions = (
            ages,
            values,
            cat(final_age) if final_age else np.zeros(0, int),
            cat(days) if days else np.zeros(0, int),
        )
        return cls(
            np.array(camp),
            np.array(creative),
            cat(imps),
            cat(conv),
            cat(clicks),
            cat(spend),
            np.array(group) if by else None,
            dailies,
            organic,
            versions,
            group_by=by,
        )


def _extra_columns(path: Path, names: list[str]) -> dict[str, dict[tuple[str, str], str]]:
    """Optional columns of a past-tests CSV by (campaign_id, creative_id), for those present."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        present = [n for n in names if n in header]
        out: dict[str, dict[tuple[str, str], str]] = {n: {} for n in present}
        for row in reader:
            key = ((row.get("campaign_id") or "").strip(), (row.get("creative_id") or "").strip())
            for n in present:
                out[n][key] = (row.get(n) or "").strip()
    return out


def _number(raw: str, path, col: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise DataError(str(path), f"column {col!r}", f"{raw!r} is not a number", "write a plain number") from None
    if not np.isfinite(v) or v < 0:
        raise DataError(str(path), f"column {col!r}", f"{raw!r} is not a non-negative number", "correct the value")
    return v


@dataclass(frozen=True)
class LearnResult:
    """What `learn` found. cv compares the learned conversion prior with `current` (held-out campaigns)."""

    conversion: BetaFit
    click: BetaFit | None
    cpm: CpmFit | None
    cv: dict
    current: Prior
    campaigns: int
    creatives: int
    groups: dict[str, BetaFit] = field(default_factory=dict)
    delay: DelayFit | None = None
    organic: dict | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # what could not be learned, and why
    group_by: str | None = None  # the column (or "creator") the groups are of

    def prior_keys(self) -> dict[str, float]:
        """The plan's [prior] keys learned (the rest keep the plan's values)."""
        keys = {"alpha": self.conversion.alpha, "beta": self.conversion.beta}
        if self.click is not None:
            keys |= {"click_alpha": self.click.alpha, "click_beta": self.click.beta}
        if self.cpm is not None:
            keys |= {"cpm": self.cpm.cpm, "cpm_weight": self.cpm.cpm_weight}
        return keys

    def to_json(self) -> dict:
        c = self.conversion
        prior = {k: _r(v) for k, v in self.prior_keys().items()}
        for k in ("click_alpha", "click_beta", "cpm", "cpm_weight"):
            prior.setdefault(k, None)
        se = {"alpha": _r(c.se_alpha), "beta": _r(c.se_beta), "mean": _r(c.se_mean)}
        if self.click is not None:
            se |= {"click_alpha": _r(self.click.se_alpha), "click_beta": _r(self.click.se_beta)}
        if self.cpm is not None:
            se["cpm"] = _r(self.cpm.se_cpm)
        lo, hi = c.quantile([0.05, 0.95])
        out = {
            "prior": prior,
            "se": se,
            "mean_rate": _r(c.mean),
            "rate_90": [_r(lo), _r(hi)],
            "words": c.words(),
            "no_spread": c.at_bound,
            "campaigns": self.campaigns,
            "creatives": self.creatives,
            "cv": {**self.cv, "current": {"alpha": self.current.alpha, "beta": self.current.beta}},
            "groups": {
                g: {
                    "alpha": _r(f.alpha),
                    "beta": _r(f.beta),
                    "se_alpha": _r(f.se_alpha),
                    "se_beta": _r(f.se_beta),
                    "creatives": f.n_creatives,
                    "words": f.words(),
                }
                for g, f in self.groups.items()
            },
            "delay": None if self.delay is None else self.delay.to_json(),
            "organic": self.organic,
            "skipped": self.skipped,
        }
        return out

    def to_toml(self, source: str) -> str:
        """The priors file: [prior] keys, and [model] delay_cdf / organic_mean / organic_sd when learned."""
        lines = [
            f"# Priors learned by `sparkbandit learn` from {source} on {dt.date.today().isoformat()}:",
            f"# {self.campaigns} campaigns, {self.creatives} creatives. {self.conversion.words()}.",
            '# Plans read it with [prior] file = "THIS FILE"; keys given in the plan win.',
            "",
            "[prior]",
        ]
        lines += [f"{k} = {_toml_float(v)}" for k, v in self.prior_keys().items()]
        groups = {g: f for g, f in self.groups.items() if g != NO_GROUP}
        if groups:
            lines += [
                "",
                f"# Conversion priors by group ({self.group_by or 'group'}); a plan's creative takes the one named by",
                "# its creator (creatives without a creator, or of another creator, take [prior] alpha and beta).",
            ]
        for g, f in groups.items():
            lines += [
                "",
                f"[prior.groups.{_toml_key(g)}]",
                f"alpha = {_toml_float(f.alpha)}",
                f"beta = {_toml_float(f.beta)}",
                f"creatives = {f.n_creatives}",
            ]
        model = []
        if self.delay is not None:
            model.append("delay_cdf = [" + ", ".join(_toml_float(round(float(v), 4)) for v in self.delay.cdf) + "]")
        if self.organic is not None:
            model += [
                f"organic_mean = {_toml_float(self.organic['mean'])}",
                f"organic_sd = {_toml_float(self.organic['sd'])}",
            ]
        if model:
            lines += ["", "[model]"] + model
        return "\n".join(lines) + "\n"

    def lines(self) -> list[str]:
        """The human report, one line each."""
        c = self.conversion
        out = [
            f"Learned from {self.campaigns} past campaigns, {self.creatives} creatives.",
            "",
            (
                f"conversion prior  Beta({_num(c.alpha)} ± {_num(c.se_alpha)}, {_num(c.beta)} ± {_num(c.se_beta)}): "
                f"{c.words()}"
            ),
        ]
        if c.at_bound:
            out.append(
                "  (the creatives' rates do not differ beyond chance: every new creative is expected at the "
                "pooled rate)"
            )
        if self.click is not None:
            k = self.click
            out.append(
                f"click prior       Beta({_num(k.alpha)} ± {_num(k.se_alpha)}, {_num(k.beta)} ± {_num(k.se_beta)}): "
                f"{k.words('be clicked')}"
            )
        if self.cpm is not None:
            out.append(
                f"CPM prior         {self.cpm.cpm:.2f} ± {self.cpm.se_cpm:.2f} per 1,000 impressions, "
                f"weight {self.cpm.cpm_weight:,.0f} impressions"
            )
        for g, f in self.groups.items():
            out.append(f"  {g}: Beta({_num(f.alpha)}, {_num(f.beta)}) over {f.n_creatives} creatives: {f.words()}")
        cv = self.cv
        verdict = "better" if cv["better"] else "worse" if cv["gain"] < -2 * cv["gain_se"] else "not clearly different"
        out += [
            "",
            (
                f"{cv['folds']}-fold check on held-out campaigns: log predictive density per creative "
                f"{cv['lpd_learned']:.3f} (learned) vs {cv['lpd_current']:.3f} (current "
                f"Beta({self.current.alpha:g}, {self.current.beta:g})): {cv['gain']:+.3f} ± "
                f"{cv['gain_se']:.3f}, {verdict}"
            ),
        ]
        if self.delay is not None:
            d = self.delay
            cells = ", ".join(f"{v:.2f} ± {s:.2f}" for v, s in zip(d.cdf, d.se))
            out.append(
                f"attribution delay F(age 0..{d.cdf.size - 1}) = {cells} (from {d.days} creative-days, "
                f"{d.conversions:,.0f} conversions)"
            )
        if self.organic is not None:
            o = self.organic
            out.append(
                f"organic coefficient {o['mean']:+.3f} (90% {o['ci90'][0]:+.3f} to {o['ci90'][1]:+.3f}) "
                f"over {o['campaigns']} campaigns"
            )
        for what, why in self.skipped.items():
            out.append(f"not learned: {what} ({why})")
        return out


def _num(x: float) -> str:
    """A parameter for people: 3 significant digits, thousands separators, no exponent."""
    x = float(x)
    if not np.isfinite(x):
        return "inf"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _r(x: float) -> float | None:
    x = float(x)
    return round(x, 10) if np.isfinite(x) else None


def _toml_key(name: str) -> str:
    """A TOML quoted key: JSON string escapes without ASCII escaping are valid TOML basic strings."""
    return json.dumps(name, ensure_ascii=False)


def _toml_float(x: float) -> str:
    text = repr(float(x))
    return text if any(ch in text for ch in ".en") else text + ".0"


def learn(
    past: PastCreatives,
    current: Prior | None = None,
    folds: int = 5,
    rng: np.random.Generator | None = None,
    window: int = 7,
    organic: bool = True,
) -> LearnResult:
    """Fit the priors (and, from ledgers, the delay and the organic coefficient) of `past`."""
    current = Prior() if current is None else current
    rng = np.random.default_rng(0) if rng is None else rng
    skipped: dict[str, str] = {}
    conv = fit_beta_binomial(past.conversions, past.impressions)
    click = None
    if past.clicks is not None and past.clicks.sum() > 0:
        try:
            click = fit_beta_binomial(past.clicks, past.impressions)
        except ModelError as e:
            skipped["click prior"] = str(e)
    else:
        skipped["click prior"] = "no clicks in the history"
    cpm = None
    if past.spend is not None:
        try:
            cpm = fit_cpm(past.impressions, past.spend)
        except ModelError as e:
            skipped["CPM prior"] = str(e)
    else:
        skipped["CPM prior"] = "no spend in the history"
    try:
        cv = cross_validate(
            past.campaign, past.conversions, past.impressions, (current.alpha, current.beta), folds, rng
        )
    except ModelError as e:
        raise ModelError(f"{e}; learn needs past campaigns to check the prior on") from None
    groups: dict[str, BetaFit] = {}
    if past.group is not None:
        for g in sorted(set(past.group.tolist())):
            sel = past.group == g
            try:
                groups[g] = fit_beta_binomial(past.conversions[sel], past.impressions[sel])
            except ModelError as e:
                skipped[f"group {g}"] = str(e)
    delay = None
    if past.versions is not None:
        ages, values, final_age, day = past.versions
        known, final, keep = versions_to_known(ages, values, final_age, window)
        if final.sum() > 0 and np.isfinite(known[:, 0]).any():
            delay = estimate_delay_cdf(known, final, day[keep], rng=rng)
        else:
            skipped["delay"] = f"no restated days seen {window - 1} or more days old with conversions"
    org = None
    if past.dailies and organic:
        if any(np.isfinite(r).any() for r in past.organic):
            try:
                org = organic_coefficient(past.dailies, past.organic, rng)
            except ModelError as e:
                # the priors and the delay stand on their own: report, do not fail the whole run
                skipped["organic coefficient"] = str(e)
        else:
            skipped["organic coefficient"] = "no organic data in the plans"
    return LearnResult(
        conv,
        click,
        cpm,
        cv,
        current,
        past.n_campaigns,
        int((past.impressions > 0).sum()),
        groups,
        delay,
        org,
        skipped,
        past.group_by,
    )


def organic_coefficient(dailies: list, organic: list, rng: np.random.Generator) -> dict:
    """The hierarchical model's organic coefficient fitted across campaigns (portfolio fit), with its 90%
    interval: {"mean", "sd", "ci90", "campaigns", "method"}. Imports pymc (slow: tens of seconds). The draws
    are the fast path's (Laplace + importance sampling, saved as .npz) when it passed its gate, else NUTS's."""
    import tempfile

    import xarray as xr

    from models.hierarchical import fit_portfolio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "portfolio.nc"
        posts = fit_portfolio(dailies, organic, objective="conversion_rate", n_draws=1000, rng=rng, save_to=path)
        saved = posts[0].diagnostics.get("fit_path") if posts else None
        if posts and posts[0].diagnostics.get("fallback"):
            raise ModelError(
                "the portfolio fit failed its diagnostics gate (see the warning); the plans keep "
                "their organic_mean and organic_sd"
            )
        if saved is not None and str(saved).endswith(".npz"):
            # the fast path (laplace_is) passed its gate: its resampled draws, numpy only (models.hierarchical.saved)
            with np.load(saved) as f:
                draws = np.asarray(f["var_organic_coef"], dtype=np.float64).ravel()
        else:
            tree = xr.open_datatree(saved or path, engine="h5netcdf")
            draws = np.asarray(tree["posterior"]["organic_coef"]).ravel()
            tree.close()
    lo, hi = np.quantile(draws, [0.05, 0.95])
    return {
        "mean": round(float(draws.mean()), 4),
        "sd": round(float(draws.std(ddof=1)), 4),
        "ci90": [round(float(lo), 4), round(float(hi), 4)],
        "campaigns": len(dailies),
        "method": "laplace_is" if saved is not None and str(saved).endswith(".npz") else "nuts",
    }

"""Past tests for history replay: one CSV row per campaign and creative.

Columns: campaign_id, creative_id, impressions, conversions, and optionally spend. Every past campaign
becomes one simulated campaign (see `simulations.world.replay`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import DataError

REQUIRED = ("campaign_id", "creative_id", "impressions", "conversions")


@dataclass(frozen=True)
class PastCampaign:
    """Totals of one past campaign; arrays of shape (n_creatives,). spend is None when not given."""

    campaign_id: str
    creative_ids: tuple[str, ...]
    impressions: np.ndarray
    conversions: np.ndarray
    spend: np.ndarray | None


def read_history(path: str | Path) -> list[PastCampaign]:
    """Read a past-tests CSV. Raises DataError naming the file, row and column.

    The importer's rules apply (`allocator.inputs.importer`): UTF-8 or UTF-16 text, comma, tab or semicolon
    delimited; numbers may carry thousands separators and a currency, their decimal mark decided per file
    ("182,000" quoted in a comma file is 182000; "1.092,50" in a ";" file is 1092.5); a row with more or
    fewer values than the header (an unquoted "182,000") is an error naming the row.
    """
    from allocator.inputs.files import decode_text
    from allocator.inputs.files import read_bytes as _read_bytes
    from allocator.inputs.files import sniff_delimiter as _sniff_delimiter
    from allocator.inputs.formats import number_style, read_number

    path = Path(path)
    source = str(path)
    text = decode_text(_read_bytes(path, source), source)
    delimiter = _sniff_delimiter(text)
    table: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 0
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if any(c.strip() for c in cells):
                table.append((start, cells))
    except csv.Error as e:
        raise DataError(source, f"row {reader.line_num}", f"not valid CSV ({e})", "check the quoting") from None
    header = [h.strip() for h in table[0][1]] if table else []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(
            source,
            "header",
            f"column {missing[0]!r} is missing",
            "columns are campaign_id, creative_id, impressions, conversions[, spend]",
        )
    has_spend = "spend" in header
    width = max(i for i, h in enumerate(header) if h) + 1
    index = {h: i for i, h in enumerate(header) if h}
    numeric = ("impressions", "conversions") + (("spend",) if has_spend else ())
    for i, cells in table[1:]:
        n = len(cells)
        while n > width and not cells[n - 1].strip():
            n -= 1
        if n != width:
            raise DataError(
                source,
                f"row {i}",
                f"{n} values but the header has {width} columns",
                'quote values that contain the delimiter ("182,000") and fill in missing values',
            )
    style, _ = number_style(
        ((cells[index[col]], f"row {i}, column {col!r}") for i, cells in table[1:] for col in numeric),
        delimiter,
        None,
        source,
    )
    campaigns: dict[str, dict[str, list[float]]] = {}
    for i, cells in table[1:]:
        camp, creative = cells[index["campaign_id"]].strip(), cells[index["creative_id"]].strip()
        if not camp or not creative:
            raise DataError(source, f"row {i}", "campaign_id and creative_id must not be empty", "fill them in")
        values = []
        for col in numeric:
            raw = cells[index[col]].strip()
            try:
                if not raw:
                    raise ValueError("value is empty", "write 0 if there were none")
                v = read_number(raw, style)
            except ValueError as e:
                raise DataError(source, f"row {i}, column {col!r}", *e.args) from None
            if not np.isfinite(v) or v < 0:
                raise DataError(
                    source, f"row {i}, column {col!r}", f"{raw!r} is not a non-negative number", "correct the value"
                )
            if col != "spend" and (not v.is_integer() or v >= 2.0**53):
                raise DataError(
                    source,
                    f"row {i}, column {col!r}",
                    f"{raw!r} is not a plausible count",
                    "write a whole number of " + col,
                )
            values.append(v)
        if values[1] > values[0]:
            raise DataError(
                source,
                f"row {i}, column 'conversions'",
                f"{values[1]:g} is above impressions {values[0]:g}",
                "correct the counts",
            )
        c = campaigns.setdefault(camp, {})
        if creative in c:
            raise DataError(
                source,
                f"row {i}",
                f"creative {creative!r} appears twice in campaign {camp!r}",
                "give one row per campaign and creative",
            )
        c[creative] = values
    if not campaigns:
        raise DataError(source, "", "no rows", "add one row per past campaign and creative")
    out = []
    for camp, creatives in campaigns.items():
        counts = np.array(list(creatives.values()), dtype=np.float64)
        if counts[:, 0].sum() <= 0:
            raise DataError(source, f"campaign {camp!r}", "has no impressions", "remove it or fix the counts")
        spend = counts[:, 2] if has_spend else None
        out.append(PastCampaign(camp, tuple(creatives), counts[:, 0], counts[:, 1], spend))
    return out


# ---------------------------------------------------------------------------------------------- cross-fitting
def cross_fit_priors(
    history: list[PastCampaign], folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical-Bayes priors by k-fold cross-fitting: campaign c's prior is the maximum marginal likelihood
    Beta fitted to the creatives of the campaigns in the other folds only, so no campaign's own data informs
    its prior (`[prior] from_history = true`).

    Returns (alpha, beta, fold), each of shape (n_campaigns,), in the order of `history`. Folds are assigned
    by `models.empirical_bayes.fold_of` from SeedSequence(seed, spawn_key=(2,)).
    """
    from models.empirical_bayes import fit_beta_binomial, fold_of

    names = [p.campaign_id for p in history]
    folds = int(min(folds, len(names)))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    fold_by = fold_of(names, folds, rng)
    fold = np.array([fold_by[n] for n in names])
    alpha = np.empty(len(history))
    beta = np.empty(len(history))
    for j in range(folds):
        train = [p for p, f in zip(history, fold) if f != j]
        fit = fit_beta_binomial(
            np.concatenate([p.conversions for p in train]), np.concatenate([p.impressions for p in train])
        )
        alpha[fold == j], beta[fold == j] = fit.alpha, fit.beta
    return alpha, beta, fold


def synthetic_organic_portfolio(
    coef: float,
    rng: np.random.Generator,
    n_campaigns: int = 8,
    n_creatives: int = 5,
    n_days: int = 14,
    impressions: float = 20_000.0,
    delay_cdf: tuple[float, ...] | None = None,
) -> tuple[list, list[np.ndarray]]:
    """Past campaigns whose conversion rates follow the hierarchical model with a known organic coefficient:
    logit rate = -8.2 + campaign effect (sd 0.3) + coef x z + creative effect (sd 0.3), z the standardised log
    engagement rate (drawn lognormal, sd 0.6 on the log scale); each day's conversions reported so far,
    Binomial(n, rate x F(age)) with the hierarchical model's default delay unless `delay_cdf` is given.

    Returns (dailies, organic rates), one entry per campaign, for `models.hierarchical.fit_portfolio` (and
    `allocator.workflows.learn.organic_coefficient`): the validation of the portfolio fit.
    """
    from scipy.special import expit

    from models.delay import cdf_at, delay_ages
    from models.hierarchical.design import DEFAULT_DELAY_CDF
    from models.observations import DailyObservations

    cdf = DEFAULT_DELAY_CDF if delay_cdf is None else delay_cdf
    log_er = rng.normal(np.log(0.06), 0.6, size=(n_campaigns, n_creatives))
    z = (log_er - log_er.mean()) / log_er.std()  # the design standardises over every known value the same way
    logit = (
        -8.2
        + rng.normal(0.0, 0.3, size=(n_campaigns, 1))
        + coef * z
        + rng.normal(0.0, 0.3, size=(n_campaigns, n_creatives))
    )
    rate = expit(logit)
    f = cdf_at(cdf, delay_ages(n_days))[:, None]  # (n_days, 1)
    dates = np.datetime64("2026-01-05") + np.arange(n_days)
    dailies, organic = [], []
    for k in range(n_campaigns):
        imps = rng.poisson(impressions, size=(n_days, n_creatives)).astype(np.float64)
        conv = rng.binomial(imps.astype(np.int64), rate[k] * f).astype(np.float64)
        ids = tuple(f"c{k}-{i}" for i in range(n_creatives))
        dailies.append(DailyObservations(ids, dates, imps, np.rint(imps * 0.01), conv, imps * 0.008))
        organic.append(np.exp(log_er[k]))
    return dailies, organic

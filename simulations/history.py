"""Past tests for history replay: one CSV row per campaign and creative.

Columns: campaign_id, creative_id, impressions, conversions, and optionally spend. Every past campaign
becomes one simulated campaign (see `simulations.world.history_worlds`).
"""

from __future__ import annotations

import csv
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
    """Read a past-tests CSV. Raises DataError naming the file, row and column."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(source, "", "file not found", "check the path") from None
    rows = list(csv.DictReader(text.splitlines()))
    header = [h.strip() for h in (csv.reader(text.splitlines()[:1]).__next__() if text.strip() else [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(source, "header", f"column {missing[0]!r} is missing",
                        "columns are campaign_id, creative_id, impressions, conversions[, spend]")
    has_spend = "spend" in header
    campaigns: dict[str, dict[str, list[float]]] = {}
    for i, row in enumerate(rows, start=2):
        camp, creative = (row.get("campaign_id") or "").strip(), (row.get("creative_id") or "").strip()
        if not camp or not creative:
            raise DataError(source, f"row {i}", "campaign_id and creative_id must not be empty", "fill them in")
        values = []
        for col in ("impressions", "conversions") + (("spend",) if has_spend else ()):
            raw = (row.get(col) or "").strip()
            try:
                v = float(raw)
            except ValueError:
                raise DataError(source, f"row {i}, column {col!r}", f"{raw!r} is not a number",
                                "write a plain number") from None
            if not np.isfinite(v) or v < 0:
                raise DataError(source, f"row {i}, column {col!r}", f"{raw!r} is not a non-negative number",
                                "correct the value")
            values.append(v)
        if values[1] > values[0]:
            raise DataError(source, f"row {i}, column 'conversions'",
                            f"{values[1]:g} is above impressions {values[0]:g}", "correct the counts")
        c = campaigns.setdefault(camp, {})
        if creative in c:
            raise DataError(source, f"row {i}", f"creative {creative!r} appears twice in campaign {camp!r}",
                            "give one row per campaign and creative")
        c[creative] = values
    if not campaigns:
        raise DataError(source, "", "no rows", "add one row per past campaign and creative")
    out = []
    for camp, creatives in campaigns.items():
        v = np.array(list(creatives.values()), dtype=np.float64)
        if v[:, 0].sum() <= 0:
            raise DataError(source, f"campaign {camp!r}", "has no impressions", "remove it or fix the counts")
        out.append(PastCampaign(camp, tuple(creatives), v[:, 0], v[:, 1], v[:, 2] if has_spend else None))
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
        fit = fit_beta_binomial(np.concatenate([p.conversions for p in train]),
                                np.concatenate([p.impressions for p in train]))
        alpha[fold == j], beta[fold == j] = fit.alpha, fit.beta
    return alpha, beta, fold

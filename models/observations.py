"""Validated observations of each creative: impressions, clicks, conversions and spend.

Two shapes of the same data:

- `Observations`: totals per creative, arrays of shape (n_creatives,). Enough for the conjugate model.
- `DailyObservations`: one dense (n_days, n_creatives) matrix per field, with the calendar `dates`.
  Days on which a creative had no row are zeros with `observed[d, c] = False`. The hierarchical model,
  fatigue and conversion-delay corrections need days.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.errors import ObservationError

FIELDS = ("impressions", "clicks", "conversions", "spend")


def _as_float(name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ObservationError(f"{name}: expected shape {shape}, got {arr.shape}")
    return arr


def _check(ids: tuple[str, ...], name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        idx = np.argwhere(bad)[0]
        creative = ids[idx[-1]]
        raise ObservationError(
            f"creative {creative!r}: {name} = {float(arr[tuple(idx)])!r} is not a finite non-negative number"
        )


def _check_not_above(ids: tuple[str, ...], name: str, arr: np.ndarray, impressions: np.ndarray) -> None:
    bad = arr > impressions
    if bad.any():
        idx = np.argwhere(bad)[0]
        creative = ids[idx[-1]]
        raise ObservationError(
            f"creative {creative!r}: {name} = {arr[tuple(idx)]:g} is above impressions = {impressions[tuple(idx)]:g}"
        )


@dataclass(frozen=True)
class Observations:
    """Totals per creative.

    Attributes
    ----------
    creative_ids : tuple of str, length n_creatives
    impressions, clicks, conversions, spend : ndarray of shape (n_creatives,), float64
    """

    creative_ids: tuple[str, ...]
    impressions: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    spend: np.ndarray

    def __post_init__(self) -> None:
        ids = tuple(str(c) for c in self.creative_ids)
        object.__setattr__(self, "creative_ids", ids)
        if len(set(ids)) != len(ids):
            raise ObservationError("creative ids must be unique")
        shape = (len(ids),)
        for name in FIELDS:
            arr = _as_float(name, getattr(self, name), shape)
            _check(ids, name, arr)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        _check_not_above(ids, "conversions", self.conversions, self.impressions)
        _check_not_above(ids, "clicks", self.clicks, self.impressions)

    @property
    def n_creatives(self) -> int:
        return len(self.creative_ids)

    @classmethod
    def empty(cls, creative_ids: tuple[str, ...] | list[str]) -> Observations:
        n = len(creative_ids)
        z = np.zeros(n)
        return cls(tuple(creative_ids), z, z, z, z)

    def subset(self, index: np.ndarray | list[int]) -> Observations:
        index = np.asarray(index, dtype=int)
        return Observations(
            tuple(self.creative_ids[i] for i in index),
            *(getattr(self, name)[index] for name in FIELDS),
        )


@dataclass(frozen=True)
class DailyObservations:
    """Results per day and creative.

    Attributes
    ----------
    creative_ids : tuple of str, length n_creatives
    dates : ndarray of datetime64[D], shape (n_days,), strictly increasing, consecutive days
    impressions, clicks, conversions, spend : ndarray of shape (n_days, n_creatives), float64
    observed : ndarray of bool, shape (n_days, n_creatives); False where no row was reported
    """

    creative_ids: tuple[str, ...]
    dates: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    spend: np.ndarray
    observed: np.ndarray = field(default=None)  # type: ignore[assignment,arg-type]  # None: set in __post_init__

    def __post_init__(self) -> None:
        ids = tuple(str(c) for c in self.creative_ids)
        object.__setattr__(self, "creative_ids", ids)
        if len(set(ids)) != len(ids):
            raise ObservationError("creative ids must be unique")
        dates = np.asarray(self.dates, dtype="datetime64[D]")
        if dates.ndim != 1:
            raise ObservationError("dates must be one-dimensional")
        if dates.size > 1 and np.any(np.diff(dates).astype(int) != 1):
            raise ObservationError("dates must be consecutive days in increasing order")
        dates.setflags(write=False)
        object.__setattr__(self, "dates", dates)
        shape = (dates.size, len(ids))
        for name in FIELDS:
            arr = _as_float(name, getattr(self, name), shape)
            _check(ids, name, arr)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        _check_not_above(ids, "conversions", self.conversions, self.impressions)
        _check_not_above(ids, "clicks", self.clicks, self.impressions)
        observed = self.observed
        if observed is None:
            observed = self.impressions > 0
        observed = np.asarray(observed, dtype=bool)
        if observed.shape != shape:
            raise ObservationError(f"observed: expected shape {shape}, got {observed.shape}")
        observed.setflags(write=False)
        object.__setattr__(self, "observed", observed)

    @property
    def n_creatives(self) -> int:
        return len(self.creative_ids)

    @property
    def n_days(self) -> int:
        return int(self.dates.size)

    @classmethod
    def empty(cls, creative_ids: tuple[str, ...] | list[str]) -> DailyObservations:
        n = len(creative_ids)
        z = np.zeros((0, n))
        return cls(tuple(creative_ids), np.array([], dtype="datetime64[D]"), z, z, z, z)

    def totals(self) -> Observations:
        """Sum over days (computed once: the arrays are read-only)."""
        cached = self.__dict__.get("_totals")
        if cached is None:
            cached = Observations(self.creative_ids, *(getattr(self, name).sum(axis=0) for name in FIELDS))
            object.__setattr__(self, "_totals", cached)
        return cached

    def days_live(self) -> np.ndarray:
        """Days with impressions > 0 per creative, shape (n_creatives,), int."""
        return (self.impressions > 0).sum(axis=0).astype(int)

    def first_live_index(self) -> np.ndarray:
        """Index of each creative's first day with impressions, -1 where it never ran. Shape (n_creatives,)."""
        live = self.impressions > 0
        first = np.argmax(live, axis=0)
        return np.where(live.any(axis=0), first, -1)

    def upto(self, last_date: np.datetime64) -> DailyObservations:
        """Only the days on or before `last_date`."""
        keep = self.dates <= np.datetime64(last_date, "D")
        return DailyObservations(
            self.creative_ids,
            self.dates[keep],
            self.impressions[keep],
            self.clicks[keep],
            self.conversions[keep],
            self.spend[keep],
            observed=self.observed[keep],
        )

    def subset(self, index: np.ndarray | list[int]) -> DailyObservations:
        index = np.asarray(index, dtype=int)
        return DailyObservations(
            tuple(self.creative_ids[i] for i in index),
            self.dates,
            self.impressions[:, index],
            self.clicks[:, index],
            self.conversions[:, index],
            self.spend[:, index],
            observed=self.observed[:, index],
        )

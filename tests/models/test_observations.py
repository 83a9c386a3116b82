"""Observations: invariants with messages naming the creative and field, and the day helpers."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ObservationError
from models.observations import DailyObservations, Observations

IDS = ("a", "b")
DATES = np.arange("2026-11-01", "2026-11-04", dtype="datetime64[D]")


def daily(**over) -> DailyObservations:
    kw = dict(
        creative_ids=IDS,
        dates=DATES,
        impressions=np.array([[100.0, 0.0], [200.0, 50.0], [0.0, 80.0]]),
        clicks=np.array([[3.0, 0.0], [5.0, 1.0], [0.0, 2.0]]),
        conversions=np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]),
        spend=np.array([[1.0, 0.0], [2.0, 0.5], [0.0, 0.8]]),
    )
    kw.update(over)
    return DailyObservations(**kw)


def totals(**over) -> Observations:
    kw = dict(
        creative_ids=IDS,
        impressions=np.array([100.0, 50.0]),
        clicks=np.array([3.0, 1.0]),
        conversions=np.array([1.0, 1.0]),
        spend=np.array([1.0, 0.5]),
    )
    kw.update(over)
    return Observations(**kw)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("spend", [1.0, -0.5], "creative 'b': spend = -0.5 is not a finite non-negative number"),
        ("clicks", [np.nan, 1.0], "creative 'a': clicks = nan is not a finite non-negative number"),
        ("impressions", [100.0, np.inf], "creative 'b': impressions = inf is not a finite non-negative number"),
        ("conversions", [101.0, 1.0], "creative 'a': conversions = 101 is above impressions = 100"),
        ("clicks", [3.0, 51.0], "creative 'b': clicks = 51 is above impressions = 50"),
    ],
)
def test_totals_invariants(field, value, message):
    with pytest.raises(ObservationError) as e:
        totals(**{field: np.array(value)})
    assert str(e.value) == message


def test_daily_invariants_name_creative_and_field():
    conv = np.array([[1.0, 0.0], [0.0, 51.0], [0.0, 0.0]])
    with pytest.raises(ObservationError) as e:
        daily(conversions=conv)
    assert str(e.value) == "creative 'b': conversions = 51 is above impressions = 50"
    spend = np.array([[1.0, 0.0], [2.0, 0.5], [-1.0, 0.8]])
    with pytest.raises(ObservationError) as e:
        daily(spend=spend)
    assert str(e.value) == "creative 'a': spend = -1.0 is not a finite non-negative number"
    clicks = np.array([[3.0, 0.0], [5.0, 1.0], [0.0, 81.0]])
    with pytest.raises(ObservationError, match="creative 'b': clicks = 81 is above impressions = 80"):
        daily(clicks=clicks)


def test_dates_must_be_consecutive_and_increasing():
    gap = np.array(["2026-11-01", "2026-11-02", "2026-11-04"], dtype="datetime64[D]")
    with pytest.raises(ObservationError, match="^dates must be consecutive days in increasing order$"):
        daily(dates=gap)
    with pytest.raises(ObservationError, match="consecutive"):
        daily(dates=DATES[::-1])


def test_duplicate_ids_and_shapes():
    with pytest.raises(ObservationError, match="^creative ids must be unique$"):
        totals(creative_ids=("a", "a"))
    with pytest.raises(ObservationError, match="^creative ids must be unique$"):
        daily(creative_ids=("x", "x"))
    with pytest.raises(ObservationError, match=r"^spend: expected shape \(2,\), got \(3,\)$"):
        totals(spend=np.ones(3))
    with pytest.raises(ObservationError, match=r"observed: expected shape \(3, 2\)"):
        daily(observed=np.ones((2, 2), dtype=bool))
    assert issubclass(ObservationError, ValueError)


def test_arrays_are_read_only():
    o = totals()
    with pytest.raises(ValueError):
        o.spend[0] = 5.0


def test_totals_upto_subset_days_live_first_live():
    d = daily()
    t = d.totals()
    np.testing.assert_array_equal(t.impressions, [300.0, 130.0])
    np.testing.assert_array_equal(t.clicks, [8.0, 3.0])
    np.testing.assert_array_equal(t.conversions, [1.0, 1.0])
    np.testing.assert_allclose(t.spend, [3.0, 1.3])
    np.testing.assert_array_equal(d.days_live(), [2, 2])
    np.testing.assert_array_equal(d.first_live_index(), [0, 1])
    np.testing.assert_array_equal(d.observed, d.impressions > 0)
    u = d.upto(np.datetime64("2026-11-02"))
    assert u.n_days == 2 and u.dates[-1] == np.datetime64("2026-11-02")
    np.testing.assert_array_equal(u.totals().impressions, [300.0, 50.0])
    np.testing.assert_array_equal(u.first_live_index(), [0, 1])
    assert d.upto(np.datetime64("2026-10-31")).n_days == 0
    s = d.subset([1])
    assert s.creative_ids == ("b",)
    np.testing.assert_array_equal(s.impressions, d.impressions[:, [1]])
    st = t.subset([1, 0])
    assert st.creative_ids == ("b", "a")
    np.testing.assert_array_equal(st.impressions, [130.0, 300.0])


def test_never_live_and_empty():
    imps = np.array([[100.0, 0.0], [200.0, 0.0], [0.0, 0.0]])
    z = np.zeros((3, 2))
    d = daily(impressions=imps, clicks=z, conversions=z, spend=z)
    np.testing.assert_array_equal(d.first_live_index(), [0, -1])
    np.testing.assert_array_equal(d.days_live(), [2, 0])
    e = DailyObservations.empty(["a", "b", "c"])
    assert e.n_days == 0 and e.n_creatives == 3
    np.testing.assert_array_equal(e.totals().impressions, np.zeros(3))
    np.testing.assert_array_equal(Observations.empty(["a"]).spend, [0.0])

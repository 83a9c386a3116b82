"""Each realism feature of the simulated world does what it says."""

from __future__ import annotations

import numpy as np

from simulations.world import build_worlds

from .helpers import MONEY, UNIT, run_one, study

NO_HOLDS = {
    "min_budget": 20.0,
    "max_change": 0.5,
    "min_days_between_changes": 0,
    "exploration_floor": 0.05,
    "hold_learning": False,
}


def test_delay_really_delays():
    # Every conversion reported exactly 3 days after its impression.
    s = study(MONEY, world={"delay": {"window": 4, "pmf": [0, 0, 0, 1]}})
    r = run_one(s, "uniform")
    conv, rep = r["conversions"], r["reported"]  # (periods, n_rep, k)
    assert conv.sum() > 0
    assert np.all(rep[:3] == 0)
    assert np.array_equal(rep[3:], conv[:-3])


def test_geometric_delay_lags_but_loses_nothing_within_the_window():
    s = study(MONEY, world={"delay": {"window": 7, "half_life": 1.5}}, study={"periods": 20})
    r = run_one(s, "uniform", n_rep=50)
    true_cum = r["conversions"].cumsum(axis=0).sum(axis=(1, 2))
    rep_cum = r["reported"].cumsum(axis=0).sum(axis=(1, 2))
    assert np.all(rep_cum <= true_cum)
    assert rep_cum[-1] < true_cum[-1]
    # Everything from the first 14 days has been reported by day 19 (window 7).
    assert rep_cum[-1] >= true_cum[13]


def test_without_delay_reports_are_immediate():
    r = run_one(study(MONEY), "uniform")
    assert np.array_equal(r["reported"], r["conversions"])


def test_fatigue_by_days_halves_the_rate():
    s = study(MONEY, world={"fatigue": {"by": "days", "half_life": 4.0}})
    r = run_one(s, "uniform")
    rate = r["rate"]  # every creative runs every day under uniform
    base = np.array(MONEY["world"]["conversion_rates"])
    t = np.arange(rate.shape[0])
    assert np.allclose(rate, base[None, None, :] * 0.5 ** (t / 4.0)[:, None, None])


def test_fatigue_by_impressions():
    s = study(MONEY, world={"fatigue": {"by": "impressions", "half_life": 50_000.0}})
    r = run_one(s, "uniform")
    cum = np.concatenate([np.zeros_like(r["impressions"][:1]), r["impressions"].cumsum(axis=0)[:-1]])
    base = np.array(MONEY["world"]["conversion_rates"])
    assert np.allclose(r["rate"], base * 0.5 ** (cum / 50_000.0))
    assert r["rate"][-1].max() < 0.5 * base.max()


def test_fatigue_can_be_switched_off():
    s = study(MONEY, world={"fatigue": {"enabled": False, "half_life": 1.0}})
    r = run_one(s, "uniform")
    assert np.allclose(r["rate"], np.array(MONEY["world"]["conversion_rates"]))


def test_saturation_raises_cpm_with_spend():
    s = study(MONEY, world={"cpm": {"saturation": 0.5, "saturation_spend": 100.0}})
    r = run_one(s, "thompson", n_rep=30)
    cpm0 = np.array(MONEY["world"]["cpms"])
    b = r["budgets"]
    running = b > 0
    expected = cpm0 * (1.0 + b / 100.0) ** 0.5
    assert np.allclose(r["cpm"][running], np.broadcast_to(expected, b.shape)[running])
    assert np.all(r["cpm"][running] > np.broadcast_to(cpm0, b.shape)[running])


def test_cpm_noise_is_mean_one():
    s = study(MONEY, world={"cpm": {"noise": 0.2}})
    r = run_one(s, "uniform", n_rep=200)
    ratio = r["cpm"] / np.array(MONEY["world"]["cpms"])
    assert ratio.std() > 0.1
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std() / np.sqrt(ratio.size)


def test_weekday_seasonality():
    week = [1.0, 0.9, 0.8, 1.2, 1.1, 0.7, 1.3]
    s = study(MONEY, world={"seasonality": {"weekday": week, "start_weekday": 2}})
    r = run_one(s, "uniform")
    base = np.array(MONEY["world"]["conversion_rates"])
    for t in range(r["rate"].shape[0]):
        assert np.allclose(r["rate"][t], base * week[(2 + t) % 7])


def test_expiry_removes_a_creative():
    creatives = [
        {"id": "a", "conversion_rate": 2e-4, "cpm": 6.0},
        {"id": "b", "conversion_rate": 4e-4, "cpm": 6.0, "expires": 5},
        {"id": "c", "conversion_rate": 3e-4, "cpm": 6.0},
    ]
    s = study(MONEY, world={"conversion_rates": None, "cpms": None, "creatives": creatives}, guardrails=NO_HOLDS)
    for policy in ("thompson", "oracle"):
        r = run_one(s, policy)
        b = r["budgets"]
        assert np.all(b[5:, :, 1] == 0) and np.all(~r["live"][5:, :, 1])
        assert np.all(b[:5, :, 1] > 0)
        assert np.allclose(b[5:].sum(axis=2), 500.0)


def test_arrival_adds_a_creative():
    creatives = [
        {"id": "a", "conversion_rate": 2e-4, "cpm": 6.0},
        {"id": "b", "conversion_rate": 3e-4, "cpm": 6.0},
        {"id": "new", "conversion_rate": 5e-4, "cpm": 6.0, "arrives": 4},
    ]
    s = study(MONEY, world={"conversion_rates": None, "cpms": None, "creatives": creatives}, guardrails=NO_HOLDS)
    r = run_one(s, "uniform")
    b = r["budgets"]
    assert np.all(b[:4, :, 2] == 0)
    assert np.all(b[4:, :, 2] > 0)  # the floor at least; it starts at any budget
    oracle = run_one(s, "oracle")
    assert np.all(oracle["budgets"][4:, :, 2] > 0) and np.all(oracle["budgets"][:4, :, 2] == 0)


def test_unit_cost_mode_buys_impressions_not_money():
    r = run_one(study(UNIT), "thompson")
    assert np.array_equal(r["impressions"], r["budgets"])
    assert np.all(r["impressions"].sum(axis=2) == 200)
    assert np.all(r["impressions"] == np.rint(r["impressions"]))
    assert r["spend"].sum() == 0


def test_generator_draws_rates_and_organic_signal():
    s = study(
        MONEY,
        world={
            "conversion_rates": None,
            "cpms": None,
            "generator": {"n_creatives": 5, "rate": 2.5e-4, "spread": 0.4, "organic_strength": 0.8},
        },
    )
    w = build_worlds(s, None, 4000, np.random.default_rng(0))[0]
    assert w.rates.shape == (4000, 5)
    # 20,000 independent normal log rates: the sample sd has standard error sd / sqrt(2 (n - 1)) and the
    # sample correlation (1 - rho^2) / sqrt(n - 1); each within 4 of them.
    n = w.rates.size
    assert abs(np.log(w.rates).std() - 0.4) < 4 * 0.4 / np.sqrt(2 * (n - 1))
    assert np.all((w.cpm >= 5.0) & (w.cpm <= 8.0))
    corr = np.corrcoef(np.log(w.rates).ravel(), np.log(w.organic).ravel())[0, 1]
    assert abs(corr - 0.8) < 4 * (1 - 0.8**2) / np.sqrt(n - 1)

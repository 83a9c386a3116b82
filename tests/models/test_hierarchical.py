"""Tests of the hierarchical model. Sampling runs are small (a few hundred draws); the long ones are `slow`.

Statistical checks are seeded; tolerances come from the binomial or posterior standard error, as noted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.errors import ModelError
from models.hierarchical import (
    _SAMPLERS,
    DEFAULT_DELAY_CDF,
    HierarchicalModel,
    _design,
    _exposure,
    _retry_draws,
    diagnose_summary,
    gate_stats,
    prior_predictive_rates,
    simulate_campaign,
    standardise_organic,
)

ROOT = Path(__file__).resolve().parents[2]
IPD = 1000.0 / 8.0  # impressions per dollar at the simulator's CPM


def small(**kw) -> HierarchicalModel:
    base = dict(method="nuts", draws=300, tune=300, chains=2, min_ess=100.0, max_rhat=1.05)
    base.update(kw)
    return HierarchicalModel(**base)


# ------------------------------------------------------------------------------------------ no sampling
def test_import_does_not_import_pymc():
    code = "import sys, models.hierarchical; print(any(m.split('.')[0] in ('pymc', 'arviz', 'pytensor') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_compile_dir_moves_pytensor_cache(tmp_path):
    code = (
        "import sys; from models.hierarchical import _set_compile_dir; _set_compile_dir(sys.argv[1]); "
        "import pytensor; print(pytensor.config.base_compiledir)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cc")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str((tmp_path / "cc").resolve())


def test_default_delay_cdf_is_geometric_and_closes_at_one():
    cdf = np.array(DEFAULT_DELAY_CDF)
    assert cdf.size == 7 and cdf[-1] == 1.0 and np.all(np.diff(cdf) > 0)
    assert cdf[0] == pytest.approx(0.55) and cdf[1] == pytest.approx(1 - 0.45**2, abs=1e-4)


def test_standardise_organic_unknown_is_mean():
    x = standardise_organic([np.array([0.01, 0.1, np.nan]), None], [3, 2])
    assert x[0][2] == 0.0 and np.all(x[1] == 0.0)
    assert x[0][0] == pytest.approx(-1.0) and x[0][1] == pytest.approx(1.0)


def test_design_ages_delay_and_fatigue_exposure():
    sim = simulate_campaign(np.random.default_rng(0), n_creatives=3, n_days=10)
    d = _design([sim.daily], [None], "days", (0.5, 0.8, 1.0))
    # with fatigue every day has its own exposure: one cell per day; order the creative's cells by day
    first = d.cell_creative == 0
    order = np.argsort(d.cell_exposure[first])
    np.testing.assert_allclose(d.cell_delay[first][order], [1.0] * 7 + [1.0, 0.8, 0.5])
    np.testing.assert_allclose(d.cell_exposure[first][order], np.arange(10) / 7.0)
    np.testing.assert_allclose(d.current_exposure, 9 / 7.0)
    np.testing.assert_allclose(
        _exposure(sim.daily, "impressions")[:, 1],
        np.cumsum(sim.daily.impressions[:, 1]) / 1e5 - sim.daily.impressions[:, 1] / 1e5,
    )


def test_design_merges_days_with_equal_delay_without_fatigue():
    sim = simulate_campaign(np.random.default_rng(0), n_creatives=3, n_days=10)
    d = _design([sim.daily], [None], "none", (0.5, 0.8, 1.0))
    assert d.cell_creative.size == 3 * 3  # ages 0, 1 and one merged cell for ages >= 2
    assert d.cell_impressions.sum() == sim.daily.impressions.sum()
    assert d.cell_conversions.sum() == sim.daily.conversions.sum()


def test_bad_settings_raise_model_error():
    with pytest.raises(ModelError, match="fatigue"):
        HierarchicalModel(fatigue="weeks")
    with pytest.raises(ModelError, match="delay_cdf"):
        HierarchicalModel(delay_cdf=(0.5, 0.4, 1.0))
    with pytest.raises(ModelError, match=r"prior: unknown keys \['organic_mean'\]"):
        HierarchicalModel(prior={"organic_mean": 0.5})


def test_prior_predictive_numpy_mass_in_domain_range():
    rates = prior_predictive_rates(n_creatives=5, n_samples=20_000, rng=np.random.default_rng(1))
    inside = np.mean((rates > 1e-5) & (rates < 1e-2))
    assert inside > 0.9
    assert 5e-5 < np.median(rates) < 5e-4  # domain: ~1e-4 to 1.5e-4 per impression


def test_prior_predictive_pymc_model_matches():
    """The same check on the PyMC graph itself (catches a prior written differently from the docstring)."""
    import pymc as pm

    from models.hierarchical import build_pymc_model

    sim = simulate_campaign(np.random.default_rng(2), n_creatives=5, n_days=5)
    model = build_pymc_model(_design([sim.daily], [sim.organic_rate], "none", None))
    with model:
        prior = pm.sample_prior_predictive(draws=2000, random_seed=3, var_names=["rate"])
    rates = np.asarray(prior["prior"]["rate"]).ravel()
    assert np.mean((rates > 1e-5) & (rates < 1e-2)) > 0.9
    assert 5e-5 < np.median(rates) < 5e-4


def test_objectives_from_rate_draws():
    """conversions_per_dollar = rate x impressions per dollar; click_rate is the conjugate click Beta."""
    sim = simulate_campaign(np.random.default_rng(9), n_creatives=3, n_days=10)
    rate = np.full((400, 3), 2e-4)
    model = HierarchicalModel()
    rng = np.random.default_rng(1)
    cpd = model._posterior(sim.daily, rate, "conversions_per_dollar", 1000, rng, {"model": "hierarchical"})
    ipd = model.cost.impressions_per_dollar(sim.daily.totals())
    np.testing.assert_allclose(cpd.mean(), 2e-4 * ipd, rtol=0.01)
    np.testing.assert_allclose(np.median(cpd.cpa_draws, axis=0), 1 / (2e-4 * ipd), rtol=0.01)
    clicks = model._posterior(sim.daily, rate, "click_rate", 4000, rng, {})
    tot = sim.daily.totals()
    expected = (1 + tot.clicks) / (100 + tot.impressions)  # Beta(1, 99) prior mean update
    np.testing.assert_allclose(clicks.mean(), expected, rtol=0.02)


def test_retry_draws_scale_with_the_ess_shortfall():
    stats = lambda ess: {"min_ess_bulk": ess}  # noqa: E731
    assert _retry_draws(2000, stats(500.0), 400.0) == 2000  # ESS was not the problem
    assert _retry_draws(2000, stats(390.0), 400.0) == 4000  # at least 2x
    assert _retry_draws(2000, stats(200.0), 400.0) == 6000  # 1.5 x (400 / 200)
    assert _retry_draws(2000, stats(50.0), 400.0) == 8000  # at most 4x
    assert _retry_draws(2000, stats(0.0), 400.0) == 8000  # a NaN ESS is reported as 0


def _tree(creative_sd, rate, diverging):
    import xarray as xr

    post = xr.Dataset(
        {
            "intercept_mean": (("chain", "draw"), np.random.default_rng(0).normal(size=rate.shape[:2])),
            "creative_sd": (("chain", "draw"), creative_sd),
            "rate": (("chain", "draw", "creative"), rate),
        }
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def test_gate_checks_ess_of_every_summary_variable_and_names_the_worst():
    rng = np.random.default_rng(1)
    iid = rng.normal(size=(2, 1000))
    walk = np.cumsum(rng.normal(size=(2, 1000)), axis=1)  # a random walk: tiny ESS, large R-hat
    rate = rng.normal(size=(2, 1000, 3))
    st = gate_stats(_tree(walk, rate, np.zeros((2, 1000), bool)))
    assert st["min_ess_var"] == "creative_sd" and st["min_ess_bulk"] < 50
    assert st["max_rhat_var"] == "creative_sd" and st["max_rhat"] > 1.01
    assert st["divergences"] == 0
    div = np.zeros((2, 1000), bool)
    div[0, :3] = True
    st = gate_stats(_tree(iid, rate, div))
    assert st["min_ess_bulk"] > 1000 and st["max_rhat"] < 1.01 and st["divergences"] == 3
    # a constant variable has a NaN R-hat: counted as the worst possible, not skipped
    st = gate_stats(_tree(np.ones((2, 1000)), rate, div))
    assert st["max_rhat"] == np.inf and st["max_rhat_var"] == "creative_sd"
    stuck = np.ones((2, 1000))
    stuck[1] = 2.0  # each chain stuck at its own value
    st = gate_stats(_tree(stuck, rate, div))
    assert st["min_ess_var"] == "creative_sd" and st["min_ess_bulk"] < 3 and st["max_rhat"] > 100


# ------------------------------------------------------------------------------------------ sampling
@pytest.mark.slow  # NUTS: 20-50 s on the shared 2-core machine
def test_launch_day_posterior_follows_an_informed_organic_prior():
    """No results yet (zero cells): the posterior is the prior, and with organic_coef ~ N(0.5, 0.1) the
    creatives rank by organic engagement, each sd of log engagement worth exp(0.5) ~ 1.65x in odds."""
    from models.observations import DailyObservations

    z = np.zeros((0, 3))
    daily = DailyObservations(("lo", "mid", "hi"), np.array([], dtype="datetime64[D]"), z, z, z, z)
    organic = np.array([0.02, 0.05, 0.125])  # equal steps in log: x = -1.22, 0, +1.22
    model = small(organic_rate=organic, prior={"organic_mu": 0.5, "organic_sd": 0.1}, draws=1000)
    post = model.fit(daily, "conversion_rate", 4000, np.random.default_rng(3))
    assert post.diagnostics["gate"] in ("passed", "retried")
    med = np.median(post.draws, axis=0)
    assert med[0] < med[1] < med[2]
    x = np.log(organic) - np.log(organic).mean()
    x /= np.log(organic).std()
    # medians of the rates are invlogit of the median logits, rates ~1e-4: the log ratio is ~0.5 x dx
    np.testing.assert_allclose(np.log(med[2] / med[0]), 0.5 * (x[2] - x[0]), rtol=0.15)
    pb = post.prob_best()
    assert pb[2] > pb[1] > pb[0]


@pytest.mark.slow  # NUTS: 20-50 s on the shared 2-core machine
def test_reused_compiled_model_gives_the_fresh_compile_draws():
    """`reuse_compiled`: the second campaign's fit (data swapped into the compiled model, another number of
    cells) equals a fit of it by a freshly compiled model with the same seed, draw for draw."""
    rng = np.random.default_rng(21)
    first = simulate_campaign(rng, n_creatives=4, n_days=12)
    second = simulate_campaign(rng, n_creatives=4, n_days=20)
    model = small(reuse_compiled=True, organic_rate=second.organic_rate)
    _SAMPLERS.clear()
    model.fit(first.daily, "conversion_rate", 500, np.random.default_rng(1))
    reused = model.fit(second.daily, "conversion_rate", 500, np.random.default_rng(2))
    assert reused.diagnostics["compile_reused"] is True
    _SAMPLERS.clear()
    fresh = model.fit(second.daily, "conversion_rate", 500, np.random.default_rng(2))
    assert fresh.diagnostics["compile_reused"] is False
    np.testing.assert_array_equal(reused.draws, fresh.draws)
    # and the data really were swapped: a fit to the first campaign differs
    assert not np.allclose(
        reused.mean(), model.fit(first.daily, "conversion_rate", 500, np.random.default_rng(2)).mean()
    )
    _SAMPLERS.clear()


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    """Ten simulated 5-creative campaigns with a positive organic effect, fitted once."""
    rng = np.random.default_rng(11)
    sims = [
        simulate_campaign(rng, n_creatives=5, n_days=21, intercept=-8.8 + rng.normal(0, 0.3), organic_coef=0.6)
        for _ in range(10)
    ]
    path = tmp_path_factory.mktemp("fit") / "portfolio.nc"
    posts = small().fit_portfolio(
        [s.daily for s in sims], [s.organic_rate for s in sims], "conversion_rate", 2000, rng, save_to=path
    )
    return sims, posts, path


@pytest.mark.slow  # NUTS: 20-50 s on the shared 2-core machine
def test_portfolio_posterior_shape_and_diagnostics(portfolio):
    sims, posts, path = portfolio
    assert len(posts) == 10
    p = posts[0]
    assert p.draws.shape == (2000, 5) and p.cpa_draws.shape == (2000, 5)
    d = p.diagnostics
    assert d["model"] == "hierarchical" and d["sampler"] == "nutpie" and d["fallback"] is False
    assert d["gate"] in ("passed", "retried")
    assert d["fit_path"] == str(path)
    for key in ("max_rhat", "min_ess_bulk", "divergences", "sampling_seconds", "warnings"):
        assert key in d


@pytest.mark.slow  # NUTS: 20-50 s on the shared 2-core machine
def test_recovers_known_rates_within_90_intervals(portfolio):
    sims, posts, _ = portfolio
    inside = []
    for s, p in zip(sims, posts):
        lo, hi = p.interval(0.9).T
        inside.extend((s.truth["rate"] >= lo) & (s.truth["rate"] <= hi))
    # 50 creatives at nominal 0.9: binomial sd 0.042; accept within ~3 sd below (intervals overlap by pooling).
    assert 0.77 <= np.mean(inside) <= 1.0


@pytest.mark.slow  # NUTS: 20-50 s on the shared 2-core machine
def test_recovers_positive_organic_coefficient(portfolio):
    import xarray as xr

    _, _, path = portfolio
    tree = xr.open_datatree(path, engine="h5netcdf")
    coef = np.asarray(tree["posterior"]["organic_coef"]).ravel()
    assert np.quantile(coef, 0.05) > 0.0
    assert abs(coef.mean() - 0.6) < 3 * coef.std() + 0.05


@pytest.mark.slow  # NUTS: 20-50 s on the shared 2-core machine
def test_diagnose_summary_reads_saved_fit(portfolio):
    _, _, path = portfolio
    text = diagnose_summary(path)
    assert "organic_coef" in text and "r_hat" in text and "ess_bulk" in text


def test_delay_correction_removes_recent_day_bias():
    """A young campaign (7 days): the last days miss ~12% of conversions until attribution completes.

    Pooled over 25 data-rich creatives (5 campaigns, fitted one by one) the posterior means are precise to ~2%, so the uncorrected fit
    (delay_cdf all ones) is clearly biased low while the corrected one is not. The fit is the fast path's
    at its default gate (ESS >= 400: the posterior means' Monte Carlo error ~0.3% of the 5% tolerance),
    not NUTS at 2 x 300 draws, whose ESS sat exactly at its gate of 100 (flaky).
    """
    rng = np.random.default_rng(5)
    sims = [
        simulate_campaign(
            rng,
            n_creatives=5,
            n_days=7,
            impressions_per_day=60_000,
            intercept=-8.8 + rng.normal(0, 0.3),
            organic_coef=0.0,
            creative_sd=0.3,
        )
        for _ in range(5)
    ]
    dailies = [s.daily for s in sims]
    truth = np.concatenate([s.truth["rate"] for s in sims])

    def ratio(cdf):
        model = HierarchicalModel(delay_cdf=cdf)
        fit_rng = np.random.default_rng(6)
        posts = [model.fit(d, "conversion_rate", 1000, fit_rng) for d in dailies]
        for p in posts:
            assert p.diagnostics["method"] == "laplace_is" and p.diagnostics["ess"] >= 400, p.diagnostics
        est = np.concatenate([p.mean() for p in posts])
        return float(np.exp(np.mean(np.log(est / truth))))

    corrected = ratio(None)
    uncorrected = ratio((1.0,))
    missing = 1 - np.mean(DEFAULT_DELAY_CDF)  # share of the last 7 days' conversions missing
    assert abs(corrected - 1.0) < 0.05
    assert uncorrected < 1.0 - missing / 2
    assert uncorrected < corrected - 0.05


def test_failed_gate_falls_back_to_conjugate():
    sim = simulate_campaign(np.random.default_rng(7), n_creatives=4, n_days=10)
    # the default method: the fast path fails its ESS gate, then NUTS (and its retry), then the conjugate model
    model = HierarchicalModel(draws=10, tune=10, min_ess=1e9, on_failure="fallback", click_alpha=3.0, click_beta=97.0)
    with pytest.warns(RuntimeWarning, match="fell back to the conjugate model"):
        post = model.fit(sim.daily, n_draws=500, rng=np.random.default_rng(8))
    d = post.diagnostics
    assert d["fallback"] is True and d["gate"] == "failed" and d["model"] == "hierarchical"
    assert d["method"] == "conjugate" and d["pareto_k"] <= 0.7 and d["fast_path_ess"] < 1e9
    assert d["warnings"][0].startswith("fast path (laplace_is) failed its gate: importance-sampling ESS ")
    assert d["warnings"][0].endswith(" < 1e+09; ran NUTS instead")
    assert any("conjugate" in w for w in d["warnings"])
    assert sum("attempt" in w for w in d["warnings"]) == 2  # the first try and the retry
    # the fallback uses the model's click prior, not the default Beta(1, 99)
    with pytest.warns(RuntimeWarning, match="fell back to the conjugate model"):
        click = model.fit(sim.daily, "click_rate", n_draws=10, rng=np.random.default_rng(8))
    assert click.marginals is not None
    totals = sim.daily.totals()
    np.testing.assert_allclose(click.mean(), (3.0 + totals.clicks) / (100.0 + totals.impressions))
    assert post.marginals is not None  # the conjugate posterior's exact marginals
    expected = model.conjugate().fit(sim.daily, n_draws=10).mean()
    np.testing.assert_allclose(post.mean(), expected)


def test_failed_gate_stops_with_model_error():
    sim = simulate_campaign(np.random.default_rng(7), n_creatives=4, n_days=10)
    model = HierarchicalModel(method="nuts", draws=10, tune=10, min_ess=1e9, on_failure="stop")
    with pytest.raises(ModelError, match=r"failed its diagnostics gate after a retry") as err:
        model.fit(sim.daily, n_draws=500, rng=np.random.default_rng(8))
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_default_settings_pass_gate_and_seed_reproduces():
    sim = simulate_campaign(np.random.default_rng(3), intercept=-8.8, organic_coef=0.3, creative_sd=0.4)
    model = HierarchicalModel(organic_rate=sim.organic_rate)
    a = model.fit(sim.daily, rng=np.random.default_rng(1), n_draws=1000)
    b = model.fit(sim.daily, rng=np.random.default_rng(1), n_draws=1000)
    assert a.diagnostics["gate"] == "passed", a.diagnostics
    np.testing.assert_array_equal(a.draws, b.draws)
    lo, hi = a.interval(0.99).T
    assert np.all((sim.truth["rate"] * IPD > lo * 0.9) & (sim.truth["rate"] * IPD < hi * 1.1))


@pytest.mark.slow
def test_pymc_sampler_and_fatigue():
    """PyMC's own NUTS and the fatigue term: the decline per week and the current (fatigued) rates."""
    rng = np.random.default_rng(4)
    sim = simulate_campaign(rng, n_days=28, fatigue="days", intercept=-8.5, fatigue_rate=0.4, creative_sd=0.3)
    model = HierarchicalModel(sampler="pymc", fatigue="days", organic_rate=sim.organic_rate)
    idata, diag = model.sample_posterior([sim.daily], [sim.organic_rate], rng=rng)
    assert diag["sampler"] == "pymc" and diag["max_rhat"] < 1.05
    phi = np.asarray(idata["posterior"]["fatigue"]).ravel()
    assert abs(phi.mean() - 0.4) < 3 * phi.std()
    rate = np.asarray(idata["posterior"]["rate"].transpose("chain", "draw", "creative")).reshape(-1, 5)
    lo, hi = np.quantile(rate, [0.005, 0.995], axis=0)
    assert np.mean((sim.truth["rate"] >= lo) & (sim.truth["rate"] <= hi)) >= 0.8

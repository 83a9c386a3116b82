"""Tests of the hierarchical model's fast path: its numpy log density against PyMC's, the PSIS port against
ArviZ's, and the Laplace + importance-sampling fit with its gate and fallbacks.

Statistical checks are seeded; tolerances come from standard errors, as noted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from allocator.decisions.settings import hierarchical_model
from allocator.plan import ModelSettings, Prior
from models.hierarchical import (
    PARETO_K_MAX,
    HierarchicalModel,
    LogDensity,
    _centred_mask,
    _design,
    build_pymc_model,
    psis,
    simulate_campaign,
)
from models.hierarchical.psis import ess, gpd_fit

ROOT = Path(__file__).resolve().parents[2]

#: (creatives per campaign, campaigns, fatigue, delay CDF): 50 and 2 x 25 creatives centre the data-rich ones
#: (PyMC's compile_logp takes ~5-10 s a design, so four of the six run with the slow tests)
DESIGNS = [
    pytest.param(1, 1, "none", None, marks=pytest.mark.slow),
    (5, 1, "days", (0.3, 0.8, 1.0)),
    pytest.param(5, 1, "none", None, marks=pytest.mark.slow),
    pytest.param(5, 3, "impressions", (1.0,), marks=pytest.mark.slow),
    pytest.param(50, 1, "none", None, marks=pytest.mark.slow),
    (25, 2, "days", None),
]


def _model(n: int, k: int, fatigue: str, cdf, seed: int):
    rng = np.random.default_rng(seed)
    sims = [
        simulate_campaign(rng, n_creatives=n, n_days=14, fatigue=fatigue, impressions_per_day=20_000) for _ in range(k)
    ]
    design = _design([s.daily for s in sims], [s.organic_rate for s in sims], fatigue, cdf)
    return design, LogDensity(design, fatigue, None, _centred_mask(design, "auto")), rng


@pytest.mark.parametrize(("n", "k", "fatigue", "cdf"), DESIGNS)
def test_log_density_equals_pymc_compile_logp(n, k, fatigue, cdf):
    """The two codings of the model agree exactly (same constants) at random points; the gradient is right."""
    design, ld, rng = _model(n, k, fatigue, cdf, seed=n + 10 * k)
    model = build_pymc_model(design, fatigue, None, parameterization="auto", shared=False)
    assert ld.dim == sum(int(np.prod(model.initial_point()[v.name].shape)) for v in model.value_vars)
    if n * k >= 20:
        assert ld.centred.any()  # the centred block is exercised
    logp = model.compile_logp()
    theta = rng.normal(size=(12, ld.dim))
    theta[:, 0] += -9.0  # intercepts near the domain's
    for t in theta:
        assert ld.logp(t) == pytest.approx(float(logp(ld.pymc_point(t))), rel=1e-9, abs=1e-6)
        _, grad = ld.logp_grad(t)
        numeric = approx_fprime(t, ld.logp, 1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3 * max(1.0, np.abs(grad).max()))
    # batched and single evaluation agree
    np.testing.assert_allclose(ld.logp(theta), [ld.logp(t) for t in theta], rtol=1e-12)


def test_psis_equals_arviz_psislw():
    """Own port = ArviZ's (which takes log-likelihoods, i.e. minus the log weights), weights and k."""
    from arviz_stats.base import array_stats

    rng = np.random.default_rng(1)
    for scale in (0.1, 1.0, 3.0):
        for size in (100, 1000, 4000):
            lw = scale * rng.standard_t(3, size=size)
            ours, k = psis(lw)
            theirs, k_ref = array_stats.psislw(-lw, r_eff=1.0)
            np.testing.assert_allclose(ours, theirs, atol=1e-12)
            assert k == pytest.approx(k_ref, abs=1e-12)
            assert np.exp(ours).sum() == pytest.approx(1.0)


def test_gpd_fit_recovers_the_shape():
    """Generalized Pareto draws with k = 0.5: the estimate within 4 SE ((1 + k) / sqrt(n), Zhang-Stephens)."""
    rng = np.random.default_rng(2)
    n, k, sigma = 2000, 0.5, 2.0
    x = np.sort(sigma * np.expm1(-k * np.log1p(-rng.uniform(size=n))) / k)
    k_hat, sigma_hat = gpd_fit(x)
    assert abs(k_hat - k) < 4 * (1 + k) / np.sqrt(n)
    assert abs(sigma_hat / sigma - 1) < 0.15


def test_psis_flags_infinite_variance_and_passes_equal_weights():
    rng = np.random.default_rng(3)
    lw, k = psis(np.zeros(1000))
    assert k == np.inf or k < 0.5  # constant weights: no tail to fit
    np.testing.assert_allclose(np.exp(lw), 1e-3)
    assert ess(lw) == pytest.approx(1000.0)
    # Pareto(alpha = 1) weights (k = 1, infinite mean): clearly over the 0.7 gate (k SE ~ 2 / sqrt(189))
    _, k_heavy = psis(-np.log(rng.uniform(size=4000)))
    assert k_heavy > PARETO_K_MAX
    assert psis(np.array([0.0] * 99 + [np.inf]))[1] == np.inf


def test_fast_path_covers_the_true_rates():
    """The default method fits a 5 x 30 campaign in one pass of its gate and covers the truth: over 10
    campaigns x 5 creatives the 90% intervals hold >= 38 of 50 (binomial(50, 0.9): mean 45, sd 2.1)."""
    rng = np.random.default_rng(4)
    hits = 0
    for _ in range(10):
        sim = simulate_campaign(rng, n_creatives=5, n_days=30, impressions_per_day=4000)
        post = HierarchicalModel(organic_rate=sim.organic_rate).fit(sim.daily, "conversion_rate", 2000, rng)
        d = post.diagnostics
        assert d["method"] == "laplace_is" and d["gate"] == "passed", d
        assert d["pareto_k"] <= PARETO_K_MAX and d["ess"] >= 400
        lo, hi = post.interval(0.90).T
        hits += int(np.sum((sim.truth["rate"] >= lo) & (sim.truth["rate"] <= hi)))
    assert hits >= 38


def test_fast_path_imports_neither_pymc_nor_arviz():
    code = (
        "import json, sys, numpy as np\n"
        "from models.hierarchical import HierarchicalModel, simulate_campaign\n"
        "s = simulate_campaign(np.random.default_rng(5), n_creatives=5, n_days=30)\n"
        "p = HierarchicalModel(organic_rate=s.organic_rate).fit(s.daily, rng=np.random.default_rng(6))\n"
        "heavy = sorted(m for m in ('pymc', 'arviz', 'pytensor', 'nutpie') if m in sys.modules)\n"
        "print(json.dumps([p.diagnostics['method'], heavy]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout) == ["laplace_is", []]


def test_portfolio_fast_path_shares_the_hyperpriors():
    rng = np.random.default_rng(7)
    sims = [simulate_campaign(rng, n_creatives=4, n_days=21, organic_coef=0.0) for _ in range(3)]
    draws, diag = HierarchicalModel().sample_fast([s.daily for s in sims], None, rng, n_draws=500)
    assert set(draws) == {"intercept_mean", "campaign_sd", "organic_coef", "creative_sd", "rate"}
    assert draws["rate"].shape == (500, 12) and diag["method"] == "laplace_is"
    assert np.all(draws["campaign_sd"] > 0) and np.all((draws["rate"] > 0) & (draws["rate"] < 1))
    # a small portfolio's campaign_sd is weakly identified (3 campaigns): the gate may send it to NUTS
    assert diag["gate"] == ("passed" if diag["pareto_k"] <= PARETO_K_MAX and diag["ess"] >= 400 else "failed")


def test_plan_method_and_click_prior_reach_the_model():
    """`[model] method` and the plan's click prior (the defect: they were ignored) reach the model and its
    conjugate fallback."""
    model = hierarchical_model(ModelSettings(method="nuts"), Prior(click_alpha=2.0, click_beta=198.0))
    assert model.method == "nuts"
    conj = model.conjugate()
    assert (conj.click_prior.alpha, conj.click_prior.beta) == (2.0, 198.0)
    assert hierarchical_model(ModelSettings(), Prior()).method == "laplace_is"
    # the hierarchical fit's click draws come from the same prior: mean within 5 SE of Beta(2 + c, 198 + n - c)
    sim = simulate_campaign(np.random.default_rng(8), n_creatives=3, n_days=10)
    fast = hierarchical_model(ModelSettings(), Prior(click_alpha=2.0, click_beta=198.0))
    post = fast.fit(sim.daily, "click_rate", 4000, np.random.default_rng(9))
    assert post.diagnostics["method"] == "laplace_is"
    t = sim.daily.totals()
    a, b = 2.0 + t.clicks, 198.0 + t.impressions - t.clicks
    mean, sd = a / (a + b), np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert np.all(np.abs(post.draws.mean(axis=0) - mean) < 5 * sd / np.sqrt(4000))


@pytest.mark.slow
def test_pareto_k_failure_hands_over_to_nuts():
    """Too few importance draws (20 a stage, 160 after the 8 stages) leave the weights' tail heavy: Pareto k
    over 0.7; NUTS takes over and its draws decide, with the reason kept."""
    sim = simulate_campaign(np.random.default_rng(10), n_creatives=5, n_days=14)
    model = HierarchicalModel(is_draws=20, draws=500, tune=500, min_ess=100.0, max_rhat=1.05)
    post = model.fit(sim.daily, n_draws=500, rng=np.random.default_rng(11))
    d = post.diagnostics
    assert d["method"] == "nuts" and d["gate"] in ("passed", "retried") and not d["fallback"], d
    assert d["pareto_k"] > PARETO_K_MAX
    assert d["warnings"][0].startswith(f"fast path (laplace_is) failed its gate: Pareto k {d['pareto_k']:.2f} > 0.7")


def test_fast_path_fit_is_saved_without_xarray_and_diagnose_reads_the_newer(tmp_path):
    from models.hierarchical import diagnose_summary

    sim = simulate_campaign(np.random.default_rng(12), n_creatives=3, n_days=14)
    target = tmp_path / "plan.fit.nc"
    post = HierarchicalModel().fit(sim.daily, rng=np.random.default_rng(13), save_to=target)
    assert post.diagnostics["fit_path"] == str(tmp_path / "plan.fit.npz")
    text = diagnose_summary(target)  # no .nc there: the .npz is the latest fit
    assert text.splitlines()[0].startswith("fast path (laplace_is) fit plan.fit.npz: Pareto k ")
    assert sum(line.startswith("rate[cr") for line in text.splitlines()) == 3
    assert "creative_sd" in text


def _ld(n: int, k: int, fatigue: str, seed: int) -> LogDensity:
    rng = np.random.default_rng(seed)
    sims = [simulate_campaign(rng, n_creatives=n, n_days=14, fatigue=fatigue) for _ in range(k)]
    design = _design([s.daily for s in sims], [s.organic_rate for s in sims], fatigue, None)
    return LogDensity(design, fatigue, None, _centred_mask(design, "auto"))


def _weighted_rates(ld: LogDensity, fit) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of each creative's rate from a fast-path fit's weighted draws."""
    w = np.exp(fit.log_weights - fit.log_weights.max())
    w /= w.sum()
    rate = ld.named(fit.draws)["rate"]
    mean = w @ rate
    return mean, np.sqrt(w @ (rate - mean) ** 2)


def test_nested_form_corrects_the_conditional_gaussians_skew():
    """3 campaigns x 8 creatives (31 parameters), against the joint importance sampling (exact in the limit;
    its rates agree with long NUTS chains, BENCHMARKS.md). The conditional Gaussians alone (inner 1) put the
    rates' posterior means too high: a creative's logit given the globals is skewed like a log-gamma's, so
    the Gaussian at its mode overstates the mean rate by about 1 / (2 sqrt(conversions)) sds; measured 0.13-0.15
    sd averaged over the 24 rates (6 seeds), asserted > 0.09. With 4 candidates per block (the default:
    within-block resampling and the marginal's correction) 0.003-0.023, asserted < 0.07 (the mean's Monte
    Carlo se is ~0.02: ESS ~700 of the reference, ~900 of the fit, 24 correlated rates), and the sds within
    5% (median ratio 0.97-1.00 measured)."""
    from models.hierarchical.laplace import INNER_DRAWS, _joint_is, _nested_is

    ld = _ld(8, 3, "none", seed=5)
    joint = _joint_is(ld, np.random.default_rng(1), 400.0, 2000, 4.0, PARETO_K_MAX)
    plain = _nested_is(ld, np.random.default_rng(2), 400.0, 2000, 4.0, PARETO_K_MAX, inner=1)
    nested = _nested_is(ld, np.random.default_rng(2), 400.0, 2000, 4.0, PARETO_K_MAX)
    assert INNER_DRAWS == 4 and joint.passed and plain.passed and nested.passed
    assert nested.approximation == "nested" and nested.conditional_k is not None
    ref_mean, ref_sd = _weighted_rates(ld, joint)
    z_plain = (_weighted_rates(ld, plain)[0] - ref_mean) / ref_sd
    mean, sd = _weighted_rates(ld, nested)
    z = (mean - ref_mean) / ref_sd
    assert z_plain.mean() > 0.09, z_plain
    assert abs(z.mean()) < 0.07, z
    assert 0.95 < np.median(sd / ref_sd) < 1.05, sd / ref_sd
    # the globals other than campaign_sd agree too (the joint form's campaign_sd is the one that is off here)
    a = ld.named(joint.resample(8000, np.random.default_rng(3)))
    b = ld.named(nested.resample(8000, np.random.default_rng(4)))
    for v in ("intercept_mean", "organic_coef", "creative_sd"):
        assert abs(a[v].mean() - b[v].mean()) < 0.2 * a[v].std(), v


def test_portfolios_take_the_nested_form_at_any_size():
    """A 2 x 3 portfolio (12 parameters, well below `MAX_ADAPT_DIM`) goes through the nested form (whether
    its gate passes is not the point here: on small portfolios it passed 25 of 30 measured, BENCHMARKS.md);
    a single campaign of the same size through the joint form."""
    from models.hierarchical.laplace import MAX_ADAPT_DIM, laplace_is

    ld = _ld(3, 2, "none", seed=4)
    assert ld.dim < MAX_ADAPT_DIM
    fit = laplace_is(ld, np.random.default_rng(1), 200.0)
    assert fit.approximation == "nested" and fit.conditional_k is not None and np.isfinite(fit.pareto_k)
    single = laplace_is(_ld(3, 1, "none", seed=3), np.random.default_rng(1), 200.0)
    assert single.approximation == "joint"


def test_nested_conditional_check_can_fail():
    """A 30-creative campaign with fatigue whose sparse creatives have a conditional with a heavier
    (prior-like) left tail than the Gaussian: the conditional check fails the gate, with the reason
    (measured k 0.81-0.97 in 3-4 of the 30 blocks over two seeds)."""
    from models.hierarchical.laplace import _nested_is

    fit = _nested_is(_ld(30, 1, "days", seed=5), np.random.default_rng(2), 400.0, 2000, 4.0, PARETO_K_MAX)
    assert not fit.passed
    assert fit.conditional_k is not None and fit.conditional_k > PARETO_K_MAX
    (problem,) = fit.problems
    assert problem.startswith(f"conditional Gaussian check: Pareto k {fit.conditional_k:.2f} > 0.7 in ")
    assert problem.endswith(" of 30 blocks")


def test_large_portfolio_takes_the_nested_fast_path():
    """4 campaigns x 40 creatives (165 parameters) go through the nested form and pass its gate."""
    from models.hierarchical.laplace import MAX_ADAPT_DIM

    rng = np.random.default_rng(14)
    sims = [simulate_campaign(rng, n_creatives=40, n_days=3) for _ in range(4)]
    posts = HierarchicalModel().fit_portfolio([s.daily for s in sims], n_draws=500, rng=rng)
    d = posts[0].diagnostics
    assert d["method"] == "laplace_is" and d["approximation"] == "nested" and d["gate"] == "passed", d
    assert d["conditional_k"] <= PARETO_K_MAX and d["pareto_k"] <= PARETO_K_MAX
    design = _design([s.daily for s in sims], [None] * 4, "none", None)
    assert LogDensity(design, "none", None, _centred_mask(design, "auto")).dim > MAX_ADAPT_DIM


def test_pooled_rounds_of_candidates_are_one_round_with_all_of_them():
    """`NestedLaplace.merge`: the log correction of two pooled rounds is exactly log mean exp(check) over
    all their candidates, and each block of each draw is kept whole from one of the two rounds."""
    from scipy.special import logsumexp

    from models.hierarchical.nested import NestedLaplace

    ld = _ld(4, 3, "none", seed=7)
    nl = NestedLaplace(ld)
    g = np.tile(nl.mode()[0], (50, 1)) + 0.05 * np.random.default_rng(1).standard_normal((50, nl.dim))
    rng = np.random.default_rng(2)
    theta_a, check_a, corr_a = nl.draw_locals(g, rng, inner=4)
    theta_b, check_b, corr_b = nl.draw_locals(g, rng, inner=4)
    theta, corr, m = nl.merge((theta_a, corr_a, 4), (theta_b, corr_b, 4), rng)
    assert m == 8
    np.testing.assert_allclose(corr, logsumexp(np.concatenate([check_a, check_b]), axis=0) - np.log(8), atol=1e-10)
    cols = nl.block_of_column
    np.testing.assert_array_equal(theta[:, cols < 0], theta_a[:, cols < 0])
    for k in range(nl.n_blocks):
        block = cols == k
        from_a = np.all(theta[:, block] == theta_a[:, block], axis=1)
        from_b = np.all(theta[:, block] == theta_b[:, block], axis=1)
        assert np.all(from_a | from_b) and from_a.any() and from_b.any()


@pytest.mark.slow
def test_nested_form_agrees_with_nuts_on_a_portfolio():
    """6 campaigns x 5 creatives x 14 days (globals drawn from the priors), nested form against NUTS
    (nutpie 2 x 2000). Tolerances from Monte Carlo standard errors (each estimate's sd / sqrt(ESS): the
    fast path's importance ESS, NUTS's bulk ESS): every global's mean within 4 se; the rates' median |mean
    difference| within 3 median se (measured on nine 15-20 campaign portfolios: 0.65 of it; 2.4 of it
    without the within-block correction) and their sds within 10% (median); P(best) per campaign: mean
    |difference| within 2x its Monte Carlo floor (measured 0.6x)."""
    import arviz as az

    from models.hierarchical.laplace import _nested_is
    from models.hierarchical.synthetic import simulate_portfolio

    sims, _ = simulate_portfolio(np.random.default_rng(4), 6, 5, 14)
    campaigns, organic = [s.daily for s in sims], [s.organic_rate for s in sims]
    design = _design(campaigns, organic, "none", None)
    ld = LogDensity(design, "none", None, _centred_mask(design, "auto"))
    fit = _nested_is(ld, np.random.default_rng(5), 400.0, 2000, 4.0, PARETO_K_MAX)
    assert fit.passed, fit.problems
    nuts = HierarchicalModel(method="nuts", draws=2000, chains=2, max_rhat=1.02, min_ess=300.0, on_failure="stop")
    idata, diag = nuts.sample_posterior(campaigns, organic, rng=np.random.default_rng(6))
    assert diag["gate"] in ("passed", "retried"), diag
    post = idata["posterior"]
    ess_tree = az.ess(idata, method="bulk")
    ess_nuts = getattr(ess_tree, "dataset", ess_tree)
    w = np.exp(fit.log_weights - fit.log_weights.max())
    w /= w.sum()
    fast = ld.named(fit.draws)
    for v in ("intercept_mean", "campaign_sd", "organic_coef", "creative_sd"):
        x = np.asarray(post[v]).ravel()
        m_f = w @ fast[v]
        s_f = np.sqrt(w @ (fast[v] - m_f) ** 2)
        se = np.sqrt(s_f**2 / fit.ess + x.var() / float(ess_nuts[v]))
        assert abs(m_f - x.mean()) < 4 * se, (v, m_f, x.mean(), se)
    rate_n = np.asarray(post["rate"].transpose("chain", "draw", "creative")).reshape(-1, ld.n_creatives)
    mean_f, sd_f = _weighted_rates(ld, fit)
    mean_n, sd_n = rate_n.mean(axis=0), rate_n.std(axis=0)
    se = np.sqrt(sd_f**2 / fit.ess + sd_n**2 / np.asarray(ess_nuts["rate"], float))
    assert np.median(np.abs(mean_f - mean_n)) < 3 * np.median(se)
    assert 0.9 < np.median(sd_f / sd_n) < 1.1
    diffs, floors = [], []
    for sl in design.slices:
        p_f = np.clip(np.bincount(fast["rate"][:, sl].argmax(axis=1), weights=w, minlength=5), 0.0, 1.0)
        p_n = np.bincount(rate_n[:, sl].argmax(axis=1), minlength=5) / rate_n.shape[0]
        diffs.append(np.abs(p_f - p_n))
        sd = np.sqrt(p_f * (1 - p_f) / fit.ess + p_n * (1 - p_n) / diag["min_ess_bulk"])
        floors.append(np.sqrt(2 / np.pi) * sd)
    assert np.mean(diffs) < 2 * np.mean(floors) + 1e-3, (np.mean(diffs), np.mean(floors))

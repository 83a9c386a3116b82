"""`sparkbandit learn` and `[prior] file`: priors from a history CSV and from ledgers (with the delay CDF
from restatements), the priors file, and bad input."""

from __future__ import annotations

import datetime as dt
import json
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from allocator.cli.main import main
from allocator.plan import load_plan
from allocator.storage.ledger import ingest_files
from models.empirical_bayes import fit_beta_binomial
from simulations.history import read_history

HISTORY = "configs/studies/past_tests.csv"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_learn_history_json_shape_and_values(tmp_path):
    out = tmp_path / "priors.toml"
    r = run("learn", "--history", HISTORY, "--json", "--out", str(out))
    assert r.exit_code == 0, r.output
    js = json.loads(r.output)
    assert set(js) >= {"prior", "campaigns", "creatives", "cv"}
    assert set(js["prior"]) >= {"alpha", "beta", "click_alpha", "click_beta", "cpm", "cpm_weight"}
    assert js["campaigns"] == 3 and js["creatives"] == 12
    past = read_history(HISTORY)
    k = np.concatenate([p.conversions for p in past])
    n = np.concatenate([p.impressions for p in past])
    fit = fit_beta_binomial(k, n)
    assert js["prior"]["alpha"] == pytest.approx(fit.alpha, rel=1e-8)
    assert js["prior"]["beta"] == pytest.approx(fit.beta, rel=1e-8)
    assert js["prior"]["click_alpha"] is None  # no clicks column in the history
    spend = np.concatenate([p.spend for p in past])
    assert js["prior"]["cpm"] == pytest.approx(1000 / np.mean(n / spend), rel=1e-8)
    assert set(js["cv"]) >= {"folds", "gain", "gain_se", "lpd_learned", "lpd_current"}
    assert js["cv"]["folds"] == 3  # 5 folds asked, 3 campaigns
    written = tomllib.loads(out.read_text())
    assert written["prior"]["alpha"] == pytest.approx(fit.alpha, rel=1e-12)
    assert "model" not in written  # no delay or organic coefficient from a history file


def test_learn_history_table_words_and_groups(tmp_path):
    src = tmp_path / "past.csv"
    lines = open(HISTORY).read().splitlines()
    src.write_text(
        "\n".join([lines[0] + ",creator"] + [f"{x},{'aria' if i % 2 else 'ben'}" for i, x in enumerate(lines[1:])])
        + "\n"
    )
    r = run("learn", "--history", str(src), "--by", "creator")
    assert r.exit_code == 0, r.output
    assert "a new creative is expected to convert at 0.026% (90% of creatives between" in r.output
    assert "fold check on held-out campaigns" in r.output
    assert "  aria: Beta(" in r.output and "  ben: Beta(" in r.output


def test_learn_bad_input_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["learn"])
    assert (
        r.exit_code == 2 and r.output.strip() == "error: give exactly one of --history FILE or --plan PLAN (repeatable)"
    )
    r = CliRunner().invoke(main, ["learn", "--history", HISTORY, "--by", "creator"])
    assert r.exit_code == 2
    assert r.output.strip() == (
        f"error: {HISTORY}: header: column 'creator' (given with --by) is missing; add the column or drop --by"
    )
    one = tmp_path / "one.csv"
    one.write_text("campaign_id,creative_id,impressions,conversions\nc,a,1000,3\nc,b,1000,4\n")
    out = tmp_path / "p.toml"
    r = CliRunner().invoke(main, ["learn", "--history", str(one), "--out", str(out)])
    assert r.exit_code == 2
    assert r.output.strip() == (
        "error: cross-validation needs at least 2 past campaigns; learn needs past campaigns to check the prior on"
    )
    assert not out.exists()  # nothing written half-way


def test_prior_file_fills_keys_and_explicit_keys_win(tmp_path):
    (tmp_path / "priors.toml").write_text(
        "[prior]\nalpha = 2.5\nbeta = 9000.0\ncpm = 6.0\n\n[model]\ndelay_cdf = [0.4, 0.8, 1.0]\n"
    )
    (tmp_path / "plan.toml").write_text(
        '[campaign]\nname = "x"\ndaily_budget = 100\n\n[prior]\nfile = "priors.toml"\nbeta = 7000\n\n'
        '[[creatives]]\nid = "a"\n'
    )
    plan = load_plan(tmp_path / "plan.toml").plan
    assert (plan.prior.alpha, plan.prior.beta, plan.prior.cpm, plan.prior.cpm_weight) == (2.5, 7000.0, 6.0, 1000.0)
    assert plan.model.delay_cdf == [0.4, 0.8, 1.0]
    from allocator.decisions.settings import conjugate_model

    assert conjugate_model(plan).delay_cdf == (0.4, 0.8, 1.0)


def test_group_priors_round_trip_and_precedence(tmp_path):
    """learn --by creator writes [prior.groups."NAME"]; a plan's creative takes its creator's group prior,
    others the overall one; a plan's own alpha/beta drop the file's groups; a plan's group wins over the file's."""
    src = tmp_path / "past.csv"
    lines = open(HISTORY).read().splitlines()
    names = ["aria", 'ben "b" é']
    src.write_text("\n".join([lines[0] + ",creator"] + [f"{x},{names[i % 2]}" for i, x in enumerate(lines[1:])]) + "\n")
    r = run("learn", "--history", str(src), "--by", "creator", "--json", "--out", str(tmp_path / "priors.toml"))
    assert r.exit_code == 0, r.output
    js = json.loads(r.output)
    written = tomllib.loads((tmp_path / "priors.toml").read_text())
    assert set(written["prior"]["groups"]) == set(names)
    for g in names:
        assert written["prior"]["groups"][g]["alpha"] == pytest.approx(js["groups"][g]["alpha"], rel=1e-9)
        assert written["prior"]["groups"][g]["creatives"] == js["groups"][g]["creatives"] == 6
    from allocator.decisions.settings import conjugate_model
    from models.observations import Observations

    creatives = (
        '[[creatives]]\nid = "a"\ncreator = "aria"\n\n[[creatives]]\nid = "b"\ncreator = \'ben "b" é\'\n\n'
        '[[creatives]]\nid = "c"\ncreator = "zoe"\n\n[[creatives]]\nid = "d"\n'
    )
    head = '[campaign]\nname = "x"\ndaily_budget = 100\n\n[prior]\nfile = "priors.toml"\n'
    (tmp_path / "plan.toml").write_text(head + "\n" + creatives)
    plan = load_plan(tmp_path / "plan.toml").plan
    ga, gb = written["prior"]["groups"]["aria"], written["prior"]["groups"]['ben "b" é']
    top = written["prior"]
    expect_a = [ga["alpha"], gb["alpha"], top["alpha"], top["alpha"]]
    expect_b = [ga["beta"], gb["beta"], top["beta"], top["beta"]]
    assert plan.prior.conversion_params(plan.creatives) == (expect_a, expect_b)
    # The model uses them exactly: posterior Beta(alpha_i + c_i, beta_i + n_i - c_i).
    obs = Observations(("a", "b", "c", "d"), np.full(4, 1000.0), np.full(4, 50.0), np.array([1.0, 2, 3, 4]), np.ones(4))
    a, b = conjugate_model(plan).rate_params(obs, "conversions")
    np.testing.assert_allclose(a, np.array(expect_a) + [1, 2, 3, 4], rtol=1e-12)
    np.testing.assert_allclose(b, np.array(expect_b) + 1000 - np.array([1, 2, 3, 4]), rtol=1e-12)
    # A plan's own conversion prior wins over the whole file's conversion priors, groups included.
    (tmp_path / "plan.toml").write_text(head + "alpha = 3\nbeta = 9000\n\n" + creatives)
    plan = load_plan(tmp_path / "plan.toml").plan
    assert plan.prior.groups == {}
    assert plan.prior.conversion_params(plan.creatives) == ([3.0] * 4, [9000.0] * 4)
    # A plan's group wins over the file's group of that name; the file's other groups stay.
    (tmp_path / "plan.toml").write_text(head + "\n[prior.groups.aria]\nalpha = 7\nbeta = 7000\n\n" + creatives)
    plan = load_plan(tmp_path / "plan.toml").plan
    alpha, beta = plan.prior.conversion_params(plan.creatives)
    assert (alpha[0], beta[0]) == (7.0, 7000.0) and alpha[1] == gb["alpha"] and alpha[2] == top["alpha"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("[prior]\nalpah = 2.5\n", "priors.toml: prior.alpah: unknown key; did you mean 'alpha'?"),
        (
            "[prior]\nalpha = -1\n",
            "priors.toml: prior.alpha: -1 is not valid (Input should be greater than 0); correct the value",
        ),
        ('[prior]\nfile = "x.toml"\n', "priors.toml: prior.file: a priors file cannot name another; remove the key"),
    ],
)
def test_prior_file_errors_name_the_file_and_key(tmp_path, content, message):
    (tmp_path / "priors.toml").write_text(content)
    (tmp_path / "plan.toml").write_text(
        '[campaign]\nname = "x"\ndaily_budget = 100\n\n[prior]\nfile = "priors.toml"\n\n[[creatives]]\nid = "a"\n'
    )
    r = CliRunner().invoke(main, ["validate", str(tmp_path / "plan.toml")])
    assert r.exit_code == 2
    assert r.output.strip() == f"error: {tmp_path / message}"


def test_prior_file_missing(tmp_path):
    (tmp_path / "plan.toml").write_text(
        '[campaign]\nname = "x"\ndaily_budget = 100\n\n[prior]\nfile = "nope.toml"\n\n[[creatives]]\nid = "a"\n'
    )
    r = CliRunner().invoke(main, ["validate", str(tmp_path / "plan.toml")])
    assert r.exit_code == 2
    assert r.output.strip() == (
        f"error: {tmp_path / 'plan.toml'}: prior.file: file {str(tmp_path / 'nope.toml')!r} "
        "not found; give a path relative to the plan (write one with sparkbandit learn --out)"
    )


PMF = np.array([0.45, 0.2, 0.12, 0.09, 0.06, 0.05, 0.03])


def _campaign_with_restatements(tmp_path, name: str, rates, n_days: int, rng) -> str:
    """A plan and its ledger, fed one export a day; each export covers the last 7 days with the
    conversions reported by then (a conversion of day d arrives lag days later, lag ~ PMF)."""
    ids = [f"{name}-c{i}" for i in range(len(rates))]
    plan = tmp_path / f"{name}.toml"
    plan.write_text(
        f'[campaign]\nname = "{name}"\ndaily_budget = 300\n\n' + "".join(f'[[creatives]]\nid = "{c}"\n\n' for c in ids)
    )
    d0 = dt.date(2026, 10, 1)
    imps = 40_000
    conv = rng.binomial(imps, np.asarray(rates), size=(n_days, len(rates)))
    lagged = rng.multinomial(conv, PMF)  # (day, creative, lag)
    loaded = load_plan(plan)
    for last in range(n_days):
        rows = ["date,creative_id,impressions,clicks,conversions,spend"]
        for d in range(max(0, last - 6), last + 1):
            age = last - d
            for j, c in enumerate(ids):
                rows.append(
                    f"{(d0 + dt.timedelta(d)).isoformat()},{c},{imps},{imps // 100},"
                    f"{lagged[d, j, : age + 1].sum()},{imps * 0.006:.2f}"
                )
        f = tmp_path / f"{name}-{last:02d}.csv"
        f.write_text("\n".join(rows) + "\n")
        ingest_files(loaded, [f])
    return str(plan)


def test_learn_from_ledgers_recovers_the_delay_from_restatements(tmp_path):
    rng = np.random.default_rng(4)
    plans = [_campaign_with_restatements(tmp_path, f"camp{i}", [3e-3, 4e-3, 5e-3], 30, rng) for i in range(3)]
    out = tmp_path / "priors.toml"
    r = run("learn", *sum((["--plan", p] for p in plans), []), "--json", "--out", str(out))
    assert r.exit_code == 0, r.output
    js = json.loads(r.output)
    assert js["campaigns"] == 3 and js["creatives"] == 9
    assert js["prior"]["click_alpha"] is not None and js["prior"]["cpm"] == pytest.approx(6.0, rel=1e-6)
    d = js["delay"]
    truth = np.cumsum(PMF)
    cdf, se = np.array(d["delay_cdf"]), np.array(d["se"])
    assert cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)
    assert np.all(np.abs(cdf[:-1] - truth[:-1]) < 3 * se[:-1] + 1e-4)
    assert np.all(se[:-1] < 0.05)
    written = tomllib.loads(out.read_text())
    assert written["model"]["delay_cdf"] == pytest.approx(list(cdf), abs=1e-4)
    # The file is a valid [prior] file for a new plan.
    (tmp_path / "new.toml").write_text(
        '[campaign]\nname = "new"\ndaily_budget = 100\n\n[prior]\nfile = "priors.toml"\n\n[[creatives]]\nid = "a"\n'
    )
    new = load_plan(tmp_path / "new.toml").plan
    assert new.prior.alpha == pytest.approx(js["prior"]["alpha"], rel=1e-9)
    assert new.model.delay_cdf == written["model"]["delay_cdf"]


@pytest.mark.slow  # 6 portfolio fits (PyMC import and ~7 s a fit on 2 shared cores)
def test_organic_coefficient_recovered_on_synthetic_portfolios():
    """Portfolios drawn from the hierarchical model with a known organic coefficient (0.4): the gate passes,
    the reported 90% intervals cover it (at least 4 of 6: P(fewer | 90% coverage) < 2%), and the mean of
    (estimate - truth) / reported sd is within 3 / sqrt(6) of 0."""
    import warnings

    from allocator.workflows.learn import organic_coefficient
    from simulations.history import synthetic_organic_portfolio

    z, cover = [], 0
    for s in range(6):
        rng = np.random.default_rng(100 + s)
        dailies, organic = synthetic_organic_portfolio(0.4, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = organic_coefficient(dailies, organic, rng)  # raises ModelError when the gate fails
        assert r["campaigns"] == 8 and r["sd"] > 0
        cover += r["ci90"][0] <= 0.4 <= r["ci90"][1]
        z.append((r["mean"] - 0.4) / r["sd"])
    assert cover >= 4
    assert abs(np.mean(z)) < 3 / np.sqrt(6)

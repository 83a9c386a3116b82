"""History replay on the shipped past_tests.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.errors import DataError
from simulations.history import read_history
from simulations.runner import load_spec, run_study
from simulations.world import replay

STUDIES = Path(__file__).resolve().parents[2] / "configs" / "studies"


def test_read_history():
    past = read_history(STUDIES / "past_tests.csv")
    assert [p.campaign_id for p in past] == ["spring-serum", "summer-spf", "fall-toner"]
    assert [len(p.creative_ids) for p in past] == [4, 3, 5]
    assert past[0].impressions[0] == 182000 and past[0].conversions[0] == 38 and past[0].spend[0] == 1092.0


def test_replay_draws_rates_from_the_beta_posterior():
    spec = load_spec(STUDIES / "history.toml")
    past = spec.history[0]
    w = replay(spec.study, past, 20000, np.random.default_rng(0))
    a = 1.0 + past.conversions
    b = 5000.0 + past.impressions - past.conversions
    mean, sd = a / (a + b), np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert np.all(np.abs(w.rates.mean(axis=0) - mean) < 4 * sd / np.sqrt(20000))
    assert np.allclose(w.rates.std(axis=0), sd, rtol=0.05)
    # Spend in the history drives the money world: observed CPMs, the spend per period as the budget.
    periods = spec.study.study.periods
    assert not w.unit_cost and w.volume == np.floor(100 * past.spend.sum() / periods) / 100
    np.testing.assert_allclose(w.cpm[0], 1000 * past.spend / past.impressions)
    data = spec.study.model_dump()
    data["world"]["history_money"] = False
    unit = replay(type(spec.study).model_validate(data), past, 10, np.random.default_rng(0))
    assert unit.unit_cost and unit.spend_cpm is not None
    assert unit.volume == np.floor(past.impressions.sum() / periods)


def test_history_study_sums_over_campaigns():
    spec = load_spec(STUDIES / "history.toml").with_overrides(replicates=6)
    res = run_study(spec)
    periods = spec.study.study.periods
    volumes = sum(np.floor(100 * p.spend.sum() / periods) / 100 for p in spec.history)
    for r in res.policies.values():
        assert np.allclose(r["units"], volumes * periods)  # every campaign's budget, every day
        assert np.allclose(r["spend"], volumes * periods)
        assert np.all(r["conversions"] > 0) and np.all(r["spend"] > 0)
    assert res.policies["oracle"]["regret"].max() == 0
    assert res.policies["thompson"]["regret"].mean() < res.policies["uniform"]["regret"].mean()


def test_bad_history_rows(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("campaign_id,creative_id,impressions,conversions\nc,a,100,200\n")
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == f"{p}: row 2, column 'conversions': 200 is above impressions 100; correct the counts"
    p.write_text("campaign_id,creative,impressions,conversions\nc,a,100,2\n")
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (
        f"{p}: header: column 'creative_id' is missing; columns are campaign_id, "
        "creative_id, impressions, conversions[, spend]"
    )
    p.write_text("campaign_id,creative_id,impressions,conversions\nc,a,many,2\n")
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (
        f"{p}: row 2, column 'impressions': 'many' is not a number; write a number such as 1234, 12,345 or $12.50"
    )


def test_history_uses_the_importer_number_and_error_rules(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text('campaign_id,creative_id,impressions,conversions,spend\nc,a,"182,000",38,"$1,092.00"\n')
    past = read_history(p)
    assert past[0].impressions.tolist() == [182000.0] and past[0].spend.tolist() == [1092.0]
    p.write_text("campaign_id,creative_id,impressions,conversions\nc,a,182,000,38\n")  # unquoted: shifted
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (
        f"{p}: row 2: 5 values but the header has 4 columns; quote values that contain the "
        'delimiter ("182,000") and fill in missing values'
    )
    p.write_text("campaign_id;creative_id;impressions;conversions;spend\nc;a;182.000;38;1.092,50\n")
    past = read_history(p)
    assert past[0].impressions.tolist() == [182000.0] and past[0].spend.tolist() == [1092.5]
    p.write_text("campaign_id,creative_id,impressions,conversions\nc,a,lots,38\n")
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (
        f"{p}: row 2, column 'impressions': 'lots' is not a number; write a number such as 1234, 12,345 or $12.50"
    )


def test_history_not_utf8_is_one_line(tmp_path):
    p = tmp_path / "h.csv"
    p.write_bytes("campaign_id,creative_id,impressions,conversions\ncaf\xe9,a,100,2\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (
        f"{p}: row 2: not UTF-8 text (byte 0xe9); save the file as UTF-8 (in Excel: Save As, CSV UTF-8)"
    )
    p.write_bytes("campaign_id\tcreative_id\timpressions\tconversions\nc\ta\t100\t2\n".encode("utf-16"))
    assert read_history(p)[0].impressions.tolist() == [100.0]


def _history(n_campaigns: int, seed: int) -> list:
    from simulations.history import PastCampaign

    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_campaigns):
        k = int(rng.integers(2, 6))
        imps = rng.integers(20_000, 200_000, k).astype(float)
        conv = rng.binomial(imps.astype(int), rng.beta(3.0, 10_000.0, k)).astype(float)
        out.append(PastCampaign(f"camp{c}", tuple(f"c{j}" for j in range(k)), imps, conv, imps * 0.006))
    return out


def test_cross_fitting_never_lets_a_campaign_see_its_own_data():
    from dataclasses import replace

    from models.empirical_bayes import fit_beta_binomial
    from simulations.history import cross_fit_priors

    hist = _history(40, 1)
    alpha, beta, fold = cross_fit_priors(hist, folds=5, seed=3)
    assert sorted(np.bincount(fold)) == [8] * 5
    for j in range(5):
        train = [p for p, f in zip(hist, fold) if f != j]
        fit = fit_beta_binomial(
            np.concatenate([p.conversions for p in train]), np.concatenate([p.impressions for p in train])
        )
        assert np.all(alpha[fold == j] == fit.alpha) and np.all(beta[fold == j] == fit.beta)
    # Changing one campaign's own counts changes no prior in its fold, but every prior outside it.
    changed = list(hist)
    changed[7] = replace(hist[7], conversions=hist[7].impressions * 0.01)
    a2, b2, fold2 = cross_fit_priors(changed, folds=5, seed=3)
    assert np.array_equal(fold, fold2)
    same = fold == fold[7]
    assert np.array_equal(a2[same], alpha[same]) and np.array_equal(b2[same], beta[same])
    assert np.all(a2[~same] != alpha[~same])


def test_batched_replay_matches_the_loop_within_standard_errors():
    from dataclasses import replace

    from simulations.runner import StudySpec

    spec = load_spec(STUDIES / "history.toml").with_overrides(replicates=100)
    data = spec.study.model_dump()
    data["study"]["policies"] = ["thompson", "uniform", "oracle"]
    data["study"]["periods"] = 14
    spec = StudySpec(type(spec.study).model_validate(data), _history(8, 2))
    batched = run_study(spec)
    loop = run_study(replace(spec, batch=False))
    for policy in ("thompson", "uniform"):
        for name in ("regret", "conversions", "correct"):
            a, b = batched.policies[policy][name], loop.policies[policy][name]
            se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
            assert abs(a.mean() - b.mean()) < 3.5 * se + 1e-12, (policy, name)
    # Exactly the same volumes and worlds: units and oracle conversions do not depend on the batching.
    np.testing.assert_allclose(batched.policies["thompson"]["units"], loop.policies["thompson"]["units"])
    np.testing.assert_array_equal(batched.policies["oracle"]["regret"], 0.0)


def test_from_history_replay_runs_with_cross_fitted_priors_and_needs_a_history():
    from simulations.runner import StudySpec
    from simulations.study import parse_study

    spec = load_spec(STUDIES / "history.toml").with_overrides(replicates=20)
    data = spec.study.model_dump()
    data["prior"]["from_history"] = True
    data["study"]["policies"] = ["thompson"]
    learned = run_study(StudySpec(parse_study(data), _history(30, 4)))
    data["prior"]["from_history"] = False
    flat = run_study(StudySpec(parse_study(data), _history(30, 4)))
    # Same worlds (the true rates use [prior] alpha, beta in both), different decisions.
    np.testing.assert_allclose(learned.policies["thompson"]["units"], flat.policies["thompson"]["units"])
    assert not np.array_equal(learned.policies["thompson"]["regret"], flat.policies["thompson"]["regret"])
    with pytest.raises(Exception, match="prior.from_history: needs world.history"):
        parse_study(
            {
                "study": {"name": "x"},
                "world": {"impressions_per_period": 10, "conversion_rates": [0.1, 0.2]},
                "prior": {"from_history": True},
            }
        )


def test_from_history_decides_on_the_cross_fitted_priors_and_nothing_else(monkeypatch):
    # With cross_fit_priors giving every campaign the study's own Beta(1, 5000), a from_history replay is the
    # flat replay to the last digit: the per-row prior is the only thing from_history changes.
    import simulations.history
    from simulations.runner import StudySpec
    from simulations.study import parse_study

    spec = load_spec(STUDIES / "history.toml").with_overrides(replicates=12)
    data = spec.study.model_dump()
    data["study"]["policies"] = ["thompson", "ab_test"]
    data["study"]["periods"] = 10
    hist = _history(12, 6)
    flat = run_study(StudySpec(parse_study(data), hist))
    data["prior"]["from_history"] = True
    calls = []

    def study_prior(history, folds=5, seed=0):
        calls.append((len(history), folds, seed))
        n = len(history)
        return np.full(n, 1.0), np.full(n, 5000.0), np.arange(n) % folds

    monkeypatch.setattr(simulations.history, "cross_fit_priors", study_prior)
    same = run_study(StudySpec(parse_study(data), hist))
    assert calls and calls[0] == (12, 5, spec.study.study.seed)
    for policy in ("thompson", "ab_test"):
        for name in ("conversions", "regret", "correct", "declared"):
            np.testing.assert_array_equal(same.policies[policy][name], flat.policies[policy][name])
    monkeypatch.undo()
    learned = run_study(StudySpec(parse_study(data), hist))
    assert not np.array_equal(learned.policies["thompson"]["regret"], flat.policies["thompson"]["regret"])

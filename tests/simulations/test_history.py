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
    assert w.volume == np.floor(past.impressions.sum() / spec.study.study.periods)
    assert w.unit_cost and w.spend_cpm is not None


def test_history_study_sums_over_campaigns():
    spec = load_spec(STUDIES / "history.toml").with_overrides(replicates=6)
    res = run_study(spec)
    periods = spec.study.study.periods
    volumes = sum(np.floor(p.impressions.sum() / periods) for p in spec.history)
    for policy, r in res.policies.items():
        assert np.allclose(r["units"], volumes * periods)  # every campaign's impressions, every day
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
    assert str(e.value) == (f"{p}: header: column 'creative_id' is missing; columns are campaign_id, "
                            "creative_id, impressions, conversions[, spend]")
    p.write_text("campaign_id,creative_id,impressions,conversions\nc,a,many,2\n")
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (f"{p}: row 2, column 'impressions': 'many' is not a number; write a number such as "
                            "1234, 12,345 or $12.50")


def test_history_uses_the_importer_number_and_error_rules(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text('campaign_id,creative_id,impressions,conversions,spend\nc,a,"182,000",38,"$1,092.00"\n')
    past = read_history(p)
    assert past[0].impressions.tolist() == [182000.0] and past[0].spend.tolist() == [1092.0]
    p.write_text("campaign_id,creative_id,impressions,conversions\nc,a,182,000,38\n")  # unquoted: shifted
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (f"{p}: row 2: 5 values but the header has 4 columns; quote values that contain the "
                            'delimiter ("182,000") and fill in missing values')
    p.write_text("campaign_id;creative_id;impressions;conversions;spend\nc;a;182.000;38;1.092,50\n")
    past = read_history(p)
    assert past[0].impressions.tolist() == [182000.0] and past[0].spend.tolist() == [1092.5]
    p.write_text("campaign_id,creative_id,impressions,conversions\nc,a,lots,38\n")
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (f"{p}: row 2, column 'impressions': 'lots' is not a number; write a number such as "
                            "1234, 12,345 or $12.50")


def test_history_not_utf8_is_one_line(tmp_path):
    p = tmp_path / "h.csv"
    p.write_bytes("campaign_id,creative_id,impressions,conversions\ncaf\xe9,a,100,2\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_history(p)
    assert str(e.value) == (f"{p}: row 2: not UTF-8 text (byte 0xe9); save the file as UTF-8 (in Excel: Save As, "
                            "CSV UTF-8)")
    p.write_bytes("campaign_id\tcreative_id\timpressions\tconversions\nc\ta\t100\t2\n".encode("utf-16"))
    assert read_history(p)[0].impressions.tolist() == [100.0]

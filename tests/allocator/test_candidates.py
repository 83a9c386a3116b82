"""`sparkbandit candidates`: ranking organic posts by predicted conversions per dollar, replacements, bad input."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import special

from allocator.cli.main import main
from allocator.decisions.candidates import Post, rank_candidates, read_posts
from allocator.plan import CampaignPlan
from models.errors import DataError
from models.observations import DailyObservations

D0 = dt.date(2026, 11, 1)


def plan(**over) -> CampaignPlan:
    return CampaignPlan.model_validate(
        {
            "campaign": {"name": "t", "daily_budget": 300.0},
            "prior": {"alpha": 3.0, "beta": 10_000.0, "cpm": 6.0},
            "model": {"organic_mean": 0.6, "organic_sd": 0.01},
            "creatives": over.pop(
                "creatives", [{"id": "a"}, {"id": "b", "auth_expires": D0 + dt.timedelta(3)}, {"id": "c"}]
            ),
            **over,
        }
    )


POSTS = [
    Post("p-hi", "aria", 10_000, 900, 50, 50),
    Post("p-lo", "ben", 10_000, 100, 0, 0),
    Post("p-mid", "cleo", 10_000, 300, 0, 0),
    Post("a", "x", 10, 1, 0, 0),
]


def test_ranking_follows_the_learned_organic_coefficient_and_the_prediction_is_exact():
    p = plan()
    got = rank_candidates(
        p, POSTS, DailyObservations.empty(p.creative_ids), D0, np.random.default_rng(0), n_draws=20_000
    )
    assert [c.post.post_id for c in got] == ["p-hi", "p-mid", "p-lo"]  # "a" is already boosted
    log_e = np.log([0.1, 0.01, 0.03])
    x = (log_e - log_e.mean()) / log_e.std()
    rng = np.random.default_rng(1)
    r = rng.beta(3.0, 10_000.0, 200_000)
    for c, xi in zip(got, x[[0, 2, 1]]):
        expected = (special.expit(special.logit(r) + 0.6 * xi) * 1000 / 6.0).mean()
        # Monte Carlo with 20,000 draws: relative sd of the mean ~ 0.58 / sqrt(20,000) = 0.4%
        assert c.mean == pytest.approx(expected, rel=0.02)
        assert c.low < c.mean < c.high
    # The authorization ending within 7 days is replaced first; without data nobody is "clearly losing".
    assert got[0].replaces == "b" and got[0].why.startswith("replace: authorization of b ends 2026-11-04")
    assert got[1].replaces is None and got[2].replaces is None


def test_clearly_losing_creative_is_replaced_by_a_better_post():
    p = plan(creatives=[{"id": "a"}, {"id": "b"}, {"id": "c"}])
    days = 10
    imps = np.full((days, 3), 20_000.0)
    conv = np.tile([12.0, 12.0, 1.0], (days, 1))  # c converts far worse
    dates = np.datetime64(D0) + np.arange(days)
    daily = DailyObservations(p.creative_ids, dates, imps, imps * 0.01, conv, imps * 0.006)
    got = rank_candidates(p, POSTS, daily, D0 + dt.timedelta(days), np.random.default_rng(0))
    assert got[0].replaces == "c" and "c is clearly losing" in got[0].why
    assert [c.replaces for c in got[1:]] == [None, None]


def test_cli_json_and_bad_posts(tmp_path):
    f = tmp_path / "posts.csv"
    f.write_text("post_id,creator,views,likes,comments,shares\np1,aria,1000,90,5,5\np2,ben,1000,10,0,0\n")
    r = CliRunner().invoke(main, ["candidates", "--plan", "configs/example_plan.toml", str(f), "--json"])
    assert r.exit_code == 0, r.output
    js = json.loads(r.output)
    assert [c["post_id"] for c in js["candidates"]] == ["p1", "p2"]
    assert set(js["candidates"][0]) == {
        "post_id",
        "creator",
        "engagement_rate",
        "conversions_per_dollar",
        "ci90",
        "replaces",
        "why",
    }
    f.write_text("post_id,views,likes,comments,shares\np1,1000,-3,0,0\n")
    r = CliRunner().invoke(main, ["candidates", "--plan", "configs/example_plan.toml", str(f)])
    assert r.exit_code == 2
    assert r.output.strip() == f"error: {f}: row 2, column 'likes': '-3' is negative; correct the value"
    f.write_text("post_id,views,likes\np1,1000,3\n")
    with pytest.raises(DataError, match="header: column 'comments' is missing"):
        read_posts(f)


def test_fatigued_creative_is_replaced_and_a_steady_one_is_not():
    from allocator.decisions.candidates import fatigue

    rng = np.random.default_rng(0)
    imps = np.full(20, 20_000.0)
    tired = np.r_[np.full(7, 10.0), np.full(6, 8.0), np.full(7, 4.0)]  # rate halves
    assert fatigue(imps, tired, rng) == pytest.approx(1 - 28 / 70)
    assert fatigue(imps, np.full(20, 10.0), rng) is None
    assert fatigue(imps[:13], tired[:13], rng) is None  # too few days to tell
    p = plan(creatives=[{"id": "a"}, {"id": "b"}, {"id": "c"}])
    dates = np.datetime64(D0) + np.arange(20)
    conv = np.stack([np.full(20, 10.0), tired, np.full(20, 9.0)], axis=1)
    daily = DailyObservations(
        p.creative_ids, dates, np.tile(imps[:, None], 3), np.zeros((20, 3)), conv, np.tile(imps[:, None], 3) * 0.006
    )
    got = rank_candidates(p, POSTS, daily, D0 + dt.timedelta(20), np.random.default_rng(0))
    assert (
        got[0].replaces == "b"
        and got[0].why == "replace: b is fatigued (conversion rate down 60% from its first 7 days)"
    )

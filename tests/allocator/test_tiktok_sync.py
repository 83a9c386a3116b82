"""The TikTok client and `sync` against the in-process fake account (simulations/fake_tiktok.py)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from allocator.inputs.tiktok_api import chunks, credentials_from_env, metric_value
from allocator.storage.ledger import Ledger
from allocator.storage.pushes import authorizations
from allocator.workflows.sync import sync, sync_window
from models.errors import DataError, PlanError, TikTokAPIError
from tests.support.tiktok import (
    ADVERTISER,
    TOKEN,
    ad_id,
    client,
    make_fake,
    stat,
    write_plan,
)

DAY = dt.date(2026, 11, 11)


def _fill(fake, days=10, n=3, start=dt.date(2026, 11, 1)):
    """Stats with known totals: ad i on day k spends 20 + i + k, 1000 (i+1) impressions, 10 clicks, i conversions."""
    for k in range(days):
        d = (start + dt.timedelta(days=k)).isoformat()
        for i in range(n):
            fake.stats[(ad_id(i), d)] = stat(f"{20 + i + k:.2f}", str(1000 * (i + 1)), "10", str(i))


def _results(loaded):
    with Ledger.open(loaded.ledger_path) as ledger:
        return ledger.daily(loaded.plan)


def _tables(loaded) -> dict[str, int]:
    conn = sqlite3.connect(loaded.ledger_path)
    out = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("imports", "results", "tiktok_authorizations")
    }
    conn.close()
    return out


# ---------------------------------------------------------------------- client pieces
def test_chunks_are_at_most_30_days_and_cover_the_range():
    got = chunks(dt.date(2026, 1, 1), dt.date(2026, 3, 1))
    assert got == [(dt.date(2026, 1, 1), dt.date(2026, 1, 30)), (dt.date(2026, 1, 31), dt.date(2026, 3, 1))]
    assert chunks(dt.date(2026, 1, 2), dt.date(2026, 1, 1)) == []


def test_metric_values_as_strings_numbers_null_and_dash():
    assert [metric_value(v) for v in ("20.00", 20, 20.5, None, "-", "", "1,234")] == [20, 20, 20.5, 0, 0, 0, 1234]
    with pytest.raises(ValueError):
        metric_value("abc")
    with pytest.raises(ValueError):
        metric_value([1])


def test_credentials_from_env_and_file(tmp_path):
    assert credentials_from_env({"TIKTOK_ACCESS_TOKEN": " t1 "}).token == "t1"
    f = tmp_path / "tok"
    f.write_text("t2\n")
    c = credentials_from_env({"TIKTOK_ACCESS_TOKEN_FILE": str(f), "TIKTOK_API_BASE": "http://h/open_api/v1.3/"})
    assert (c.token, c.base_url) == ("t2", "http://h/open_api/v1.3")
    assert "t2" not in repr(c)
    with pytest.raises(TikTokAPIError) as e:
        credentials_from_env({})
    assert str(e.value) == (
        "no TikTok access token: set TIKTOK_ACCESS_TOKEN (or TIKTOK_ACCESS_TOKEN_FILE to a file "
        "holding it); the token never goes in the plan"
    )
    with pytest.raises(TikTokAPIError) as e:
        credentials_from_env({"TIKTOK_ACCESS_TOKEN_FILE": str(tmp_path / "none")})
    assert str(e.value) == (
        f"TIKTOK_ACCESS_TOKEN_FILE: cannot read {tmp_path / 'none'} (No such file or directory); "
        "point it at the file holding the token"
    )


def test_report_reads_every_page_of_every_chunk():
    fake = make_fake(3)
    _fill(fake, days=40)
    with client(fake) as c:
        rows, pages = c.report(ADVERTISER, dt.date(2026, 11, 1), dt.date(2026, 12, 10), page_size=7)
    # 30 + 10 days x 3 ads = 90 + 30 rows; pages of 7: 13 + 5
    assert (len(rows), pages) == (120, 18)
    reports = [p for m, e, p in fake.calls if e == "report/integrated/get/"]
    assert [(p["start_date"], p["end_date"]) for p in reports if p["page"] == "1"] == [
        ("2026-11-01", "2026-11-30"),
        ("2026-12-01", "2026-12-10"),
    ]
    assert {p["dimensions"] for p in reports} == {'["ad_id","stat_time_day"]'}
    assert {(p["report_type"], p["data_level"], p["page_size"]) for p in reports} == {("BASIC", "AUCTION_AD", "7")}
    assert len({(r["dimensions"]["ad_id"], r["dimensions"]["stat_time_day"]) for r in rows}) == 120


def test_40100_then_success_is_retried_with_backoff():
    fake = make_fake(1)
    fake.fail_next("adgroup/get/", 40100, "Too many requests", times=2)
    sleeps: list[float] = []
    with client(fake, sleeps, backoff=1.0) as c:
        got = c.adgroups(ADVERTISER, [fake.ads[0].adgroup_id])
    assert list(got) == [fake.ads[0].adgroup_id]
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # exponential, jittered within [d/2, d]


def test_50000_retried_then_bounded_in_count():
    fake = make_fake(1)
    fake.fail_next("adgroup/get/", 50000, "System error", times=1)
    sleeps: list[float] = []
    with client(fake, sleeps) as c:
        c.adgroups(ADVERTISER, [fake.ads[0].adgroup_id])
    assert len(sleeps) == 1
    fake.fail_next("adgroup/get/", 51001, "Statistics error", times=10)
    sleeps.clear()
    with client(fake, sleeps, max_attempts=4) as c, pytest.raises(TikTokAPIError) as e:
        c.adgroups(ADVERTISER, ["1"])
    assert len(sleeps) == 3
    assert str(e.value).startswith(
        "TikTok API adgroup/get/: code 51001 (Statistics error) still after 4 attempts over "
    )
    assert str(e.value).endswith(
        "; TikTok's servers are failing; wait a few minutes and run again; nothing was written"
    )


def test_retries_bounded_in_time():
    fake = make_fake(1)
    fake.fail_next("adgroup/get/", 40100, "Too many requests", times=10)
    sleeps: list[float] = []
    with client(fake, sleeps, backoff=10.0, max_wait=25.0) as c, pytest.raises(TikTokAPIError) as e:
        c.adgroups(ADVERTISER, ["1"])
    assert sum(sleeps) <= 25.0 and len(sleeps) in (1, 2)
    assert "wait about 5 minutes and run again" in str(e.value)


@pytest.mark.parametrize(
    "code,fix",
    [
        (
            40105,
            (
                "the access token is invalid; set TIKTOK_ACCESS_TOKEN (or TIKTOK_ACCESS_TOKEN_FILE) to the app's "
                "long-term token"
            ),
        ),
        (
            40102,
            "the access token has expired; create a new one and set TIKTOK_ACCESS_TOKEN (or TIKTOK_ACCESS_TOKEN_FILE)",
        ),
        (
            40001,
            (
                "the token has no permission for this advertiser; in the TikTok for Business developer portal grant the "
                "app access to the advertiser (Ads Management and Reporting scopes), or check [tiktok] advertiser_id"
            ),
        ),
        (40999, "see TikTok's message; fix the request and run again"),
    ],
)
def test_refusals_are_one_line_with_the_fix(code, fix):
    fake = make_fake(1)
    fake.fail_next("tt_video/info/", code, f"message {code} for {TOKEN}")
    sleeps: list[float] = []
    with client(fake, sleeps) as c, pytest.raises(TikTokAPIError) as e:
        c.video_info(ADVERTISER, "code")
    assert sleeps == []
    assert str(e.value) == (
        f"TikTok API tt_video/info/: code {code} (message {code} for ***) (request id fake-000001); {fix}"
    )
    assert TOKEN not in str(e.value)


def test_network_error_and_timeout_are_one_line():
    import httpx

    from allocator.inputs.tiktok_api import Credentials, TikTokClient

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    def slow(request):
        raise httpx.ReadTimeout("timed out")

    with (
        TikTokClient(Credentials(TOKEN, "http://h/open_api/v1.3"), transport=httpx.MockTransport(refuse)) as c,
        pytest.raises(TikTokAPIError) as e,
    ):
        c.adgroups(ADVERTISER, ["1"])
    assert str(e.value) == (
        "TikTok API adgroup/get/: cannot reach http://h/open_api/v1.3 (ConnectError: connection "
        "refused); check the network connection and TIKTOK_API_BASE; nothing was written"
    )
    with (
        TikTokClient(Credentials(TOKEN, "http://h/open_api/v1.3"), transport=httpx.MockTransport(slow), timeout=5) as c,
        pytest.raises(TikTokAPIError) as e,
    ):
        c.adgroups(ADVERTISER, ["1"])
    assert str(e.value) == (
        "TikTok API adgroup/get/: no answer within 5 s (timeout); check the network (or "
        "TIKTOK_API_BASE) and run again; nothing was written"
    )


# ---------------------------------------------------------------------- sync
def test_sync_window():
    from allocator.plan import load_plan  # noqa: F401

    def plan(tmp, **kw):
        return write_plan(tmp, **kw).plan

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        p = plan(Path(tmp))
        assert sync_window(p, None, DAY, None) == (dt.date(2026, 11, 1), dt.date(2026, 11, 10))  # earliest launched
        assert sync_window(p, dt.date(2026, 11, 10), DAY, None) == (dt.date(2026, 11, 4), dt.date(2026, 11, 10))
        assert sync_window(p, dt.date(2026, 10, 20), DAY, None) == (dt.date(2026, 10, 21), dt.date(2026, 11, 10))
        assert sync_window(p, dt.date(2026, 11, 10), DAY, dt.date(2026, 11, 9)) == (
            dt.date(2026, 11, 9),
            dt.date(2026, 11, 10),
        )
        p = plan(Path(tmp), launched=None)
        assert sync_window(p, None, DAY, None) == (dt.date(2026, 10, 12), dt.date(2026, 11, 10))  # 30 days back


def test_sync_stores_the_report_with_ingest_semantics(tmp_path):
    loaded = write_plan(tmp_path)
    fake = make_fake(3)
    _fill(fake, days=10)
    fake.stats[(ad_id(0), "2026-11-05")] = stat(None, "-", None, "-")  # no delivery that day
    fake.stats[(ad_id(1), "2026-11-05")] = stat(21.5, 2000, 10, 1)  # numbers, not strings
    fake.stats[("1899999999999999999", "2026-11-05")] = stat("5.00", "100", "1", "0")  # an ad not in the plan
    with client(fake) as c:
        res = sync(loaded, c, DAY, page_size=4)
    f = res.ingest.files[0]
    assert (res.start, res.end, res.rows, res.pages) == (dt.date(2026, 11, 1), dt.date(2026, 11, 10), 31, 8)
    assert (f.path, f.format, f.added, f.restated, f.unchanged) == (
        f"tiktok:{ADVERTISER}:2026-11-01..2026-11-10",
        "tiktok-api",
        30,
        0,
        0,
    )
    assert f.unknown == {"1899999999999999999": 1}
    assert res.warnings == [
        (
            f"tiktok:{ADVERTISER}:2026-11-01..2026-11-10: 1 row for '1899999999999999999', which is not in the plan; kept "
            "as pending (add it to [[creatives]] or check the id, and they are stored at the next ingest or reallocate)"
        )
    ]
    daily = _results(loaded)
    assert daily.n_days == 10
    d5 = 4
    assert (daily.spend[d5, 0], daily.impressions[d5, 0], daily.observed[d5, 0]) == (0.0, 0.0, True)
    assert daily.spend[d5, 1] == 21.5
    assert daily.spend[:, 2].sum() == sum(22 + k for k in range(10))
    assert daily.conversions[:, 2].sum() == 20
    # the same answer again: already imported, nothing added
    with client(fake) as c:
        again = sync(loaded, c, DAY)
    # the restatement window, Nov 4 to 10, re-read: 7 days x 3 ads unchanged (the unknown ad's row not stored)
    assert (again.start, again.ingest.files[0].status) == (dt.date(2026, 11, 4), "imported")
    assert (again.ingest.added, again.ingest.restated, again.ingest.unchanged) == (0, 0, 21)
    with client(fake) as c:
        third = sync(loaded, c, DAY)
    assert third.ingest.files[0].status == "already imported"


def test_restated_day_on_the_second_sync(tmp_path):
    loaded = write_plan(tmp_path)
    fake = make_fake(3)
    _fill(fake, days=10)
    with client(fake) as c:
        sync(loaded, c, DAY)
    # late conversions: TikTok restates Nov 8 for ad 0; Nov 11 is new
    fake.stats[(ad_id(0), "2026-11-08")]["conversion"] = "3"
    for i in range(3):
        fake.stats[(ad_id(i), "2026-11-11")] = stat("30.00", "1000", "10", "0")
    with client(fake) as c:
        res = sync(loaded, c, DAY + dt.timedelta(days=1))
    assert (res.start, res.end) == (dt.date(2026, 11, 5), dt.date(2026, 11, 11))  # the 7-day window
    assert (res.ingest.added, res.ingest.restated, res.ingest.unchanged) == (3, 1, 17)
    daily = _results(loaded)
    assert daily.conversions[7, 0] == 3
    conn = sqlite3.connect(loaded.ledger_path)
    versions = conn.execute(
        """SELECT r.version, r.conversions, r.superseded_by IS NULL FROM results r JOIN creatives c
           ON c.id = r.creative_ref WHERE c.creative_id = 'c0' AND r.date = '2026-11-08' ORDER BY r.version"""
    ).fetchall()
    conn.close()
    assert versions == [(1, 0.0, 0), (2, 3.0, 1)]  # the earlier version is kept, superseded


def test_40105_writes_nothing(tmp_path):
    loaded = write_plan(tmp_path, creative_extra={0: 'auth_code = "AC0"\n'})
    fake = make_fake(3)
    _fill(fake)
    fake.auth["AC0"] = {
        "ad_auth_status": "AUTHORIZED",
        "auth_start_time": "2026-10-01 00:00:00",
        "auth_end_time": "2026-12-20 12:00:00",
    }
    with client(fake) as c:
        sync(loaded, c, DAY)
    before = _tables(loaded)
    raw = loaded.ledger_path.read_bytes()
    fake.stats[(ad_id(0), "2026-11-09")]["conversion"] = "5"
    fake.fail_next("tt_video/info/", 40105, "Access token is invalid")  # after the report has been read
    with client(fake) as c, pytest.raises(TikTokAPIError) as e:
        sync(loaded, c, DAY + dt.timedelta(days=1))
    assert str(e.value).startswith("TikTok API tt_video/info/: code 40105 (Access token is invalid)")
    assert "\n" not in str(e.value)
    assert _tables(loaded) == before and loaded.ledger_path.read_bytes() == raw


def test_bad_metric_writes_nothing(tmp_path):
    loaded = write_plan(tmp_path)
    fake = make_fake(3)
    _fill(fake)
    fake.stats[(ad_id(1), "2026-11-03")]["clicks"] = "ten"
    with client(fake) as c, pytest.raises(DataError) as e:
        sync(loaded, c, DAY)
    assert str(e.value) == (
        f"TikTok API report/integrated/get/: ad {ad_id(1)}, 2026-11-03, metric 'clicks': 'ten' is "
        "not a number; report this answer; values should be numbers, strings of numbers, null or "
        '"-"'
    )
    assert not loaded.ledger_path.exists()


def test_authorization_end_is_stored_and_wins_over_the_plan(tmp_path):
    loaded = write_plan(
        tmp_path,
        time_zone="America/New_York",
        creative_extra={0: 'auth_code = "AC0"\nauth_expires = 2026-12-31\n', 1: 'auth_code = "AC1"\n'},
    )
    fake = make_fake(3)
    _fill(fake)
    fake.auth["AC0"] = {
        "ad_auth_status": "AUTHORIZED",
        "auth_start_time": "2026-10-01 00:00:00",
        "auth_end_time": "2026-12-20 03:00:00",
    }  # 22:00 on Dec 19 in New York
    fake.auth["AC1"] = {
        "ad_auth_status": "AUTHORIZED",
        "auth_start_time": "2026-10-01 00:00:00",
        "auth_end_time": "2026-11-30 12:00:00",
    }
    with client(fake) as c:
        res = sync(loaded, c, DAY)
    assert [a.expires("America/New_York") for a in res.authorizations] == [dt.date(2026, 12, 19), dt.date(2026, 11, 30)]
    assert res.warnings == [
        (
            "Creative 0: the plan's auth_expires 2026-12-31 differs from TikTok's authorization end 2026-12-20 03:00:00 UTC "
            "(2026-12-19 in America/New_York); using TikTok's (update auth_expires in the plan)"
        )
    ]
    with Ledger.open(loaded.ledger_path) as ledger:
        stored = authorizations(ledger, loaded.plan)
    assert stored["c1"].auth_end_time == "2026-11-30 12:00:00"
    from allocator.storage.pushes import effective_plan

    warnings = effective_plan(loaded)
    assert len(warnings) == 1
    assert [c.auth_expires for c in loaded.plan.creatives] == [dt.date(2026, 12, 19), dt.date(2026, 11, 30), None]


def test_sync_needs_a_tiktok_section(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[campaign]\nname = "x"\ndaily_budget = 100\n[[creatives]]\nid = "a"\n')
    from allocator.plan import load_plan

    with client(make_fake(1)) as c, pytest.raises(PlanError) as e:
        sync(load_plan(p), c, DAY)
    assert str(e.value) == (
        f'{p}: tiktok: section [tiktok] is missing; add [tiktok] with advertiser_id = "..." '
        "(the ad account id, quoted) and time_zone"
    )


def test_refused_auth_code_names_the_creative(tmp_path):
    loaded = write_plan(tmp_path, creative_extra={1: 'auth_code = "BAD"\n'})
    fake = make_fake(3)
    _fill(fake)
    with client(fake) as c, pytest.raises(TikTokAPIError) as e:
        sync(loaded, c, DAY)
    assert str(e.value) == (
        "TikTok API tt_video/info/: code 40002 (auth_code is invalid) (request id fake-000002); "
        "TikTok refused a parameter; check [tiktok] advertiser_id and the ids in the plan (TikTok "
        "refused creatives[2].auth_code of 'Creative 1': check the code, or ask the creator for a "
        "new one)"
    )
    assert not loaded.ledger_path.exists()

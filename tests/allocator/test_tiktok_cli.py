"""CLI of the TikTok loop (sync, apply, init, status, reallocate --format adgroups) against the fake API served
on 127.0.0.1, and the token absent from every output, the ledger and the files written."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tomllib

import pytest
from click.testing import CliRunner

from allocator.cli.main import main
from allocator.plan import load_plan
from tests.support.tiktok import (
    ADVERTISER,
    TOKEN,
    ad_id,
    adgroup_id,
    make_fake,
    stat,
    write_plan,
)


def run(args, env):
    """Run the CLI; every output of every command in this module (stdout and stderr, successes and failures) is
    checked for the token here."""
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert TOKEN not in result.output
    return result


@pytest.fixture
def account(tmp_path):
    fake = make_fake(3)
    for k in range(10):
        d = (dt.date(2026, 11, 1) + dt.timedelta(days=k)).isoformat()
        for i in range(3):
            fake.stats[(ad_id(i), d)] = stat(f"{30 + 5 * i:.2f}", str(4000 + 500 * i), str(40 + 3 * i), str(i % 4))
    fake.auth["AC0"] = {
        "ad_auth_status": "AUTHORIZED",
        "auth_start_time": "2026-10-01 00:00:00",
        "auth_end_time": "2026-11-14 12:00:00",
    }
    loaded = write_plan(tmp_path, creative_extra={0: 'auth_code = "AC0"\n'})
    with fake.serve() as base:
        env = {"TIKTOK_ACCESS_TOKEN": TOKEN, "TIKTOK_API_BASE": base, "TIKTOK_ACCESS_TOKEN_FILE": None}
        yield loaded, fake, env


def test_daily_routine_sync_reallocate_apply_status(account):
    loaded, fake, env = account
    plan = loaded.path
    r = run(["sync", "--plan", plan, "--date", "2026-11-11"], env)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == (
        f"tiktok {ADVERTISER}: 2026-11-01 to 2026-11-10: 30 rows in 1 pages (1 "
        "requests): 30 added, 0 restated, 0 unchanged"
    )
    assert "authorization c0: AUTHORIZED, ends 2026-11-14 12:00:00 UTC (expires 2026-11-14)" in r.output
    r = run(["sync", "--plan", plan, "--date", "2026-11-11", "--json"], env)
    assert r.exit_code == 0
    got = json.loads(r.output)
    assert (got["start"], got["end"], got["ingest"]["unchanged"]) == ("2026-11-04", "2026-11-10", 21)
    r = run(["reallocate", "--plan", plan], env)
    assert r.exit_code == 0, r.output
    r = run(["status", "--plan", plan, "--date", "2026-11-11"], env)
    assert r.exit_code == 0, r.output
    assert "  authorization c0: AUTHORIZED, ends 2026-11-14 12:00:00 UTC (expires 2026-11-14;" in r.output
    assert (
        "warning: Creative 0: Spark authorization ends 2026-11-14 (in 3 days); ask the creator to renew it" in r.output
    )
    st = json.loads(run(["status", "--plan", plan, "--date", "2026-11-11", "--json"], env).output)
    assert st["authorizations"][0]["expires"] == "2026-11-14"
    report = plan.parent / "report"
    r = run(["report", "--plan", plan, "--out", report, "--date", "2026-11-11"], env)
    assert r.exit_code == 0, r.output
    assert "Spark authorization ends 2026-11-14 (in 3 days)" in (report / "index.html").read_text()
    now = ["--now", "2026-11-11T08:00:00+0000"]
    r = run(["apply", "--plan", plan, *now], env)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].startswith("decision for 2026-11-11 (run ")
    assert r.output.strip().endswith("nothing sent (add --yes to send)")
    assert not fake.sent("adgroup/budget/update/")
    r = run(["apply", "--plan", plan, "--yes", *now], env)
    assert r.exit_code == 0, r.output
    assert len(fake.sent("adgroup/budget/update/")) == 1
    r = run(["apply", "--plan", plan, "--yes", "--json", *now], env)
    assert r.exit_code == 0
    assert json.loads(r.output)["calls"] == 0 and len(fake.sent("adgroup/budget/update/")) == 1


def test_partial_failure_exits_2_with_each_outcome(account):
    loaded, fake, env = account
    plan = loaded.path
    run(["sync", "--plan", plan, "--date", "2026-11-11"], env)
    run(["reallocate", "--plan", plan], env)
    fake.refuse(adgroup_id(1))
    r = run(["apply", "--plan", plan, "--yes", "--now", "2026-11-11T08:00:00+0000"], env)
    assert r.exit_code == 2
    assert (
        f"refused (TikTok API adgroup/budget/update/: code 40002 (adgroup {adgroup_id(1)} cannot be modified)"
        in r.output
    )
    assert r.output.count(": ok") == 2
    assert r.output.splitlines()[-1] == (
        "error: TikTok refused some changes (see above); fix them and run apply --yes "
        "again: only what is missing is sent"
    )


def test_40105_one_line_nothing_written(account):
    loaded, _, env = account
    r = run(["sync", "--plan", loaded.path, "--date", "2026-11-11"], {**env, "TIKTOK_ACCESS_TOKEN": "wrong-token"})
    assert r.exit_code == 2
    assert r.output == (
        "error: TikTok API report/integrated/get/: code 40105 (Access token is invalid or has been "
        "revoked.) (request id fake-000001); the access token is invalid; set TIKTOK_ACCESS_TOKEN (or "
        "TIKTOK_ACCESS_TOKEN_FILE) to the app's long-term token\n"
    )
    assert not loaded.ledger_path.exists()


def test_no_token_and_network_error(account, tmp_path):
    loaded, _, env = account
    r = run(["sync", "--plan", loaded.path], {**env, "TIKTOK_ACCESS_TOKEN": None})
    assert (r.exit_code, r.output) == (
        2,
        (
            "error: no TikTok access token: set TIKTOK_ACCESS_TOKEN (or "
            "TIKTOK_ACCESS_TOKEN_FILE to a file holding it); the token never goes in the "
            "plan\n"
        ),
    )
    tok = tmp_path / "token.txt"
    tok.write_text(TOKEN + "\n")
    r = run(
        ["sync", "--plan", loaded.path, "--date", "2026-11-11"],
        {**env, "TIKTOK_ACCESS_TOKEN": None, "TIKTOK_ACCESS_TOKEN_FILE": str(tok)},
    )
    assert r.exit_code == 0, r.output
    r = run(["sync", "--plan", loaded.path, "--date", "2026-11-12"], {**env, "TIKTOK_API_BASE": "http://127.0.0.1:9/x"})
    assert r.exit_code == 2
    assert r.output.startswith(
        "error: TikTok API report/integrated/get/: cannot reach http://127.0.0.1:9/x (ConnectError"
    )
    assert len(r.output.strip().splitlines()) == 1


EXPORT = """By Day,Campaign name,Ad group name,Ad group ID,Ad name,Ad ID,Currency,Cost,Impressions,Clicks (destination),Conversions
2026-11-20,Winter,Group A,1790000000000000011,Spark A,1800000000000000011,USD,$20.00,"1,000",10,1
2026-11-20,Winter,Group B,1790000000000000012,Spark B,1800000000000000012,USD,-,0,0,0
2026-11-21,Winter,Group A,1790000000000000011,Spark A,1800000000000000011,USD,$21.00,"1,100",11,0
2026-11-21,Winter,Group B,1790000000000000012,Spark B,1800000000000000012,USD,$5.00,400,4,0
Total of 4 records,,,,,,,$46.00,"2,500",25,1
"""


def test_init_from_export_writes_a_valid_commented_plan(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(EXPORT)
    out = tmp_path / "plan.toml"
    r = run(["init", "--from", export, "--out", out], {})
    assert r.exit_code == 0, r.output
    assert r.output == (
        f"{out}: starter plan with 2 creatives; check the TODO lines, then: sparkbandit validate {out}\n"
    )
    text = out.read_text()
    assert text.startswith("# Starter plan written by `sparkbandit init`")
    data = tomllib.loads(text)
    assert data["campaign"]["name"] == "Winter"
    assert data["creatives"] == [
        {
            "id": "1800000000000000011",
            "name": "Spark A",
            "ad_id": "1800000000000000011",
            "adgroup_id": "1790000000000000011",
            "adgroup_name": "Group A",
            "launched": dt.date(2026, 11, 20),
        },
        {
            "id": "1800000000000000012",
            "name": "Spark B",
            "ad_id": "1800000000000000012",
            "adgroup_id": "1790000000000000012",
            "adgroup_name": "Group B",
            "launched": dt.date(2026, 11, 21),
        },
    ]
    assert run(["validate", out], {}).exit_code == 0
    r = run(["init", "--from", export, "--out", out], {})
    assert (r.exit_code, r.output) == (2, f"error: {out} exists; choose another --out or add --force\n")


@pytest.mark.parametrize("kind", ["xlsx", "utf16"])
def test_init_from_a_workbook_or_unicode_text_export_finds_names_and_ad_groups(tmp_path, kind):
    # Ads Manager's default export is a workbook; "Unicode text" is UTF-16 with tabs. Both give the same plan.
    rows = list(csv.reader(io.StringIO(EXPORT)))
    if kind == "xlsx":
        import openpyxl

        export = tmp_path / "export.xlsx"
        book = openpyxl.Workbook()
        for cells in rows:
            book.active.append(cells)
        book.save(export)
    else:
        export = tmp_path / "export.txt"
        export.write_bytes("\n".join("\t".join(cells) for cells in rows).encode("utf-16"))
    out = tmp_path / "plan.toml"
    r = run(["init", "--from", export, "--out", out], {})
    assert r.exit_code == 0, r.output
    data = tomllib.loads(out.read_text())
    assert [(c["name"], c["adgroup_id"], c["adgroup_name"]) for c in data["creatives"]] == [
        ("Spark A", "1790000000000000011", "Group A"),
        ("Spark B", "1790000000000000012", "Group B"),
    ]


def test_init_from_api(account, tmp_path):
    _, _, env = account
    out = tmp_path / "api.toml"
    r = run(["init", "--from-api", "--advertiser-id", ADVERTISER, "--days", "365", "--out", out], env)
    assert r.exit_code == 0, r.output
    plan = load_plan(out).plan
    assert plan.tiktok is not None and plan.tiktok.advertiser_id == ADVERTISER
    assert [(c.ad_id, c.adgroup_id, c.name, c.adgroup_name, c.launched) for c in plan.creatives] == [
        (ad_id(i), adgroup_id(i), f"Creative {i}", f"Creative {i} group", dt.date(2026, 11, 1)) for i in range(3)
    ]


def test_reallocate_adgroups_sheet(account, tmp_path):
    loaded, _, env = account
    run(["sync", "--plan", loaded.path, "--date", "2026-11-11"], env)
    out = tmp_path / "adgroups.csv"
    r = run(["reallocate", "--plan", loaded.path, "--out", out, "--format", "adgroups", "--json"], env)
    assert r.exit_code == 0, r.output
    alloc = json.loads(r.output)
    lines = out.read_text().splitlines()
    assert lines[0] == "Ad group ID,Ad group name,Budget,Status"
    expected = [
        f"{adgroup_id(i)},Creative {i},{c['budget']:.2f},ENABLE"
        if c["budget"] > 0
        else f"{adgroup_id(i)},Creative {i},,DISABLE"
        for i, c in enumerate(alloc["creatives"])
    ]
    assert lines[1:] == expected
    loaded.path.write_text(loaded.path.read_text().replace(f'adgroup_id = "{adgroup_id(2)}"\n', ""))
    r = run(
        ["reallocate", "--plan", loaded.path, "--out", tmp_path / "x.csv", "--format", "adgroups", "--dry-run"], env
    )
    assert (r.exit_code, r.output) == (
        2,
        (
            f"error: {loaded.path}: creatives[3].adgroup_id: missing; the ad-group sheet "
            "needs every ad group; add the creative's ad group id, quoted (sparkbandit "
            "init --from EXPORT lists them)\n"
        ),
    )
    assert not (tmp_path / "x.csv").exists()


def test_plan_refuses_integer_ids_and_shared_ad_groups(tmp_path):
    loaded = write_plan(tmp_path)
    text = loaded.path.read_text()
    loaded.path.write_text(text.replace(f'ad_id = "{ad_id(1)}"', f"ad_id = {ad_id(1)}"))
    r = run(["validate", loaded.path], {})
    assert (r.exit_code, r.output) == (
        2,
        (
            f"error: {loaded.path}: creatives[2].ad_id: {ad_id(1)} is a TOML number, "
            f'but ids must be strings; quote it: "{ad_id(1)}"\n'
        ),
    )
    loaded.path.write_text(text.replace(f'adgroup_id = "{adgroup_id(2)}"', f'adgroup_id = "{adgroup_id(0)}"'))
    r = run(["validate", loaded.path], {})
    assert (r.exit_code, r.output) == (
        2,
        (
            f"error: {loaded.path}: creatives[3].adgroup_id: '{adgroup_id(0)}' is also "
            "the adgroup_id of creatives[1] ('Creative 0'); one creative = one Spark Ad "
            "in its own ad group (budgets are set per ad group); move it to an ad group "
            "of its own\n"
        ),
    )


def test_token_absent_from_outputs_ledger_and_files(account, tmp_path):
    loaded, fake, env = account
    plan = loaded.path
    now = ["--now", "2026-11-11T08:00:00+0000"]
    fake.fail_next("report/integrated/get/", 40001, f"No permission for access token {TOKEN}")
    r = run(["sync", "--plan", plan, "--date", "2026-11-11"], env)
    assert r.exit_code == 2 and "access token ***" in r.output
    fake.fail_next("report/integrated/get/", 50000, "System error")
    run(["sync", "--plan", plan, "--date", "2026-11-11", "--json"], env)
    run(["reallocate", "--plan", plan, "--json"], env)
    run(["apply", "--plan", plan, "--json", *now], env)
    fake.fail_next("adgroup/get/", 40002, f"bad parameter {TOKEN}")
    assert run(["apply", "--plan", plan, "--yes", *now], env).exit_code == 2
    fake.refuse(adgroup_id(0))
    assert run(["apply", "--plan", plan, "--yes", *now], env).exit_code == 2
    run(["status", "--plan", plan, "--json"], env)
    run(["history", "--plan", plan], env)
    run(["init", "--from-api", "--advertiser-id", ADVERTISER, "--out", tmp_path / "init.toml"], env)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert loaded.ledger_path in files
    assert [p for p in files if TOKEN.encode() in p.read_bytes()] == []


def test_plan_tiktok_section_errors(tmp_path):
    loaded = write_plan(tmp_path)
    text = loaded.path.read_text()
    loaded.path.write_text(text.replace('time_zone = "UTC"', 'time_zone = "Europe/Londn"'))
    r = run(["validate", loaded.path], {})
    assert (r.exit_code, r.output) == (
        2,
        (
            f"error: {loaded.path}: tiktok.time_zone: 'Europe/Londn' is not an IANA time "
            'zone; write the account\'s zone as in Ads Manager, e.g. "America/New_York" '
            'or "UTC"\n'
        ),
    )
    loaded.path.write_text(text.replace(f'advertiser_id = "{ADVERTISER}"', f"advertiser_id = {ADVERTISER}"))
    r = run(["validate", loaded.path], {})
    assert (r.exit_code, r.output) == (
        2,
        (
            f"error: {loaded.path}: tiktok.advertiser_id: {ADVERTISER} is a TOML number, "
            f'but ids must be strings; quote it: "{ADVERTISER}"\n'
        ),
    )
    loaded.path.write_text(text.replace("restate_days = 7", "restate_dayz = 7"))
    r = run(["validate", loaded.path], {})
    assert (r.exit_code, r.output) == (
        2,
        (f"error: {loaded.path}: tiktok.restate_dayz: unknown key; did you mean 'restate_days'?\n"),
    )


def test_init_usage_errors(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(EXPORT)
    assert run(["init"], {}).output == "error: init: give either --from EXPORT or --from-api (with --advertiser-id)\n"
    r = run(["init", "--from", export, "--from-api"], {})
    assert (r.exit_code, r.output) == (
        2,
        "error: init: give either --from EXPORT or --from-api (with --advertiser-id)\n",
    )
    r = run(["init", "--from-api"], {})
    assert (r.exit_code, r.output) == (
        2,
        "error: init --from-api: --advertiser-id is missing; give the ad account id\n",
    )
    r = run(["init", "--from", tmp_path / "none.csv"], {})
    assert (r.exit_code, r.output) == (2, f"error: {tmp_path / 'none.csv'}: file not found; check the path\n")


def test_sync_since_after_the_end(account):
    loaded, fake, env = account
    r = run(["sync", "--plan", loaded.path, "--date", "2026-11-11", "--since", "2026-11-11"], env)
    assert (r.exit_code, r.output) == (
        2,
        ("error: --since: 2026-11-11 is after the last day to read (2026-11-10); give a day before --date\n"),
    )
    assert not fake.calls

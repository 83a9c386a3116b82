"""Shared references for the TikTok API tests: a plan with a [tiktok] section and a fake account to match."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from allocator.inputs.tiktok_api import Credentials, TikTokClient
from allocator.plan import LoadedPlan, load_plan
from simulations.fake_tiktok import FakeTikTok

TOKEN = "tok-SECRET-7f3a9c"  # must never appear in any output
ADVERTISER = "7000000000000000001"


def ad_id(i: int) -> str:
    return f"{1800000000000000000 + i}"  # 19 digits: beyond a float's exact integers


def adgroup_id(i: int) -> str:
    return f"{1790000000000000000 + i}"


def write_plan(
    folder: Path,
    n: int = 3,
    *,
    daily_budget: float | None = None,
    extra: str = "",
    creative_extra: dict[int, str] | None = None,
    time_zone: str = "UTC",
    restate_days: int = 7,
    launched: dt.date | None = dt.date(2026, 11, 1),
    floor: float = 0.05,
) -> LoadedPlan:
    """A plan of `n` creatives c0..c{n-1}, each with its own ad and ad group."""
    creative_extra = creative_extra or {}
    budget = daily_budget if daily_budget is not None else max(100.0, 25.0 * n)
    text = f'''[campaign]
name = "tiktok test"
daily_budget = {budget}

[guardrails]
exploration_floor = {floor}

[tiktok]
advertiser_id = "{ADVERTISER}"
time_zone = "{time_zone}"
restate_days = {restate_days}
{extra}
'''
    for i in range(n):
        text += f'''
[[creatives]]
id = "c{i}"
name = "Creative {i}"
ad_id = "{ad_id(i)}"
adgroup_id = "{adgroup_id(i)}"
'''
        if launched is not None:
            text += f"launched = {launched.isoformat()}\n"
        text += creative_extra.get(i, "")
    path = folder / "plan.toml"
    path.write_text(text)
    return load_plan(path)


def make_fake(n: int = 3, budget: float = 50.0) -> FakeTikTok:
    fake = FakeTikTok(ADVERTISER, TOKEN)
    for i in range(n):
        fake.add_ad(ad_id(i), adgroup_id(i), f"Creative {i}", budget=budget)
    return fake


def client(fake: FakeTikTok, sleeps: list[float] | None = None, **kw) -> TikTokClient:
    """A client talking to `fake` in process; backoff sleeps are recorded in `sleeps`, never waited."""
    import numpy as np

    record = sleeps.append if sleeps is not None else (lambda s: None)
    return TikTokClient(
        Credentials(TOKEN, "https://fake.invalid/open_api/v1.3"),
        transport=fake.transport(),
        sleep=record,
        rng=np.random.default_rng(0),
        **kw,
    )


def stat(spend: float | str | None, impressions, clicks, conversions) -> dict:
    return {"spend": spend, "impressions": impressions, "clicks": clicks, "conversion": conversions}

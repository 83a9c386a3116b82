"""TikTok API loop figures: a sync of 1,000 ads x 30 days (30,000 rows, 30 pages of 1,000) and an apply of
200 ad groups, both against the in-process fake account (simulations/fake_tiktok.py via httpx.MockTransport:
the HTTP stack, JSON encoding and pagination are real, the network is not).

The sync is timed end to end and split into fetching (requests, JSON, paging) and storing (match + ingest in
one transaction); peak Python memory is from tracemalloc. The apply is timed for the first run (2 reads of
100 ad groups, 10 budget calls of 20) and for a second run of the same decision (reads only, nothing sent).

    python benchmarks/bench_tiktok.py [--ads 1000] [--days 30] [--adgroups 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from allocator.inputs.tiktok_api import Credentials, TikTokClient
from allocator.plan import load_plan
from allocator.workflows.apply import apply
from allocator.workflows.daily import reallocate_from_ledger
from allocator.workflows.sync import sync
from simulations.fake_tiktok import FakeTikTok

TOKEN = "bench-token"
ADVERTISER = "7000000000000000001"
START = dt.date(2026, 10, 1)


def setup(folder: Path, n: int, days: int, seed: int = 0) -> tuple[Path, FakeTikTok]:
    rng = np.random.default_rng(seed)
    fake = FakeTikTok(ADVERTISER, TOKEN)
    lines = [
        "[campaign]",
        'name = "Bench"',
        f"daily_budget = {40 * n}",
        "",
        "[guardrails]",
        "exploration_floor = 0.0",
        "learning_days = 0",
        "",
        "[tiktok]",
        f'advertiser_id = "{ADVERTISER}"',
        "",
    ]
    for i in range(n):
        a, g = f"{1800000000000000000 + i}", f"{1790000000000000000 + i}"
        fake.add_ad(a, g, f"ad {i}", budget=40.0)
        lines += ["[[creatives]]", f'id = "c{i:04d}"', f'ad_id = "{a}"', f'adgroup_id = "{g}"', ""]
    imp = rng.integers(2000, 8000, size=(days, n))
    clk = rng.binomial(imp, 0.012)
    conv = rng.binomial(clk, 0.015)
    spend = np.round(imp * 7.0 / 1000, 2)
    for d in range(days):
        day = (START + dt.timedelta(days=d)).isoformat()
        for i in range(n):
            fake.stats[(fake.ads[i].ad_id, day)] = {
                "spend": f"{spend[d, i]:.2f}",
                "impressions": str(imp[d, i]),
                "clicks": str(clk[d, i]),
                "conversion": str(conv[d, i]),
            }
    path = folder / "bench.toml"
    path.write_text("\n".join(lines))
    return path, fake


def client(fake: FakeTikTok) -> TikTokClient:
    return TikTokClient(
        Credentials(TOKEN, "https://fake.invalid/open_api/v1.3"), transport=fake.transport(), sleep=lambda s: None
    )


def bench_sync(n: int, days: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, fake = setup(Path(tmp), n, days)
        loaded = load_plan(path)
        end = START + dt.timedelta(days=days)
        with client(fake) as c:
            t0 = time.perf_counter()
            items, pages = c.report(ADVERTISER, START, end - dt.timedelta(days=1))
            fetch = time.perf_counter() - t0
        with client(fake) as c:
            t0 = time.perf_counter()
            res = sync(loaded, c, end, since=START)
            total = time.perf_counter() - t0
        # memory in a second ledger (tracemalloc slows Python down several times: not in the timed run)
        loaded2 = load_plan(path.rename(path.with_name("bench2.toml")))
        tracemalloc.start()
        with client(fake) as c:
            sync(loaded2, c, end, since=START)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        with client(fake) as c:
            t0 = time.perf_counter()
            again = sync(loaded, c, end, since=START)
            second = time.perf_counter() - t0
        print(
            f"sync {n} ads x {days} days: {res.rows} rows, {res.pages} pages ({len(items)} rows / {pages} pages "
            f"fetched alone in {fetch:.2f} s)"
        )
        print(
            f"  end to end {total:.2f} s (fetch {fetch:.2f} s + match and ingest {total - fetch:.2f} s); "
            f"peak Python memory {peak:.0f} MiB (tracemalloc)"
        )
        print(f"  same sync again ('{again.ingest.files[0].status}'): {second:.2f} s")


def bench_apply(n: int, days: int = 10) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, fake = setup(Path(tmp), n, days)
        loaded = load_plan(path)
        day = START + dt.timedelta(days=days)
        with client(fake) as c:
            sync(loaded, c, day)
        reallocate_from_ledger(loaded, day)
        now = dt.datetime.combine(day, dt.time(8)).replace(tzinfo=dt.UTC)
        fake.calls.clear()
        with client(fake) as c:
            t0 = time.perf_counter()
            res = apply(loaded, c, yes=True, now=now)
            first = time.perf_counter() - t0
        sent = sum(len(b.get("budget", [])) for _, e, b in fake.calls if e == "adgroup/budget/update/")
        statuses = sum(len(b["adgroup_ids"]) for _, e, b in fake.calls if e == "adgroup/status/update/")
        calls = len(fake.calls)
        with client(fake) as c:
            t0 = time.perf_counter()
            again = apply(loaded, c, yes=True, now=now)
            second = time.perf_counter() - t0
        print(
            f"apply {n} ad groups: {first:.2f} s, {calls} requests ({res.calls} budget/status calls: {sent} budgets "
            f"and {statuses} DISABLE sent); again: {second:.2f} s, {again.calls} calls sent"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ads", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--adgroups", type=int, default=200)
    args = ap.parse_args()
    bench_sync(args.ads, args.days)
    bench_apply(args.adgroups)


if __name__ == "__main__":
    main()

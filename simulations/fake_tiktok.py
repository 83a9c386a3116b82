"""A fake TikTok Business API v1.3 account, in process (httpx.MockTransport) or as a local HTTP server.

For tests, benchmarks and scripted runs; it follows the payload shapes of `../shared/DOMAIN.md`:

- every answer is HTTP 200 with `{"code", "message", "request_id", "data"}`; code 0 is success;
- a wrong `Access-Token` header gives 40105; `fail_next(endpoint, code)` queues errors (40100, 50000...);
- `GET report/integrated/get/`: `dimensions` and `metrics` JSON lists, `start_date`/`end_date` at most 30
  days apart (40002 otherwise), `page`/`page_size` (<= 1000); `data.list[]` of
  `{"dimensions": {"ad_id", "stat_time_day": "YYYY-MM-DD 00:00:00"}, "metrics": {...}}` with metric values
  as strings ("20.00"), as TikTok sends them, unless a stat was stored otherwise (numbers, null, "-");
  `data.page_info {page, page_size, total_number, total_page}`;
- `GET adgroup/get/`: `filtering={"adgroup_ids": [...]}`, paginated; `budget`, `budget_mode`,
  `operation_status`, `adgroup_name`;
- `POST adgroup/budget/update/`: `budget` and/or `scheduled_budget` lists (at most 20 entries, 40002
  otherwise; budgets under 20 refused); a scheduled budget takes effect at `midnight()`;
  `refuse(adgroup_id)` makes every call containing that ad group fail with 40002;
- `POST adgroup/status/update/`: `adgroup_ids`, `operation_status` ENABLE | DISABLE;
- `GET tt_video/info/`: `item_info`, `auth_info {ad_auth_status, auth_start_time, auth_end_time}`, `user_info`.

`simulate_day` makes an account live: every enabled ad group spends about its budget, with conversions
booked on the click day but reported over the following days (so past days are restated).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np

MIN_BUDGET = 20.0


@dataclass
class FakeAdGroup:
    adgroup_id: str
    adgroup_name: str
    budget: float = 50.0
    operation_status: str = "ENABLE"
    budget_mode: str = "BUDGET_MODE_DAY"
    scheduled: float | None = None


@dataclass
class FakeAd:
    ad_id: str
    adgroup_id: str
    ad_name: str
    cvr: float = 0.015  # conversions per click (simulate_day)
    ctr: float = 0.012
    cpm: float = 7.0


@dataclass
class FakeTikTok:
    """The state of one fake ad account and the requests it received."""

    advertiser_id: str
    token: str
    ads: list[FakeAd] = field(default_factory=list)
    adgroups: dict[str, FakeAdGroup] = field(default_factory=dict)
    # (ad_id, "YYYY-MM-DD") -> metrics as served ({"spend": "20.00", ...}); set directly or by simulate_day
    stats: dict[tuple[str, str], dict] = field(default_factory=dict)
    auth: dict[str, dict] = field(default_factory=dict)  # auth_code -> auth_info
    calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (method, endpoint, params or body)
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    # simulate_day: per (ad_id, day) the delays (days) of its conversions, for restatements
    _delays: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    _request = 0
    _keys: tuple = ((), [])

    # ------------------------------------------------------------------ set-up
    def add_ad(self, ad_id: str, adgroup_id: str, name: str, *, budget: float = 50.0, **kw: float) -> FakeAd:
        ad = FakeAd(ad_id, adgroup_id, name, **kw)
        self.ads.append(ad)
        self.adgroups.setdefault(adgroup_id, FakeAdGroup(adgroup_id, f"{name} group", budget))
        return ad

    def fail_next(self, endpoint: str, code: int, message: str = "", times: int = 1) -> None:
        """The next `times` requests to `endpoint` answer `code`."""
        self.failures.extend([(endpoint, code, message or f"fake error {code}")] * times)

    def refuse(self, adgroup_id: str) -> None:
        self.refused.add(adgroup_id)

    def sent(self, endpoint: str) -> list[dict]:
        return [body for _, e, body in self.calls if e == endpoint]

    # ------------------------------------------------------------------ the account's days
    def midnight(self) -> None:
        """00:00 in the account's time zone: scheduled budgets take effect."""
        for g in self.adgroups.values():
            if g.scheduled is not None:
                g.budget, g.scheduled = g.scheduled, None

    def simulate_day(
        self,
        day: dt.date,
        rng: np.random.Generator,
        delay_cdf: tuple[float, ...] = (0.55, 0.75, 0.85, 0.92, 0.96, 0.99, 1.0),
    ) -> None:
        """Every enabled ad group spends 90-100% of its budget on `day`; stats of the last 7 days are
        re-reported with the conversions whose delay has passed."""
        key_day = day.isoformat()
        for ad in self.ads:
            g = self.adgroups[ad.adgroup_id]
            if g.operation_status != "ENABLE" or g.budget <= 0:
                continue
            spend = round(g.budget * float(rng.uniform(0.9, 1.0)), 2)
            impressions = int(spend / ad.cpm * 1000)
            clicks = int(rng.binomial(impressions, ad.ctr))
            conversions = int(rng.binomial(clicks, ad.cvr))
            cdf = np.asarray(delay_cdf)
            self._delays[(ad.ad_id, key_day)] = np.searchsorted(cdf, rng.uniform(size=conversions), side="right")
            self.stats[(ad.ad_id, key_day)] = {
                "spend": f"{spend:.2f}",
                "impressions": str(impressions),
                "clicks": str(clicks),
                "conversion": "0",
            }
        # conversions reported so far, for every day still inside the delay window
        for (ad_id, d), delays in self._delays.items():
            age = (day - dt.date.fromisoformat(d)).days
            if 0 <= age <= len(delay_cdf):
                self.stats[(ad_id, d)]["conversion"] = str(int((delays <= age).sum()))

    def totals(self, through: dt.date) -> dict[str, dict[str, float]]:
        """ad_id -> summed metrics of days up to `through`, as the report would give them now."""
        out: dict[str, dict[str, float]] = {}
        for (ad_id, d), m in self.stats.items():
            if dt.date.fromisoformat(d) > through:
                continue
            t = out.setdefault(ad_id, {"impressions": 0.0, "clicks": 0.0, "conversions": 0.0, "spend": 0.0})
            for metric, name in (
                ("impressions", "impressions"),
                ("clicks", "clicks"),
                ("conversion", "conversions"),
                ("spend", "spend"),
            ):
                v = m.get(metric)
                t[name] += 0.0 if v in (None, "-") else float(v)
        return out

    # ------------------------------------------------------------------ the API
    def answer(self, method: str, path: str, token: str | None, params: dict, body: dict) -> dict:
        """The JSON body for one request (see the module docstring)."""
        endpoint = path.split("/open_api/v1.3/", 1)[-1].lstrip("/")
        self.calls.append((method, endpoint, body if method == "POST" else params))
        self._request += 1
        rid = f"fake-{self._request:06d}"
        if token != self.token:
            return _err(40105, "Access token is invalid or has been revoked.", rid)
        for k, (ep, code, message) in enumerate(self.failures):
            if ep == endpoint:
                del self.failures[k]
                return _err(code, message, rid)
        handler = {
            ("GET", "report/integrated/get/"): self._report,
            ("GET", "adgroup/get/"): self._adgroups,
            ("POST", "adgroup/budget/update/"): self._budget,
            ("POST", "adgroup/status/update/"): self._status,
            ("GET", "tt_video/info/"): self._video,
        }.get((method, endpoint))
        if handler is None:
            return _err(40002, f"unknown endpoint {method} {endpoint}", rid)
        args = params if method == "GET" else body
        if str(args.get("advertiser_id")) != self.advertiser_id:
            return _err(40001, "No permission to operate advertiser.", rid)
        try:
            data = handler(args)
        except _Refused as e:
            return _err(40002, str(e), rid)
        return {"code": 0, "message": "OK", "request_id": rid, "data": data}

    def _report(self, q: dict) -> dict:
        if (q.get("report_type"), q.get("data_level")) != ("BASIC", "AUCTION_AD"):
            raise _Refused("report_type must be BASIC and data_level AUCTION_AD")
        if json.loads(q.get("dimensions", "[]")) != ["ad_id", "stat_time_day"]:
            raise _Refused('dimensions must be ["ad_id","stat_time_day"]')
        metrics = json.loads(q.get("metrics", "[]"))
        start, end = dt.date.fromisoformat(q["start_date"]), dt.date.fromisoformat(q["end_date"])
        if (end - start).days >= 30 or end < start:
            raise _Refused("start_date and end_date must be at most 30 days apart with stat_time_day")
        page, size = int(q.get("page", 1)), int(q.get("page_size", 10))
        if not 1 <= size <= 1000:
            raise _Refused("page_size must be between 1 and 1000")
        ads = {a.ad_id: a for a in self.ads}
        # the sorted keys of a range are cached while the set of stats keeps its size (pages of one report)
        cache_key = (len(self.stats), start, end)
        if self._keys[0] != cache_key:
            lo, hi = start.isoformat(), end.isoformat()
            self._keys = (cache_key, sorted((k for k in self.stats if lo <= k[1] <= hi), key=lambda k: (k[1], k[0])))
        keys = self._keys[1]
        total_page = max(1, -(-len(keys) // size))
        rows = []
        for ad_id, d in keys[(page - 1) * size : page * size]:
            stat = self.stats[(ad_id, d)]
            ad = ads.get(ad_id)
            m = {k: stat.get(k) for k in metrics if k in ("spend", "impressions", "clicks", "conversion")}
            if "adgroup_id" in metrics:
                m["adgroup_id"] = ad.adgroup_id if ad else "0"
            if "ad_name" in metrics:
                m["ad_name"] = ad.ad_name if ad else ""
            rows.append({"dimensions": {"ad_id": ad_id, "stat_time_day": f"{d} 00:00:00"}, "metrics": m})
        return {
            "list": rows,
            "page_info": {"page": page, "page_size": size, "total_number": len(keys), "total_page": total_page},
        }

    def _adgroups(self, q: dict) -> dict:
        ids = json.loads(q.get("filtering", "{}")).get("adgroup_ids")
        groups = [g for g in self.adgroups.values() if ids is None or g.adgroup_id in ids]
        page, size = int(q.get("page", 1)), int(q.get("page_size", 10))
        out = [
            {
                "adgroup_id": g.adgroup_id,
                "adgroup_name": g.adgroup_name,
                "budget": g.budget,
                "budget_mode": g.budget_mode,
                "operation_status": g.operation_status,
            }
            for g in groups[(page - 1) * size : page * size]
        ]
        return {
            "list": out,
            "page_info": {
                "page": page,
                "page_size": size,
                "total_number": len(groups),
                "total_page": max(1, -(-len(groups) // size)),
            },
        }

    def _budget(self, b: dict) -> dict:
        now, later = b.get("budget") or [], b.get("scheduled_budget") or []
        if len(now) + len(later) > 20:
            raise _Refused("at most 20 ad groups per request")
        for e in now + later:
            g = self.adgroups.get(str(e["adgroup_id"]))
            if g is None:
                raise _Refused(f"adgroup {e['adgroup_id']} does not exist")
            if g.adgroup_id in self.refused:
                raise _Refused(f"adgroup {g.adgroup_id} cannot be modified")
            if float(e["budget"]) < MIN_BUDGET:
                raise _Refused(f"budget of adgroup {g.adgroup_id} is below the minimum {MIN_BUDGET:g}")
        for e in now:
            self.adgroups[str(e["adgroup_id"])].budget = float(e["budget"])
        for e in later:
            self.adgroups[str(e["adgroup_id"])].scheduled = float(e["budget"])
        return {}

    def _status(self, b: dict) -> dict:
        ids = [str(i) for i in b.get("adgroup_ids") or []]
        if b.get("operation_status") not in ("ENABLE", "DISABLE") or len(ids) > 20:
            raise _Refused("operation_status must be ENABLE or DISABLE, at most 20 ad groups")
        for i in ids:
            if i not in self.adgroups:
                raise _Refused(f"adgroup {i} does not exist")
            if i in self.refused:
                raise _Refused(f"adgroup {i} cannot be modified")
        for i in ids:
            self.adgroups[i].operation_status = b["operation_status"]
        return {"adgroup_ids": ids}

    def _video(self, q: dict) -> dict:
        info = self.auth.get(q.get("auth_code", ""))
        if info is None:
            raise _Refused("auth_code is invalid")
        return {
            "item_info": {"auth_code": q["auth_code"], "item_id": "7300000000000000000", "status": "IN_USE"},
            "auth_info": info,
            "user_info": {"identity_id": "id-1", "identity_type": "AUTH_CODE"},
        }

    # ------------------------------------------------------------------ transports
    def handle(self, request: httpx.Request) -> httpx.Response:
        """httpx.MockTransport handler."""
        params = dict(request.url.params)
        body = json.loads(request.content) if request.method == "POST" and request.content else {}
        payload = self.answer(request.method, request.url.path, request.headers.get("Access-Token"), params, body)
        return httpx.Response(200, json=payload)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the fake on 127.0.0.1 (a free port) for the duration; yields the base URL."""
        fake = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                url = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else {}
                with lock:
                    payload = fake.answer(method, url.path, self.headers.get("Access-Token"), params, body)
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/open_api/v1.3"
        finally:
            server.shutdown()
            server.server_close()


class _Refused(Exception):
    pass


def _err(code: int, message: str, rid: str) -> dict:
    return {"code": code, "message": message, "request_id": rid, "data": {}}

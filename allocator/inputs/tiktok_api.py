"""A small client of the TikTok Business API v1.3 over httpx: the five endpoints sparkbandit needs.

- `GET report/integrated/get/` (daily ad-level results; every page; ranges cut into 30-day requests)
- `GET adgroup/get/` (budgets and statuses), `POST adgroup/budget/update/`, `POST adgroup/status/update/`
- `GET tt_video/info/` (the Spark authorization behind an `auth_code`)

TikTok answers errors with HTTP 200 and a non-zero `code` in the body, so retries look at the body:
40100 (too many requests) and 5xxxx (system errors), and HTTP 429/5xx, are retried with exponential backoff
and jitter, at most `max_attempts` times and `max_wait` seconds in all; the sleep is injectable so tests do
not wait. Anything else ends in one `TikTokAPIError` line naming the endpoint, TikTok's code and message,
and the fix. The access token is sent in the `Access-Token` header and scrubbed from every message.

The official SDK is not used: generated code without retries, lacking the budget and Spark endpoints.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np

from models.errors import TikTokAPIError

DEFAULT_BASE = "https://business-api.tiktok.com/open_api/v1.3"
TOKEN_ENV = "TIKTOK_ACCESS_TOKEN"
TOKEN_FILE_ENV = "TIKTOK_ACCESS_TOKEN_FILE"
BASE_ENV = "TIKTOK_API_BASE"
REPORT_DAYS = 30  # the report accepts at most 30 days per request with stat_time_day
REPORT_PAGE_SIZE = 1000  # the largest page the report serves
ADGROUP_PAGE_SIZE = 1000
PUSH_BATCH = 20  # budget (and status) updates take at most 20 ad groups per call
REPORT_METRICS = ("spend", "impressions", "clicks", "conversion", "adgroup_id", "ad_name")
RETRY_CODES = frozenset({40100})  # and every 5xxxx code

# TikTok code -> the fix shown to the user
FIXES: dict[int, str] = {
    40001: "the token has no permission for this advertiser; in the TikTok for Business developer portal grant "
    "the app access to the advertiser (Ads Management and Reporting scopes), or check [tiktok] advertiser_id",
    40002: "TikTok refused a parameter; check [tiktok] advertiser_id and the ids in the plan",
    40102: f"the access token has expired; create a new one and set {TOKEN_ENV} (or {TOKEN_FILE_ENV})",
    40105: f"the access token is invalid; set {TOKEN_ENV} (or {TOKEN_FILE_ENV}) to the app's long-term token",
    40100: "TikTok's rate limit is still reached; wait about 5 minutes and run again",
}


@dataclass(frozen=True)
class Credentials:
    """Where to reach the API and the token to use (never printed: `repr` hides it)."""

    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE


def credentials_from_env(env: Mapping[str, str] | None = None) -> Credentials:
    """The token from TIKTOK_ACCESS_TOKEN, or the file named by TIKTOK_ACCESS_TOKEN_FILE; the base URL from
    TIKTOK_API_BASE (default the production API).

    Raises
    ------
    TikTokAPIError
        Neither variable set, the file unreadable, or the token empty.
    """
    env = os.environ if env is None else env
    base = (env.get(BASE_ENV) or DEFAULT_BASE).strip().rstrip("/")
    token = env.get(TOKEN_ENV, "").strip()
    if not token and env.get(TOKEN_FILE_ENV):
        path = Path(env[TOKEN_FILE_ENV])
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise TikTokAPIError(
                f"{TOKEN_FILE_ENV}: cannot read {path} ({e.strerror}); point it at the file holding the token"
            ) from None
        if not token:
            raise TikTokAPIError(f"{TOKEN_FILE_ENV}: {path} is empty; write the access token into it")
    if not token:
        raise TikTokAPIError(
            f"no TikTok access token: set {TOKEN_ENV} (or {TOKEN_FILE_ENV} to a file holding it); the token "
            "never goes in the plan"
        )
    return Credentials(token, base)


@dataclass(frozen=True)
class Answer:
    """A successful answer: the body's `data` and TikTok's request id."""

    data: dict
    request_id: str | None


class TikTokClient:
    """One connection pool to the API for the length of a command. Use as a context manager.

    Parameters
    ----------
    credentials : Credentials
    transport : httpx.BaseTransport, optional
        For tests and benchmarks (an in-process fake); default the network.
    timeout : float
        Seconds to wait for an answer (10 s to connect).
    max_attempts : int
        Attempts per request when TikTok says to retry (40100, 5xxxx, HTTP 429/5xx).
    max_wait : float
        Seconds of backoff in all per request before giving up.
    backoff : float
        First backoff in seconds; doubles each attempt (capped at 60 s), with jitter in [d/2, d].
    sleep : callable
        Called with the seconds to wait (tests pass a recorder).
    rng : numpy.random.Generator, optional
        Draws the jitter.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        max_attempts: int = 7,
        max_wait: float = 300.0,
        backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: np.random.Generator | None = None,
    ) -> None:
        self._token = credentials.token
        self.base_url = credentials.base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.sleep = sleep
        self.rng = rng if rng is not None else np.random.default_rng()
        self.calls = 0  # HTTP requests sent, retries included
        self.waited = 0.0  # seconds of backoff in all
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers={"Access-Token": self._token, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one request
    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _fail(self, endpoint: str, problem: str, fix: str, code: int | None = None, request_id: str | None = None):
        rid = f" (request id {request_id})" if request_id else ""
        return TikTokAPIError(self._scrub(f"TikTok API {endpoint}: {problem}{rid}; {fix}"), code, request_id)

    def request(self, method: str, endpoint: str, *, params: dict | None = None, body: dict | None = None) -> Answer:
        """Send one request (retrying as TikTok asks) and return its `data`.

        Raises
        ------
        TikTokAPIError
            A non-zero code that is not retried, retries exhausted, a network error or timeout, an HTTP error,
            or an answer that is not TikTok's JSON.
        """
        query = None if params is None else {k: _param(v) for k, v in params.items()}
        attempt = 0
        waited = 0.0
        while True:
            attempt += 1
            self.calls += 1
            try:
                resp = self._http.request(method, endpoint, params=query, json=body)
            except httpx.TimeoutException:
                raise self._fail(
                    endpoint,
                    f"no answer within {self.timeout:g} s (timeout)",
                    f"check the network (or {BASE_ENV}) and run again; nothing was written",
                ) from None
            except httpx.HTTPError as e:
                raise self._fail(
                    endpoint,
                    f"cannot reach {self.base_url} ({type(e).__name__}: {self._scrub(str(e))})",
                    f"check the network connection and {BASE_ENV}; nothing was written",
                ) from None
            retry_reason: str | None = None
            code: int | None = None
            message = ""
            request_id = None
            if resp.status_code == 429 or resp.status_code >= 500:
                retry_reason = f"HTTP {resp.status_code}"
            elif resp.status_code != 200:
                raise self._fail(
                    endpoint,
                    f"HTTP {resp.status_code}",
                    f"check {BASE_ENV} ({self.base_url}); it should end in /open_api/v1.3",
                )
            else:
                try:
                    payload = resp.json()
                    code = int(payload["code"])
                except (ValueError, KeyError, TypeError):
                    raise self._fail(
                        endpoint, "the answer is not TikTok's JSON", f"check {BASE_ENV} ({self.base_url})"
                    ) from None
                message = str(payload.get("message", "")).strip()
                request_id = payload.get("request_id")
                if code == 0:
                    data = payload.get("data") or {}
                    return Answer(data if isinstance(data, dict) else {"list": data}, request_id)
                if code in RETRY_CODES or 50000 <= code <= 59999:
                    retry_reason = f"code {code} ({message})"
                else:
                    fix = FIXES.get(code, "see TikTok's message; fix the request and run again")
                    raise self._fail(endpoint, f"code {code} ({message})", fix, code, request_id)
            delay = min(60.0, self.backoff * 2 ** (attempt - 1))
            delay = delay / 2 + float(self.rng.uniform(0, delay / 2))
            if attempt >= self.max_attempts or waited + delay > self.max_wait:
                fix = (
                    FIXES[40100] if code == 40100 else "TikTok's servers are failing; wait a few minutes and run again"
                )
                raise self._fail(
                    endpoint,
                    f"{retry_reason} still after {attempt} attempts over {waited:.0f} s",
                    fix + "; nothing was written",
                    code,
                    request_id,
                )
            waited += delay
            self.waited += delay
            self.sleep(delay)

    def pages(self, endpoint: str, params: dict, page_size: int) -> Iterator[list[dict]]:
        """Every page of a paginated GET, page 1 to `page_info.total_page`."""
        page = 1
        while True:
            data = self.request("GET", endpoint, params={**params, "page": page, "page_size": page_size}).data
            items = data.get("list") or []
            yield items
            info = data.get("page_info") or {}
            total = int(info.get("total_page") or 1)
            if page >= total:
                return
            page += 1

    # ------------------------------------------------------------------ endpoints
    def report(
        self,
        advertiser_id: str,
        start: dt.date,
        end: dt.date,
        *,
        page_size: int = REPORT_PAGE_SIZE,
        metrics: Sequence[str] = REPORT_METRICS,
    ) -> tuple[list[dict], int]:
        """Daily ad-level rows from `start` to `end` (inclusive, account time zone) and the pages read.

        The range is cut into requests of at most 30 days; each is read to its last page.
        """
        rows: list[dict] = []
        pages = 0
        for lo, hi in chunks(start, end):
            params = {
                "advertiser_id": advertiser_id,
                "report_type": "BASIC",
                "service_type": "AUCTION",
                "data_level": "AUCTION_AD",
                "dimensions": ["ad_id", "stat_time_day"],
                "metrics": list(metrics),
                "start_date": lo.isoformat(),
                "end_date": hi.isoformat(),
            }
            for items in self.pages("report/integrated/get/", params, page_size):
                rows.extend(items)
                pages += 1
        return rows, pages

    def adgroups(self, advertiser_id: str, adgroup_ids: Sequence[str]) -> dict[str, dict]:
        """adgroup_id -> the ad group (`budget`, `budget_mode`, `operation_status`, `adgroup_name`)."""
        found: dict[str, dict] = {}
        ids = list(dict.fromkeys(adgroup_ids))
        for k in range(0, len(ids), 100):  # keep the filter (and the URL) short
            params = {
                "advertiser_id": advertiser_id,
                "filtering": {"adgroup_ids": ids[k : k + 100]},
                "fields": ["adgroup_id", "adgroup_name", "budget", "budget_mode", "operation_status"],
            }
            for items in self.pages("adgroup/get/", params, ADGROUP_PAGE_SIZE):
                for g in items:
                    found[str(g.get("adgroup_id"))] = g
        return found

    def update_budgets(self, advertiser_id: str, entries: Sequence[tuple[str, float]], *, scheduled: bool) -> Answer:
        """Set daily budgets: now (`budget`) or from 00:00 tomorrow (`scheduled_budget`); at most 20 entries."""
        if len(entries) > PUSH_BATCH:
            raise ValueError(f"at most {PUSH_BATCH} ad groups per budget update")
        key = "scheduled_budget" if scheduled else "budget"
        body = {"advertiser_id": advertiser_id, key: [{"adgroup_id": g, "budget": round(b, 2)} for g, b in entries]}
        return self.request("POST", "adgroup/budget/update/", body=body)

    def update_status(self, advertiser_id: str, adgroup_ids: Sequence[str], status: str) -> Answer:
        """ENABLE or DISABLE ad groups (at most 20 a call)."""
        if status not in ("ENABLE", "DISABLE"):
            raise ValueError(status)
        if len(adgroup_ids) > PUSH_BATCH:
            raise ValueError(f"at most {PUSH_BATCH} ad groups per status update")
        body = {"advertiser_id": advertiser_id, "adgroup_ids": list(adgroup_ids), "operation_status": status}
        return self.request("POST", "adgroup/status/update/", body=body)

    def video_info(self, advertiser_id: str, auth_code: str) -> dict:
        """The Spark post behind an authorization code: `item_info`, `auth_info`, `user_info`."""
        return self.request(
            "GET", "tt_video/info/", params={"advertiser_id": advertiser_id, "auth_code": auth_code}
        ).data


def _param(value: Any) -> Any:
    """Lists and objects go in the query string JSON-encoded, as the API expects."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict, tuple)) else value


def chunks(start: dt.date, end: dt.date, days: int = REPORT_DAYS) -> list[tuple[dt.date, dt.date]]:
    """[start, end] cut into consecutive ranges of at most `days` days (none when start > end)."""
    out = []
    lo = start
    while lo <= end:
        hi = min(end, lo + dt.timedelta(days=days - 1))
        out.append((lo, hi))
        lo = hi + dt.timedelta(days=1)
    return out


def metric_value(value: Any) -> float:
    """A metric as the report gives it: "20.00", 20, 20.0, null or "-" (no delivery: 0).

    Raises ValueError for anything else (the caller names the ad, day and metric).
    """
    if value is None or isinstance(value, bool):
        if value is None:
            return 0.0
        raise ValueError(repr(value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        s = value.strip().replace(",", "")
        if s in ("", "-", "--"):
            return 0.0
        return float(s)
    raise ValueError(repr(value))

"""The ledger's TikTok tables (migration 3 of `allocator.storage.schema.MIGRATIONS`): pushes and authorizations.

- `tiktok_pushes`: every budget or status change `apply` sent (or tried to): the decision (run id and date),
  creative, ad group, kind (`budget`, `scheduled_budget`, `status`), value, TikTok's request id and the
  result (`ok` or `failed` with TikTok's message). `already_pushed` is what makes `apply` idempotent.
- `tiktok_authorizations`: per creative, the Spark authorization `sync` read from `tt_video/info/`;
  `auth_end_time` (UTC) wins over the plan's `auth_expires` (`effective_plan`).

Functions take an open `Ledger`; writers must run inside `ledger.write()`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from allocator.plan import CampaignPlan, LoadedPlan
from allocator.storage.ledger import Ledger
from allocator.storage.schema import utc_now


@dataclass(frozen=True)
class Authorization:
    """A Spark authorization as TikTok reported it. Times are UTC, as 'YYYY-MM-DD HH:MM:SS'."""

    creative_id: str
    auth_status: str | None
    auth_start_time: str | None
    auth_end_time: str | None
    fetched_at: str | None = None

    def expires(self, time_zone: str) -> dt.date | None:
        """The day the authorization ends in the account's time zone (the plan's `auth_expires` meaning: no
        budget for that day or later)."""
        end = parse_utc(self.auth_end_time)
        if end is None:
            return None
        return end.astimezone(zoneinfo.ZoneInfo(time_zone)).date()

    def expires_iso(self, time_zone: str) -> str | None:
        """`expires` as ISO text (None when TikTok gave no end)."""
        exp = self.expires(time_zone)
        return None if exp is None else exp.isoformat()

    def to_json(self, time_zone: str) -> dict:
        return {
            "creative_id": self.creative_id,
            "auth_status": self.auth_status,
            "auth_start_time": self.auth_start_time,
            "auth_end_time": self.auth_end_time,
            "expires": self.expires_iso(time_zone),
            "fetched_at": self.fetched_at,
        }


def parse_utc(text: str | None) -> dt.datetime | None:
    """'2026-12-20 10:00:00' (TikTok's UTC times; ISO forms too) -> an aware datetime; None when empty."""
    if text is None or not str(text).strip():
        return None
    value = dt.datetime.fromisoformat(str(text).strip().replace(" ", "T").removesuffix("Z"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def time_zone(plan: CampaignPlan) -> str:
    return plan.tiktok.time_zone if plan.tiktok is not None else "UTC"


# ---------------------------------------------------------------------- authorizations
def store_authorizations(ledger: Ledger, campaign_id: int, auths: list[Authorization], tz: str) -> None:
    """Upsert the authorizations read by a sync (inside a write transaction)."""
    now = utc_now()
    ledger.conn.executemany(
        """INSERT INTO tiktok_authorizations (campaign_id, creative_id, auth_status, auth_start_time, auth_end_time,
             expires, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (campaign_id, creative_id) DO UPDATE SET auth_status = excluded.auth_status,
             auth_start_time = excluded.auth_start_time, auth_end_time = excluded.auth_end_time,
             expires = excluded.expires, fetched_at = excluded.fetched_at""",
        [
            (
                campaign_id,
                a.creative_id,
                a.auth_status,
                a.auth_start_time,
                a.auth_end_time,
                a.expires_iso(tz),
                now,
            )
            for a in auths
        ],
    )


def authorizations(ledger: Ledger, plan: CampaignPlan) -> dict[str, Authorization]:
    """creative id -> the authorization last read from TikTok, for the plan's campaign."""
    cid = ledger.campaign_id(plan)
    if cid is None:
        return {}
    with ledger.errors():
        rows = ledger.conn.execute(
            """SELECT creative_id, auth_status, auth_start_time, auth_end_time, fetched_at
               FROM tiktok_authorizations WHERE campaign_id = ?""",
            (cid,),
        ).fetchall()
    return {r[0]: Authorization(*r) for r in rows}


def auth_disagreements(plan: CampaignPlan, auths: dict[str, Authorization]) -> list[str]:
    """Warnings where the plan's `auth_expires` differs from the end TikTok reports."""
    tz = time_zone(plan)
    out = []
    for c in plan.creatives:
        a = auths.get(c.id)
        exp = None if a is None else a.expires(tz)
        if a is not None and exp is not None and c.auth_expires is not None and c.auth_expires != exp:
            out.append(
                f"{c.label}: the plan's auth_expires {c.auth_expires.isoformat()} differs from TikTok's "
                f"authorization end {a.auth_end_time} UTC ({exp.isoformat()} in {tz}); using TikTok's (update "
                "auth_expires in the plan)"
            )
    return out


def with_authorizations(plan: CampaignPlan, auths: dict[str, Authorization]) -> CampaignPlan:
    """The plan with each creative's `auth_expires` replaced by TikTok's authorization end, where known."""
    tz = time_zone(plan)
    creatives = []
    changed = False
    for c in plan.creatives:
        a = auths.get(c.id)
        exp = None if a is None else a.expires(tz)
        if exp is not None and exp != c.auth_expires:
            creatives.append(c.model_copy(update={"auth_expires": exp}))
            changed = True
        else:
            creatives.append(c)
    return plan.model_copy(update={"creatives": creatives}) if changed else plan


def effective_plan(loaded: LoadedPlan) -> list[str]:
    """Apply the authorizations stored in the plan's ledger to `loaded.plan` (in place) and return the
    disagreement warnings. Nothing happens without a ledger or a `[tiktok]` section."""
    if loaded.plan.tiktok is None or not loaded.ledger_path.is_file():
        return []
    with Ledger.open(loaded.ledger_path, create=False) as ledger:
        auths = authorizations(ledger, loaded.plan)
    warnings = auth_disagreements(loaded.plan, auths)
    loaded.plan = with_authorizations(loaded.plan, auths)
    return warnings


def stored_authorizations(loaded: LoadedPlan) -> tuple[list[dict], list[str]]:
    """For `status`: the stored authorizations as JSON (plan order) and the disagreement warnings; applies
    them to `loaded.plan` like `effective_plan`."""
    if loaded.plan.tiktok is None or not loaded.ledger_path.is_file():
        return [], []
    with Ledger.open(loaded.ledger_path, create=False) as ledger:
        auths = authorizations(ledger, loaded.plan)
    warnings = auth_disagreements(loaded.plan, auths)
    tz = time_zone(loaded.plan)
    rows = [auths[c.id].to_json(tz) for c in loaded.plan.creatives if c.id in auths]
    loaded.plan = with_authorizations(loaded.plan, auths)
    return rows, warnings


# ---------------------------------------------------------------------- pushes
@dataclass(frozen=True)
class Push:
    decision_run_id: str
    decision_date: dt.date
    creative_id: str
    adgroup_id: str
    kind: str  # "budget" | "scheduled_budget" | "status"
    value: str  # "25.00" or "ENABLE" / "DISABLE"
    request_id: str | None
    result: str  # "ok" | "failed"
    message: str | None = None
    pushed_at: str | None = None

    def to_json(self) -> dict:
        return {
            "decision_run_id": self.decision_run_id,
            "decision_date": self.decision_date.isoformat(),
            "creative_id": self.creative_id,
            "adgroup_id": self.adgroup_id,
            "kind": self.kind,
            "value": self.value,
            "request_id": self.request_id,
            "result": self.result,
            "message": self.message,
            "pushed_at": self.pushed_at,
        }


def record_pushes(ledger: Ledger, campaign_id: int, pushes: list[Push]) -> None:
    """Record pushes (inside a write transaction)."""
    now = utc_now()
    ledger.conn.executemany(
        """INSERT INTO tiktok_pushes (campaign_id, decision_run_id, decision_date, creative_id, adgroup_id, kind,
             value, request_id, result, message, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                campaign_id,
                p.decision_run_id,
                p.decision_date.isoformat(),
                p.creative_id,
                p.adgroup_id,
                p.kind,
                p.value,
                p.request_id,
                p.result,
                p.message,
                now,
            )
            for p in pushes
        ],
    )


def pushes(ledger: Ledger, plan: CampaignPlan, date: dt.date | None = None) -> list[Push]:
    """Pushes recorded for the plan's campaign (for one decision date if given), oldest first."""
    cid = ledger.campaign_id(plan)
    if cid is None:
        return []
    sql = """SELECT decision_run_id, decision_date, creative_id, adgroup_id, kind, value, request_id, result,
                    message, pushed_at FROM tiktok_pushes WHERE campaign_id = ?"""
    args: list = [cid]
    if date is not None:
        sql += " AND decision_date = ?"
        args.append(date.isoformat())
    with ledger.errors():
        rows = ledger.conn.execute(sql + " ORDER BY id", args).fetchall()
    return [Push(r[0], dt.date.fromisoformat(r[1]), *r[2:]) for r in rows]


def already_pushed(records: list[Push]) -> dict[tuple[str, str], str]:
    """(adgroup_id, kind) -> the value of the latest successful push among `records` (one decision date)."""
    out: dict[tuple[str, str], str] = {}
    for p in records:
        if p.result == "ok":
            out[(p.adgroup_id, p.kind)] = p.value
    return out

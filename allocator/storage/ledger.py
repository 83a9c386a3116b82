"""The ledger: one SQLite file per plan holding every result imported and every decision made.

What it stores (schema version 3, see `MIGRATIONS`)
---------------------------------------------------
campaigns           one row per campaign name (a ledger may serve several plans)
creatives           the plan's creatives per campaign (id, name, creator, authorization end), upserted
imports             every file imported: path, SHA-256, format, when, when its file was exported, rows added /
                    restated / unchanged / unknown / pending / older
pending             rows the plan could not place (creative not in it yet): kept until it can, then stored as
                    results of their import (`landed_at`, `creative_ref` set)
tiktok_pushes       (v3) every budget or status change `apply` sent: decision, ad group, value, request id, result
tiktok_authorizations (v3) per creative, the Spark authorization `sync` read from tt_video/info
results             one row per creative, day and *version*: a restated day adds a version and marks the
                    earlier one superseded (`superseded_by` = the import that replaced it); the current
                    value is the row with `superseded_by IS NULL` (a partial unique index keeps it unique); an
                    export older than the one holding the current value is stored already superseded
decisions           every reallocation: run id, when, plan path and hash, model, policy, phase, winner,
                    data range, warnings and `Allocation.to_json()`; re-deciding a date marks the earlier
                    decision superseded (`superseded_by` = the new run id) instead of stacking
decision_creatives  per creative of a decision: budget, previous budget, probability best, posterior
                    summary, CPA, reason (the same numbers as the JSON, queryable with SQL)

Safety
------
- One transaction per command (`BEGIN IMMEDIATE`): an ingest of several files, or a reallocation (read,
  decide, record), is all or nothing. A process killed at any moment leaves the ledger as it was before or
  after: SQLite rolls a hot journal back the next time the file is opened.
- A second run while one holds the write lock waits `busy_timeout` seconds, then gets a `LedgerError`
  ("ledger X is in use by another sparkbandit run; try again when it finishes").
- `PRAGMA application_id` marks the file as a sparkbandit ledger and `PRAGMA user_version` is the schema
  version: a ledger from a newer sparkbandit, an SQLite file of another program, or a file that is not a
  database (or is damaged) each give one clear `LedgerError`.

Journal mode: the rollback journal (DELETE, synchronous=FULL), not WAL. The ledger is written once or twice a
day, so WAL's faster commits buy nothing, while the rollback journal keeps the ledger one self-contained file
whenever no run is active: it can be copied, backed up or synced (Dropbox, network drives) as a single file,
whereas a WAL database keeps committed transactions in a -wal side file until a checkpoint, and WAL needs
shared memory that network file systems do not provide. Readers are not blocked by a writer until its commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.errors import LedgerError
from models.observations import FIELDS, DailyObservations

if TYPE_CHECKING:
    from allocator.decisions.engine import Allocation, History
    from allocator.inputs.importer import MatchedResults, ParsedFile
    from allocator.plan import CampaignPlan, LoadedPlan

SCHEMA_VERSION = 3
APPLICATION_ID = 0x53424C47  # "SBLG"
BUSY_TIMEOUT = 2.0  # seconds a run waits for another one to finish before giving up
# Test hook (inert unless set): a write transaction about to COMMIT writes this variable's path (its pid)
# and waits, so a test can kill the process at that known point, its writes done and not committed.
PAUSE_BEFORE_COMMIT = "SPARKBANDIT_TEST_PAUSE_BEFORE_COMMIT"
BUDGET_TOLERANCE = 0.005  # budgets are in cents: a smaller difference is not a change

# version -> statements that migrate from version - 1. Never edit a released entry: add a new version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE campaigns (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            currency TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE creatives (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            creative_id TEXT NOT NULL,
            name TEXT,
            creator TEXT,
            auth_expires TEXT,
            first_seen TEXT NOT NULL,
            UNIQUE (campaign_id, creative_id)
        )""",
        """CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            format TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            first_date TEXT,
            last_date TEXT,
            rows_total INTEGER NOT NULL DEFAULT 0,
            rows_added INTEGER NOT NULL DEFAULT 0,
            rows_restated INTEGER NOT NULL DEFAULT 0,
            rows_unchanged INTEGER NOT NULL DEFAULT 0,
            rows_unknown INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX imports_by_sha ON imports (campaign_id, sha256)",
        """CREATE TABLE results (
            id INTEGER PRIMARY KEY,
            creative_ref INTEGER NOT NULL REFERENCES creatives(id),
            date TEXT NOT NULL,
            impressions REAL NOT NULL,
            clicks REAL NOT NULL,
            conversions REAL NOT NULL,
            spend REAL NOT NULL,
            version INTEGER NOT NULL,
            import_id INTEGER NOT NULL REFERENCES imports(id),
            superseded_by INTEGER REFERENCES imports(id)
        )""",
        "CREATE UNIQUE INDEX results_current ON results (creative_ref, date) WHERE superseded_by IS NULL",
        """CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL UNIQUE,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            date TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            plan_path TEXT NOT NULL,
            plan_sha256 TEXT NOT NULL,
            model TEXT NOT NULL,
            policy TEXT NOT NULL,
            phase TEXT NOT NULL,
            winner TEXT,
            leader TEXT,
            data_first TEXT,
            data_last TEXT,
            import_mark INTEGER NOT NULL,
            warnings TEXT NOT NULL,
            allocation TEXT NOT NULL,
            superseded_by TEXT,
            superseded_at TEXT
        )""",
        "CREATE UNIQUE INDEX decisions_in_force ON decisions (campaign_id, date) WHERE superseded_by IS NULL",
        """CREATE TABLE decision_creatives (
            decision_id INTEGER NOT NULL REFERENCES decisions(id),
            creative_ref INTEGER NOT NULL REFERENCES creatives(id),
            status TEXT NOT NULL,
            budget REAL NOT NULL,
            previous_budget REAL NOT NULL,
            share REAL,
            prob_best REAL,
            mean REAL,
            ci90_low REAL,
            ci90_high REAL,
            expected_loss REAL,
            cpa_mean REAL,
            cpa_ci90_low REAL,
            cpa_ci90_high REAL,
            impressions REAL,
            clicks REAL,
            conversions REAL,
            spend REAL,
            reason TEXT,
            reason_code TEXT,
            PRIMARY KEY (decision_id, creative_ref)
        )""",
    ),
    # 2: nothing lost. Rows the plan could not place are kept as pending until it can; every import carries
    # the time its file was exported (an older export never overwrites a newer version of a day). Imports made
    # by version 1 that dropped unknown rows are marked `lossy` so that their file is imported again.
    2: (
        "ALTER TABLE imports ADD COLUMN exported_at TEXT",
        "UPDATE imports SET exported_at = replace(imported_at, 'Z', '.000000Z')",
        "ALTER TABLE imports ADD COLUMN rows_pending INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE imports ADD COLUMN rows_older INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE imports ADD COLUMN lossy INTEGER NOT NULL DEFAULT 0",
        "UPDATE imports SET lossy = 1 WHERE rows_unknown > 0",
        """CREATE TABLE pending (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            import_id INTEGER NOT NULL REFERENCES imports(id),
            line INTEGER NOT NULL,
            label TEXT NOT NULL,
            name TEXT,
            date TEXT NOT NULL,
            impressions REAL NOT NULL,
            clicks REAL NOT NULL,
            conversions REAL NOT NULL,
            spend REAL NOT NULL,
            landed_at TEXT,
            creative_ref INTEGER REFERENCES creatives(id)
        )""",
        "CREATE INDEX pending_open ON pending (campaign_id) WHERE landed_at IS NULL",
    ),
    # TikTok API loop (issue 9): budget/status pushes of `apply` and Spark authorizations read by `sync`
    # (allocator/storage/pushes.py reads and writes them).
    3: (
        """CREATE TABLE tiktok_pushes (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            decision_run_id TEXT NOT NULL,
            decision_date TEXT NOT NULL,
            creative_id TEXT NOT NULL,
            adgroup_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            request_id TEXT,
            result TEXT NOT NULL,
            message TEXT,
            pushed_at TEXT NOT NULL
        )""",
        "CREATE INDEX tiktok_pushes_by_day ON tiktok_pushes (campaign_id, decision_date, adgroup_id, kind)",
        """CREATE TABLE tiktok_authorizations (
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            creative_id TEXT NOT NULL,
            auth_status TEXT,
            auth_start_time TEXT,
            auth_end_time TEXT,
            expires TEXT,
            fetched_at TEXT NOT NULL,
            PRIMARY KEY (campaign_id, creative_id)
        )""",
    ),
}


def utc_now() -> str:
    """The current UTC time as ISO 8601 with seconds, e.g. '2026-11-25T06:00:12Z'."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class FileSummary:
    """What one file of an ingest did.

    status : "imported", or "already imported" (same bytes seen before: nothing changed)
    pending : label -> rows of this file kept as pending (creative not in the plan); for a file already
        imported, the rows still pending
    older : creative-days whose current value came from a file exported later than this one; this file's
        values are kept as an earlier version and do not become current (`newer_source` names that file)
    notes : how the file was read (e.g. the number format decided for it), from `ParsedFile.notes`
    """

    path: str
    format: str
    sha256: str
    status: str
    rows: int
    added: int = 0
    restated: int = 0
    unchanged: int = 0
    unknown: dict[str, int] = field(default_factory=dict)
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    imported_at: str | None = None
    pending: dict[str, int] = field(default_factory=dict)
    older: int = 0
    newer_source: str | None = None
    notes: tuple[str, ...] = ()
    read_warnings: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "status": self.status,
            "rows": self.rows,
            "added": self.added,
            "restated": self.restated,
            "unchanged": self.unchanged,
            "unknown": dict(self.unknown),
            "pending": dict(self.pending),
            "older": self.older,
            "first_date": None if self.first_date is None else self.first_date.isoformat(),
            "last_date": None if self.last_date is None else self.last_date.isoformat(),
            "imported_at": self.imported_at,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest did. `landed`: label -> (pending rows stored now, creative id); `still_pending`: label
    -> rows the ledger keeps as pending after the ingest (from any file)."""

    ledger: Path
    campaign: str
    files: tuple[FileSummary, ...]
    landed: dict[str, tuple[int, str]] = field(default_factory=dict)
    still_pending: dict[str, int] = field(default_factory=dict)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def restated(self) -> int:
        return sum(f.restated for f in self.files)

    @property
    def unchanged(self) -> int:
        return sum(f.unchanged for f in self.files)

    @property
    def unknown(self) -> int:
        return sum(sum(f.unknown.values()) for f in self.files)

    @property
    def older(self) -> int:
        return sum(f.older for f in self.files)

    def notes(self) -> list[str]:
        """Informational lines: pending rows that landed, and how each file was read."""
        out = [landed_line(label, n, cid) for label, (n, cid) in self.landed.items()]
        out += [f"{f.path}: {note}" for f in self.files for note in f.notes]
        return out

    def warnings(self) -> list[str]:
        out = []
        for f in self.files:
            out.extend(f.read_warnings)
            for label, count in (f.unknown if f.status == "imported" else f.pending).items():
                out.append(
                    f"{f.path}: {count} row{'s' if count != 1 else ''} for {label!r}, which is not in the plan; "
                    "kept as pending (add it to [[creatives]] or check the id, and they are stored at the next "
                    "ingest or reallocate)"
                )
            if f.older:
                out.append(
                    f"{f.path}: {f.older} creative-day{'s' if f.older != 1 else ''} already hold values from "
                    f"{f.newer_source}, exported later; kept as earlier versions, the newer values stay current"
                )
        return out

    def to_json(self) -> dict:
        return {
            "ledger": str(self.ledger),
            "campaign": self.campaign,
            "added": self.added,
            "restated": self.restated,
            "unchanged": self.unchanged,
            "unknown": self.unknown,
            "older": self.older,
            "landed": {label: {"rows": n, "creative": cid} for label, (n, cid) in self.landed.items()},
            "pending": dict(self.still_pending),
            "files": [f.to_json() for f in self.files],
            "notes": self.notes(),
            "warnings": self.warnings(),
        }


def landed_line(label: str, n: int, creative: str) -> str:
    """'3 pending rows for 'sp-new' now stored' (naming the creative when the label is its name)."""
    as_ = "" if label == creative else f" (creative {creative!r})"
    return f"{n} pending row{'s' if n != 1 else ''} for {label!r}{as_} now stored"


def export_time(parsed: ParsedFile) -> str:
    """When the file was exported, as sortable UTC ISO text with microseconds: `ParsedFile.exported_at`,
    else the file's modification time, else now (rows built in memory, e.g. from the API, are the newest)."""
    at = getattr(parsed, "exported_at", None)
    if at is None:
        try:
            at = dt.datetime.fromtimestamp(Path(parsed.path).stat().st_mtime, dt.UTC)
        except (OSError, ValueError):
            at = dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Stored:
    added: int = 0
    restated: int = 0
    unchanged: int = 0
    older: int = 0
    newer_source: str | None = None


@dataclass(frozen=True)
class DecisionRecord:
    """One recorded decision. `allocation` is `Allocation.to_json()` as it was recorded."""

    run_id: str
    date: dt.date
    decided_at: str
    plan_path: str
    plan_sha256: str
    phase: str
    winner: str | None
    import_mark: int
    superseded_by: str | None
    superseded_at: str | None
    allocation: dict

    @property
    def in_force(self) -> bool:
        return self.superseded_by is None

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "date": self.date.isoformat(),
            "decided_at": self.decided_at,
            "plan_path": self.plan_path,
            "plan_sha256": self.plan_sha256,
            "phase": self.phase,
            "winner": self.winner,
            "superseded_by": self.superseded_by,
            "superseded_at": self.superseded_at,
            "allocation": self.allocation,
        }


@dataclass(frozen=True)
class Restated:
    """Current results restated (or newly added) by imports after a decision."""

    restated_rows: int
    restated_first: dt.date | None
    restated_last: dt.date | None
    new_rows: int
    new_last: dt.date | None


# ---------------------------------------------------------------------- the ledger
class Ledger:
    """An open ledger. Use `Ledger.open(path)` as a context manager.

    Writes go through `with ledger.write():` (one `BEGIN IMMEDIATE` transaction); reads through
    `with ledger.read():` (one consistent snapshot) or, for a single query, directly.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT) -> Ledger:
        """Open (and create or migrate) the ledger at `path`.

        Raises
        ------
        LedgerError
            No ledger there and `create` is False; the file is not a database, is damaged, belongs to
            another program, was written by a newer sparkbandit; or another run holds it past `busy_timeout`.
        """
        path = Path(path)
        if path.is_dir():
            raise LedgerError(f"ledger {path} is a folder; set campaign.ledger in the plan to a file path")
        if not path.exists():
            if not create:
                raise LedgerError(f"no ledger at {path}; import results first: sparkbandit ingest --plan PLAN FILE...")
            if not path.parent.is_dir():
                raise LedgerError(f"cannot create ledger {path}: folder {path.parent} does not exist; create it")
        try:
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise LedgerError(f"cannot open ledger {path} ({e}); check the path and permissions") from None
        ledger = cls(path, conn)
        try:
            ledger._prepare()
        except BaseException:
            conn.close()
            raise
        return ledger

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prepare(self) -> None:
        with self.errors():
            self.conn.execute("PRAGMA foreign_keys = ON")
            version = self._check_identity()
            if version < SCHEMA_VERSION:
                with self.write():
                    version = self._check_identity()  # another run may have migrated meanwhile
                    for v in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in MIGRATIONS[v]:
                            self.conn.execute(statement)
                    self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_identity(self) -> int:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        app = int(self.conn.execute("PRAGMA application_id").fetchone()[0])
        foreign = app not in (0, APPLICATION_ID)
        if not foreign and app == 0:
            # An empty database (new file) becomes a ledger; one with tables of its own is someone else's.
            tables = self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            foreign = tables > 0 or version != 0
        if foreign:
            raise LedgerError(
                f"ledger {self.path} is an SQLite database but not a sparkbandit ledger; "
                "set campaign.ledger in the plan to another file"
            )
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.path} was written by a newer sparkbandit (schema version {version}; this "
                f"version reads up to {SCHEMA_VERSION}); upgrade sparkbandit (pip install -U sparkbandit)"
            )
        return version

    # ------------------------------------------------------------------ transactions and errors
    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn sqlite3 errors into one-line LedgerErrors."""
        try:
            yield
        except sqlite3.OperationalError as e:
            text = str(e).lower()
            if "locked" in text or "busy" in text:
                raise LedgerError(
                    f"ledger {self.path} is in use by another sparkbandit run; try again when it finishes"
                ) from None
            if "not a database" in text or "malformed" in text or "corrupt" in text:
                raise self._corrupt() from None
            raise LedgerError(f"ledger {self.path}: {e}; check the file and its folder's permissions") from None
        except sqlite3.DatabaseError as e:
            text = str(e).lower()
            if "not a database" in text or "malformed" in text or "corrupt" in text or "encrypted" in text:
                raise self._corrupt() from None
            raise LedgerError(f"ledger {self.path}: {e}") from None

    def _corrupt(self) -> LedgerError:
        return LedgerError(
            f"ledger {self.path} is not a sparkbandit ledger (not an SQLite database, or damaged); move it "
            "aside and re-import the exports with sparkbandit ingest, or restore a backup"
        )

    @contextlib.contextmanager
    def write(self) -> Iterator[Ledger]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        if self.conn.in_transaction:  # nested use joins the outer transaction
            yield self
            return
        with self.errors():
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            with self.errors():
                yield self
                _pause_before_commit()
                self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def read(self) -> Iterator[Ledger]:
        """One consistent snapshot for several queries."""
        if self.conn.in_transaction:
            yield self
            return
        with self.errors():
            self.conn.execute("BEGIN")
        try:
            with self.errors():
                yield self
        finally:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("COMMIT")

    def integrity_check(self) -> str:
        """'ok', or SQLite's first complaint."""
        with self.errors():
            return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    # ------------------------------------------------------------------ campaigns and creatives
    def campaign_id(self, plan: CampaignPlan) -> int | None:
        with self.errors():
            row = self.conn.execute("SELECT id FROM campaigns WHERE name = ?", (plan.campaign.name,)).fetchone()
        return None if row is None else int(row[0])

    def sync_plan(self, plan: CampaignPlan) -> int:
        """Record the plan's campaign and creatives (inside a write transaction); returns the campaign id."""
        now = utc_now()
        cid = self.campaign_id(plan)
        if cid is None:
            cur = self.conn.execute(
                "INSERT INTO campaigns (name, currency, created_at) VALUES (?, ?, ?)",
                (plan.campaign.name, plan.campaign.currency, now),
            )
            cid = int(cur.lastrowid)
        self.conn.executemany(
            """INSERT INTO creatives (campaign_id, creative_id, name, creator, auth_expires, first_seen)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (campaign_id, creative_id) DO UPDATE SET
                 name = excluded.name, creator = excluded.creator, auth_expires = excluded.auth_expires""",
            [
                (cid, c.id, c.name, c.creator, None if c.auth_expires is None else c.auth_expires.isoformat(), now)
                for c in plan.creatives
            ],
        )
        return cid

    def creative_refs(self, campaign_id: int) -> dict[str, int]:
        rows = self.conn.execute("SELECT creative_id, id FROM creatives WHERE campaign_id = ?", (campaign_id,))
        return {cid: int(ref) for cid, ref in rows}

    # ------------------------------------------------------------------ results
    def ingest(self, plan: CampaignPlan, files: Sequence[tuple[ParsedFile, MatchedResults | None]]) -> IngestSummary:
        """Store matched results of several files in one transaction (all or nothing).

        Nothing is lost: rows the plan cannot place (a creative not in it yet) are kept as *pending* and
        stored as soon as the plan learns the creative (this ingest or a later one, or a reallocation). A file
        whose bytes were imported before is skipped; it counts as fully imported only once none of its rows is
        pending. Otherwise each creative-day is added (new), restated (different values: a new version, the
        old one kept as superseded), unchanged, or *older*: a file exported before the one that stored the
        current value (`ParsedFile.exported_at`, else the file's modification time) never overwrites it; its
        values are kept as a superseded version and the file's summary says so. Files are applied in the order
        given. An item's MatchedResults may be None for a file already imported (recognised by its SHA-256
        without parsing it again).
        """
        summaries: list[FileSummary] = []
        with self.write():
            cid = self.sync_plan(plan)
            landed = self._land_pending(cid, plan)
            refs = self.creative_refs(cid)
            ref_of = [refs[c] for c in plan.creative_ids]
            seen = self._imported(cid)
            for parsed, matched in files:
                summaries.append(self._ingest_one(cid, plan, ref_of, parsed, matched, seen))
            still = self._pending_counts(cid)
        return IngestSummary(self.path, plan.campaign.name, tuple(summaries), landed, still)

    def _imported(self, cid: int | None) -> dict[str, tuple[str, int, str]]:
        """sha256 -> (first imported_at, rows, format) of every file imported for the campaign.

        Imports by schema version 1 that dropped rows for unknown creatives (`lossy`) do not count, so that
        their file is read again and the dropped rows are kept this time."""
        if cid is None:
            return {}
        with self.errors():
            rows = self.conn.execute(
                """SELECT sha256, min(imported_at), max(rows_total), max(format) FROM imports
                   WHERE campaign_id = ? AND lossy = 0 GROUP BY sha256""",
                (cid,),
            ).fetchall()
        return {sha: (at, int(n), fmt) for sha, at, n, fmt in rows}

    def imported_shas(self, plan: CampaignPlan) -> dict[str, tuple[str, int, str]]:
        """sha256 -> (first imported_at, rows, format) of the files imported for the plan's campaign."""
        return self._imported(self.campaign_id(plan))

    def _ingest_one(
        self,
        cid: int,
        plan: CampaignPlan,
        ref_of: list[int],
        parsed: ParsedFile,
        matched: MatchedResults | None,
        seen: dict[str, tuple[str, int, str]],
    ) -> FileSummary:
        from allocator.inputs.importer import row_resolver

        now = utc_now()
        if parsed.sha256 in seen:
            at, n, fmt = seen[parsed.sha256]
            pending = self._pending_counts(cid, parsed.sha256)
            return FileSummary(
                str(parsed.path), fmt, parsed.sha256, "already imported", n, imported_at=at, pending=pending
            )
        if matched is None:  # skipped as known before the transaction, yet unknown now: cannot happen
            raise LedgerError(f"ledger {self.path}: {parsed.path} changed during the import; run ingest again")
        seen[parsed.sha256] = (now, len(parsed.rows), parsed.format)
        exported = export_time(parsed)
        base = dict(path=str(parsed.path), format=parsed.format, sha256=parsed.sha256, rows=len(parsed.rows))
        first = None if matched.first_date is None else matched.first_date.isoformat()
        last = None if matched.last_date is None else matched.last_date.isoformat()
        import_id = int(
            self.conn.execute(
                """INSERT INTO imports (campaign_id, path, sha256, format, imported_at, first_date, last_date,
                                        exported_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (cid, str(parsed.path), parsed.sha256, parsed.format, now, first, last, exported),
            ).lastrowid
        )
        daily = matched.daily

        def entries() -> Iterator[tuple[int, str, tuple[float, ...]]]:
            return iter(())

        if daily.n_days:
            day_idx, col_idx = np.nonzero(daily.observed)
            dates = [str(d) for d in daily.dates]
            values = np.stack([getattr(daily, name)[day_idx, col_idx] for name in FIELDS], axis=1)
            refs_ = np.asarray(ref_of)[col_idx]

            def entries() -> Iterator[tuple[int, str, tuple[float, ...]]]:  # replaces the empty one
                # one creative-day at a time from the arrays: no list of Python tuples the size of the file
                for k in range(len(day_idx)):
                    yield int(refs_[k]), dates[day_idx[k]], tuple(values[k].tolist())

        counts = self._store(cid, entries, import_id, exported)
        # Rows the plan cannot place are kept, not dropped: they land when the plan learns their creative.
        resolve = row_resolver(plan)
        held = [
            (
                cid,
                import_id,
                r.line,
                r.label.strip(),
                r.name,
                r.date.isoformat(),
                r.impressions,
                r.clicks,
                r.conversions,
                r.spend,
            )
            for r in parsed.rows
            if not isinstance(resolve(r), str)
        ]
        self.conn.executemany(
            """INSERT INTO pending (campaign_id, import_id, line, label, name, date, impressions, clicks,
                                    conversions, spend) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            held,
        )
        unknown = dict(matched.unknown)
        self.conn.execute(
            """UPDATE imports SET rows_total = ?, rows_added = ?, rows_restated = ?, rows_unchanged = ?,
               rows_unknown = ?, rows_pending = ?, rows_older = ? WHERE id = ?""",
            (
                len(parsed.rows),
                counts.added,
                counts.restated,
                counts.unchanged,
                sum(unknown.values()),
                len(held),
                counts.older,
                import_id,
            ),
        )
        return FileSummary(
            status="imported",
            added=counts.added,
            restated=counts.restated,
            unchanged=counts.unchanged,
            unknown=unknown,
            first_date=matched.first_date,
            last_date=matched.last_date,
            imported_at=now,
            pending=dict(Counter(h[3] for h in held)),
            older=counts.older,
            newer_source=counts.newer_source,
            notes=tuple(getattr(parsed, "notes", ())),
            read_warnings=tuple(getattr(parsed, "warnings", ())),
            **base,
        )

    def _store(
        self,
        cid: int,
        entries: Callable[[], Iterable[tuple[int, str, Sequence[float]]]],
        import_id: int,
        exported: str,
    ) -> _Stored:
        """Store creative-day values of one import (inside a write transaction).

        `entries()` yields (creative ref, ISO date, [impressions, clicks, conversions, spend]), each creative-
        day once; it is called twice (to supersede, then to insert), so that no list the size of the file is
        built. Each entry is new, unchanged, a restatement (current version superseded by this import), or
        older than the current version's export: then it is kept as a version already superseded by the
        import that holds the current one.
        """
        out = _Stored()
        first = last = None
        for _, date, _ in entries():
            first = date if first is None or date < first else first
            last = date if last is None or date > last else last
        if first is None:
            return out
        current = {
            (ref, date): ((imp, clk, conv, spend), cur_import, cur_exported, cur_path)
            for ref, date, imp, clk, conv, spend, cur_import, cur_exported, cur_path in self.conn.execute(
                """SELECT r.creative_ref, r.date, r.impressions, r.clicks, r.conversions, r.spend,
                          r.import_id, i.exported_at, i.path
                   FROM results r JOIN creatives c ON c.id = r.creative_ref JOIN imports i ON i.id = r.import_id
                   WHERE c.campaign_id = ? AND r.superseded_by IS NULL AND r.date BETWEEN ? AND ?""",
                (cid, first, last),
            )
        }
        top = {
            (ref, date): int(v)
            for ref, date, v in self.conn.execute(
                """SELECT r.creative_ref, r.date, max(r.version) FROM results r JOIN creatives c
                   ON c.id = r.creative_ref WHERE c.campaign_id = ? AND r.date BETWEEN ? AND ?
                   GROUP BY r.creative_ref, r.date""",
                (cid, first, last),
            )
        }

        def kind(key: tuple[int, str], vals: Sequence[float]) -> str:
            old = current.get(key)
            if old is None:
                return "added"
            if tuple(vals) == old[0]:
                return "unchanged"
            # an older export must not roll restated values back: keep it, superseded from the start
            return "older" if (old[2] or "") > exported else "restated"

        superseded: list[tuple] = []
        for ref, date, vals in entries():
            k = kind((ref, date), vals)
            setattr(out, k, getattr(out, k) + 1)
            if k == "restated":
                superseded.append((import_id, ref, date))
            elif k == "older" and out.newer_source is None:
                out.newer_source = current[(ref, date)][3]
        self.conn.executemany(
            "UPDATE results SET superseded_by = ? WHERE creative_ref = ? AND date = ? AND superseded_by IS NULL",
            superseded,
        )

        def inserts() -> Iterator[tuple]:
            for ref, date, vals in entries():
                key = (ref, date)
                k = kind(key, vals)
                if k != "unchanged":
                    held_by = current[key][1] if k == "older" else None
                    yield (ref, date, *vals, top.get(key, 0) + 1, import_id, held_by)

        self.conn.executemany(
            """INSERT INTO results (creative_ref, date, impressions, clicks, conversions, spend, version, import_id,
                                    superseded_by)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            inserts(),
        )
        return out

    def _land_pending(self, cid: int, plan: CampaignPlan) -> dict[str, tuple[int, str]]:
        """Store the pending rows that the plan can now place (inside a write transaction).

        Returns label -> (rows stored, plan creative id). Each row keeps the import it came from, and the
        version rules of `_store` (an older export does not overwrite a newer value) apply.
        """
        from allocator.inputs.importer import ResultRow, row_resolver

        rows = self.conn.execute(
            """SELECT p.id, p.import_id, p.label, p.name, p.date, p.impressions, p.clicks, p.conversions, p.spend,
                      i.exported_at
               FROM pending p JOIN imports i ON i.id = p.import_id
               WHERE p.campaign_id = ? AND p.landed_at IS NULL ORDER BY p.import_id, p.id""",
            (cid,),
        ).fetchall()
        if not rows:
            return {}
        resolve = row_resolver(plan)
        refs = self.creative_refs(cid)
        landed: dict[str, tuple[int, str]] = {}
        now = utc_now()
        by_import: dict[tuple[int, str], list[tuple[int, str, list[float]]]] = {}
        done: list[tuple] = []
        taken: set[tuple[int, int, str]] = set()
        for pid, import_id, label, name, date, imp, clk, conv, spend, exported in rows:
            row = ResultRow(dt.date.fromisoformat(date), label, imp, clk, conv, spend, 0, name)
            found = resolve(row)
            if not isinstance(found, str) or (import_id, refs[found], date) in taken:
                continue  # two labels of one file that name the same creative-day: the first lands
            taken.add((import_id, refs[found], date))
            by_import.setdefault((import_id, exported or ""), []).append((refs[found], date, [imp, clk, conv, spend]))
            done.append((now, refs[found], pid))
            n, _ = landed.get(label, (0, found))
            landed[label] = (n + 1, found)
        # a creative-day twice among the landing rows of one import cannot happen: the importer refuses it
        for (import_id, exported), entries in by_import.items():
            self._store(cid, lambda e=entries: iter(e), import_id, exported)
        self.conn.executemany("UPDATE pending SET landed_at = ?, creative_ref = ? WHERE id = ?", done)
        return landed

    def land_pending(self, plan: CampaignPlan) -> tuple[dict[str, tuple[int, str]], dict[str, int]]:
        """Store pending rows the plan now places (inside a write transaction).

        Returns (landed, still pending): label -> (rows stored, creative id), and label -> rows still held.
        """
        cid = self.campaign_id(plan)
        if cid is None:
            return {}, {}
        self.sync_plan(plan)
        landed = self._land_pending(cid, plan)
        return landed, self._pending_counts(cid)

    def pending(self, plan: CampaignPlan) -> dict[str, int]:
        """Label -> number of rows held as pending (their creative is not in the plan)."""
        cid = self.campaign_id(plan)
        return {} if cid is None else self._pending_counts(cid)

    def _pending_counts(self, cid: int, sha256: str | None = None) -> dict[str, int]:
        sql = """SELECT p.label, count(*) FROM pending p JOIN imports i ON i.id = p.import_id
                 WHERE p.campaign_id = ? AND p.landed_at IS NULL"""
        args: list = [cid]
        if sha256 is not None:
            sql += " AND i.sha256 = ?"
            args.append(sha256)
        with self.errors():
            return {label: int(n) for label, n in self.conn.execute(sql + " GROUP BY p.label ORDER BY p.label", args)}

    def daily(self, plan: CampaignPlan) -> DailyObservations:
        """Current results of the plan's creatives, day by day from the first to the last day with a row.

        Creatives in the ledger but no longer in the plan are left out; a plan creative without a row on a
        day is zeros with `observed` False.
        """
        ids = plan.creative_ids
        cid = self.campaign_id(plan)
        if cid is None:
            return DailyObservations.empty(ids)
        with self.errors():
            refs = self.creative_refs(cid)
            rows = self.conn.execute(
                """SELECT r.creative_ref, r.date, r.impressions, r.clicks, r.conversions, r.spend
                   FROM results r JOIN creatives c ON c.id = r.creative_ref
                   WHERE c.campaign_id = ? AND r.superseded_by IS NULL""",
                (cid,),
            ).fetchall()
        column = np.full(max(refs.values(), default=0) + 1, -1)
        for j, creative in enumerate(ids):
            if creative in refs:
                column[refs[creative]] = j
        if not rows:
            return DailyObservations.empty(ids)
        ref = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        col = column[ref]
        keep = col >= 0
        if not keep.any():
            return DailyObservations.empty(ids)
        dates = np.array([r[1] for r in rows], dtype="datetime64[D]")[keep]
        values = np.array([r[2:] for r in rows], dtype=np.float64)[keep]
        col = col[keep]
        first, last = dates.min(), dates.max()
        n_days = int((last - first).astype(int)) + 1
        day = (dates - first).astype(int)
        arrays = {}
        for k, name in enumerate(FIELDS):
            arr = np.zeros((n_days, len(ids)))
            arr[day, col] = values[:, k]
            arrays[name] = arr
        observed = np.zeros((n_days, len(ids)), dtype=bool)
        observed[day, col] = True
        return DailyObservations(ids, first + np.arange(n_days), **arrays, observed=observed)

    def import_mark(self, campaign_id: int | None) -> int:
        """The id of the latest import of the campaign (0 when none): results newer than a decision have a
        larger import id than the mark recorded with it."""
        if campaign_id is None:
            return 0
        with self.errors():
            row = self.conn.execute("SELECT max(id) FROM imports WHERE campaign_id = ?", (campaign_id,)).fetchone()
        return int(row[0] or 0)

    def changed_since(self, plan: CampaignPlan, mark: int) -> Restated:
        """Current results restated or added by imports after `mark` (see `import_mark`)."""
        cid = self.campaign_id(plan)
        if cid is None:
            return Restated(0, None, None, 0, None)
        with self.errors():
            rows = self.conn.execute(
                """SELECT r.version > 1, count(*), min(r.date), max(r.date)
                   FROM results r JOIN creatives c ON c.id = r.creative_ref
                   WHERE c.campaign_id = ? AND r.superseded_by IS NULL AND r.import_id > ?
                   GROUP BY r.version > 1""",
                (cid, mark),
            ).fetchall()
        got = {bool(k): (n, lo, hi) for k, n, lo, hi in rows}
        rn, rlo, rhi = got.get(True, (0, None, None))
        nn, _, nhi = got.get(False, (0, None, None))
        day = lambda s: None if s is None else dt.date.fromisoformat(s)  # noqa: E731
        return Restated(int(rn), day(rlo), day(rhi), int(nn), day(nhi))

    # ------------------------------------------------------------------ decisions
    def record_decision(self, loaded: LoadedPlan, alloc: Allocation, run_id: str | None = None) -> DecisionRecord:
        """Record `alloc` (inside a write transaction). An earlier decision in force for the same date is
        kept but marked superseded by this one."""
        plan = loaded.plan
        run_id = run_id or uuid.uuid4().hex
        now = utc_now()
        cid = self.sync_plan(plan)
        refs = self.creative_refs(cid)
        data = alloc.to_json()
        date = alloc.date.isoformat()
        self.conn.execute(
            """UPDATE decisions SET superseded_by = ?, superseded_at = ?
               WHERE campaign_id = ? AND date = ? AND superseded_by IS NULL""",
            (run_id, now, cid, date),
        )
        mark = self.import_mark(cid)
        first, last = data["data_range"]
        decision_id = int(
            self.conn.execute(
                """INSERT INTO decisions (run_id, campaign_id, date, decided_at, plan_path, plan_sha256, model,
                     policy, phase, winner, leader, data_first, data_last, import_mark, warnings, allocation)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    run_id,
                    cid,
                    date,
                    now,
                    str(loaded.path),
                    loaded.sha256,
                    alloc.model,
                    alloc.policy,
                    alloc.phase,
                    alloc.winner,
                    alloc.leader,
                    first,
                    last,
                    mark,
                    json.dumps(list(alloc.warnings)),
                    json.dumps(data, allow_nan=False),
                ),
            ).lastrowid
        )
        self.conn.executemany(
            """INSERT INTO decision_creatives (decision_id, creative_ref, status, budget, previous_budget, share,
                 prob_best, mean, ci90_low, ci90_high, expected_loss, cpa_mean, cpa_ci90_low, cpa_ci90_high,
                 impressions, clicks, conversions, spend, reason, reason_code)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    decision_id,
                    refs[c["id"]],
                    c["status"],
                    c["budget"],
                    c["previous_budget"],
                    c["share"],
                    c["prob_best"],
                    c["mean"],
                    c["ci90"][0],
                    c["ci90"][1],
                    c["expected_loss"],
                    c["cpa_mean"],
                    c["cpa_ci90"][0],
                    c["cpa_ci90"][1],
                    c["impressions"],
                    c["clicks"],
                    c["conversions"],
                    c["spend"],
                    c["reason"],
                    c["reason_code"],
                )
                for c in data["creatives"]
            ],
        )
        return DecisionRecord(
            run_id, alloc.date, now, str(loaded.path), loaded.sha256, alloc.phase, alloc.winner, mark, None, None, data
        )

    def decisions(
        self, plan: CampaignPlan, *, include_superseded: bool = False, before: dt.date | None = None
    ) -> list[DecisionRecord]:
        """Decisions of the campaign by date (then time of decision), those in force only by default."""
        cid = self.campaign_id(plan)
        if cid is None:
            return []
        sql = """SELECT run_id, date, decided_at, plan_path, plan_sha256, phase, winner, import_mark,
                        superseded_by, superseded_at, allocation
                 FROM decisions WHERE campaign_id = ?"""
        args: list = [cid]
        if not include_superseded:
            sql += " AND superseded_by IS NULL"
        if before is not None:
            sql += " AND date < ?"
            args.append(before.isoformat())
        sql += " ORDER BY date, decided_at, id"
        with self.errors():
            rows = self.conn.execute(sql, args).fetchall()
        return [
            DecisionRecord(
                r[0],
                dt.date.fromisoformat(r[1]),
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                int(r[7]),
                r[8],
                r[9],
                json.loads(r[10]),
            )
            for r in rows
        ]

    def latest_decision(self, plan: CampaignPlan) -> DecisionRecord | None:
        found = self.decisions(plan)
        return found[-1] if found else None

    def history(self, plan: CampaignPlan, date: dt.date) -> History:
        """Budgets in force before `date` and the dates they last changed, from the decisions in force dated
        before `date`. A budget that differs from the one before it is a change on that decision's date;
        before any decision (and for creatives no decision covered) the plan's budgets and dates hold."""
        from allocator.decisions.engine import History

        base = History.from_plan(plan)
        previous = base.previous.copy()
        last_change = list(base.last_change)
        index = {cid: i for i, cid in enumerate(plan.creative_ids)}
        cid = self.campaign_id(plan)
        if cid is None:
            return base
        with self.errors():
            rows = self.conn.execute(
                """SELECT d.date, c.creative_id, dc.budget
                   FROM decisions d
                   JOIN decision_creatives dc ON dc.decision_id = d.id
                   JOIN creatives c ON c.id = dc.creative_ref
                   WHERE d.campaign_id = ? AND d.superseded_by IS NULL AND d.date < ?
                   ORDER BY d.date""",
                (cid, date.isoformat()),
            ).fetchall()
        for day, creative, budget in rows:
            i = index.get(creative)
            if i is None:
                continue
            if abs(budget - previous[i]) > BUDGET_TOLERANCE:
                last_change[i] = dt.date.fromisoformat(day)
            previous[i] = budget
        return History(previous, tuple(last_change))


# ---------------------------------------------------------------------- one-call entry points
def ingest_files(
    loaded: LoadedPlan, paths: Sequence[str | Path], *, busy_timeout: float = BUSY_TIMEOUT, today: dt.date | None = None
) -> IngestSummary:
    """Parse, validate and match every file, then store them all in the plan's ledger in one transaction.

    Every file is read and checked before the ledger is touched, so a bad row in any file (a `DataError`
    naming the file, line and column) imports nothing. The plan's `[campaign] date_format` and `[data]`
    limits apply (`today` is the reference day of `[data] max_days_ahead`; default the UTC date). A file none
    of whose rows matches a plan creative is refused (the wrong export or the wrong plan).
    """
    from allocator.inputs.importer import ParsedFile, ReadOptions, match_rows, parse_file

    if not paths:
        raise LedgerError("no files to ingest; pass at least one export")
    known: dict[str, tuple[str, int, str]] = {}
    if loaded.ledger_path.is_file():
        # Files imported before are recognised by their bytes and not parsed again (a daily
        # `ingest exports/*.csv` would otherwise re-read the whole history every morning).
        with Ledger.open(loaded.ledger_path, busy_timeout=busy_timeout) as ledger:
            known = ledger.imported_shas(loaded.plan)
    options = ReadOptions.from_plan(loaded.plan, today)
    items: list[tuple[ParsedFile, MatchedResults | None]] = []
    for p in paths:
        sha = _sha256(Path(p)) if known else None
        if sha is not None and sha in known:
            items.append((ParsedFile(Path(p), known[sha][2], (), sha), None))
            continue
        pf = parse_file(p, options)
        items.append((pf, match_rows(pf.rows, loaded.plan, str(pf.path), require_match=True)))
    with Ledger.open(loaded.ledger_path, busy_timeout=busy_timeout) as ledger:
        return ledger.ingest(loaded.plan, items)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None  # parse_file reports it


def _pause_before_commit() -> None:
    """The `PAUSE_BEFORE_COMMIT` test hook: nothing unless the variable is set."""
    import os

    marker = os.environ.get(PAUSE_BEFORE_COMMIT)
    if marker:
        import time

        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(60)  # the test kills the process well before this ends

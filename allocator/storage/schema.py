"""The ledger file: its tables and migrations, opening it (identity, version, busy timeout) and its transactions.

The ledger is one SQLite file per plan holding every result imported and every decision made; `Ledger`
(`allocator.storage.ledger`) is the class callers use, built on `LedgerConnection` here.

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
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

from models.errors import LedgerError

SCHEMA_VERSION = 3
APPLICATION_ID = 0x53424C47  # "SBLG"
BUSY_TIMEOUT = 2.0  # seconds a run waits for another one to finish before giving up
# Test hook (inert unless set): a write transaction about to COMMIT writes this variable's path (its pid)
# and waits, so a test can kill the process at that known point, its writes done and not committed.
PAUSE_BEFORE_COMMIT = "SPARKBANDIT_TEST_PAUSE_BEFORE_COMMIT"


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


class LedgerConnection:
    """An open ledger file: opened, checked and migrated by `open`, written and read in transactions.

    Writes go through `with ledger.write():` (one `BEGIN IMMEDIATE` transaction); reads through
    `with ledger.read():` (one consistent snapshot) or, for a single query, directly.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT) -> Self:
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

    def __enter__(self) -> Self:
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
    def write(self) -> Iterator[Self]:
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
    def read(self) -> Iterator[Self]:
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

    def insert(self, sql: str, args: Sequence[object]) -> int:
        """Run one INSERT (inside a write transaction) and return the id of the row it added."""
        rowid = self.conn.execute(sql, args).lastrowid
        if rowid is None:  # sqlite3 sets it after every INSERT that adds a row
            raise LedgerError(f"ledger {self.path}: an INSERT added no row; check the file with sqlite3")
        return rowid

    def integrity_check(self) -> str:
        """'ok', or SQLite's first complaint."""
        with self.errors():
            return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])


def _pause_before_commit() -> None:
    """The `PAUSE_BEFORE_COMMIT` test hook: nothing unless the variable is set."""
    import os

    marker = os.environ.get(PAUSE_BEFORE_COMMIT)
    if marker:
        import time

        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(60)  # the test kills the process well before this ends

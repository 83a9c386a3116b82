"""The ledger: one SQLite file per plan holding every result imported and every decision made.

`Ledger` is the one class callers use; its parts live next to it, one job each:

- `allocator.storage.schema`: the tables and migrations (the version table), opening the file (identity,
  version, busy timeout) and its transactions, the `PAUSE_BEFORE_COMMIT` test hook (`LedgerConnection`)
- `allocator.storage.results`: importing results (versions, pending rows, export times) and reading the
  current daily observations back
- `allocator.storage.summaries`: what an ingest did (`IngestSummary`, `FileSummary`)
- `allocator.storage.decisions`: recording, superseding and reading decisions (`DecisionRecord`), the
  budgets in force before a date
- `allocator.storage.pushes` and `allocator.storage.restatements`: the TikTok tables, restated versions

This module holds the campaigns and creatives every part keys on, the methods that call the parts, and
`ingest_files`, the one-call ingest of export files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from allocator.inputs.records import ParsedFile
from allocator.storage import decisions as _decisions
from allocator.storage import results as _results
from allocator.storage.decisions import DecisionRecord
from allocator.storage.results import Restated
from allocator.storage.schema import BUSY_TIMEOUT, LedgerConnection, utc_now
from allocator.storage.summaries import IngestSummary
from models.errors import LedgerError
from models.observations import DailyObservations

if TYPE_CHECKING:
    from allocator.decisions.allocation import Allocation, History
    from allocator.inputs.records import MatchedResults
    from allocator.plan import CampaignPlan, LoadedPlan


class Ledger(LedgerConnection):
    """An open ledger. Use `Ledger.open(path)` as a context manager.

    Writes go through `with ledger.write():` (one `BEGIN IMMEDIATE` transaction); reads through
    `with ledger.read():` (one consistent snapshot) or, for a single query, directly. The methods below
    `creative_refs` are those of `allocator.storage.results` and `allocator.storage.decisions` (documented
    there), called on this ledger.
    """

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
            cid = self.insert(
                "INSERT INTO campaigns (name, currency, created_at) VALUES (?, ?, ?)",
                (plan.campaign.name, plan.campaign.currency, now),
            )
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

    # ------------------------------------------------------------------ results (allocator.storage.results)
    def ingest(self, plan: CampaignPlan, files: Sequence[tuple[ParsedFile, MatchedResults | None]]) -> IngestSummary:
        """Store matched results of several files in one transaction (all or nothing)."""
        return _results.ingest(self, plan, files)

    def imported_shas(self, plan: CampaignPlan) -> dict[str, tuple[str, int, str]]:
        """sha256 -> (first imported_at, rows, format) of the files imported for the plan's campaign."""
        return _results.imported_shas(self, plan)

    def land_pending(self, plan: CampaignPlan) -> tuple[dict[str, tuple[int, str]], dict[str, int]]:
        """Store pending rows the plan now places (inside a write transaction): (landed, still pending)."""
        return _results.land_pending(self, plan)

    def pending(self, plan: CampaignPlan) -> dict[str, int]:
        """Label -> number of rows held as pending (their creative is not in the plan)."""
        return _results.pending(self, plan)

    def daily(self, plan: CampaignPlan) -> DailyObservations:
        """Current results of the plan's creatives, day by day from the first to the last day with a row."""
        return _results.daily(self, plan)

    def import_mark(self, campaign_id: int | None) -> int:
        """The id of the latest import of the campaign (0 when none)."""
        return _results.import_mark(self, campaign_id)

    def changed_since(self, plan: CampaignPlan, mark: int) -> Restated:
        """Current results restated or added by imports after `mark` (see `import_mark`)."""
        return _results.changed_since(self, plan, mark)

    # ------------------------------------------------------------------ decisions (allocator.storage.decisions)
    def record_decision(self, loaded: LoadedPlan, alloc: Allocation, run_id: str | None = None) -> DecisionRecord:
        """Record `alloc` (inside a write transaction), superseding the decision in force for its date."""
        return _decisions.record_decision(self, loaded, alloc, run_id)

    def decisions(
        self, plan: CampaignPlan, *, include_superseded: bool = False, before: dt.date | None = None
    ) -> list[DecisionRecord]:
        """Decisions of the campaign by date (then time of decision), those in force only by default."""
        return _decisions.decisions(self, plan, include_superseded=include_superseded, before=before)

    def latest_decision(self, plan: CampaignPlan) -> DecisionRecord | None:
        """The last decision in force, or None."""
        return _decisions.latest_decision(self, plan)

    def history(self, plan: CampaignPlan, date: dt.date) -> History:
        """Budgets in force before `date` and the dates they last changed."""
        return _decisions.history(self, plan, date)


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
    from allocator.inputs.importer import parse_file
    from allocator.inputs.matching import match_rows
    from allocator.inputs.records import ReadOptions

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

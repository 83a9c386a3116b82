"""Results in the ledger: importing them (versions, restatements, pending rows, export times) and reading the
current values back as daily observations.

Each creative-day keeps every version imported: a restated day adds a version and marks the earlier one
superseded by the import that replaced it, and an export older than the one holding the current value is
stored already superseded (it never rolls a restatement back). Rows the plan cannot place yet are kept as
pending and land as soon as it can. The functions take an open `Ledger` and, where they write, run inside
its write transaction; `Ledger`'s methods of the same names call them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from allocator.inputs.matching import row_resolver
from allocator.inputs.records import ResultRow
from allocator.storage.schema import utc_now
from allocator.storage.summaries import FileSummary, IngestSummary
from models.errors import LedgerError
from models.observations import FIELDS, DailyObservations

if TYPE_CHECKING:
    from allocator.inputs.records import MatchedResults, ParsedFile
    from allocator.plan import CampaignPlan
    from allocator.storage.ledger import Ledger


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
class Restated:
    """Current results restated (or newly added) by imports after a decision."""

    restated_rows: int
    restated_first: dt.date | None
    restated_last: dt.date | None
    new_rows: int
    new_last: dt.date | None


def ingest(
    ledger: Ledger, plan: CampaignPlan, files: Sequence[tuple[ParsedFile, MatchedResults | None]]
) -> IngestSummary:
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
    with ledger.write():
        cid = ledger.sync_plan(plan)
        landed = _land_pending(ledger, cid, plan)
        refs = ledger.creative_refs(cid)
        ref_of = [refs[c] for c in plan.creative_ids]
        seen = _imported(ledger, cid)
        for parsed, matched in files:
            summaries.append(_ingest_one(ledger, cid, plan, ref_of, parsed, matched, seen))
        still = _pending_counts(ledger, cid)
    return IngestSummary(ledger.path, plan.campaign.name, tuple(summaries), landed, still)


def _imported(ledger: Ledger, cid: int | None) -> dict[str, tuple[str, int, str]]:
    """sha256 -> (first imported_at, rows, format) of every file imported for the campaign.

    Imports by schema version 1 that dropped rows for unknown creatives (`lossy`) do not count, so that
    their file is read again and the dropped rows are kept this time."""
    if cid is None:
        return {}
    with ledger.errors():
        rows = ledger.conn.execute(
            """SELECT sha256, min(imported_at), max(rows_total), max(format) FROM imports
               WHERE campaign_id = ? AND lossy = 0 GROUP BY sha256""",
            (cid,),
        ).fetchall()
    return {sha: (at, int(n), fmt) for sha, at, n, fmt in rows}


def imported_shas(ledger: Ledger, plan: CampaignPlan) -> dict[str, tuple[str, int, str]]:
    """sha256 -> (first imported_at, rows, format) of the files imported for the plan's campaign."""
    return _imported(ledger, ledger.campaign_id(plan))


def _ingest_one(
    ledger: Ledger,
    cid: int,
    plan: CampaignPlan,
    ref_of: list[int],
    parsed: ParsedFile,
    matched: MatchedResults | None,
    seen: dict[str, tuple[str, int, str]],
) -> FileSummary:
    now = utc_now()
    if parsed.sha256 in seen:
        at, n, fmt = seen[parsed.sha256]
        pending = _pending_counts(ledger, cid, parsed.sha256)
        return FileSummary(str(parsed.path), fmt, parsed.sha256, "already imported", n, imported_at=at, pending=pending)
    if matched is None:  # skipped as known before the transaction, yet unknown now: cannot happen
        raise LedgerError(f"ledger {ledger.path}: {parsed.path} changed during the import; run ingest again")
    seen[parsed.sha256] = (now, len(parsed.rows), parsed.format)
    exported = export_time(parsed)
    first = None if matched.first_date is None else matched.first_date.isoformat()
    last = None if matched.last_date is None else matched.last_date.isoformat()
    import_id = ledger.insert(
        """INSERT INTO imports (campaign_id, path, sha256, format, imported_at, first_date, last_date,
                                exported_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        (cid, str(parsed.path), parsed.sha256, parsed.format, now, first, last, exported),
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

    counts = _store(ledger, cid, entries, import_id, exported)
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
    ledger.conn.executemany(
        """INSERT INTO pending (campaign_id, import_id, line, label, name, date, impressions, clicks,
                                conversions, spend) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        held,
    )
    unknown = dict(matched.unknown)
    ledger.conn.execute(
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
        path=str(parsed.path),
        format=parsed.format,
        sha256=parsed.sha256,
        rows=len(parsed.rows),
    )


def _store(
    ledger: Ledger,
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
        for ref, date, imp, clk, conv, spend, cur_import, cur_exported, cur_path in ledger.conn.execute(
            """SELECT r.creative_ref, r.date, r.impressions, r.clicks, r.conversions, r.spend,
                      r.import_id, i.exported_at, i.path
               FROM results r JOIN creatives c ON c.id = r.creative_ref JOIN imports i ON i.id = r.import_id
               WHERE c.campaign_id = ? AND r.superseded_by IS NULL AND r.date BETWEEN ? AND ?""",
            (cid, first, last),
        )
    }
    top = {
        (ref, date): int(v)
        for ref, date, v in ledger.conn.execute(
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
    ledger.conn.executemany(
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

    ledger.conn.executemany(
        """INSERT INTO results (creative_ref, date, impressions, clicks, conversions, spend, version, import_id,
                                superseded_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        inserts(),
    )
    return out


def _land_pending(ledger: Ledger, cid: int, plan: CampaignPlan) -> dict[str, tuple[int, str]]:
    """Store the pending rows that the plan can now place (inside a write transaction).

    Returns label -> (rows stored, plan creative id). Each row keeps the import it came from, and the
    version rules of `_store` (an older export does not overwrite a newer value) apply.
    """
    rows = ledger.conn.execute(
        """SELECT p.id, p.import_id, p.label, p.name, p.date, p.impressions, p.clicks, p.conversions, p.spend,
                  i.exported_at
           FROM pending p JOIN imports i ON i.id = p.import_id
           WHERE p.campaign_id = ? AND p.landed_at IS NULL ORDER BY p.import_id, p.id""",
        (cid,),
    ).fetchall()
    if not rows:
        return {}
    resolve = row_resolver(plan)
    refs = ledger.creative_refs(cid)
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
        _store(ledger, cid, functools.partial(iter, entries), import_id, exported)
    ledger.conn.executemany("UPDATE pending SET landed_at = ?, creative_ref = ? WHERE id = ?", done)
    return landed


def land_pending(ledger: Ledger, plan: CampaignPlan) -> tuple[dict[str, tuple[int, str]], dict[str, int]]:
    """Store pending rows the plan now places (inside a write transaction).

    Returns (landed, still pending): label -> (rows stored, creative id), and label -> rows still held.
    """
    cid = ledger.campaign_id(plan)
    if cid is None:
        return {}, {}
    ledger.sync_plan(plan)
    landed = _land_pending(ledger, cid, plan)
    return landed, _pending_counts(ledger, cid)


def pending(ledger: Ledger, plan: CampaignPlan) -> dict[str, int]:
    """Label -> number of rows held as pending (their creative is not in the plan)."""
    cid = ledger.campaign_id(plan)
    return {} if cid is None else _pending_counts(ledger, cid)


def _pending_counts(ledger: Ledger, cid: int, sha256: str | None = None) -> dict[str, int]:
    sql = """SELECT p.label, count(*) FROM pending p JOIN imports i ON i.id = p.import_id
             WHERE p.campaign_id = ? AND p.landed_at IS NULL"""
    args: list = [cid]
    if sha256 is not None:
        sql += " AND i.sha256 = ?"
        args.append(sha256)
    with ledger.errors():
        return {label: int(n) for label, n in ledger.conn.execute(sql + " GROUP BY p.label ORDER BY p.label", args)}


def daily(ledger: Ledger, plan: CampaignPlan) -> DailyObservations:
    """Current results of the plan's creatives, day by day from the first to the last day with a row.

    Creatives in the ledger but no longer in the plan are left out; a plan creative without a row on a
    day is zeros with `observed` False.
    """
    ids = plan.creative_ids
    cid = ledger.campaign_id(plan)
    if cid is None:
        return DailyObservations.empty(ids)
    with ledger.errors():
        refs = ledger.creative_refs(cid)
        rows = ledger.conn.execute(
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


def import_mark(ledger: Ledger, campaign_id: int | None) -> int:
    """The id of the latest import of the campaign (0 when none): results newer than a decision have a
    larger import id than the mark recorded with it."""
    if campaign_id is None:
        return 0
    with ledger.errors():
        row = ledger.conn.execute("SELECT max(id) FROM imports WHERE campaign_id = ?", (campaign_id,)).fetchone()
    return int(row[0] or 0)


def changed_since(ledger: Ledger, plan: CampaignPlan, mark: int) -> Restated:
    """Current results restated or added by imports after `mark` (see `import_mark`)."""
    cid = ledger.campaign_id(plan)
    if cid is None:
        return Restated(0, None, None, 0, None)
    with ledger.errors():
        rows = ledger.conn.execute(
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

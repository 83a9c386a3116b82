"""What an ingest did, file by file: rows added, restated, unchanged, pending, older; notes and warnings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path


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
        out: list[str] = []
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

"""Files written for the user: all or nothing, with the user's permissions, and one clear line on failure.

- `write_atomic(path, data)`: one file through a temporary file beside it and a rename.
- `write_folder_atomic(folder, fill, names)`: a whole folder (a report, a simulation's results) filled in a
  temporary folder beside it and renamed into place, so a reader never sees half of it.

Both give files the mode a plain `open()` would (0666 and folders 0777, less the umask: 0644 / 0755
normally), not mkstemp's 0600, and turn an `OSError` into `OutputError` naming the path and the fix.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from models.errors import OutputError


def current_umask() -> int:
    """The process umask (read by setting and restoring it: there is no other portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fix(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "choose a folder you can write to"
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free some disk space or write elsewhere"
    if e.errno == errno.ENOTDIR:
        return "a part of the path is a file; give a folder path"
    if e.errno == errno.EISDIR:
        return "the path is a folder; give a file name"
    return "check the path"


def output_error(path: Path | str, e: OSError, what: str = "cannot write") -> OutputError:
    """The one-line error of a failed write: "cannot write PATH (No space left on device); free ..."."""
    reason = e.strerror or type(e).__name__
    return OutputError(f"{what} {path} ({reason}); {_fix(e)}; nothing was written")


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8, or bytes) to `path` via a temporary file in the same folder and a rename.

    Either the whole new file is at `path` or the old one (if any) is untouched. The folder is created if
    needed. Raises OutputError on any OSError.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise output_error(path, e) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_folder_atomic[T](folder: str | Path, fill: Callable[[Path], T], names: Iterable[str]) -> T:
    """Fill a new temporary folder beside `folder` with `fill(tmp)` and rename it to `folder`.

    Parameters
    ----------
    folder : path
        The folder to (re)write. If it exists it must hold only files named in `names` (an earlier run's
        output): anything else in it is the user's, and the write is refused rather than losing it.
    fill : callable
        Writes the files into the folder it is given, by their final names; its return value is returned.
    names : iterable of str
        The names `fill` may write.

    An existing folder is moved aside, the new one renamed into place and the old one deleted; if the
    second rename fails the old folder is put back. Raises OutputError on any OSError (nothing is left
    behind but the untouched old folder); other exceptions from `fill` propagate after the clean-up.
    """
    folder = Path(folder)
    allowed = set(names)
    if folder.exists():
        if not folder.is_dir():
            raise OutputError(f"{folder} is a file; give a folder path (or remove the file)")
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in allowed)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise OutputError(f"{folder} holds files sparkbandit did not write ({shown}); give a new or empty folder")
    tmp: Path | None = None
    old: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        os.chmod(tmp, 0o777 & ~current_umask())
        result = fill(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
            os.rmdir(old)
            os.replace(folder, old)
        try:
            os.replace(tmp, folder)
        except OSError:
            if old is not None:
                os.replace(old, folder)
                old = None
            raise
        tmp = None
        return result
    except OSError as e:
        raise output_error(folder, e) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


__all__ = ["OutputError", "current_umask", "output_error", "write_atomic", "write_folder_atomic"]


# ------------------------------------------------------------------ what reallocate writes
def fit_file(loaded) -> Path:
    """Where the latest hierarchical fit of a plan is saved (beside the plan)."""
    return loaded.path.with_name(loaded.path.stem + ".fit.nc")


def budgets_csv(alloc) -> str:
    """The budgets of an Allocation as CSV (`sparkbandit reallocate --out`)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["date", "creative_id", "name", "status", "budget", "previous_budget", "share", "prob_best", "reason"])
    for c in alloc.creatives:
        w.writerow(
            [
                alloc.date.isoformat(),
                c.id,
                c.label,
                c.status,
                f"{c.budget:.2f}",
                f"{c.previous_budget:.2f}",
                f"{c.share:.4f}",
                "" if c.prob_best is None else f"{c.prob_best:.4f}",
                c.reason,
            ]
        )
    return buf.getvalue()


# Formats of `reallocate --out` (name -> Allocation -> file text); a new sheet format is one more entry.
BUDGET_FORMATS: dict[str, Callable[..., str]] = {"csv": budgets_csv}

"""The one error hierarchy of sparkbandit.

Library code raises these; only the CLI turns them into one line and an exit code.
Every message names where the problem is (file, row, field or key) and how to fix it.
"""

from __future__ import annotations


class SparkBanditError(Exception):
    """Base class: an expected failure caused by the user's input or the situation."""

    exit_code = 2


class InputError(SparkBanditError):
    """A plan, study or data file that cannot be used as it is.

    Parameters
    ----------
    source : str
        The file (or "<input>") the problem is in.
    where : str
        The row, column, field or key path, e.g. "row 7, column 'spend'" or "guardrails.max_budget".
    problem : str
        What is wrong.
    fix : str
        How to fix it, phrased as an instruction.
    """

    def __init__(self, source: str, where: str, problem: str, fix: str = "") -> None:
        self.source = str(source)
        self.where = where
        self.problem = problem
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        parts = [self.source]
        if self.where:
            parts.append(self.where)
        text = ": ".join(parts) + ": " + self.problem
        if self.fix:
            text += "; " + self.fix
        return text


class PlanError(InputError):
    """A campaign plan or study file that fails validation."""


class DataError(InputError):
    """A data file (native CSV or TikTok export) that fails validation."""


class ObservationError(SparkBanditError, ValueError):
    """Observations that violate their invariants (negative counts, conversions above impressions...)."""


class LedgerError(SparkBanditError):
    """The ledger database cannot be used (locked, corrupt, from a newer version)."""


class ModelError(SparkBanditError):
    """A model could not produce a usable posterior (e.g. a failed diagnostics gate with on_failure='stop')."""


class TikTokAPIError(SparkBanditError):
    """The TikTok Business API refused a request or could not be reached.

    The message names the endpoint, TikTok's code and message, and the fix; it never contains the token.
    `code` is TikTok's code (None for network errors, timeouts and unreadable answers).
    """

    def __init__(self, message: str, code: int | None = None, request_id: str | None = None) -> None:
        self.code = code
        self.request_id = request_id
        super().__init__(message)


class ApplyRefused(SparkBanditError):
    """`apply` will not send now: a decision for a past day, or TikTok's 23:55-00:00 budget lock."""


class OutputError(SparkBanditError):
    """A file or folder requested by the user (--out, a report) could not be written; nothing was left
    half-written."""

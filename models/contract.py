"""The posterior contract: what the policies and the stopping rule read from a posterior.

Two structural protocols (`typing.Protocol`), so that one campaign's `models.posterior.Posterior` and the
simulator's batches (`models.batch.BatchPosterior`, `models.batch.DrawsBatchPosterior`) serve the same
production code without a common base class:

- `PolicyPosterior`: what a policy (`allocator.decisions.policies`) reads. Arrays have shape (n_creatives,)
  for one campaign and (n_campaigns, n_creatives) for a batch; `quantile` takes a scalar, or one level per
  campaign of shape (n_campaigns, 1).
- `StoppingPosterior`: what the stopping rule (`allocator.decisions.stopping.decide_phase_batch`) reads, always
  as a batch. One campaign is a batch of one (`allocator.decisions.stopping.decide_phase` wraps it), so the rule
  exists once.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PolicyPosterior(Protocol):
    """The posterior of the objective as the policies read it (one campaign or a batch)."""

    @property
    def n_creatives(self) -> int: ...

    def mean(self) -> np.ndarray: ...

    def quantile(self, q: float | np.ndarray) -> np.ndarray: ...

    def prob_best(self) -> np.ndarray: ...


@runtime_checkable
class StoppingPosterior(Protocol):
    """A batch of campaigns' posteriors as the stopping rule reads them; arrays of shape (n_campaigns, ...).

    leader() : (n_campaigns,) the creative most likely best, -1 for a campaign without live creatives
    prob_best() : (n_campaigns, n_creatives)
    value_remaining(q, rows) : (n_campaigns,) the q-quantile of (best - leader) / leader, needed only in `rows`
    """

    def leader(self) -> np.ndarray: ...

    def prob_best(self) -> np.ndarray: ...

    def value_remaining(self, q: float = 0.95, rows: np.ndarray | None = None) -> np.ndarray: ...

"""Policies: a posterior in, target budget shares out.

Each policy maps the posterior of the live creatives to shares summing to 1. Budgets, floors, caps and
step limits are applied afterwards by `allocator.decisions.guardrails`, identically for every policy.

Policies work on the last axis, so the same function serves one campaign (a `Posterior`, arrays of shape
(n_creatives,)) and a batch of simulated campaigns (`models.batch`, arrays of shape (n_campaigns, n_creatives),
and `ctx.day` an int or an array of shape (n_campaigns,)): both implement `models.contract.PolicyPosterior`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from allocator.decisions.names import POLICY_NAMES, check_registry
from models.contract import PolicyPosterior


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know besides the posterior.

    day : int
        Days of data so far (0 before any result).
    min_days : int
        The plan's decision.min_days (exploration window).
    sharpen : float or ndarray of shape (n_campaigns,)
        Exponent c of the Thompson family's shares (shares proportional to share^c; 1 = plain), from
        `sharpen_exponent`: it rises to `[policy] sharpen_to` as the planned end approaches.
    """

    day: int | np.ndarray = 0
    min_days: int = 7
    sharpen: float | np.ndarray = 1.0


Policy = Callable[[PolicyPosterior, PolicyContext], np.ndarray]


def _one_hot_argmax(values: np.ndarray) -> np.ndarray:
    """1 at the largest value along the last axis (first on ties), 0 elsewhere."""
    values = np.asarray(values, dtype=np.float64)
    idx = np.argmax(values, axis=-1)
    return (np.arange(values.shape[-1]) == np.expand_dims(idx, -1)).astype(np.float64)


def sharpen_exponent(sharpen_to: float, progress: float | np.ndarray) -> float | np.ndarray:
    """c = 1 + (sharpen_to - 1) x progress: 1 on the first day (progress 0) to sharpen_to on the last (1)."""
    return 1.0 + (float(sharpen_to) - 1.0) * np.clip(progress, 0.0, 1.0)


def sharpen(shares: np.ndarray, c: float | np.ndarray) -> np.ndarray:
    """Shares proportional to shares^c along the last axis (c = 1: unchanged). A test with a planned end
    gains from exploring less as the end nears: what is learnt on the last days can no longer be used."""
    shares = np.asarray(shares, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if np.all(c == 1.0):
        return shares
    if c.ndim:
        c = c[:, None]
    # In logs, so tiny probabilities raised to c do not underflow to an all-zero row.
    with np.errstate(divide="ignore"):
        logs = c * np.log(shares)
    logs = logs - np.max(logs, axis=-1, keepdims=True)
    out = np.exp(logs)
    return out / out.sum(axis=-1, keepdims=True)


def thompson(post: PolicyPosterior, ctx: PolicyContext) -> np.ndarray:
    """Share = probability of being best: the expected allocation of Thompson sampling (sharpened by
    ctx.sharpen)."""
    return sharpen(post.prob_best(), ctx.sharpen)


def top_two_thompson(post: PolicyPosterior, ctx: PolicyContext, beta: float = 0.5) -> np.ndarray:
    """Top-two Thompson sampling (Russo 2016) as an expected allocation.

    With probability beta play the Thompson draw I; otherwise redraw until J != I. With p = P(best),
    P(J = i | I = j) = p_i / (1 - p_j), so share_i = beta p_i + (1 - beta) p_i sum_{j != i} p_j / (1 - p_j).
    """
    p = np.asarray(post.prob_best(), dtype=np.float64)
    n = p.shape[-1]
    if n == 1:
        return np.ones_like(p)
    sure = p >= 1.0 - 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(sure, 0.0, p / np.where(sure, 1.0, 1.0 - p))
    second = p * (odds.sum(axis=-1, keepdims=True) - odds)
    # When one creative holds all the probability, the redraw is uniform over the rest.
    any_sure = sure.any(axis=-1, keepdims=True)
    second = np.where(any_sure, np.where(sure, 0.0, 1.0 / (n - 1)), second)
    shares = beta * p + (1.0 - beta) * second
    return sharpen(shares / shares.sum(axis=-1, keepdims=True), ctx.sharpen)


def uniform(post: PolicyPosterior, ctx: PolicyContext) -> np.ndarray:
    """Equal split across live creatives, for the whole campaign (a fixed-horizon A/B test: the stopping rule
    never applies to it, see FIXED_HORIZON). `ab_test` is the same split, stopped by the rule."""
    mean = np.asarray(post.mean(), dtype=np.float64)
    return np.full(mean.shape, 1.0 / mean.shape[-1])


def greedy(post: PolicyPosterior, ctx: PolicyContext) -> np.ndarray:
    """Everything on the highest posterior mean."""
    return _one_hot_argmax(post.mean())


def ucb(post: PolicyPosterior, ctx: PolicyContext) -> np.ndarray:
    """Bayes-UCB (Kaufmann, Cappe & Garivier 2012): everything on the highest quantile 1 - 1/(t + 1).

    t counts decision periods (days of data + 1), the batch analogue of the paper's rounds.
    """
    t = np.asarray(ctx.day) + 1
    q = 1.0 - 1.0 / (t + 1)
    if q.ndim:
        q = q[:, None]
    return _one_hot_argmax(post.quantile(q))


def explore_then_commit(post: PolicyPosterior, ctx: PolicyContext) -> np.ndarray:
    """Equal split for the first min_days days, then everything on the leader by posterior mean."""
    exploring = np.asarray(ctx.day) < ctx.min_days
    if exploring.ndim:
        exploring = exploring[:, None]
    return np.where(exploring, uniform(post, ctx), greedy(post, ctx))


POLICIES: dict[str, Policy] = {
    "thompson": thompson,
    "top_two_thompson": top_two_thompson,
    "uniform": uniform,
    "ab_test": uniform,
    "greedy": greedy,
    "ucb": ucb,
    "explore_then_commit": explore_then_commit,
}
check_registry(POLICIES, POLICY_NAMES, "allocator.decisions.policies.POLICIES")


# Policies whose shares `[policy] sharpen_to` sharpens (also the simulator's thompson_per_impression).
THOMPSON_FAMILY = frozenset({"thompson", "top_two_thompson", "thompson_per_impression"})

# Policies the stopping rule never ends: "uniform" is an equal split for the whole planned campaign.
FIXED_HORIZON = frozenset({"uniform"})


def target_shares(name: str, post: PolicyPosterior, ctx: PolicyContext) -> np.ndarray:
    """Shares of the named policy over the posterior's creatives (all assumed live), summing to 1."""
    if post.n_creatives == 0:
        return np.zeros(0)
    shares = np.asarray(POLICIES[name](post, ctx), dtype=np.float64)
    return shares / shares.sum(axis=-1, keepdims=True)

"""Guardrails: a policy's target shares in, daily budgets that obey the platform's rules out.

Batched: every array has shape (n_campaigns, n_creatives), so `sparkbandit reallocate` (one campaign) and
the simulator (thousands of replicate campaigns) run the same code.

The rules, strongest first
--------------------------
1. Not live (paused in the plan, authorization ending before the period ends): budget 0.
2. The total daily budget is never exceeded, and is spent exactly whenever rules 3-4 allow it.
3. Held (too soon since the last change, or in the learning phase): the previous budget, unchanged, unless
   no other creative can take what must be spent (say the only free one expired): then the strongest held
   creative is raised.
4. A running creative is at or above `min_budget` (the $20 ad-group minimum) or paused, and at or below
   `max_budget`.
5. Step limits: within `max_change` (50%) of the previous budget. A running creative may be paused only when
   its step-limited range reaches below `min_budget` (it has stepped down to the minimum); a creative that
   was not running (previous 0) starts at any budget.
6. The exploration floor: every live creative gets at least `exploration_floor` of the total.
7. The policy's target.
Two options: `losers` (`clear_losers`) are paused before anything else, held or not; with
`spend_all = False` rule 2 is "never exceeded": no creative gets more than its target within its bounds
(no step relaxing, no released holds) and the rest stays unspent.

Method
------
The feasible set is {0} U [lower_i, upper_i] per creative with a fixed total: non-convex only through
pausing. We first decide who runs: a free creative whose target budget is nearer 0 than its lower bound
(target < lower / 2) is paused when rule 5 allows it; then, while the running creatives' lower bounds exceed
the total, the one with the smallest target is paused ("paused: floors exceed the budget"). If instead the
running creatives' upper bounds cannot spend the total, step-up limits are relaxed (the total wins over the
step rule) and, if caps still bind, the shortfall is left unspent and reported. Among the running creatives
the budget is the Euclidean projection of the target onto the box-constrained simplex,
b_i = clip(t_i + lambda, lower_i, upper_i) with lambda chosen so the budgets sum to the total: the feasible
vector nearest the target. Lambda is found exactly from the breakpoints of the piecewise-linear sum, vectorised over campaigns. Budgets are then
rounded to `resolution` (cents) by the largest-remainder method, which keeps the total exact and every
budget within its (rounded-inwards) bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocator.decisions.reasons import Reason  # the codes and their sentences


@dataclass(frozen=True)
class GuardrailSettings:
    """The plan's budget rules (scalars shared by every campaign in a batch).

    total : float or ndarray of shape (n_campaigns,)
        Daily budget to spend (per campaign of a batch when an array: the simulator's history replay).
    min_budget : float
        Ad-group minimum; a running creative is at or above it.
    max_budget : float or None
        Cap per creative.
    max_change : float
        Largest relative change from the previous budget (0.5 = +/-50%).
    exploration_floor : float
        Smallest share of the total for each live creative (0 disables; 0 in the winner phase).
    resolution : float or None
        Budgets are multiples of this (0.01 = cents); None leaves them unrounded.
    spend_all : bool
        True: spend the total whenever the rules allow (relaxing step-up limits and releasing holds if
        needed). False: never give a creative more than its target asks (within its bounds); the rest is
        left unspent rather than funding a loser.
    pause_below_prob_best : float
        A live creative whose probability of being best is below this and whose expected loss is at least
        `pause_min_expected_loss` is paused, even when held (0 disables). See `clear_losers`.
    pause_min_expected_loss : float
        Expected loss relative to the best posterior mean (0.25: expected to convert 25% worse).
    """

    total: float | np.ndarray
    min_budget: float = 20.0
    max_budget: float | None = None
    max_change: float = 0.5
    exploration_floor: float = 0.05
    resolution: float | None = 0.01
    spend_all: bool = True
    pause_below_prob_best: float = 0.0
    pause_min_expected_loss: float = 0.25


def in_learning_phase(age, conversions, learning_days: int, learning_conversions: float) -> np.ndarray:
    """Whether each ad group is in TikTok's learning phase: started (`age` > 0 days), younger than
    `learning_days` and short of `learning_conversions` conversions. Elementwise over arrays of any shape;
    the one rule the engine's holds, `status` and the simulator share."""
    age = np.asarray(age)
    return (age > 0) & (age < learning_days) & (np.asarray(conversions) < learning_conversions)


def held_masks(
    live: np.ndarray,
    previous: np.ndarray,
    days_since_change: np.ndarray,
    age: np.ndarray,
    conversions: np.ndarray,
    min_days_between_changes: int,
    hold_learning: bool,
    learning_days: int,
    learning_conversions: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The hold rule, the one copy the engine and the simulator share: which live, funded ad groups keep
    yesterday's budget. Returns two bool masks of the inputs' shape: held because the budget changed fewer than
    `min_days_between_changes` days ago, and (where not already held for that) held in TikTok's learning
    phase (`in_learning_phase`) when `hold_learning` is on. `days_since_change` is large where never changed."""
    can = np.asarray(live, dtype=bool) & (np.asarray(previous) > 0)
    recent = can & (np.asarray(days_since_change) < min_days_between_changes)
    learning = can & ~recent & bool(hold_learning)
    if hold_learning:
        learning &= in_learning_phase(age, conversions, learning_days, learning_conversions)
    return recent, learning


def clear_losers(
    prob_best: np.ndarray,
    expected_loss: np.ndarray,
    mean: np.ndarray,
    live: np.ndarray,
    settings: GuardrailSettings,
) -> np.ndarray:
    """The live creatives that are clearly losing, shape (n_campaigns, n_creatives), bool.

    Losing clearly means both: probability of being best below `pause_below_prob_best`, and expected loss
    E[max_j X_j - X_i] at least `pause_min_expected_loss` times the best posterior mean (a small P(best)
    alone can be a near-tie among many creatives). The creative with the highest P(best) is never one.
    All inputs have shape (n_campaigns, n_creatives); entries of creatives that are not live are ignored.
    """
    live = np.atleast_2d(np.asarray(live, dtype=bool))
    if settings.pause_below_prob_best <= 0:
        return np.zeros_like(live)
    p = np.where(live, np.nan_to_num(np.atleast_2d(prob_best), nan=0.0), -np.inf)
    m = np.where(live, np.nan_to_num(np.atleast_2d(mean), nan=0.0), -np.inf)
    best = m.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(best > 0, np.atleast_2d(expected_loss) / np.where(best > 0, best, 1.0), 0.0)
    top = np.arange(live.shape[1])[None, :] == np.argmax(p, axis=1)[:, None]
    return live & ~top & (p < settings.pause_below_prob_best) & (rel >= settings.pause_min_expected_loss)


@dataclass(frozen=True)
class Budgets:
    """Budgets, shape (n_campaigns, n_creatives), with a Reason code for each and the unspent remainder."""

    budgets: np.ndarray
    reasons: np.ndarray
    unspent: np.ndarray  # (n_campaigns,)


def _solve_lambda(t: np.ndarray, lo: np.ndarray, hi: np.ndarray, run: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Lambda with sum_i clip(t_i + lambda, lo_i, hi_i) = total over running creatives, per campaign.

    The sum is piecewise linear and non-decreasing in lambda with breakpoints lo_i - t_i and hi_i - t_i, so
    it is evaluated at every breakpoint and interpolated linearly between the two that bracket the total:
    exact, O(n_creatives^2) per campaign, no iteration.
    """
    w = run.astype(np.float64)
    hi_f = np.where(np.isfinite(hi), hi, lo + total[:, None])
    bp = np.concatenate([np.where(run, lo - t, np.nan), np.where(run, hi_f - t, np.nan)], axis=1)  # (R, 2n)
    bp = np.sort(bp, axis=1)  # NaNs last
    bp_f = np.where(np.isnan(bp), np.nanmax(np.where(np.isnan(bp), -np.inf, bp), axis=1, keepdims=True), bp)
    bp_f = np.where(np.isfinite(bp_f), bp_f, 0.0)
    sums = (np.clip(t[:, None, :] + bp_f[:, :, None], lo[:, None, :], hi_f[:, None, :]) * w[:, None, :]).sum(-1)
    k = (sums < total[:, None] - 1e-12).sum(axis=1)  # breakpoints strictly below the total
    k_hi = np.minimum(k, bp.shape[1] - 1)
    k_lo = np.maximum(k - 1, 0)
    rows = np.arange(t.shape[0])
    x0, x1 = bp_f[rows, k_lo], bp_f[rows, k_hi]
    s0, s1 = sums[rows, k_lo], sums[rows, k_hi]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(s1 > s0, (total - s0) / (s1 - s0), 1.0)
    return x0 + np.clip(frac, 0.0, 1.0) * (x1 - x0)


def _round(b: np.ndarray, lo: np.ndarray, hi: np.ndarray, run: np.ndarray, total: np.ndarray, res: float) -> np.ndarray:
    """Largest-remainder rounding to multiples of res keeping each row's sum at round(total / res) units."""
    units = b / res
    lo_u, hi_u = np.ceil(lo / res - 1e-7), np.floor(hi / res + 1e-7)
    base = np.floor(units + 1e-7)
    base = np.where(run, np.clip(base, lo_u, hi_u), 0.0)
    frac = units - base
    missing = np.rint(total / res) - base.sum(axis=1)
    cols = np.arange(b.shape[1])[None, :].repeat(b.shape[0], 0)

    def ranks(key: np.ndarray) -> np.ndarray:
        order = np.argsort(key, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, cols, axis=1)
        return rank

    # Units short: one more to the largest remainders; units over (bounds rounded inwards): one fewer from
    # the smallest remainders that can spare it.
    # Repeat while units remain: a creative at its bound cannot take its remainder, so another takes it.
    for _ in range(b.shape[1] + 1):
        if not np.any(missing != 0):
            break
        up = run & (base + 1 <= hi_u)
        add = (ranks(np.where(up, -frac, np.inf)) < missing[:, None]) & up
        down = run & (base - 1 >= lo_u)
        sub = (ranks(np.where(down, frac, np.inf)) < -missing[:, None]) & down
        base = base + add - sub
        frac = units - base
        missing = missing - add.sum(axis=1) + sub.sum(axis=1)
    return base * res


def apply_guardrails(
    target: np.ndarray,
    previous: np.ndarray,
    live: np.ndarray,
    held: np.ndarray,
    settings: GuardrailSettings,
    winner_phase: np.ndarray | None = None,
    losers: np.ndarray | None = None,
) -> Budgets:
    """Turn target shares into budgets that obey the rules in the module docstring.

    Parameters
    ----------
    target : ndarray, shape (n_campaigns, n_creatives)
        Target shares of the policy over the live creatives (any non-negative weights; normalised here).
    previous : ndarray, shape (n_campaigns, n_creatives)
        Budget in force in the previous period (0 = not running).
    live : ndarray of bool, shape (n_campaigns, n_creatives)
        May receive budget at all.
    held : ndarray of bool, shape (n_campaigns, n_creatives)
        Must keep its previous budget (only where live and previous > 0).
    settings : GuardrailSettings
    winner_phase : ndarray of bool, shape (n_campaigns,), optional
        Campaigns in which a winner was declared: the exploration floor no longer applies.
    losers : ndarray of bool, shape (n_campaigns, n_creatives), optional
        Clearly losing creatives (`clear_losers`): paused, held or not (pausing an ad group does not reset
        the others' learning).

    Returns
    -------
    Budgets
    """
    target = np.atleast_2d(np.asarray(target, dtype=np.float64))
    previous = np.atleast_2d(np.asarray(previous, dtype=np.float64))
    live = np.atleast_2d(np.asarray(live, dtype=bool))
    lost = np.zeros_like(live) if losers is None else np.atleast_2d(np.asarray(losers, dtype=bool)) & live
    live = live & ~lost
    held = np.atleast_2d(np.asarray(held, dtype=bool)) & live & (previous > 0)
    n_camp, n = target.shape
    s = settings
    total = np.broadcast_to(np.asarray(s.total, dtype=np.float64), (n_camp,)).copy()
    if s.resolution:
        total = np.floor(total / s.resolution + 1e-7) * s.resolution
    reasons = np.full((n_camp, n), Reason.TARGET, dtype=np.int8)
    reasons[~live] = Reason.NOT_LIVE
    reasons[lost] = Reason.PAUSED_LOSER
    reasons[held] = Reason.HELD
    winner = np.zeros(n_camp, bool) if winner_phase is None else np.asarray(winner_phase, dtype=bool)

    # Held budgets first; if they alone exceed the total, release the weakest of them (rule 2 over rule 3).
    budgets = np.where(held, previous, 0.0)
    t = np.where(live, np.clip(target, 0.0, None), 0.0)
    tsum = t.sum(axis=1, keepdims=True)
    nlive = live.sum(axis=1, keepdims=True)
    t = np.where(tsum > 0, t / np.where(tsum > 0, tsum, 1.0), np.where(live, 1.0 / np.maximum(nlive, 1), 0.0))
    for _ in range(n):
        over = budgets.sum(axis=1) > total + 1e-9
        if not over.any():
            break
        weakest = np.argmin(np.where(held, t, np.inf), axis=1)
        rows = np.flatnonzero(over)
        held[rows, weakest[rows]] = False
        budgets[rows, weakest[rows]] = 0.0
        reasons[rows, weakest[rows]] = Reason.PAUSED_CONFLICT

    free = live & ~held & (reasons != Reason.PAUSED_CONFLICT)
    remaining = total - budgets.sum(axis=1)
    # Bounds of the free creatives, with the reason that sets each.
    floor_share = np.where(winner, 0.0, s.exploration_floor)[:, None]
    floor_budget = floor_share * total[:, None]
    minimum = np.full((n_camp, n), float(s.min_budget))
    lo = np.maximum(minimum, floor_budget)
    lo_reason = np.where(floor_budget > minimum, Reason.FLOOR, Reason.MINIMUM)
    was_running = previous > 0
    step_lo = previous * (1.0 - s.max_change)
    step_hi = previous * (1.0 + s.max_change)
    use_step_lo = was_running & (step_lo > lo)
    lo = np.where(use_step_lo, step_lo, lo)
    lo_reason = np.where(use_step_lo, Reason.STEP_DOWN, lo_reason)
    cap = np.inf if s.max_budget is None else float(s.max_budget)
    hi = np.where(was_running, np.maximum(step_hi, np.maximum(minimum, floor_budget)), np.inf)
    hi_reason = np.where(was_running, Reason.STEP_UP, Reason.CAP)
    capped = hi > cap
    hi = np.where(capped, cap, hi)
    hi_reason = np.where(capped, Reason.CAP, hi_reason)
    lo = np.minimum(lo, hi)  # the cap wins over floors and step-down
    # Pausing is allowed only where the step-limited range reaches below the minimum.
    may_pause = free & (~was_running | (step_lo < s.min_budget))
    target_budget = t * total[:, None]
    run = free.copy()
    # With an exploration floor every live creative keeps running (rule 6): only without one (or after a
    # winner) does a target nearer 0 than the lower bound pause a creative.
    paused = may_pause & (target_budget < 0.5 * lo) & (floor_share <= 0)
    run &= ~paused
    reasons[paused] = Reason.PAUSED_TARGET

    # Floors above what remains: pause the weakest running creative until they fit.
    for _ in range(n):
        need = np.where(run, lo, 0.0).sum(axis=1)
        over = need > remaining + 1e-9
        if not over.any():
            break
        weakest = np.argmin(np.where(run, t, np.inf), axis=1)
        rows = np.flatnonzero(over)
        run[rows, weakest[rows]] = False
        reasons[rows, weakest[rows]] = Reason.PAUSED_CONFLICT
    # Caps below what remains: bring back creatives paused for their target (strongest first), then
    # relax the step-up limit to the cap. With spend_all = False none of this: what the targets cannot
    # take within their limits stays unspent.
    for _ in range(n if s.spend_all else 0):
        room = np.where(run, hi, 0.0).sum(axis=1)
        need = np.where(run, lo, 0.0).sum(axis=1)
        # Only creatives whose lower bound still fits in what remains can come back.
        back = paused & ~run & (need[:, None] + lo <= remaining[:, None] + 1e-9)
        short = (room < remaining - 1e-9) & back.any(axis=1)
        if not short.any():
            break
        best = np.argmax(np.where(back, t, -np.inf), axis=1)
        rows = np.flatnonzero(short)
        run[rows, best[rows]] = True
        reasons[rows, best[rows]] = Reason.TARGET
    room = np.where(run, hi, 0.0).sum(axis=1)
    relax = (room < remaining - 1e-9)[:, None] & run & (hi_reason == Reason.STEP_UP) & s.spend_all
    hi = np.where(relax, cap, hi)
    hi_reason = np.where(relax, Reason.STEP_RELAXED, hi_reason)
    # Still short (every other creative held, or expired): release held creatives, strongest first; they
    # only go up from their budget (rule 2 over rule 3).
    released = np.zeros_like(run)
    for _ in range(n if s.spend_all else 0):
        room = np.where(run, hi, 0.0).sum(axis=1)
        need = np.where(run, lo, 0.0).sum(axis=1)
        new_lo = np.maximum(budgets, s.min_budget)
        can = held & ~released & (need[:, None] + new_lo <= remaining[:, None] + budgets + 1e-9)
        short = (room < remaining - 1e-9) & can.any(axis=1)
        if not short.any():
            break
        rows = np.flatnonzero(short)
        best = np.argmax(np.where(can, t, -np.inf), axis=1)[rows]
        released[rows, best] = True
        run[rows, best] = True
        remaining[rows] += budgets[rows, best]
        lo[rows, best] = new_lo[rows, best]
        hi[rows, best] = np.maximum(cap, budgets[rows, best])
        hi_reason[rows, best] = Reason.RELEASED
        budgets[rows, best] = 0.0
    held &= ~released
    reasons = np.where(released, Reason.RELEASED, reasons)

    room = np.where(run, hi, 0.0).sum(axis=1)
    if not s.spend_all:
        # Only what the targets ask for, within each creative's bounds (the minimum and floors still hold).
        room = np.minimum(room, np.where(run, np.clip(target_budget, lo, hi), 0.0).sum(axis=1))
    spend = np.minimum(remaining, room)
    lam = _solve_lambda(target_budget, lo, hi, run, spend)
    b = np.where(run, np.clip(target_budget + lam[:, None], lo, hi), 0.0)
    if s.resolution:
        b = _round(b, lo, hi, run, np.floor(spend / s.resolution + 1e-7) * s.resolution, s.resolution)
    tol = 1e-6 if s.resolution is None else 0.5 * s.resolution
    # The binding bound names the reason (a budget at a bound was pushed there by it or held by it).
    at_lo = run & ~released & (b <= lo + tol) & (target_budget < b + tol)
    at_hi = run & ~released & np.isfinite(hi) & (b >= hi - tol) & ~at_lo
    reasons = np.where(at_lo, lo_reason, reasons)
    reasons = np.where(at_hi, np.where(relax, Reason.STEP_RELAXED, hi_reason), reasons)
    reasons = np.where(relax & run & (b > step_hi + tol), Reason.STEP_RELAXED, reasons)
    budgets = np.where(run, b, budgets)
    reasons = np.where(~run & free & (reasons == Reason.TARGET), Reason.PAUSED_TARGET, reasons)
    unspent = total - budgets.sum(axis=1)
    if s.resolution:
        unspent = np.round(unspent / s.resolution) * s.resolution
    return Budgets(budgets, reasons.astype(np.int8), np.maximum(unspent, 0.0))

"""The study runner: every policy, every replicate, in chunks, on one machine or a pool or Dask.

One policy's days on one world are `simulations.days.run_policy_on_world` (the engine's steps, batched over
replicates); with study.model = "hierarchical" its posterior comes from `simulations.hier_fits` (a loop over
replicates, ~0.3 s a fit on NUTS, much less on the fast path). This module cuts the replicates into chunks,
batches history replays (all past campaigns padded into one batch), merges the chunks' figures and loads
study files.

Reproducibility: replicates are cut into fixed chunks of `study.chunk_size`; chunk c draws its world from
SeedSequence(seed, spawn_key=(c, 0, campaign)) (the same world for every policy: common random numbers) and
its outcomes from SeedSequence(seed, spawn_key=(c, 1, crc32(policy), campaign)). Without history replay and
with the conjugate model, the policies of a chunk are stepped day by day together and their posterior draws
share each day's standard normals, from SeedSequence(seed, spawn_key=(c, 2)) (common random numbers across
policies, drawn once a day rather than once per policy and day). Results therefore depend on the seed and
the chunk size only, not on how many workers run the chunks, nor where.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from models.beta_draws import DrawBuffers, standard_normal
from simulations.days import SCALARS, SERIES, policy_days, run_policy_on_world
from simulations.history import PastCampaign
from simulations.sim_policies import sim_policy
from simulations.study import Study
from simulations.world import (
    CampaignWorld,
    Dynamics,
    build_worlds,
    dynamics,
    stack_worlds,
)


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to run chunks: the validated study and the parsed history (if any)."""

    study: Study
    history: list[PastCampaign] | None = None
    batch: bool = True  # history replay: all campaigns in one padded batch (False: a loop, the reference)

    @property
    def replicates(self) -> int:
        return self.study.study.replicates

    @property
    def chunk_size(self) -> int:
        return self.study.study.chunk_size

    @property
    def n_chunks(self) -> int:
        return -(-self.replicates // self.chunk_size)

    def with_overrides(
        self, replicates: int | None = None, seed: int | None = None, model: str | None = None
    ) -> StudySpec:
        upd: dict = {}
        if replicates is not None:
            upd["replicates"] = replicates
        if seed is not None:
            upd["seed"] = seed
        if model is not None:
            upd["model"] = model
        if not upd:
            return self
        # validated again (e.g. thompson_per_impression needs the conjugate model)
        data = self.study.model_dump()
        data["study"].update(upd)
        return replace(self, study=type(self.study).model_validate(data))


# ------------------------------------------------------------------------------ chunks
def chunk_bounds(spec: StudySpec, chunk: int) -> tuple[int, int]:
    lo = chunk * spec.chunk_size
    return lo, min(lo + spec.chunk_size, spec.replicates)


def _policy_key(name: str) -> int:
    return zlib.crc32(name.encode())


#: Largest batch of history rows (campaigns x replicates) simulated at once: bounds memory (the posterior
#: draws of a batch are rows x posterior_draws x creatives float32).
MAX_BATCH_ROWS = 20_000


def run_chunk(
    spec: StudySpec,
    chunk: int,
    on_policy: Callable[[], None] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run every policy of the study on replicates of chunk `chunk`; metrics summed over campaigns.

    Returns {policy: {name: array}} with SCALARS of shape (n,) and SERIES of shape (n, periods), n the
    chunk's replicates. "correct" is the share of campaigns whose declared winner (else final leader) is the
    true best; "declared" the share of campaigns with a winner; "decision_day" the mean over those.

    History replay runs all past campaigns together (`spec.batch`, the default): padded to the largest
    creative count with a mask (`simulations.world.stack_worlds`), per-row budgets in the guardrails, in
    batches of at most MAX_BATCH_ROWS rows; batch g's outcomes come from SeedSequence(seed, spawn_key=(chunk,
    1, crc32(policy), g)). `spec.batch = False` loops over campaigns instead (the reference it is tested
    against: the same results within standard errors). thompson_per_impression always loops (its draws per
    budget unit would multiply by the batch).
    """
    study = spec.study
    lo, hi = chunk_bounds(spec, chunk)
    n_rep = hi - lo
    seed = study.study.seed
    dyn = dynamics(study)
    world_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk, 0)))
    worlds = build_worlds(study, spec.history, n_rep, world_rng)
    prior = study.prior
    if prior is not None and getattr(prior, "from_history", False) and spec.history:
        from simulations.history import cross_fit_priors

        alpha, beta, _ = cross_fit_priors(spec.history, prior.folds, seed)
        worlds = [
            replace(w, prior_alpha=np.full(n_rep, a), prior_beta=np.full(n_rep, b))
            for w, a, b in zip(worlds, alpha, beta)
        ]
    buffers = DrawBuffers()  # the posterior draws of every policy and day of the chunk, in the same arrays
    if study.world.history is None and study.study.model == "conjugate":
        return _run_chunk_together(spec, chunk, worlds[0], dyn, buffers, on_policy)
    results: dict[str, dict[str, np.ndarray]] = {}
    per = max(1, MAX_BATCH_ROWS // max(n_rep, 1))
    for policy in study.study.policies:
        # thompson_per_impression draws once per budget unit: batched, that is rows x the largest volume
        batched = (
            spec.batch and study.world.history is not None and len(worlds) > 1 and not sim_policy(policy).draws_per_unit
        )
        groups = [worlds[i : i + per] for i in range(0, len(worlds), per)] if batched else [[w] for w in worlds]
        acc = _Accumulator()
        for g, members in enumerate(groups):
            world = stack_worlds(members) if batched else members[0]
            out = run_policy_on_world(world, dyn, study, policy, _outcome_rng(seed, chunk, policy, g), buffers=buffers)
            acc.add(out, len(members), n_rep)
        results[policy] = acc.result()
        if on_policy is not None:  # progress within a chunk (a hierarchical chunk can take many minutes)
            on_policy()
    return results


def _outcome_rng(seed: int, chunk: int, policy: str, group: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk, 1, _policy_key(policy), group)))


def _run_chunk_together(
    spec: StudySpec,
    chunk: int,
    world: CampaignWorld,
    dyn: Dynamics,
    buffers: DrawBuffers,
    on_policy: Callable[[], None] | None,
) -> dict[str, dict[str, np.ndarray]]:
    """Every policy of the chunk on its one world, stepped day by day together, their conjugate posteriors'
    draws sharing each day's standard normals (from SeedSequence(seed, spawn_key=(chunk, 2))): common random
    numbers across policies, as their worlds already are. Each policy's figures have the distribution they
    have when it runs alone; the normals are drawn once a day instead of once per policy and day (two per
    creative and draw: a Beta draw takes one, or two where its shapes are small, `models.beta_draws`)."""
    study = spec.study
    s = study.study
    n_rep, k = world.shape
    days = {
        policy: policy_days(world, dyn, study, policy, _outcome_rng(s.seed, chunk, policy, 0), buffers=buffers)
        for policy in s.policies
    }
    normals_rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(chunk, 2)))
    normals = buffers.array("common_normals", (2, n_rep, k, s.posterior_draws))
    results: dict[str, dict[str, np.ndarray]] = {}
    drawn = any(not sim_policy(policy).knows_truth for policy in s.policies)  # the oracle needs no posterior
    try:
        for _ in range(s.periods + 1):  # the periods, then the final posterior
            buffers.common_normals = standard_normal(normals_rng, normals) if drawn else None
            for policy, steps in days.items():
                try:
                    next(steps)
                except StopIteration as done:
                    results[policy] = {name: v for name, v in done.value.items() if name in SCALARS or name in SERIES}
                    if on_policy is not None:
                        on_policy()
    finally:
        buffers.common_normals = None
    return {policy: results[policy] for policy in s.policies}


class _Accumulator:
    """Metrics of many campaigns, summed (counts) or averaged over campaigns ignoring NaN (shares, days),
    from runs of one or several campaigns each (rows campaign-major)."""

    SUMS = (
        "conversions",
        "spend",
        "regret",
        "units",
        "units_on_best",
        "regret_t",
        "units_t",
        "units_on_best_t",
        "fallbacks",
    )
    MEANS = ("correct", "declared", "decision_day", "prob_best_t")

    def __init__(self) -> None:
        self.sums: dict[str, np.ndarray] = {}
        self.nansum: dict[str, np.ndarray] = {}
        self.count: dict[str, np.ndarray] = {}
        self.single: dict[str, np.ndarray] | None = None
        self.runs = 0

    def add(self, out: dict[str, np.ndarray], n_campaigns: int, n_rep: int) -> None:
        self.runs += n_campaigns
        if self.runs == 1:
            self.single = {k: v for k, v in out.items() if k in SCALARS or k in SERIES}
        for name in self.SUMS:
            x = out[name].reshape((n_campaigns, n_rep) + out[name].shape[1:]).sum(axis=0)
            self.sums[name] = self.sums.get(name, 0) + x
        for name in self.MEANS:
            x = out[name].reshape((n_campaigns, n_rep) + out[name].shape[1:])
            self.nansum[name] = self.nansum.get(name, 0) + np.nansum(x, axis=0)
            self.count[name] = self.count.get(name, 0) + np.isfinite(x).sum(axis=0)

    def result(self) -> dict[str, np.ndarray]:
        if self.runs == 1 and self.single is not None:
            return self.single
        out = {name: np.asarray(v, dtype=np.float64) for name, v in self.sums.items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            for name in self.MEANS:
                out[name] = np.where(self.count[name] > 0, self.nansum[name] / np.maximum(self.count[name], 1), np.nan)
        return out


# ------------------------------------------------------------------------------ the study
@dataclass
class StudyResult:
    """All replicates of every policy: {policy: {name: array}} with SCALARS (replicates,) and SERIES
    (replicates, periods), replicates in order."""

    name: str
    replicates: int
    periods: int
    unit_cost: bool
    policies: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # CPU time of the chunks, summed over the processes that ran them


def _timed_chunk(
    spec: StudySpec,
    chunk: int,
    on_policy: Callable[[], None] | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    import time

    t0 = time.process_time()
    out = run_chunk(spec, chunk, on_policy)
    return out, time.process_time() - t0


def _merge(spec: StudySpec, timed: list[tuple[dict[str, dict[str, np.ndarray]], float]]) -> StudyResult:
    s = spec.study.study
    parts = [p for p, _ in timed]
    res = StudyResult(
        s.name, spec.replicates, s.periods, spec.study.world.unit_cost, cpu_seconds=float(sum(c for _, c in timed))
    )
    for policy in s.policies:
        res.policies[policy] = {
            name: np.concatenate([p[policy][name] for p in parts], axis=0) for name in parts[0][policy]
        }
    return res


def run_study(
    spec: StudySpec,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StudyResult:
    """Run all chunks: in this process (workers=1), in a local process pool (workers > 1), or on a Dask
    distributed cluster at `scheduler` (dask.distributed is imported only then). The numbers are the same
    in every case. `progress(done, total)` is called after each chunk (in this process: after each policy of
    each chunk, counting chunk-policies)."""
    n = spec.n_chunks
    parts: list[tuple[dict[str, dict[str, np.ndarray]], float] | None] = [None] * n
    done = 0

    def tick() -> None:
        if progress is not None:
            progress(done, n)

    if scheduler is not None:
        try:
            from dask.distributed import Client, as_completed
        except ImportError:
            from models.errors import SparkBanditError

            raise SparkBanditError(
                "--scheduler needs dask.distributed; install it with: pip install 'sparkbandit[dask]'"
            ) from None

        with Client(scheduler, set_as_default=False, timeout="20s") as client:
            spec_f = client.scatter(spec, broadcast=True)
            futures = {client.submit(_timed_chunk, spec_f, c, pure=False): c for c in range(n)}
            for fut in as_completed(futures, loop=client.loop):
                parts[futures[fut]] = fut.result()
                done += 1
                tick()
    elif workers > 1 and n > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures import as_completed as cf_completed

        # forkserver, not fork: the caller may have threads (a progress bar, a Dask client), and forking a
        # multi-threaded process can deadlock. The server imports the simulator once; workers fork from it.
        ctx: BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["simulations.runner"])
        else:
            ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(workers, n), mp_context=ctx, initializer=_ignore_sigint)
        try:
            futures = {pool.submit(_timed_chunk, spec, c): c for c in range(n)}
            for fut in cf_completed(futures):
                parts[futures[fut]] = fut.result()
                done += 1
                tick()
        except BaseException:
            # Ctrl-C (or any failure): stop now rather than after the running chunks (a chunk can take
            # minutes): cancel what has not started and end the workers.
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
    else:
        # In this process the progress counts policies within chunks too: `progress(done, total)` then
        # counts chunk-policies (total = chunks x policies), so a single long chunk still moves the bar.
        n_pol = len(spec.study.study.policies)
        steps = 0

        def step() -> None:
            nonlocal steps
            steps += 1
            if progress is not None:
                progress(steps, n * n_pol)

        for c in range(n):
            parts[c] = _timed_chunk(spec, c, step)
    return _merge(spec, parts)  # type: ignore[arg-type]


def _ignore_sigint() -> None:
    """Pool workers ignore Ctrl-C: the terminal sends it to the whole process group, and the parent alone
    decides to stop (ending the workers), so no worker prints its own traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool) -> None:
    """Cancel pending chunks and end the pool's worker processes (SIGTERM, then SIGKILL after 1 s)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=1.0)


def load_spec(path) -> StudySpec:
    """Read a study file (and its history CSV, if any) into a StudySpec."""
    from simulations.history import read_history
    from simulations.study import load_study

    loaded = load_study(path)
    hp = loaded.history_path
    history = None if hp is None else read_history(hp)
    study = loaded.study
    if history is not None and study.world.history_money and any(p.spend is None for p in history):
        # no spend to drive a money world: replay impressions (unit-cost mode)
        data = study.model_dump()
        data["world"]["history_money"] = False
        study = type(study).model_validate(data)
    return StudySpec(study, history)

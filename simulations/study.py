"""Simulation studies: TOML parsed into pydantic models, with the plan's standard of errors.

A study names the policies to compare, the simulated world and, optionally, the plan sections the policies
run with ([prior], [guardrails], [decision], reused from `allocator.plan`). Unknown keys are rejected with a
"did you mean" hint and every error gives the key path (`allocator.plan.pydantic_error`).

Schema (defaults in brackets)
-----------------------------
[study]     name, replicates [200], periods [30], seed [0], policies [thompson, uniform, oracle],
            posterior_draws [256] (Monte Carlo draws per campaign and day), chunk_size [250] (replicates per
            chunk: part of the seed contract, results do not depend on the number of workers),
            model ["conjugate" | "hierarchical"]: the posterior the policies decide on (the hierarchical
            one is fitted per replicate and day: ~0.03 s on the fast path, ~0.3 s on NUTS)
[world]     volume, exactly one of: daily_budget (currency per day; CPMs needed) or impressions_per_period
            (unit-cost mode: the budget is impressions, there is no money). Creatives, exactly one of:
            conversion_rates = [...] (+ cpms = [...] with a budget), [[world.creatives]] (id,
            conversion_rate, cpm, arrives, expires, organic), [world.generator] (n_creatives, rate, spread,
            organic_strength, cpm_low, cpm_high) or history = "past_tests.csv" (history_money [true]: with
            spend in the history, a money world at the observed CPMs; false: impressions).
[world.cpm]          noise (lognormal sd of each creative's CPM from day to day) [0], saturation (elasticity
                     of CPM in the creative's daily spend) [0], saturation_spend [100]
[world.delay]        window [7] days, half_life [1.0] (geometric delay) or pmf = [...] (window values)
[world.fatigue]      by ["days" | "impressions"], half_life (days or impressions)
[world.seasonality]  weekday = [7 multipliers of the conversion rate, Monday first], cpm_weekday, start_weekday
Each realism table is switched on by its presence and off with enabled = false.
[policy]    sharpen_to [1]: the Thompson family's shares proportional to P(best)^c, c rising from 1 on the first
            period to sharpen_to on the last (the study's periods are the planned length of the test)
[prior]     the plan's [prior] (with `file`), plus for history replay from_history [false] and folds [5]:
            each campaign replayed with a prior cross-fitted on the other folds (`StudyPrior`)
[prior], [guardrails], [decision], [model]: the plan's sections (allocator.plan); [model] is used with
study.model = "hierarchical" (without a delay_cdf there, the model gets the world's true delay). Without [guardrails], unit-cost
studies run with none (the textbook bandit) and money studies with the plan's defaults; without [prior],
unit-cost studies use Beta(1, 1). [decision] draws is not used: the simulator counts posterior_draws.
Policies: the allocator's six, "oracle" (knows the true values; regret 0 in a stationary world) and
"thompson_per_impression" (Thompson with one posterior draw per budget unit: per impression in unit-cost
mode; the reference the probability-of-best shares are checked against).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from allocator.decisions.names import SimPolicyName
from allocator.plan import (
    Decision,
    Guardrails,
    ModelSettings,
    Organic,
    PolicySettings,
    Prior,
    Strict,
    merge_priors_file,
    pydantic_error,
    read_toml,
)
from models.choices import ModelName
from models.errors import PlanError
from simulations.sim_policies import sim_policy

_DEFAULT_POLICIES: list[SimPolicyName] = ["thompson", "uniform", "oracle"]


class StudySection(Strict):
    name: str = Field(min_length=1)
    replicates: int = Field(default=200, ge=1, le=10_000_000)
    periods: int = Field(default=30, ge=1, le=10_000)
    seed: int = Field(default=0, ge=0)
    policies: list[SimPolicyName] = Field(default_factory=lambda: _DEFAULT_POLICIES.copy(), min_length=1)
    posterior_draws: int = Field(default=256, ge=16, le=100_000)
    chunk_size: int = Field(default=250, ge=1, le=100_000)
    model: ModelName = "conjugate"

    @model_validator(mode="after")
    def _unique(self) -> StudySection:
        dup = sorted({p for p in self.policies if self.policies.count(p) > 1})
        if dup:
            raise ValueError(f"study.policies: {dup[0]!r} is listed twice; list each policy once")
        return self


class CreativeSpec(Strict):
    id: str = Field(min_length=1)
    conversion_rate: float = Field(gt=0, lt=1)
    cpm: float | None = Field(default=None, gt=0)
    arrives: int = Field(default=0, ge=0)  # first period it may receive budget
    expires: int | None = Field(default=None, ge=1)  # first period it may not (authorization ended)
    organic: Organic | None = None  # informational: the conjugate engine does not use it


class GeneratorSpec(Strict):
    """Creatives drawn per replicate: log rate = log(rate) + spread * z; organic signal correlates with z."""

    n_creatives: int = Field(default=5, ge=1, le=50)
    rate: float = Field(default=2.5e-4, gt=0, lt=1)
    spread: float = Field(default=0.3, ge=0, le=5)
    organic_strength: float = Field(default=0.5, ge=0, le=1)
    organic_engagement: float = Field(default=0.08, gt=0, lt=1)
    cpm_low: float = Field(default=5.0, gt=0)
    cpm_high: float = Field(default=8.0, gt=0)

    @model_validator(mode="after")
    def _cpm(self) -> GeneratorSpec:
        if self.cpm_high < self.cpm_low:
            raise ValueError(
                f"world.generator.cpm_high: {self.cpm_high:g} is below cpm_low {self.cpm_low:g}; swap them"
            )
        return self


class CpmSpec(Strict):
    enabled: bool = True
    noise: float = Field(default=0.0, ge=0, le=2)
    saturation: float = Field(default=0.0, ge=0, le=5)
    saturation_spend: float = Field(default=100.0, gt=0)


class DelaySpec(Strict):
    enabled: bool = True
    window: int = Field(default=7, ge=1, le=60)
    half_life: float = Field(default=1.0, gt=0)
    pmf: list[float] | None = None

    @model_validator(mode="after")
    def _pmf(self) -> DelaySpec:
        if self.pmf is not None:
            if len(self.pmf) != self.window:
                raise ValueError(
                    f"world.delay.pmf: has {len(self.pmf)} values but window is {self.window}; give one "
                    "probability per day of the window"
                )
            if any(v < 0 for v in self.pmf) or sum(self.pmf) <= 0:
                raise ValueError("world.delay.pmf: values must be >= 0 with a positive sum; fix the values")
        return self


class FatigueSpec(Strict):
    enabled: bool = True
    by: Literal["days", "impressions"] = "days"
    half_life: float = Field(default=10.0, gt=0)


class SeasonalitySpec(Strict):
    enabled: bool = True
    weekday: list[float] = Field(
        default_factory=lambda: [1.0, 1.0, 1.0, 1.0, 0.95, 0.9, 1.1], min_length=7, max_length=7
    )
    cpm_weekday: list[float] | None = Field(default=None, min_length=7, max_length=7)
    start_weekday: int = Field(default=0, ge=0, le=6)

    @model_validator(mode="after")
    def _positive(self) -> SeasonalitySpec:
        for key in ("weekday", "cpm_weekday"):
            vals = getattr(self, key)
            if vals is not None and any(v <= 0 for v in vals):
                raise ValueError(f"world.seasonality.{key}: multipliers must be > 0; fix the values")
        return self


class WorldSection(Strict):
    daily_budget: float | None = Field(default=None, gt=0)
    impressions_per_period: int | None = Field(default=None, ge=1)
    conversion_rates: list[float] | None = Field(default=None, min_length=1)
    cpms: list[float] | None = Field(default=None, min_length=1)
    creatives: list[CreativeSpec] | None = Field(default=None, min_length=1)
    generator: GeneratorSpec | None = None
    history: str | None = None
    # history replay: with spend in the history, the money world (each creative's observed CPM, the
    # campaign's spend per period as the daily budget, conversions per dollar); false: unit-cost impressions
    history_money: bool = True
    cpm: CpmSpec | None = None
    delay: DelaySpec | None = None
    fatigue: FatigueSpec | None = None
    seasonality: SeasonalitySpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WorldSection:
        sources = [k for k in ("conversion_rates", "creatives", "generator", "history") if getattr(self, k) is not None]
        if len(sources) != 1:
            which = "none" if not sources else " and ".join(sources)
            raise ValueError(
                f"world: gives {which}; give exactly one of conversion_rates, [[world.creatives]], "
                "[world.generator] or history"
            )
        volumes = [k for k in ("daily_budget", "impressions_per_period") if getattr(self, k) is not None]
        if self.history is not None:
            if volumes:
                raise ValueError(
                    f"world.{volumes[0]}: history sets each campaign's volume (its impressions spread over the "
                    f"periods); remove world.{volumes[0]}"
                )
        elif len(volumes) != 1:
            raise ValueError(
                "world: give exactly one of daily_budget (money) or impressions_per_period (unit-cost mode)"
            )
        rates = self.conversion_rates
        if rates is not None:
            if any(not 0 < r < 1 for r in rates):
                raise ValueError("world.conversion_rates: every rate must be in (0, 1); fix the values")
            if self.cpms is not None:
                if len(self.cpms) != len(rates):
                    raise ValueError(
                        f"world.cpms: has {len(self.cpms)} values for {len(rates)} conversion_rates; give one "
                        "CPM per creative"
                    )
                if any(c <= 0 for c in self.cpms):
                    raise ValueError("world.cpms: every CPM must be > 0; fix the values")
            elif self.daily_budget is not None:
                raise ValueError("world.cpms: required with daily_budget; give one CPM per conversion rate")
        elif self.cpms is not None:
            raise ValueError("world.cpms: only used with conversion_rates; put cpm in each [[world.creatives]]")
        if self.creatives is not None:
            ids = [c.id for c in self.creatives]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"world.creatives: id {dup[0]!r} appears more than once; give each its own id")
            if self.daily_budget is not None:
                for i, c in enumerate(self.creatives):
                    if c.cpm is None:
                        raise ValueError(f"world.creatives[{i + 1}].cpm: required with daily_budget; add cpm = ...")
            for i, c in enumerate(self.creatives):
                if c.expires is not None and c.expires <= c.arrives:
                    raise ValueError(
                        f"world.creatives[{i + 1}].expires: {c.expires} is not after arrives {c.arrives}; "
                        "a creative must be live for at least one period"
                    )
        return self

    @property
    def unit_cost(self) -> bool:
        """True when budgets are impressions (unit-cost mode; history replay without spend or with
        history_money = false)."""
        if self.history is not None:
            return not self.history_money
        return self.daily_budget is None


class StudyPrior(Prior):
    """The plan's [prior] plus, for history replay, `from_history` (fit the prior to the past campaigns by
    k-fold cross-fitting: each campaign is replayed with a prior learned from the other folds only) and
    `folds` [5]. The world's true rates are still drawn with `alpha`, `beta`."""

    from_history: bool = False
    folds: int = Field(default=5, ge=2, le=100)


class Study(Strict):
    study: StudySection
    world: WorldSection
    prior: StudyPrior | None = None
    guardrails: Guardrails | None = None
    decision: Decision = Decision()
    model: ModelSettings = ModelSettings()
    policy: PolicySettings = PolicySettings()

    @model_validator(mode="after")
    def _from_history(self) -> Study:
        if self.prior is not None and self.prior.from_history and self.world.history is None:
            raise ValueError(
                "prior.from_history: needs world.history (the past campaigns to learn from); "
                "remove it or replay a history"
            )
        return self

    @model_validator(mode="after")
    def _model(self) -> Study:
        if self.study.model == "hierarchical" and any(sim_policy(p).draws_per_unit for p in self.study.policies):
            raise ValueError(
                "study.policies: thompson_per_impression needs the conjugate model (one draw per impression); "
                'remove it or use study.model = "conjugate"'
            )
        return self

    @model_validator(mode="after")
    def _budget(self) -> Study:
        w, g = self.world, self.guardrails
        if w.daily_budget is not None:
            g = g or Guardrails()
            if w.daily_budget < g.min_budget:
                raise ValueError(
                    f"world.daily_budget: {w.daily_budget:g} is below guardrails.min_budget {g.min_budget:g}, "
                    "so no creative could run; raise daily_budget or lower min_budget"
                )
            n = _n_creatives(w)
            if n and g.exploration_floor * n > 1:
                raise ValueError(
                    f"guardrails.exploration_floor: {g.exploration_floor:g} x {n} creatives is above 100% of "
                    f"the budget; use at most {1 / n:.3f}"
                )
        return self


def _n_creatives(w: WorldSection) -> int:
    if w.conversion_rates is not None:
        return len(w.conversion_rates)
    if w.creatives is not None:
        return len(w.creatives)
    if w.generator is not None:
        return w.generator.n_creatives
    return 0


class LoadedStudy:
    """A validated study with the file it came from (history paths are relative to it)."""

    def __init__(self, study: Study, path: Path) -> None:
        self.study = study
        self.path = path

    @property
    def history_path(self) -> Path | None:
        h = self.study.world.history
        if h is None:
            return None
        p = Path(h)
        return p if p.is_absolute() else self.path.parent / p


def parse_study(data: dict, source: str = "<input>") -> Study:
    """Validate a study given as a dict (the parsed TOML). Raises PlanError with one clear line."""
    try:
        return Study.model_validate(data)
    except ValidationError as e:
        raise pydantic_error(source, e, Study) from None


def load_study(path: str | Path) -> LoadedStudy:
    """Read and validate a study file. Raises PlanError with one clear line."""
    path = Path(path)
    data, _raw = read_toml(path)
    merge_priors_file(data, path.parent, str(path))
    study = parse_study(data, str(path))
    loaded = LoadedStudy(study, path)
    hp = loaded.history_path
    if hp is not None and not hp.is_file():
        raise PlanError(
            str(path), "world.history", f"file {str(hp)!r} not found", "give a path relative to the study file"
        )
    return loaded


# ------------------------------------------------------------------ size bound
# Cost model of a study, measured by benchmarks/bench_simulate.py-style runs (BENCHMARKS.md, issue 12):
# the conjugate simulator costs about 1.6e-8 CPU seconds per replicate x period x policy x creative x
# posterior draw (realistic.toml, 10,000 replicates: 50 CPU s, BENCHMARKS.md "Issue 14: the simulator's speed"),
# counted as 2e-8; a hierarchical fit, per replicate, day and policy, about 0.03 s on
# the fast path (hierarchical.toml: 97 CPU s for 4,200 fits, BENCHMARKS.md "Issue 13: the remaining evidence")
# and 0.3 s on NUTS with the compiled model reused.
CONJUGATE_SECONDS_PER_DRAW = 2e-8
HIERARCHICAL_SECONDS_PER_FIT: dict[str, float] = {"laplace_is": 0.03, "nuts": 0.3}
MAX_SECONDS = 3600.0  # refuse (without --force) a study estimated to run longer than an hour
MAX_MEMORY_SHARE = 0.5  # ... or to need more than half of this machine's memory


@dataclass(frozen=True)
class StudySize:
    """The estimated cost of a study: wall seconds on `workers` processes and peak bytes of results."""

    cpu_seconds: float
    seconds: float
    memory_bytes: float
    workers: int

    def describe(self) -> str:
        return (
            f"about {_duration(self.seconds)} on {self.workers} worker{'s' if self.workers != 1 else ''} "
            f"and {self.memory_bytes / 2**30:.1f} GiB of memory"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.0f} days"


def estimate_size(study: Study, replicates: int | None = None, workers: int = 1) -> StudySize:
    """Estimate the time and memory of running `study` (with `replicates` instead of the study's).

    Memory: every policy keeps, per replicate, len(SERIES) series of `periods` floats and a few scalars, and
    the final merge copies them once (x2); a chunk's working arrays (chunk_size x creatives x draws) come on
    top per worker.
    """
    s = study.study
    n_rep = s.replicates if replicates is None else replicates
    k = max(_n_creatives(study.world), 1) if study.world.history is None else 20  # history: a typical size
    policies = len(s.policies)
    learners = sum(not sim_policy(p).knows_truth for p in s.policies)
    if s.model == "hierarchical":
        cpu = n_rep * s.periods * learners * HIERARCHICAL_SECONDS_PER_FIT[study.model.method]
    else:
        cpu = n_rep * s.periods * policies * k * s.posterior_draws * CONJUGATE_SECONDS_PER_DRAW
    n_chunks = -(-n_rep // s.chunk_size)
    used = max(1, min(workers, n_chunks))
    results = 2.0 * policies * n_rep * (4 * s.periods + 9) * 8
    working = used * min(s.chunk_size, n_rep) * k * s.posterior_draws * 8 * 4
    return StudySize(cpu, cpu / used, results + working, used)


def physical_memory() -> float | None:
    """Bytes of RAM of this machine, None where the OS does not say."""
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_size(
    study: Study, source: str, replicates: int | None = None, workers: int = 1, force: bool = False
) -> StudySize:
    """Refuse (PlanError) a study estimated to take over an hour or half the memory, unless `force`."""
    size = estimate_size(study, replicates, workers)
    ram = physical_memory()
    too_long = size.seconds > MAX_SECONDS
    too_big = ram is not None and size.memory_bytes > MAX_MEMORY_SHARE * ram
    if (too_long or too_big) and not force:
        n_rep = study.study.replicates if replicates is None else replicates
        limit = "an hour" if too_long else f"half of this machine's {(ram or 0.0) / 2**30:.0f} GiB"
        raise PlanError(
            source,
            "study.replicates",
            f"{n_rep:,} replicates would take {size.describe()}, more than {limit}",
            "lower --replicates (or study.replicates), add --workers, or add --force to run it anyway",
        )
    return size


__all__ = [
    "LoadedStudy",
    "PlanError",
    "Study",
    "StudySize",
    "check_size",
    "estimate_size",
    "load_study",
    "parse_study",
]

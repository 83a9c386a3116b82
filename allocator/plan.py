"""Campaign plans: TOML parsed into pydantic models, the only pydantic layer of the engine.

Unknown keys are rejected with a "did you mean" hint; every error names the key path and the fix.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from allocator.decisions.names import PolicyName
from models.choices import FatigueName, MethodName, ModelName, SamplerName
from models.errors import PlanError

Objective = Literal["conversions_per_dollar", "conversion_rate", "click_rate"]
DateFormat = Literal["YYYY-MM-DD", "MM/DD/YYYY", "DD/MM/YYYY"]
# ISO 4217 active currency codes (2024 list, without funds and precious metals): a plan's money is in one.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
    CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
    GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD
    LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
    PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL""".split()
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Campaign(Strict):
    name: str = Field(min_length=1)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    daily_budget: float = Field(gt=0)
    objective: Objective = "conversions_per_dollar"
    model: ModelName = "conjugate"
    policy: PolicyName = "thompson"
    data: str | None = None
    ledger: str | None = None
    seed: int = 0
    # order of "NN/NN/YYYY" dates in exports; None detects it (a day above 12) and refuses a file that
    # cannot tell (every day and month 12 or less)
    date_format: DateFormat | None = None
    end: dt.date | None = None  # the planned last day of the test (for [policy] sharpen_to)

    @model_validator(mode="after")
    def _currency(self) -> Campaign:
        if self.currency not in ISO_4217:
            hint = f"; did you mean {self.currency.upper()!r}?" if self.currency.upper() in ISO_4217 else ""
            raise ValueError(
                f"campaign.currency: {self.currency!r} is not an ISO 4217 currency code; write the ad account's "
                f"currency as a three-letter code such as USD, EUR or GBP{hint}"
            )
        return self


class DataRules(Strict):
    """How results files are read: the limits of plausible values and the number format."""

    # the largest spend of one creative on one day that is plausible, in the plan's currency (money above
    # it is a misread or shifted column); raise it for currencies with large units (IDR, VND) if needed
    max_spend: float = Field(default=1e10, gt=0, le=1e15)
    # rows dated later than this many days after today are refused (results cannot come from the future;
    # 1 allows for time zones)
    max_days_ahead: int = Field(default=1, ge=0, le=366)
    # rows dated more than this many days before today are refused (a misread year; 3 years by default)
    max_days_back: int = Field(default=1095, ge=1, le=36600)
    # a row with impressions but spend 0 makes a creative look free: a warning, or an error
    zero_spend: Literal["warn", "error"] = "warn"
    # the decimal mark of exports; None decides per file from its values and delimiter
    decimal: Literal[".", ","] | None = None


class GroupPrior(Strict):
    """`[prior.groups."NAME"]`: the conversion prior of the creatives whose `creator` is NAME."""

    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)
    creatives: int | None = Field(default=None, ge=0)  # how many past creatives it was learned from (information)


class Prior(Strict):
    """Beta prior of the conversion rate per impression, Beta prior of the click rate, prior CPM.

    `file`: a priors file written by `sparkbandit learn` (relative to the plan); its [prior] keys (and its
    [model] delay_cdf, organic_mean, organic_sd) apply where the plan does not give them (`merge_priors_file`).
    `groups`: conversion priors by the creative's `creator` (`learn --by creator`); a creative whose creator
    has none takes alpha and beta.
    """

    file: str | None = None
    alpha: float = Field(default=1.0, gt=0)
    beta: float = Field(default=5000.0, gt=0)
    click_alpha: float = Field(default=1.0, gt=0)
    click_beta: float = Field(default=99.0, gt=0)
    cpm: float = Field(default=8.0, gt=0)
    cpm_weight: float = Field(default=1000.0, gt=0)
    groups: dict[str, GroupPrior] = Field(default_factory=dict)

    def conversion_params(self, creatives: list[Creative]) -> tuple[list[float], list[float]]:
        """Each creative's conversion prior (alpha, beta): its creator's group prior, else alpha and beta."""
        picked = [self.groups.get(c.creator) if c.creator is not None else None for c in creatives]
        return (
            [self.alpha if g is None else g.alpha for g in picked],
            [self.beta if g is None else g.beta for g in picked],
        )


class PriorsFileModel(Strict):
    """The [model] keys a priors file may set."""

    delay_cdf: list[float] | None = None
    organic_mean: float | None = None
    organic_sd: float | None = None


class PriorsFile(Strict):
    """A priors file of `sparkbandit learn`: [prior] (no nested file) and [model] delay_cdf / organic_*."""

    prior: Prior = Prior()
    model: PriorsFileModel = PriorsFileModel()

    @model_validator(mode="after")
    def _no_nested_file(self) -> PriorsFile:
        if self.prior.file is not None:
            raise ValueError("prior.file: a priors file cannot name another; remove the key")
        return self


class PolicySettings(Strict):
    """Settings of the campaign's policy.

    sharpen_to : exponent c the Thompson family's shares are raised to on the planned last day (shares
        proportional to P(best)^c; c rises linearly from 1 on the first day); 1 = plain Thompson sampling.
    """

    sharpen_to: float = Field(default=1.0, ge=1.0, le=50.0)


class Guardrails(Strict):
    min_budget: float = Field(default=20.0, ge=0)
    max_budget: float | None = Field(default=None, gt=0)
    max_change: float = Field(default=0.5, gt=0)
    min_days_between_changes: int = Field(default=2, ge=0)
    exploration_floor: float = Field(default=0.05, ge=0, lt=1)
    campaign_min_budget: float = Field(default=50.0, ge=0)
    learning_days: int = Field(default=7, ge=0)
    learning_conversions: int = Field(default=50, ge=0)
    hold_learning: bool = True
    # false: leave money unspent rather than give a creative more than its target (say to a loser when the
    # leader is at its step limit)
    spend_all: bool = True
    # pause a clearly losing creative, even in its learning phase: P(best) below this (0 = never) ...
    pause_below_prob_best: float = Field(default=0.0, ge=0, lt=1)
    # ... and an expected loss of at least this share of the best creative's value
    pause_min_expected_loss: float = Field(default=0.25, ge=0)


class Decision(Strict):
    min_days: int = Field(default=7, ge=0)
    prob_best: float = Field(default=0.95, gt=0, le=1)
    value_remaining: float = Field(default=0.01, gt=0)
    # false: the stopping rule never declares a winner (no commit; textbook bandits, fixed-horizon tests)
    stop: bool = True
    draws: int = Field(default=4000, ge=100, le=1_000_000)


class ModelSettings(Strict):
    """Settings of the hierarchical model (ignored by the conjugate model)."""

    # "laplace_is": Laplace + Pareto-smoothed importance sampling (~1 s), NUTS when its gate fails; "nuts": NUTS only
    method: MethodName = "laplace_is"
    sampler: SamplerName = "nutpie"
    draws: int = Field(default=2000, ge=10)
    tune: int = Field(default=1000, ge=10)
    chains: int = Field(default=2, ge=1)
    target_accept: float = Field(default=0.99, gt=0, lt=1)
    fatigue: FatigueName = "none"
    delay_cdf: list[float] | None = None
    on_failure: Literal["fallback", "stop"] = "fallback"
    max_rhat: float = Field(default=1.01, gt=1)
    min_ess: float = Field(default=400.0, gt=0)
    compile_dir: str | None = None
    # prior of the organic coefficient (logit change per sd of log engagement rate); the default N(0, 0.5)
    # lets the campaign's own data decide; past campaigns' fit (`sparkbandit diagnose`) can inform it
    organic_mean: float = Field(default=0.0, ge=-5, le=5)
    organic_sd: float = Field(default=0.5, gt=0, le=5)

    @model_validator(mode="after")
    def _cdf(self) -> ModelSettings:
        cdf = self.delay_cdf
        if cdf is not None:
            if not cdf or any(not 0 < v <= 1 for v in cdf) or any(b < a for a, b in zip(cdf, cdf[1:])):
                raise ValueError("delay_cdf must be non-decreasing values in (0, 1]")
            if cdf[-1] != 1.0:
                raise ValueError("delay_cdf must end at 1.0 (all conversions reported by the window's end)")
        return self


class Organic(Strict):
    views: int = Field(ge=0)
    likes: int = Field(default=0, ge=0)
    comments: int = Field(default=0, ge=0)
    shares: int = Field(default=0, ge=0)

    def engagement_rate(self) -> float | None:
        if self.views <= 0:
            return None
        return (self.likes + self.comments + self.shares) / self.views


def _quoted_id(value: Any) -> Any:
    """TikTok ids have up to 19 digits: a TOML integer of that size is already a float elsewhere (Excel,
    JSON in JavaScript) and one digit off reaches another ad, so ids must be written as quoted strings."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    shown = str(value) if isinstance(value, int) else repr(value)
    raise ValueError(f'{shown} is a TOML number, but ids must be strings; quote it: "{shown}"')


class TikTok(Strict):
    """`[tiktok]`: the ad account that `sync` reads and `apply` writes (credentials come from the environment)."""

    advertiser_id: str = Field(min_length=1, pattern=r"^\d+$")
    time_zone: str = "UTC"  # the account's time zone: "yesterday" and the 23:55-00:00 budget lock are in it
    restate_days: int = Field(default=7, ge=0, le=90)  # attribution window re-read by every sync

    _ids = field_validator("advertiser_id", mode="before")(_quoted_id)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone; write the account's zone as in Ads Manager, e.g. "
                '"America/New_York" or "UTC"'
            ) from None
        return value


class Creative(Strict):
    id: str = Field(min_length=1)
    name: str | None = None
    creator: str | None = None
    spark: bool = True
    auth_expires: dt.date | None = None
    status: Literal["active", "paused"] = "active"
    budget: float | None = Field(default=None, ge=0)  # budget in force now (without a ledger)
    last_change: dt.date | None = None  # when that budget took effect (without a ledger)
    launched: dt.date | None = None
    organic: Organic | None = None
    ad_id: str | None = Field(default=None, pattern=r"^\d+$")  # the Spark Ad's id on TikTok
    adgroup_id: str | None = Field(default=None, pattern=r"^\d+$")  # its own ad group (budgets live there)
    adgroup_name: str | None = None  # shown in the ad-group budget sheet (`reallocate --format adgroups`)
    auth_code: str | None = Field(default=None, min_length=1)  # the Spark authorization code, for tt_video/info

    _ids = field_validator("ad_id", "adgroup_id", mode="before")(_quoted_id)

    @property
    def label(self) -> str:
        return self.name or self.id


class CampaignPlan(Strict):
    campaign: Campaign
    prior: Prior = Prior()
    guardrails: Guardrails = Guardrails()
    decision: Decision = Decision()
    model: ModelSettings = ModelSettings()
    tiktok: TikTok | None = None
    data: DataRules = DataRules()
    policy: PolicySettings = PolicySettings()
    creatives: list[Creative] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> CampaignPlan:
        ids = [c.id for c in self.creatives]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"creatives: id {dup[0]!r} appears more than once; give every creative its own id")
        names = [c.name for c in self.creatives if c.name]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"creatives: name {dup[0]!r} appears more than once; names must be unique")
        for key in ("ad_id", "adgroup_id"):
            first: dict[str, int] = {}
            for j, c in enumerate(self.creatives):
                value = getattr(c, key)
                if value is None:
                    continue
                if value in first:
                    i = first[value]
                    why = (
                        "one creative = one Spark Ad in its own ad group (budgets are set per ad group); move it "
                        "to an ad group of its own"
                        if key == "adgroup_id"
                        else "each creative is one ad; remove the duplicate"
                    )
                    raise ValueError(
                        f"creatives[{j + 1}].{key}: {value!r} is also the {key} of creatives[{i + 1}] "
                        f"({self.creatives[i].label!r}); {why}"
                    )
                first[value] = j
        if self.policy.sharpen_to != 1.0 and self.campaign.end is None:
            raise ValueError(
                "policy.sharpen_to: needs the planned end of the test; add campaign.end = YYYY-MM-DD "
                "(or set sharpen_to = 1)"
            )
        g, budget = self.guardrails, self.campaign.daily_budget
        if g.max_budget is not None and g.max_budget < g.min_budget:
            raise ValueError(
                f"guardrails.max_budget: {g.max_budget:g} is below guardrails.min_budget {g.min_budget:g}; "
                "raise max_budget or lower min_budget"
            )
        if budget < g.min_budget:
            raise ValueError(
                f"campaign.daily_budget: {budget:g} is below guardrails.min_budget {g.min_budget:g}, so no "
                "creative could run; raise daily_budget or lower min_budget"
            )
        if budget < g.campaign_min_budget:
            raise ValueError(
                f"campaign.daily_budget: {budget:g} is below the platform's campaign minimum "
                f"{g.campaign_min_budget:g}; raise daily_budget (or guardrails.campaign_min_budget if the "
                "platform's rule changed)"
            )
        active = sum(c.status == "active" for c in self.creatives)
        if g.exploration_floor * active > 1:
            raise ValueError(
                f"guardrails.exploration_floor: {g.exploration_floor:g} x {active} active creatives is above "
                f"100% of the budget; use at most {1 / active:.3f}"
            )
        if g.max_budget is not None and g.max_budget * active < budget:
            raise ValueError(
                f"guardrails.max_budget: {g.max_budget:g} x {active} active creatives cannot spend "
                f"campaign.daily_budget {budget:g}; raise max_budget to at least {budget / active:.2f}"
            )
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def creative_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.creatives)


class LoadedPlan:
    """A validated plan with the file it came from (paths in it are relative to that file)."""

    def __init__(self, plan: CampaignPlan, path: Path, raw: bytes) -> None:
        self.plan = plan
        self.path = path
        self.sha256 = hashlib.sha256(raw).hexdigest()

    def resolve(self, relative: str | None) -> Path | None:
        if relative is None:
            return None
        p = Path(relative)
        return p if p.is_absolute() else (self.path.parent / p)

    @property
    def data_path(self) -> Path | None:
        return self.resolve(self.plan.campaign.data)

    @property
    def ledger_path(self) -> Path:
        given = self.resolve(self.plan.campaign.ledger)
        return given if given is not None else self.path.with_suffix(".ledger.sqlite3")


# ---------------------------------------------------------------------- errors
def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names valid at the parent of `loc` (walking nested models and lists)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        ann = field.annotation
        current = _inner_model(ann)
        if current is None:
            return []
    return list(current.model_fields) if _is_model(current) else []


def _is_model(x: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(x, type) and issubclass(x, BaseModel)


def _inner_model(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def pydantic_error(source: str, exc: ValidationError, root: type[BaseModel]) -> PlanError:
    """Turn the first pydantic error into one PlanError line with the key path and a fix."""
    errors = exc.errors(include_url=False)
    # A misspelt key also shows as a missing one: report the unknown key, which carries the hint.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if p not in ("function-after",))
    path = key_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        close = difflib.get_close_matches(name, _known_keys(root, loc), n=1)
        fix = f"did you mean '{close[0]}'?" if close else "remove it (see the README for the keys)"
        return PlanError(source, path, "unknown key", fix)
    if kind == "missing":
        return PlanError(source, path, "required key is missing", "add it")
    msg = err["msg"]
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        # validators put the key path first: "guardrails.max_budget: ..."
        head, sep, rest = msg.partition(": ")
        if sep and " " not in head:
            return PlanError(source, head, *_split_fix(rest))
        return PlanError(source, path or "plan", *_split_fix(msg))
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a table"
    return PlanError(source, path, f"{shown} is not valid ({msg})", "correct the value")


def _split_fix(msg: str) -> tuple[str, str]:
    problem, sep, fix = msg.partition("; ")
    return problem, fix


def read_toml(path: Path) -> tuple[dict, bytes]:
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanError(source, "", "file not found", "check the path") from None
    except OSError as e:
        raise PlanError(source, "", f"cannot read ({e.strerror})", "check the path and permissions") from None
    if not raw.strip():
        raise PlanError(source, "", "file is empty", "write the plan (see configs/example_plan.toml)")
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise PlanError(source, "", "is not UTF-8 text", "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise PlanError(source, "", f"not valid TOML ({e})", "fix the syntax at that line") from None
    return data, raw


def merge_priors_file(data: dict, base: Path, source: str) -> bytes:
    """Fill `data`'s [prior] and [model] from the priors file named by `[prior] file` (relative to `base`,
    the folder of the plan or study), in place; keys given in `data` win. Returns the file's bytes (b"" when
    there is none). Raises PlanError naming the priors file and key."""
    prior = data.get("prior")
    if not isinstance(prior, dict) or not isinstance(prior.get("file"), str):
        return b""
    fpath = Path(prior["file"])
    fpath = fpath if fpath.is_absolute() else base / fpath
    if not fpath.is_file():
        raise PlanError(
            source,
            "prior.file",
            f"file {str(fpath)!r} not found",
            "give a path relative to the plan (write one with sparkbandit learn --out)",
        )
    fdata, raw = read_toml(fpath)
    try:
        parsed = PriorsFile.model_validate(fdata)
    except ValidationError as e:
        raise pydantic_error(str(fpath), e, PriorsFile) from None
    learned = parsed.prior.model_dump(include=parsed.prior.model_fields_set)
    groups = learned.pop("groups", {})
    if "alpha" in prior or "beta" in prior:
        groups = {}  # the plan's own conversion prior wins over everything the file learned about it
    given_groups = prior.get("groups")
    if isinstance(given_groups, dict):
        groups = {**groups, **given_groups}
    data["prior"] = {**learned, **prior, **({"groups": groups} if groups else {})}
    model = parsed.model.model_dump(exclude_none=True)
    if model:
        raw_model = data.get("model")
        given = raw_model if isinstance(raw_model, dict) else {}
        data["model"] = {**model, **given}
    return raw


def load_plan(path: str | Path) -> LoadedPlan:
    """Read and validate a campaign plan (with its priors file, if any). Raises PlanError with one line."""
    path = Path(path)
    data, raw = read_toml(path)
    raw += merge_priors_file(data, path.parent, str(path))
    try:
        plan = CampaignPlan.model_validate(data)
    except ValidationError as e:
        raise pydantic_error(str(path), e, CampaignPlan) from None
    return LoadedPlan(plan, path, raw)

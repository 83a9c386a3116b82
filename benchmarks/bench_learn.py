"""Issue 10 evidence: learned priors, delay correction, sharpen_to, the OR stopping rule, batched replay.

Run:  python benchmarks/bench_learn.py [section ...]
Sections: recovery, learn_time, replay_time, from_history, sharpen, delay, stopping, past_tests (default: all).
Every figure is a mean over replicates with its standard error; paired differences use common random
numbers (the same worlds and outcome streams for the two settings compared).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from allocator.workflows.learn import PastCreatives, learn  # noqa: E402
from models.empirical_bayes import fit_beta_binomial  # noqa: E402
from simulations.history import PastCampaign  # noqa: E402
from simulations.runner import StudySpec, load_spec, run_study  # noqa: E402
from simulations.study import Study  # noqa: E402

STUDIES = ROOT / "configs" / "studies"
TRUE_A, TRUE_B = 3.0, 10_000.0


def account(n_campaigns: int, seed: int) -> list[PastCampaign]:
    """A simulated account: 2-5 creatives a campaign, rates from Beta(3, 10,000), 20k-200k impressions
    each, CPM $5-8."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_campaigns):
        k = int(rng.integers(2, 6))
        imps = rng.integers(20_000, 200_000, k).astype(float)
        conv = rng.binomial(imps.astype(int), rng.beta(TRUE_A, TRUE_B, k)).astype(float)
        out.append(
            PastCampaign(
                f"camp{c}",
                tuple(f"c{j}" for j in range(k)),
                imps,
                conv,
                np.round(imps * rng.uniform(5, 8, k) / 1000, 2),
            )
        )
    return out


def write_csv(hist: list[PastCampaign], path: Path) -> None:
    rows = ["campaign_id,creative_id,impressions,conversions,spend"]
    for p in hist:
        rows += [
            f"{p.campaign_id},{c},{i:.0f},{k:.0f},{s:.2f}"
            for c, i, k, s in zip(p.creative_ids, p.impressions, p.conversions, p.spend)
        ]
    path.write_text("\n".join(rows) + "\n")


def with_study(spec: StudySpec, **sections) -> StudySpec:
    data = spec.study.model_dump()
    for key, value in sections.items():
        if isinstance(value, dict):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    return StudySpec(Study.model_validate(data), spec.history, spec.batch)


def mse(x: np.ndarray) -> str:
    return f"{x.mean():.2f} ± {x.std(ddof=1) / np.sqrt(x.size):.2f}"


# ---------------------------------------------------------------------------------------------- sections
def recovery() -> None:
    print("## recovery of a known Beta(3, 10,000) from simulated accounts")
    for n in (100, 1000):
        hist = account(n, 1)
        k = np.concatenate([p.conversions for p in hist])
        i = np.concatenate([p.impressions for p in hist])
        f = fit_beta_binomial(k, i)
        z = (
            (f.alpha - TRUE_A) / f.se_alpha,
            (f.beta - TRUE_B) / f.se_beta,
            (f.mean - TRUE_A / (TRUE_A + TRUE_B)) / f.se_mean,
        )
        print(
            f"{n} campaigns, {k.size} creatives: alpha {f.alpha:.3f} ± {f.se_alpha:.3f}, beta {f.beta:,.0f} ± "
            f"{f.se_beta:,.0f}, mean {f.mean:.3e} ± {f.se_mean:.1e}; z = {z[0]:+.2f}, {z[1]:+.2f}, {z[2]:+.2f}"
        )
    rng_hits = []
    for s in range(100):
        hist = account(200, 100 + s)
        f = fit_beta_binomial(
            np.concatenate([p.conversions for p in hist]), np.concatenate([p.impressions for p in hist])
        )
        rng_hits.append(abs(f.alpha - TRUE_A) < 2 * f.se_alpha)
    print(f"coverage of alpha ± 2 SE over 100 accounts of 200 campaigns: {np.mean(rng_hits):.2f}")


def learn_time() -> None:
    print("## learn time, 1,000 campaigns (history CSV -> priors, 5-fold CV)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "past.csv"
        write_csv(account(1000, 2), path)
        t0 = time.perf_counter()
        res = learn(PastCreatives.from_history(path))
        dt_ = time.perf_counter() - t0
    cv = res.cv
    print(f"{dt_:.2f} s wall; CV gain over Beta(1, 5000): {cv['gain']:+.3f} ± {cv['gain_se']:.3f} per creative")


def replay_time() -> None:
    print("## history replay time: 4,873 campaigns x 14 periods x 2 replicates, one process")
    base = load_spec(STUDIES / "history.toml")
    hist = account(4873, 3)
    spec = with_study(
        StudySpec(base.study, hist),
        study={"replicates": 2, "periods": 14, "policies": ["thompson", "uniform", "oracle"]},
    )
    t0 = time.process_time()
    res = run_study(spec)
    batched = time.process_time() - t0
    print(f"batched: {batched:.1f} s CPU (thompson, uniform, oracle)")
    sub = StudySpec(spec.study, hist[:500], batch=False)
    t0 = time.process_time()
    run_study(sub)
    loop = time.process_time() - t0
    print(f"loop over campaigns (before): {loop:.1f} s CPU for 500 campaigns -> ~{loop * 4873 / 500:.0f} s for 4,873")
    sub_b = StudySpec(spec.study, hist[:500])
    t0 = time.process_time()
    run_study(sub_b)
    print(f"batched, the same 500: {time.process_time() - t0:.1f} s CPU")
    for p in ("thompson", "uniform"):
        print(f"  {p}: regret per campaign {res.policies[p]['regret'].mean() / 4873:.2f}")


def from_history() -> None:
    print("## [prior] from_history = true vs the flat prior Beta(1, 5000), simulated account of 400 campaigns")
    base = load_spec(STUDIES / "history.toml")
    hist = account(400, 4)
    flat = with_study(
        StudySpec(base.study, hist),
        study={"replicates": 40, "periods": 14, "policies": ["thompson", "uniform", "oracle"]},
    )
    learned = with_study(flat, prior={"from_history": True})
    a, b = run_study(flat), run_study(learned)
    for p in ("thompson", "uniform"):
        d = b.policies[p]["conversions"] - a.policies[p]["conversions"]
        dr = b.policies[p]["regret"] - a.policies[p]["regret"]
        print(
            f"{p}: conversions learned - flat {mse(d / 400)} a campaign; regret {mse(dr / 400)} a campaign; "
            f"P(correct) flat {a.policies[p]['correct'].mean():.3f} learned {b.policies[p]['correct'].mean():.3f}"
        )


def _curve(spec: StudySpec, label: str) -> None:
    res = {}
    for c in (1.0, 2.0, 3.0, 5.0):
        res[c] = run_study(with_study(spec, policy={"sharpen_to": c}))
    uni = res[1.0].policies["uniform"]["regret"]
    for c, r in res.items():
        t = r.policies["thompson"]
        gap = 1 - t["regret"] / np.where(uni > 0, uni, np.nan)
        d = t["regret"] - res[1.0].policies["thompson"]["regret"]
        print(
            f"{label} c={c:g}: regret {mse(t['regret'])} (paired vs c=1 {mse(d)}), gap closed {np.nanmean(gap):.3f}, "
            f"P(correct) {t['correct'].mean():.3f} ± {t['correct'].std(ddof=1) / np.sqrt(t['correct'].size):.3f}"
        )


def sharpen() -> None:
    print("## sharpen_to trade-off (thompson, [decision] stop = false so every policy runs the whole test)")
    for name, reps in (("realistic", 100), ("bernoulli", 200), ("history", 200)):
        spec = load_spec(STUDIES / f"{name}.toml")
        spec = with_study(
            spec, study={"replicates": reps, "policies": ["thompson", "uniform"]}, decision={"stop": False}
        )
        _curve(spec, name)


def delay() -> None:
    print("## conjugate delay correction in the delay.toml world (thompson, 400 replicates)")
    spec = load_spec(STUDIES / "delay.toml")
    spec = with_study(spec, study={"replicates": 400, "policies": ["thompson", "oracle"]})
    on = run_study(spec)  # the world's true F
    off = run_study(with_study(spec, model={"delay_cdf": [1.0]}))
    d = on.policies["thompson"]["regret"] - off.policies["thompson"]["regret"]
    print(
        f"regret corrected {mse(on.policies['thompson']['regret'])}, uncorrected {mse(off.policies['thompson']['regret'])}, "
        f"paired {mse(d)}; P(correct) {on.policies['thompson']['correct'].mean():.3f} vs "
        f"{off.policies['thompson']['correct'].mean():.3f}"
    )


def stopping() -> None:
    print("## OR stopping rule: declared share and decision day (200 replicates)")
    for name in ("realistic", "delay"):
        spec = load_spec(STUDIES / f"{name}.toml")
        spec = with_study(spec, study={"replicates": 200, "policies": ["thompson", "ab_test", "uniform", "oracle"]})
        res = run_study(spec)
        for p in ("thompson", "ab_test", "uniform"):
            r = res.policies[p]
            print(
                f"{name} {p}: regret {mse(r['regret'])}, conversions {mse(r['conversions'])}, declared "
                f"{r['declared'].mean():.2f}, day {np.nanmean(r['decision_day']):.1f}, P(correct) {r['correct'].mean():.3f}"
            )


def past_tests() -> None:
    print("## shipped past_tests.csv: flat vs learned (cross-fitted) vs sharpen_to, stop = false, 400 replicates")
    spec = load_spec(STUDIES / "history.toml")
    spec = with_study(
        spec,
        study={"replicates": 400, "periods": 14, "policies": ["thompson", "uniform", "oracle"]},
        decision={"stop": False},
    )
    runs = {
        "flat": spec,
        "learned": with_study(spec, prior={"from_history": True, "folds": 3}),
        "sharpen_to=3": with_study(spec, policy={"sharpen_to": 3.0}),
        "learned + sharpen_to=3": with_study(
            spec, prior={"from_history": True, "folds": 3}, policy={"sharpen_to": 3.0}
        ),
    }
    base = None
    for label, s in runs.items():
        r = run_study(s)
        t, u = r.policies["thompson"], r.policies["uniform"]
        gap = 1 - t["regret"] / u["regret"]
        base = t["regret"] if base is None else base
        print(
            f"{label}: gap closed {gap.mean():.3f} ± {gap.std(ddof=1) / np.sqrt(gap.size):.3f}, P(correct) "
            f"{t['correct'].mean():.3f}, regret paired vs flat {mse(t['regret'] - base)}"
        )


SECTIONS = {
    "recovery": recovery,
    "learn_time": learn_time,
    "replay_time": replay_time,
    "from_history": from_history,
    "sharpen": sharpen,
    "delay": delay,
    "stopping": stopping,
    "past_tests": past_tests,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(SECTIONS):
        t0 = time.perf_counter()
        SECTIONS[name]()
        print(f"({name}: {time.perf_counter() - t0:.0f} s)\n", flush=True)

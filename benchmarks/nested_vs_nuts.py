"""The nested fast path (laplace_is above 60 parameters) against NUTS on simulated portfolios.

For each portfolio (campaigns x creatives x days, globals drawn from the priors as
`models.hierarchical.synthetic.simulate_portfolio` does; seeds 1..n): NUTS (nutpie, chains x draws below)
and two nested forms (`laplace._nested_is`: the globals importance-sampled on their Laplace marginal, the
creative effects from their conditional Gaussians), on the same data: with 1 candidate per block (the
Gaussians as they are) and with `INNER_DRAWS` (the default: importance sampling within each block, and the
marginal corrected by it). Reported:

- the globals (intercept_mean, campaign_sd, organic_coef, creative_sd): posterior mean difference in units
  of NUTS's sd, with its Monte Carlo standard error in the same units (sqrt(var/ESS) of each estimate: the
  fast path's importance ESS, NUTS's bulk ESS of that variable), and the sd ratio nested / NUTS;
- the creative rates: the same, summarised (median and max |mean difference| in NUTS sds, sd ratios);
- P(best) within each campaign: mean and max |difference| with the Monte Carlo floor of
  `pbest_hierarchical.mc_floor`.

The fast draws are used with their importance weights (no resampling noise). ``--case 3x8`` fits the
portfolio of the test `test_nested_form_corrects_the_conditional_gaussians_skew` (3 campaigns x 8
creatives, 31 parameters) by the joint form, both nested forms and long NUTS chains: it settled which
form's campaign_sd was off (the joint's).

    python benchmarks/nested_vs_nuts.py                      # 15x5x14, 20x5x14, 15x5x30; seeds 1-3
    python benchmarks/nested_vs_nuts.py --case 3x8 --chains 4 --draws 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pbest_hierarchical import mc_floor, prob_best  # noqa: E402
from models.hierarchical import (  # noqa: E402
    PARETO_K_MAX,
    HierarchicalModel,
    LogDensity,
    _centred_mask,
    _design,
    simulate_campaign,
)
from models.hierarchical.laplace import INNER_DRAWS, _joint_is, _nested_is  # noqa: E402
from models.hierarchical.synthetic import simulate_portfolio  # noqa: E402

GLOBALS = ("intercept_mean", "campaign_sd", "organic_coef", "creative_sd")
PORTFOLIOS = ((15, 5, 14), (20, 5, 14), (15, 5, 30))


def weighted_moments(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and sd over axis 0 of x (S, ...) with normalised weights w (S,)."""
    mean = np.tensordot(w, x, axes=1)
    var = np.tensordot(w, (x - mean) ** 2, axes=1)
    return mean, np.sqrt(var)


def fast_summary(ld: LogDensity, fit) -> dict:
    """The weighted draws of a fast-path fit as {variable: (mean, sd)}, rates (S, n), weights and ESS."""
    w = np.exp(fit.log_weights - fit.log_weights.max())
    w /= w.sum()
    named = ld.named(fit.draws)
    out = {v: weighted_moments(named[v], w) for v in GLOBALS if v in named}
    return {"moments": out, "rate": named["rate"], "w": w, "ess": fit.ess, "fit": fit}


def nuts_summary(model: HierarchicalModel, campaigns, organic, seed: int) -> dict:
    import arviz as az

    idata, diag = model.sample_posterior(campaigns, organic, rng=np.random.default_rng(seed))
    post = idata["posterior"]
    names = [v for v in GLOBALS if v in post.data_vars]
    ess_tree = az.ess(idata, var_names=[*names, "rate"], method="bulk")
    ess = getattr(ess_tree, "dataset", ess_tree)
    flat = {v: np.asarray(post[v]).reshape(-1) for v in names}
    rate = np.asarray(post["rate"].transpose("chain", "draw", "creative"))
    rate = rate.reshape(-1, rate.shape[-1])
    return {
        "moments": {v: (flat[v].mean(), flat[v].std()) for v in names},
        "ess": {v: float(np.asarray(ess[v])) for v in names},
        "rate_ess": np.asarray(ess["rate"], dtype=float),
        "rate": rate,
        "diag": diag,
    }


def compare(ld: LogDensity, fast: dict, nuts: dict, slices) -> dict:
    """Differences fast - NUTS (see the module docstring)."""
    rows = {}
    for v, (m_n, s_n) in nuts["moments"].items():
        m_f, s_f = fast["moments"][v]
        se = np.sqrt(s_f**2 / fast["ess"] + s_n**2 / nuts["ess"][v]) / s_n
        rows[v] = ((m_f - m_n) / s_n, se, s_f / s_n)
    rm_f, rs_f = weighted_moments(fast["rate"], fast["w"])
    rm_n, rs_n = nuts["rate"].mean(axis=0), nuts["rate"].std(axis=0)
    z = (rm_f - rm_n) / rs_n
    z_se = np.sqrt(rs_f**2 / fast["ess"] + rs_n**2 / nuts["rate_ess"]) / rs_n
    diffs: list[float] = []
    floors: list[float] = []
    for sl in slices:
        p_f = prob_best(fast["rate"][:, sl], fast["w"])
        p_n = prob_best(nuts["rate"][:, sl])
        diffs.extend(np.abs(p_f - p_n))
        floors.extend(mc_floor(p_f, fast["ess"], p_n, nuts["diag"]["min_ess_bulk"]))
    return {
        "globals": rows,
        "rate_z": np.abs(z),
        "rate_z_se": z_se,
        "rate_sd_ratio": rs_f / rs_n,
        "pbest": np.asarray(diffs),
        "floor": np.asarray(floors),
    }


def report(label: str, c: dict, extra: str) -> None:
    print(f"{label}  {extra}")
    for v, (z, se, r) in c["globals"].items():
        print(f"    {v:15} mean diff {z:+.3f} NUTS sd (MC se {se:.3f})   sd ratio {r:.3f}")
    print(
        f"    rates           |mean diff| median {np.median(c['rate_z']):.3f} max {c['rate_z'].max():.3f} NUTS sd "
        f"(MC se median {np.median(c['rate_z_se']):.3f}); sd ratio median {np.median(c['rate_sd_ratio']):.3f} "
        f"[{c['rate_sd_ratio'].min():.3f}, {c['rate_sd_ratio'].max():.3f}]"
    )
    print(
        f"    P(best)         |diff| mean {c['pbest'].mean():.4f} max {c['pbest'].max():.4f}; "
        f"MC floor {c['floor'].mean():.4f}",
        flush=True,
    )


def log_density(campaigns, organic) -> tuple[LogDensity, tuple]:
    design = _design(campaigns, organic, "none", None)
    return LogDensity(design, "none", None, _centred_mask(design, "auto")), design.slices


def nuts_model(args) -> HierarchicalModel:
    return HierarchicalModel(
        method="nuts", draws=args.draws, chains=args.chains, tune=args.tune, max_rhat=1e9, min_ess=0.0
    )


#: the nested forms compared: the conditional Gaussians as they are (inner 1, the form before 2026-12-02
#: 18:00) and importance sampling squared with `INNER_DRAWS` candidates per block (the default)
FORMS = {"nested, inner 1": 1, f"nested, inner {INNER_DRAWS}": INNER_DRAWS}


def run_portfolios(args) -> None:
    model = nuts_model(args)
    results: dict[str, list[dict]] = {form: [] for form in FORMS}
    for k, n, days in PORTFOLIOS[: args.portfolios]:
        for seed in range(1, args.seeds + 1):
            sims, truth = simulate_portfolio(np.random.default_rng(seed), k, n, days)
            campaigns, organic = [s.daily for s in sims], [s.organic_rate for s in sims]
            ld, slices = log_density(campaigns, organic)
            t0 = time.perf_counter()
            nuts = nuts_summary(model, campaigns, organic, seed + 200)
            t_nuts = time.perf_counter() - t0
            d = nuts["diag"]
            print(
                f"{k}x{n}x{days} seed {seed} ({ld.dim} parameters): NUTS {args.chains} x {args.draws} {t_nuts:.1f} s "
                f"(R-hat {d['max_rhat']:.3f}, min ESS {d['min_ess_bulk']:.0f}, {d['divergences']} div); "
                f"true campaign_sd {truth['campaign_sd']:.3f} creative_sd {truth['creative_sd']:.3f}; "
                f"load {os.getloadavg()[0]:.1f}"
            )
            for form, inner in FORMS.items():
                t0 = time.perf_counter()
                fit = _nested_is(ld, np.random.default_rng(seed + 100), 400.0, 2000, 4.0, PARETO_K_MAX, inner)
                t_fast = time.perf_counter() - t0
                c = compare(ld, fast_summary(ld, fit), nuts, slices)
                results[form].append(c)
                gate = "passed" if fit.passed else "failed: " + "; ".join(fit.problems)
                report(
                    f"  {form}",
                    c,
                    f"{t_fast:.2f} s (gate {gate}, k {fit.pareto_k:.2f}, cond k {fit.conditional_k:.2f}, ESS {fit.ess:.0f})",
                )
    print(f"# nested_vs_nuts {time.strftime('%Y-%m-%d %H:%M')}  {len(results[next(iter(FORMS))])} portfolios")
    for form, all_c in results.items():
        print(f"{form}, over all portfolios:")
        for v in GLOBALS:
            z = np.array([c["globals"][v][0] for c in all_c])
            se = np.array([c["globals"][v][1] for c in all_c])
            r = np.array([c["globals"][v][2] for c in all_c])
            print(
                f"    {v:15} mean diff {z.mean():+.3f} NUTS sd (se {np.sqrt(np.sum(se**2)) / len(all_c):.3f}), "
                f"max |diff| {np.abs(z).max():.3f} (its MC se {se[np.argmax(np.abs(z))]:.3f}); sd ratio mean {r.mean():.3f}"
            )
        pb = np.concatenate([c["pbest"] for c in all_c])
        fl = np.concatenate([c["floor"] for c in all_c])
        rz = np.concatenate([c["rate_z"] for c in all_c])
        rse = np.concatenate([c["rate_z_se"] for c in all_c])
        rr = np.concatenate([c["rate_sd_ratio"] for c in all_c])
        print(
            f"    rates ({rz.size}) |mean diff| median {np.median(rz):.3f} max {rz.max():.3f} NUTS sd (MC se median "
            f"{np.median(rse):.3f}); sd ratio median {np.median(rr):.3f} [{rr.min():.3f}, {rr.max():.3f}]"
        )
        print(
            f"    P(best) |diff| over {pb.size} entries: mean {pb.mean():.4f} (se {pb.std(ddof=1) / np.sqrt(pb.size):.4f}), "
            f"max {pb.max():.4f}; MC floor {fl.mean():.4f}"
        )


def run_3x8(args) -> None:
    """The test's portfolio (`tests/models/test_hierarchical_fast._ld(8, 3, "none", seed=5)`)."""
    rng = np.random.default_rng(5)
    sims = [simulate_campaign(rng, n_creatives=8, n_days=14) for _ in range(3)]
    campaigns, organic = [s.daily for s in sims], [s.organic_rate for s in sims]
    ld, slices = log_density(campaigns, organic)
    t0 = time.perf_counter()
    nuts = nuts_summary(nuts_model(args), campaigns, organic, 7)
    d = nuts["diag"]
    print(
        f"3x8 NUTS {args.chains} x {args.draws}: {time.perf_counter() - t0:.0f} s, R-hat {d['max_rhat']:.4f}, "
        f"min ESS {d['min_ess_bulk']:.0f}, {d['divergences']} div; load {os.getloadavg()[0]:.1f}"
    )
    for v, (m, s) in nuts["moments"].items():
        print(f"    NUTS {v:15} mean {m:.4f} sd {s:.4f} (ESS {nuts['ess'][v]:.0f})")
    fits = {"joint": _joint_is(ld, np.random.default_rng(1), 400.0, 2000, 4.0, PARETO_K_MAX)}
    for form, inner in FORMS.items():
        fits[form] = _nested_is(ld, np.random.default_rng(2), 400.0, 2000, 4.0, PARETO_K_MAX, inner)
    for label, fit in fits.items():
        fs = fast_summary(ld, fit)
        extra = ", ".join(f"{v} {m:.4f}" for v, (m, _) in fs["moments"].items())
        report(
            f"3x8 {label} vs NUTS",
            compare(ld, fs, nuts, slices),
            f"gate passed {fit.passed}, ESS {fit.ess:.0f}; {extra}",
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["portfolios", "3x8"], default="portfolios")
    ap.add_argument("--portfolios", type=int, default=len(PORTFOLIOS), help="how many of the shapes to run")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    (run_3x8 if args.case == "3x8" else run_portfolios)(args)


if __name__ == "__main__":
    main()

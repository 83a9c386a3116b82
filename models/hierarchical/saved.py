"""Saved fits: writing the sampler's DataTree (netCDF or zarr) and reading its summary back."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from models.errors import ModelError
from models.hierarchical.design import SUMMARY_VARS


def _save(idata, path: Path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zarr":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr 3: "consolidated metadata is not part of the spec"
            idata.to_zarr(path, mode="w")
    else:
        try:
            idata.to_netcdf(path, engine="h5netcdf")
        except ImportError as e:  # h5netcdf is a dependency, its h5py backend may be missing
            raise ModelError(f"{path}: cannot write netCDF ({e}); pip install h5py, or save to a .zarr path") from None
    return str(path)


def _save_draws(ld, theta, path: Path, pareto_k: float, ess: float) -> str:
    """Save the fast path's resampled draws beside `path` as ``.npz`` (numpy only: xarray would add ~1 s to
    every morning's command); `diagnose_summary` reads it when it is the newer of the two."""
    path = Path(path).with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    named = ld.named(theta)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        creative=np.array(ld.design.creative_labels),
        pareto_k=pareto_k,
        ess=ess,
        **{f"var_{k}": v for k, v in named.items()},
    )
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return str(path)


def _npz_summary(path: Path, fmt: str = "table") -> str:
    """Mean, sd and 90% interval of each variable of a fast-path fit (no R-hat: importance draws), as a text
    table (with the fit's Pareto k and importance-sampling ESS), CSV or JSON keyed by variable."""
    with np.load(path) as f:
        labels = [str(c) for c in f["creative"]]
        head = (
            f"fast path (laplace_is) fit {path.name}: Pareto k {float(f['pareto_k']):.3f}, "
            f"importance-sampling ESS {float(f['ess']):.0f}"
        )
        stats: list[tuple[str, float, float, float, float]] = []
        for key in (k for k in f.files if k.startswith("var_")):
            v = f[key]
            name = key[4:]
            cols = [(name, v)] if v.ndim == 1 else [(f"{name}[{c}]", v[:, i]) for i, c in enumerate(labels)]
            for label, x in cols:
                lo, hi = np.quantile(x, [0.05, 0.95])
                stats.append((label, float(x.mean()), float(x.std()), float(lo), float(hi)))
    columns = ("mean", "sd", "eti90_lb", "eti90_ub")
    if fmt == "csv":
        lines = ["variable," + ",".join(columns)] + [
            ",".join([label, *(repr(v) for v in vals)]) for label, *vals in stats
        ]
        return "\n".join(lines) + "\n"
    if fmt == "json":
        import json

        return json.dumps({label: dict(zip(columns, vals)) for label, *vals in stats}, indent=2) + "\n"
    rows = [f"{label:32} {a:>12.6g} {b:>12.6g} {c:>12.6g} {d:>12.6g}" for label, a, b, c, d in stats]
    return "\n".join([head, f"{'':32} {'mean':>12} {'sd':>12} {'eti90_lb':>12} {'eti90_ub':>12}", *rows])


def diagnose_summary(path: str | Path, fmt: str = "table") -> str:
    """ArviZ's summary table of a saved fit (netCDF or zarr written by ``fit(save_to=...)``), as text
    (`fmt` "table"), CSV ("csv") or a JSON object keyed by variable ("json")."""
    import arviz as az
    import xarray as xr

    path = Path(path)
    npz = path.with_suffix(".npz")
    if npz.exists() and (not path.exists() or npz.stat().st_mtime >= path.stat().st_mtime):
        return _npz_summary(npz, fmt)  # the fast path's fit is the latest
    if not path.exists():
        raise ModelError(f"{path}: no saved fit there; run a hierarchical fit with save_to first")
    if path.suffix == ".zarr" or path.is_dir():
        tree = xr.open_datatree(path, engine="zarr")
    else:
        tree = xr.open_datatree(path, engine="h5netcdf")
    names = [v for v in SUMMARY_VARS if v in tree["posterior"].data_vars]
    table = az.summary(tree, var_names=names or None)
    import pandas as pd

    if fmt == "csv":
        return table.to_csv(index_label="variable")
    if fmt == "json":
        return table.to_json(orient="index", indent=2) + "\n"
    with pd.option_context("display.width", 200, "display.max_rows", 1000, "display.max_columns", 20):
        return table.to_string()

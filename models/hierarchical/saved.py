"""Saved fits: writing the sampler's DataTree (netCDF or zarr) and reading its summary back."""

from __future__ import annotations

import warnings
from pathlib import Path

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


def _save_draws(ld, theta, path: Path) -> str:
    """Save the fast path's (resampled) draws as a one-chain posterior group, so `diagnose_summary` reads
    them like a NUTS fit (imports xarray, not pymc). R-hat of one chain of resampled draws says nothing."""
    import xarray as xr

    named = ld.named(theta)
    labels = list(ld.design.creative_labels)
    data = {}
    for k, v in named.items():
        if v.ndim == 2:
            data[k] = (("chain", "draw", "creative"), v[None])
        else:
            data[k] = (("chain", "draw"), v[None])
    ds = xr.Dataset(data, coords={"creative": labels}, attrs={"method": "laplace_is"})
    tree = xr.DataTree.from_dict({"posterior": ds})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zarr":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree.to_zarr(path, mode="w")
    else:
        try:
            tree.to_netcdf(path, engine="h5netcdf")
        except ImportError as e:
            raise ModelError(f"{path}: cannot write netCDF ({e}); pip install h5py, or save to a .zarr path") from None
    return str(path)


def diagnose_summary(path: str | Path, fmt: str = "table") -> str:
    """ArviZ's summary table of a saved fit (netCDF or zarr written by ``fit(save_to=...)``), as text
    (`fmt` "table"), CSV ("csv") or a JSON object keyed by variable ("json")."""
    import arviz as az
    import xarray as xr

    path = Path(path)
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

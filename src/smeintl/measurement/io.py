"""A fit is one netCDF file: write it atomically, read it back with the model rebuilt
from the spec stored in its attrs, refusing a fit made with another spec or data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import compat
from ..spec import Spec, parse_spec

__all__ = ["FitError", "save_fit", "load_fit", "fit_standardization"]


class FitError(RuntimeError):
    """A fit file cannot be used with the spec or data given."""


def save_fit(idata, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a fit to one netCDF file (atomically: temp file, then rename)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    compat.write_fit(compat.as_fit(idata), str(tmp))
    tmp.replace(path)
    return path


def load_fit(path: str | Path, spec: Spec | None = None, survey=None):
    """Read a fit; refuse it when its spec or data hash differ from those given.

    Returns ``(idata, model)`` where ``model`` is the :class:`MeasurementModel`
    rebuilt from the spec text stored in the file.
    """
    path = Path(path)
    if not path.exists():
        raise FitError(f"{path}: file not found")
    if path.is_dir():
        raise FitError(f"{path}: is a folder, not a fit file (.nc)")
    try:
        idata = compat.read_fit(str(path))  # read now: damaged bytes fail here, not in a later table
    except Exception as exc:  # noqa: BLE001 - h5py, h5netcdf and xarray raise many kinds
        text = str(exc).strip() or type(exc).__name__
        raise FitError(f"{path}: not a readable fit file ({text[:200]}); it is damaged or not a netCDF file "
                       f"written by 'smeintl fit'") from None
    if "spec_text" not in idata.attrs:
        raise FitError(f"{path}: not an smeintl fit (no spec in its attributes)")
    stored = parse_spec(idata.attrs["spec_text"], source=f"{path} (stored spec)")
    if spec is not None and spec.hash != stored.hash:
        raise FitError(
            f"{path}: the fit was made with a different spec (stored hash {stored.hash[:12]}, "
            f"given {spec.source} hash {spec.hash[:12]}); refit or pass the matching spec"
        )
    if survey is not None and survey.data_hash != idata.attrs.get("data_hash"):
        raise FitError(
            f"{path}: the fit was made on different data (stored data hash {str(idata.attrs.get('data_hash'))[:12]}, "
            f"given {survey.source} hash {survey.data_hash[:12]}); refit on this data"
        )
    from .model import MeasurementModel

    model = MeasurementModel(
        stored,
        group=bool(int(idata.attrs.get("group", 1))),
        parameterization=str(idata.attrs.get("parameterization", "auto")),
        group_parameterization=str(idata.attrs.get("group_parameterization", "auto")),
        latent_parameterization=str(idata.attrs.get("latent_parameterization", "noncentered")),
        standardized_scores=bool(int(idata.attrs.get("standardized_scores", 0))),
        invariance=str(idata.attrs.get("invariance", "none")),
    )
    return idata, model


def fit_standardization(idata) -> dict[str, np.ndarray] | None:
    s = idata.attrs.get("standardization")
    if not s:
        return None
    return {k: np.asarray(v) for k, v in json.loads(s).items()}


# ---------------------------------------------------------------------------
# summaries

"""Samples on disk: ArviZ ``InferenceData`` in netCDF, the common currency of rarelib.

Every sampler writes, and every analysis reads, one layout:

* group ``posterior``: ``phi`` — the biased observable of the current state after each
  step — and any other recorded observable by name (``logprob``, ``ari``, ``repeats``),
  each float64 with dims ``(chain, draw, bias)``; optionally ``tokens`` (int32, dims
  ``(chain, draw, bias, position)``), the completion of the current state.
* group ``sample_stats``: ``accepted`` (bool) and ``cut`` (int32), dims ``(chain, draw, bias)``.
* coords: ``chain`` 0..M-1, ``draw`` 0..N-1 (step within a bias segment), ``bias`` — the λ
  of each segment (annealing: in the order the chains visit them; parallel tempering: the
  ladder). Direct samples use one bias, λ = 0, and ``sampler="direct"``.
* attrs (both groups): ``observable``, ``sampler``, ``model``, ``prompt``,
  ``completion_length``, ``seed``, ``rarelib_version`` and anything else the sampler adds.

netCDF holds numbers and strings only, so loading a results file never runs code.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr


def arviz():
    """The ``arviz`` module, imported without the refactor ``FutureWarning`` it prints on its first import each day.

    That warning depends on a stamp file in the user's cache, so it would reach a notebook's
    output on a fresh machine and not on one that imported ArviZ today: rarelib never lets it through.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
        import arviz

    return arviz


DIMS = ("chain", "draw", "bias")
REQUIRED_ATTRS = ("observable", "sampler")


def _version() -> str:
    from rarelib import __version__

    return __version__


def make_run(
    posterior: Mapping[str, np.ndarray],
    biases: np.ndarray,
    sample_stats: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, object] | None = None,
):
    """Build the standard ``InferenceData`` from arrays.

    posterior: name → array (M, N, K) (``tokens``: (M, N, K, L)); must contain ``phi``.
    biases: (K,) the λ of each segment. sample_stats: name → (M, N, K).
    attrs: metadata; must name ``observable`` and ``sampler``.
    """
    az = arviz()

    biases = np.asarray(biases, dtype=np.float64)
    if "phi" not in posterior:
        raise ValueError("posterior must contain 'phi', the biased observable")
    attrs = dict(attrs or {})
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValueError(f"attrs must name {missing}")
    attrs.setdefault("rarelib_version", _version())
    shape = np.shape(posterior["phi"])
    if len(shape) != 3 or shape[2] != biases.size:
        raise ValueError(f"phi must have shape (chain, draw, bias={biases.size}); got {shape}")
    coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1]), "bias": biases}

    def dataset(arrays: Mapping[str, np.ndarray]) -> xr.Dataset:
        variables = {}
        for name, values in arrays.items():
            values = np.asarray(values)
            if values.shape[:3] != shape:
                raise ValueError(f"{name} has shape {values.shape}; expected {shape} (+ trailing dims)")
            dims = DIMS + tuple(f"{name}_dim_{i}" for i in range(values.ndim - 3))
            variables[name] = (dims, values)
        return xr.Dataset(variables, coords=coords, attrs={k: _netcdf_attr(v) for k, v in attrs.items()})

    groups = {"posterior": dataset(posterior)}
    if sample_stats:
        groups["sample_stats"] = dataset(sample_stats)
    return az.InferenceData(**groups)


def _netcdf_attr(value: object) -> object:
    """netCDF attributes are numbers or strings; booleans and None become strings."""
    if isinstance(value, (bool, type(None))):
        return str(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    return str(value)


def save(idata, path: str | os.PathLike) -> Path:
    """Write ``idata`` to netCDF atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    idata.to_netcdf(str(tmp))
    os.replace(tmp, path)
    return path


def load(path: str | os.PathLike):
    """Read a run written by :func:`save`; checks it has the standard layout."""
    az = arviz()

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no samples file at {path}; run a sampler first or check the path")
    try:
        idata = az.from_netcdf(str(path))
        idata.posterior.load()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable netCDF samples file ({err}); delete it and re-run the sampler") from None
    validate(idata, source=str(path))
    return idata


def validate(idata, source: str = "samples") -> None:
    """Raise ValueError naming what is missing if ``idata`` lacks the standard layout."""
    if "posterior" not in idata.groups():
        raise ValueError(f"{source}: no 'posterior' group")
    post = idata.posterior
    if "phi" not in post:
        raise ValueError(f"{source}: posterior has no 'phi' variable")
    if tuple(post["phi"].dims) != DIMS:
        raise ValueError(f"{source}: phi has dims {post['phi'].dims}; expected {DIMS}")
    missing = [key for key in REQUIRED_ATTRS if key not in post.attrs]
    if missing:
        raise ValueError(f"{source}: posterior attrs lack {missing}")


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write named arrays to an ``.npz`` file atomically (tmp file + ``os.replace``), no pickle.

    Used for checkpoints and streamed batches; strings go in as numpy unicode arrays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **{name: np.asarray(value) for name, value in arrays.items()})
    os.replace(tmp, path)
    return path


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_arrays` (``allow_pickle=False``: loading never runs code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no array file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npz array file ({err}); delete it and re-run") from None


def check_same_config(saved: Mapping[str, object], requested: Mapping[str, object], source: str) -> None:
    """Raise ValueError naming every argument where ``requested`` differs from what ``source`` was written with."""
    keys = sorted(set(saved) | set(requested))
    differences = [f"{key}={saved.get(key)!r} there, {requested.get(key)!r} now"
                   for key in keys if saved.get(key) != requested.get(key)]
    if differences:
        raise ValueError(f"{source} was written with different arguments: {'; '.join(differences)}. "
                         "Pass the original arguments to resume, or delete it to start afresh")

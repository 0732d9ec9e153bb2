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

import json
import os
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = [
    "arviz",
    "check_file_path",
    "check_folder_path",
    "check_same_config",
    "DIMS",
    "FINGERPRINT_KEY",
    "load",
    "load_arrays",
    "load_with_config",
    "make_run",
    "REQUIRED_ATTRS",
    "save",
    "save_arrays",
    "validate",
]


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
FINGERPRINT_KEY = "model_fingerprint"
"""The configuration entry of checkpoints and batch folders that holds :func:`rarelib.models.fingerprint`."""
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
    _replace_synced(tmp, path)
    return path


def _replace_synced(tmp: Path, path: Path) -> None:
    """Flush ``tmp`` to disk (fsync), then move it to ``path``: after a crash ``path`` is the old or the new file."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load(path: str | os.PathLike):
    """Read a run written by :func:`save`; checks it has the standard layout."""
    az = arviz()

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no samples file at {path}; run a sampler first or check the path")
    try:
        idata = az.from_netcdf(str(path))
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable netCDF samples file ({err}); delete it and re-run the sampler"
        ) from None
    validate(idata, source=str(path))
    idata.posterior.load()
    return idata


def validate(idata, source: str = "samples") -> None:
    """Raise ValueError naming what is missing if ``idata`` lacks the standard layout."""
    if "posterior" not in idata.groups():
        raise ValueError(
            f"{source}: no 'posterior' group, so not a run of a sampler (an analysis is read with "
            "reweighting.Analysis.load)"
        )
    post = idata.posterior
    if "phi" not in post:
        raise ValueError(f"{source}: posterior has no 'phi' variable")
    if tuple(post["phi"].dims) != DIMS:
        raise ValueError(f"{source}: phi has dims {post['phi'].dims}; expected {DIMS}")
    missing = [key for key in REQUIRED_ATTRS if key not in post.attrs]
    if missing:
        raise ValueError(f"{source}: posterior attrs lack {missing}")


def check_file_path(name: str, path: str | os.PathLike) -> Path:
    """``path`` as a Path where a file can be written: ValueError naming ``name`` if it is a folder."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{name}={str(path)!r} is a folder, not a file; pass the path of a file such as 'run.npz'")
    return path


def check_folder_path(name: str, path: str | os.PathLike) -> Path:
    """``path`` as a Path where a folder can be made: ValueError naming ``name`` if it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a file, not a folder; pass a folder path (it is created if needed)")
    return path


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write named arrays to an ``.npz`` file atomically (tmp file + ``os.replace``), no pickle.

    Used for checkpoints and streamed batches; strings go in as numpy unicode arrays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **{name: np.asarray(value) for name, value in arrays.items()})
    _replace_synced(tmp, path)
    return path


def load_arrays(path: str | os.PathLike, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_arrays` (``allow_pickle=False``: loading never runs code).

    required: names the file must hold (ValueError naming the missing ones otherwise).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no array file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise ValueError(
            f"{path} is not a readable .npz file of plain arrays (it is truncated, not an .npz, or "
            "holds Python objects, which rarelib never loads); delete it and re-run"
        ) from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise ValueError(
            f"{path} lacks the arrays {missing}: rarelib did not write it for this purpose; "
            "delete it or pass another path"
        )
    return arrays


def load_with_config(path: str | os.PathLike, required: Sequence[str] = ()) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of a checkpoint or batch file (:func:`load_arrays`) and its JSON ``config``; ValueError naming
    ``path`` if either is missing or unreadable."""
    arrays = load_arrays(path, ("config", *required))
    try:
        config = json.loads(str(arrays["config"]))
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: its config is not a JSON object, so rarelib did not write it; delete it and re-run")
    return arrays, config


def check_same_config(saved: Mapping[str, object], requested: Mapping[str, object], source: str) -> None:
    """Raise ValueError naming every argument where ``requested`` differs from what ``source`` was written with.

    A different :data:`FINGERPRINT_KEY` (other weights, or none recorded) is reported on its own first.
    """
    before, now = saved.get(FINGERPRINT_KEY), requested.get(FINGERPRINT_KEY)
    if before != now:
        raise ValueError(
            f"{source} was written by another model (fingerprint {before!r} there, {now!r} now: the "
            f"weights of {requested.get('model')!r} are not those it was written with). Delete it to "
            "start afresh with this model, or load the original weights to resume"
        )
    keys = sorted(set(saved) | set(requested))
    differences = [
        f"{key}={saved.get(key)!r} there, {requested.get(key)!r} now"
        for key in keys
        if saved.get(key) != requested.get(key)
    ]
    if differences:
        raise ValueError(
            f"{source} was written with different arguments: {'; '.join(differences)}. "
            "Pass the original arguments to resume, or delete it to start afresh"
        )

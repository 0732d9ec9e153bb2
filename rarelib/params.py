"""Notebook parameters: profiles and validation on entry.

Every chapter's first code cell (tagged ``parameters``) holds its knobs with the *quick*
profile's values; other profiles are papermill parameter files in ``profiles/<name>/``.
:func:`check` validates a chapter's parameters at the top of the notebook, so a wrong value
stops the chapter with a message naming the parameter and what it accepts.
"""
from __future__ import annotations

import math
from numbers import Real
from pathlib import Path
from typing import Any, Iterable, Mapping

from rarelib.generation import check_positive_int, check_seed, check_temperature
from rarelib.models import REPO_ROOT

PROFILES = ("quick", "paper")
PROFILE_DIR = REPO_ROOT / "profiles"


def _finite(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")


def _biases(name: str, value: Any) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or len(list(value)) == 0:
        raise ValueError(f"{name} must be a non-empty list of finite numbers; got {value!r}")
    for index, bias in enumerate(value):
        _finite(f"{name}[{index}]", bias)


def _profile(name: str, value: Any) -> None:
    if value not in PROFILES:
        raise ValueError(f"{name} must be one of {PROFILES}; got {value!r}")


def _prompt(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")


def _observable(name: str, value: Any) -> None:
    from rarelib import observables

    observables.get_observable(value)


def _fraction(name: str, value: Any) -> None:
    _finite(name, value)
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1); got {value!r}")


CHECKS = {
    "profile": _profile,
    "prompt": _prompt,
    "seed": lambda name, value: check_seed(value),
    "observable": _observable,
    "biases": _biases,
    "biases_positive": _biases,
    "biases_negative": _biases,
    "burn_in": _fraction,
    "temperature": lambda name, value: check_temperature(value),
}
POSITIVE_INTEGERS = ("completion_length", "n_samples", "n_direct", "steps_per_bias", "n_steps", "n_chains",
                     "batch_size", "n_bootstrap", "swap_every")


def check(params: Mapping[str, Any]) -> None:
    """Validate the known parameters in ``params`` (a chapter's parameter names → values).

    Unknown names are left alone; ``model`` is checked when the model is loaded.
    """
    for name, value in params.items():
        if name in CHECKS:
            CHECKS[name](name, value)
        elif name in POSITIVE_INTEGERS:
            check_positive_int(name, value)


def profile_file(notebook: str, profile: str) -> Path | None:
    """The papermill parameter file of ``notebook`` (stem) under ``profile``, if it has one."""
    _profile("profile", profile)
    path = PROFILE_DIR / profile / f"{notebook}.yaml"
    return path if path.is_file() else None

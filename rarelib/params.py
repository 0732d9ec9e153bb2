"""Notebook parameters: profiles and validation on entry.

Every chapter's first code cell (tagged ``parameters``) holds its knobs with the *quick*
profile's values; other profiles are papermill parameter files in ``profiles/<name>/``.
The chapter's second cell calls :func:`check_notebook` before it looks anything up: an
unknown (e.g. misspelt) parameter name, a profile that was named but whose parameter file
was not loaded, and a wrong value each stop the chapter with a message naming the parameter
and what it accepts (:func:`check` validates values by name).
"""

from __future__ import annotations

import ast
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from numbers import Real
from pathlib import Path
from typing import Any

from rarelib.generation import check_positive_int, check_seed, check_temperature
from rarelib.models import REPO_ROOT
from rarelib.workflow import BOOK_GUIDES

__all__ = [
    "BIAS_SIGNS",
    "chapter_cells",
    "chapter_fingerprint",
    "chapter_library_files",
    "check",
    "check_names",
    "check_notebook",
    "check_profile",
    "CHECKS",
    "defaults",
    "GUIDES",
    "LIBRARY_DIR",
    "library_imports",
    "NOT_LITERAL",
    "NOTEBOOK_DIR",
    "PLAIN_VALUES",
    "POSITIVE_INTEGERS",
    "PROFILE_DIR",
    "profile_file",
    "PROFILES",
]

PROFILES = ("quick", "paper")
PROFILE_DIR = REPO_ROOT / "profiles"
LIBRARY_DIR = REPO_ROOT / "rarelib"
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
BIAS_SIGNS = {"negative": -1, "positive": 1}
GUIDES = (None, *BOOK_GUIDES)
"""The book's guides by name (:func:`rarelib.workflow.guided_move`), or None for forward shooting."""
PLAIN_VALUES = (bool, int, float, str, list, dict, tuple, type(None))
"""Types of parameter values; other globals (modules, functions, IPython's own) are never parameters."""
NOT_LITERAL = object()
"""The default of a parameter whose expression is not a plain literal (:func:`defaults`)."""


def _finite(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")


def _number_list(name: str, value: Any) -> None:
    """A non-empty list of finite numbers."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable) or len(list(value)) == 0:
        raise ValueError(f"{name} must be a non-empty list of finite numbers; got {value!r}")
    for index, bias in enumerate(value):
        _finite(f"{name}[{index}]", bias)


def _mapping(name: str, value: Any, what: str) -> None:
    """A non-empty dict, else ValueError saying it must map observables to ``what``."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{name} must be a non-empty dict of observable name → {what}; got {value!r}")


def _signed_biases(name: str, value: Any) -> None:
    """{observable: {"negative": [λ < 0, ...], "positive": [λ > 0, ...]}}."""
    _mapping(name, value, '{"negative": [...], "positive": [...]}')
    for observable, families in value.items():
        _observable(f"{name} key", observable)
        where = f"{name}[{observable!r}]"
        if not isinstance(families, Mapping) or set(families) != set(BIAS_SIGNS):
            raise ValueError(f"{where} must be a dict with exactly the keys {sorted(BIAS_SIGNS)}; got {families!r}")
        for family, sign in BIAS_SIGNS.items():
            _number_list(f"{where}[{family!r}]", families[family])
            wrong = [bias for bias in families[family] if not bias * sign > 0]
            if wrong:
                raise ValueError(f"{where}[{family!r}] must hold {family} biases only; got {wrong}")


def _biases(name: str, value: Any) -> None:
    """A list of finite numbers, or per observable the two families of :func:`_signed_biases`."""
    if not isinstance(value, (Mapping, list, tuple)):
        raise ValueError(
            f"{name} must be a non-empty list of finite numbers, or a dict of observable name → "
            f'{{"negative": [...], "positive": [...]}}; got {value!r}'
        )
    (_signed_biases if isinstance(value, Mapping) else _number_list)(name, value)


def _ladders(name: str, value: Any) -> None:
    """{observable: strictly increasing list of finite λ that contains 0}."""
    _mapping(name, value, "an increasing list of biases containing 0")
    for observable, ladder in value.items():
        _observable(f"{name} key", observable)
        where = f"{name}[{observable!r}]"
        _number_list(where, ladder)
        if 0 not in ladder or any(b <= a for a, b in zip(ladder, ladder[1:])):
            raise ValueError(f"{where} must be strictly increasing and contain λ = 0; got {ladder}")


def _guides(name: str, value: Any) -> None:
    """{observable: one of :data:`GUIDES`}."""
    _mapping(name, value, f"one of {GUIDES}")
    for observable, guide in value.items():
        _observable(f"{name} key", observable)
        _guide(f"{name}[{observable!r}]", guide)


def _guide(name: str, value: Any) -> None:
    if value not in GUIDES:
        raise ValueError(f"{name} must be one of {GUIDES}; got {value!r}")


def _profile(name: str, value: Any) -> None:
    if value not in PROFILES:
        raise ValueError(f"{name} must be one of {PROFILES}; got {value!r}")


def _prompt(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")


def _observable(name: str, value: Any) -> None:
    from rarelib import observables

    if not isinstance(value, str) or value not in observables.OBSERVABLES:
        raise ValueError(f"{name} must be one of {sorted(observables.OBSERVABLES)}; got {value!r}")


def _observable_list(name: str, value: Any) -> None:
    """A non-empty list of distinct registered observable names."""
    if not isinstance(value, (list, tuple)) or not value or len(set(map(str, value))) != len(value):
        raise ValueError(f"{name} must be a non-empty list of distinct observable names; got {value!r}")
    for index, observable in enumerate(value):
        _observable(f"{name}[{index}]", observable)


def _fraction(name: str, value: Any) -> None:
    _finite(name, value)
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1); got {value!r}")


def _above_one(name: str, value: Any) -> None:
    _finite(name, value)
    if not value > 1:
        raise ValueError(f"{name} must be a number above 1, e.g. 1.1; got {value!r}")


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r} (papermill: -p {name} True, not -r)")


def _positive_int(name: str, value: Any) -> None:
    check_positive_int(name, value)


def _sample_count(name: str, value: Any) -> None:
    """A number of samples to draw a histogram of: an integer ≥ 2."""
    if check_positive_int(name, value) < 2:
        raise ValueError(f"{name} must be an integer ≥ 2 (a histogram needs at least two samples); got {value!r}")


CHECKS: dict[str, Callable[[str, Any], None]] = {
    "profile": _profile,
    "prompt": _prompt,
    "seed": lambda name, value: check_seed(value),
    "observable": _observable,
    "observables": _observable_list,
    "record": _observable_list,
    "biases": _biases,
    "ladders": _ladders,
    "guides": _guides,
    "guide": _guide,
    "burn_in": _fraction,
    "temperature": lambda name, value: check_temperature(value),
    "rhat_threshold": _above_one,
    "keep_tokens": _flag,
    "trace_bias": _finite,
    "exact_bias": _finite,
}
POSITIVE_INTEGERS = (
    "completion_length",
    "n_samples",
    "n_direct",
    "steps_per_bias",
    "n_steps",
    "n_chains",
    "batch_size",
    "n_bootstrap",
    "swap_every",
    "n_zero",
    "n_bins",
    "n_corpus_stories",
)
CHECKS.update({name: _positive_int for name in POSITIVE_INTEGERS})
CHECKS["n_samples"] = _sample_count


def _check_relations(params: Mapping[str, Any]) -> None:
    """Checks between parameters: n_zero ≤ n_direct; every observable has its biases."""
    if "n_zero" in params and "n_direct" in params and params["n_zero"] > params["n_direct"]:
        raise ValueError(f"n_zero={params['n_zero']} must not exceed n_direct={params['n_direct']}")
    if isinstance(params.get("biases"), Mapping) and "observables" in params:
        missing = [name for name in params["observables"] if name not in params["biases"]]
        if missing:
            raise ValueError(
                f'biases has no entry for observables {missing}; give each one {{"negative": [...], "positive": [...]}}'
            )


def check(params: Mapping[str, Any]) -> None:
    """Validate the known parameters in ``params`` (a chapter's parameter names → values).

    Names without a check are left alone; ``model`` is checked when the model is loaded.
    """
    for name, value in params.items():
        if name in CHECKS:
            CHECKS[name](name, value)
    _check_relations(params)


def profile_file(notebook: str, profile: str) -> Path | None:
    """The papermill parameter file of ``notebook`` (stem) under ``profile``, if it has one."""
    _profile("profile", profile)
    path = PROFILE_DIR / profile / f"{notebook}.yaml"
    return path if path.is_file() else None


def chapter_cells(notebook: str) -> list:
    """The cells of chapter ``notebook`` (a stem such as "05_mbar"), as nbformat reads them."""
    import nbformat

    path = NOTEBOOK_DIR / f"{notebook}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"no chapter notebook {path}")
    return nbformat.read(path, as_version=4).cells


def defaults(notebook: str) -> dict[str, Any]:
    """Name → default value of every parameter in the ``parameters`` cell of ``notebooks/<notebook>.ipynb``."""
    cells = [
        cell
        for cell in chapter_cells(notebook)
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", [])
    ]
    if not cells:
        raise ValueError(f"notebooks/{notebook}.ipynb has no code cell tagged 'parameters'")
    return {
        node.targets[0].id: _literal(node.value)
        for node in ast.parse(cells[0].source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def _literal(node: ast.expr) -> Any:
    """The value of a literal expression, else :data:`NOT_LITERAL` (e.g. ``10**12``); never runs code."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return NOT_LITERAL


def check_names(namespace: Mapping[str, Any], known: Iterable[str], notebook: str = "this chapter") -> None:
    """ValueError naming the parameter values in ``namespace`` (a notebook's globals) that are not ``known``.

    Call it after the imports, before any other assignment: papermill's injected cell then
    added the only plain values (numbers, strings, lists, dicts, None) beside the parameters
    cell's, so it works under papermill and in a plain run alike.
    """
    known = set(known)
    unknown = sorted(
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in known
        and name not in ("In", "Out")
        and isinstance(value, PLAIN_VALUES)
    )
    if unknown:
        raise ValueError(
            f"{notebook} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are {', '.join(sorted(known))}"
        )


def check_profile(namespace: Mapping[str, Any], notebook: str, default_values: Mapping[str, Any]) -> None:
    """ValueError if ``namespace`` names a profile whose parameter file exists but none of its settings is in effect."""
    import yaml

    path = profile_file(notebook, namespace.get("profile", PROFILES[0]))
    if path is None:
        return
    settings = {
        name: value
        for name, value in (yaml.safe_load(path.read_text()) or {}).items()
        if name != "profile" and value != default_values.get(name)
    }
    if settings and all(namespace.get(name) != value for name, value in settings.items()):
        raise ValueError(
            f"profile={namespace['profile']!r} was named but its parameter file was not loaded "
            f"(e.g. {next(iter(settings))}={namespace.get(next(iter(settings)))!r} here); "
            f"run papermill with -f {path.relative_to(REPO_ROOT)}"
        )


def check_notebook(notebook: str, namespace: Mapping[str, Any]) -> None:
    """Everything a chapter checks on entry: its parameter names, its profile, then the values (:func:`check`).

    notebook: the chapter's stem (``"04_tps"``); namespace: its ``globals()``.
    """
    default_values = defaults(notebook)
    check_names(namespace, default_values, notebook)
    values = {name: namespace[name] for name in default_values if name in namespace}
    _profile("profile", values.get("profile", PROFILES[0]))
    check_profile(values, notebook, default_values)
    check(values)


def library_imports(source: str) -> set[str]:
    """Dotted names (below ``rarelib``) that Python ``source`` may import from the library.

    ``from rarelib.exact import solvable`` gives both ``exact`` and ``exact.solvable``: the name
    imported may be a module or an attribute, and only the files that exist are followed.
    """
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rarelib":
            package = node.module.split(".")[1:]
            names.update(".".join([*package, alias.name]) for alias in node.names)
            if package:
                names.add(".".join(package))
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".", 1)[1] for alias in node.names if alias.name.startswith("rarelib."))
    return names


def _module_file(name: str) -> Path | None:
    """The source file of library module ``name`` ("exact.solvable"), or None for an attribute."""
    for candidate in (
        LIBRARY_DIR / f"{name.replace('.', '/')}.py",
        LIBRARY_DIR / name.replace(".", "/") / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def chapter_library_files(notebook: str) -> list[Path]:
    """The library's source files that chapter ``notebook`` runs: its imports, followed through the library."""
    code = "\n".join(cell.source for cell in chapter_cells(notebook) if cell.cell_type == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    seen, queue = set(), sorted(library_imports(code) | {"__init__"})
    while queue:
        name = queue.pop()
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        parent = name.rsplit(".", 1)[0] if "." in name else "__init__"
        queue.extend([*library_imports(path.read_text()), parent])
    return sorted(seen)


def chapter_fingerprint(notebook: str) -> str:
    """Hash of chapter ``notebook`` and of the library files it runs: a result is stale once either changes."""
    digest = hashlib.sha256((NOTEBOOK_DIR / f"{notebook}.ipynb").read_bytes())
    for source in chapter_library_files(notebook):
        digest.update(source.relative_to(REPO_ROOT).as_posix().encode() + source.read_bytes())
    return digest.hexdigest()[:16]

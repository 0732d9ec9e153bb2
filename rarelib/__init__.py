"""rarelib: rare event analysis of language models.

The core workflow, one module per stage of the data flow:
``models`` (load a causal LM) → ``observables`` → samplers: ``direct``, ``generation`` (the
batched regrowth kernel, with ``kvcache``, the keys and values that chains carry), ``tps`` with its moves
in ``guides``, and ``tilting``; beside TPS the estimators
``importance`` (guided importance sampling, multiple importance sampling), ``smc`` (twisted sequential
Monte Carlo) and ``gumbel_tail`` (Gumbel-tail forecasting) → ``reweighting``
(MBAR) and ``diagnostics`` → ``convergence`` (the verdict: which rungs pass, which thresholds
are resolved) and ``rounds`` (run until the verdict holds or the budget is spent) → ``storage``,
``workflow`` (cached standard runs), ``plots``, with ``params`` for the chapters' parameters;
``distributed`` runs replica sets and direct batches as Dask tasks. On top, ``estimation``:
:func:`rarelib.estimate` takes a model, a prompt and a question to an answer with honest error
bars, and ``cli`` is the ``rarelib`` command that calls it.

Subpackages: ``exact`` (solvable models and validation against their exact answers),
``storymodel`` (how the embedded default model was made), ``companions`` (code of the
companion chapters).
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "models",
    "observables",
    "generation",
    "kvcache",
    "direct",
    "tps",
    "guides",
    "importance",
    "smc",
    "gumbel_tail",
    "tilting",
    "reweighting",
    "diagnostics",
    "convergence",
    "rounds",
    "estimation",
    "cli",
    "storage",
    "workflow",
    "distributed",
    "plots",
    "params",
    "exact",
    "storymodel",
    "companions",
)


def __getattr__(name: str):
    """Import submodules lazily, so ``import rarelib`` stays fast and light; ``rarelib.estimate`` is
    :func:`rarelib.estimation.estimate`."""
    if name == "estimate":
        return importlib.import_module("rarelib.estimation").estimate
    if name in _SUBMODULES:
        return importlib.import_module(f"rarelib.{name}")
    raise AttributeError(f"module 'rarelib' has no attribute {name!r}")

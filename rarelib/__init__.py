"""rarelib: rare event analysis of language models.

One module per stage of the data flow: ``models`` (load a causal LM), ``corpus`` and
``training`` (how the embedded default model was made), ``observables``, ``direct``,
``generation`` (the sampling kernel), ``tps`` and ``guides`` (its moves), ``tilting``, ``reweighting`` (MBAR),
``diagnostics``, ``exact`` and ``chains`` (solvable models), ``validation`` (estimators
against exact answers), ``storage``, ``workflow`` (cached standard runs), ``plots`` and ``params``;
for single chapters ``exploration`` (rare completions), ``prompts`` (prompts from the corpus),
``toy_training``, ``in_context``, ``list_decoding`` and ``equilearning`` (companion results).
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "models", "corpus", "training", "observables", "direct", "tps", "guides", "tilting",
    "reweighting", "diagnostics", "exact", "chains", "generation", "storage", "plots", "params",
    "workflow", "validation", "exploration", "prompts", "toy_training", "in_context", "list_decoding", "equilearning",
)


def __getattr__(name: str):
    """Import submodules lazily, so ``import rarelib`` stays fast and light."""
    if name in _SUBMODULES:
        return importlib.import_module(f"rarelib.{name}")
    raise AttributeError(f"module 'rarelib' has no attribute {name!r}")

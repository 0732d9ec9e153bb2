"""Prompts cut from corpus stories at chosen percentiles of a score (the paper's further prompts).

The paper repeats its analysis for prompts taken from validation stories at the 0th, 33rd,
67th and 100th percentiles of their ARI (Dorman et al. 2026). Here a story is picked by the
nearest-rank rule on the stable ascending order of its score, and its prompt is the text of
its first ``n_tokens`` tokens — cut wherever the token boundary falls, mid-word included, as
the paper's own prompt ("… there lived a rhinoc") is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rarelib import observables
from rarelib.generation import check_positive_int
from rarelib.models import CausalLM

__all__ = ["CorpusPrompt", "percentile_indices", "prompt_from_text", "prompts_at_percentiles"]


@dataclass(frozen=True)
class CorpusPrompt:
    """A prompt cut from ``stories[story_index]``, whose score lies at ``percentile`` of the corpus."""

    percentile: float
    story_index: int
    score: float
    prompt: str


def percentile_indices(scores, percentiles) -> np.ndarray:
    """Index (P,) into ``scores`` (N,) of the item at each of ``percentiles`` (P,), in [0, 100].

    Nearest rank: the item at position round(q/100 · (N − 1)) of the stable ascending order,
    so 0 is the first minimum and 100 the last maximum.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be a non-empty 1-D array of finite numbers; got shape {scores.shape}")
    percentiles = np.atleast_1d(np.asarray(percentiles, dtype=np.float64))
    if percentiles.ndim != 1 or not np.all((percentiles >= 0) & (percentiles <= 100)):
        raise ValueError(f"percentiles must be numbers in [0, 100]; got {percentiles.tolist()}")
    order = np.argsort(scores, kind="stable")
    ranks = np.rint(percentiles / 100 * (scores.size - 1)).astype(np.int64)
    return order[ranks]


def prompt_from_text(lm: CausalLM, text: str, n_tokens: int) -> str:
    """The text of the first ``n_tokens`` tokens of ``text`` under ``lm``'s tokenizer."""
    n_tokens = check_positive_int("n_tokens", n_tokens)
    ids = lm.encode(text)
    if len(ids) < n_tokens:
        raise ValueError(f"n_tokens must not exceed the text's {len(ids)} tokens; got {n_tokens}")
    return lm.decode(ids[:n_tokens])


def prompts_at_percentiles(
    lm: CausalLM,
    stories: Sequence[str],
    percentiles,
    n_tokens: int,
    score: Callable[[str], float] = observables.automated_readability_index,
) -> list[CorpusPrompt]:
    """One :class:`CorpusPrompt` per percentile: the story at that percentile of ``score`` (default: ARI
    of the whole story), cut to its first ``n_tokens`` tokens."""
    scores = np.array([score(story) for story in stories], dtype=np.float64)
    indices = percentile_indices(scores, percentiles)
    return [
        CorpusPrompt(float(q), int(i), float(scores[i]), prompt_from_text(lm, stories[i], n_tokens))
        for q, i in zip(np.atleast_1d(percentiles), indices)
    ]

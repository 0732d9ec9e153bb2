"""Observables φ of prompt + completion, evaluated on batches.

Every observable has one signature::

    observable(lm, prompt_ids, completions, token_logprobs) -> np.ndarray (B,) float64

with ``prompt_ids`` LongTensor (P,), ``completions`` LongTensor (B, L) and ``token_logprobs``
FloatTensor (B, L), where ``token_logprobs[b, i] = log p_M(c_i | prompt, c_<i)`` at
temperature 1. An observable's ``__name__`` is its name in results files and checkpoints.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from rarelib.models import UntokenizedWarning

__all__ = [
    "ARI_CAP",
    "ARI_OF_EMPTY_TEXT",
    "automated_readability_index",
    "decoded_texts",
    "evaluate",
    "get_observable",
    "get_observables",
    "logprob",
    "longest_repeat_run",
    "make_ari",
    "Observable",
    "OBSERVABLES",
    "readability_counts",
    "repeats",
    "SENTENCE_END_CHARACTERS",
    "sentence_end_token_ids",
    "text_observable",
    "textstat_ari",
    "token_class_count",
]

Observable = Callable[..., np.ndarray]

ARI_CAP = 15.0
ARI_OF_EMPTY_TEXT = -21.43

_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_WORD = re.compile(r"\S*[^\W_]\S*")
_CLOSERS = "\"'\u201d\u2019)\\]"
_SENTENCE_END = re.compile(rf"[.!?]+[{_CLOSERS}]*$")
_WORD_ENDING_SENTENCE = re.compile(rf"(?<!\S)\S*[^\W_]\S*?[.!?]+[{_CLOSERS}]*(?!\S)")


def readability_counts(text: str) -> tuple[int, int, int]:
    """(characters, words, sentences) of ``text`` under the ARI counting rules of :func:`make_ari`."""
    words = _WORD.findall(text)
    if not words:
        return 0, 0, 0
    characters = len(_LETTER_OR_DIGIT.findall(text))
    unterminated_tail = 0 if _SENTENCE_END.search(words[-1]) else 1
    sentences = len(_WORD_ENDING_SENTENCE.findall(text)) + unterminated_tail
    return characters, len(words), sentences


def automated_readability_index(text: str, cap: float = ARI_CAP) -> float:
    """ARI = 4.71·characters/words + 0.5·words/sentences − 21.43, capped at ``cap`` (see :func:`make_ari`)."""
    characters, words, sentences = readability_counts(text)
    if words == 0:
        return ARI_OF_EMPTY_TEXT
    return min(4.71 * characters / words + 0.5 * words / sentences - 21.43, cap)


def textstat_ari(text: str, cap: float = ARI_CAP) -> float:
    """The paper's ARI, ``textstat.automated_readability_index(text)`` (0 for a text without words), capped at ``cap``.

    textstat counts characters as every non-space character (punctuation included), words as
    whitespace-separated tokens, and sentences with its own splitter, which drops fragments of
    two words or fewer; :func:`automated_readability_index` is rarelib's own counting.
    """
    import textstat

    return min(textstat.automated_readability_index(text), cap)


def decoded_texts(lm, prompt_ids: torch.Tensor, completions: torch.Tensor) -> list[str]:
    """The B texts ``lm.decode(prompt_ids + completion)`` of completions (B, L).

    Warns (:class:`rarelib.models.UntokenizedWarning`) with counts when completions hold ids that
    have no token in the model's tokenizer (``lm.untokenized_ids``): they decode to ''.
    """
    holes = torch.isin(completions, getattr(lm, "untokenized_ids", torch.zeros(0, dtype=torch.int64)).cpu())
    if holes.any():
        warnings.warn(
            f"{int(holes.any(dim=1).sum())} of {len(completions)} completions hold {int(holes.sum())} "
            f"token ids without a token in the tokenizer of {lm.name!r}; they decode to '' in text "
            "observables (load the model with mask_untokenized=True to exclude them)",
            UntokenizedWarning,
            stacklevel=2,
        )
    prefix = [int(i) for i in prompt_ids]
    return [lm.decode(prefix + row) for row in completions.tolist()]


def text_observable(score: Callable[[str], float], name: str) -> Observable:
    """The observable ``score(text)`` of each prompt + completion text (see :func:`decoded_texts`), named ``name``."""

    def observable(lm, prompt_ids, completions, token_logprobs) -> np.ndarray:
        return np.array([score(text) for text in decoded_texts(lm, prompt_ids, completions.cpu())], dtype=np.float64)

    observable.__name__ = name
    return observable


def make_ari(cap: float = ARI_CAP) -> Observable:
    """The Automated Readability Index of the whole prompt + completion text, capped at ``cap``.

    Counting rules (text = ``lm.decode(prompt_ids + completion)``):

    * words: whitespace-separated tokens that contain at least one letter or digit
      (Unicode ``[^\\W_]``); "3.14" is a word, "--" is not;
    * characters: letters and digits (every one of them lies in some word);
    * sentences: words that end in a run of ``.``/``!``/``?`` (optionally followed by closing
      quotes or brackets, as in ``"Run!"``), plus one for an unterminated final fragment —
      fixed-length completions usually stop mid-sentence, and that fragment is a sentence too.

    A text without words gets −21.43, the formula with both ratios taken as 0: finite (the
    Metropolis ratio and MBAR need finite φ) and below every text with words (≥ −16.22).
    ``cap = math.inf`` leaves ARI uncapped. The paper's counting (textstat) is :data:`ari_textstat`.
    """
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or math.isnan(cap):
        raise ValueError(f"cap must be a number (math.inf for no cap); got {cap!r}")
    return text_observable(
        lambda text: automated_readability_index(text, cap), "ari" if cap == ARI_CAP else f"ari_cap{cap:g}"
    )


ari = make_ari()
ari_textstat = text_observable(textstat_ari, "ari_textstat")

SENTENCE_END_CHARACTERS = ".!?"


def sentence_end_token_ids(lm) -> list[int]:
    """Ids of the tokens whose text contains ``.``, ``!`` or ``?``: the tokens that can end an ARI sentence.

    Used as the guide class of TPS moves for ARI (:mod:`rarelib.tps`): suppressing them
    lengthens sentences, the main way a story's ARI rises.
    """
    ids = [
        token
        for token in range(lm.vocab_size)
        if any(character in lm.decode([token]) for character in SENTENCE_END_CHARACTERS)
    ]
    if not ids:
        raise ValueError(f"model {lm.name!r} has no token containing any of {SENTENCE_END_CHARACTERS!r}")
    return ids


def logprob(lm, prompt_ids, completions, token_logprobs) -> np.ndarray:
    """log p_M(completion | prompt) at temperature 1: the sum of the per-token log-probs, (B,)."""
    return token_logprobs.to(torch.float64).sum(dim=1).cpu().numpy()


def repeats(lm, prompt_ids, completions, token_logprobs) -> np.ndarray:
    """Σ_{i=1..L} 1[c_i = c_{i−1}], with c_0 the last prompt token, (B,)."""
    previous = torch.cat([prompt_ids[-1:].to(completions).expand(len(completions), 1), completions[:, :-1]], dim=1)
    return (completions == previous).sum(dim=1).to(torch.float64).cpu().numpy()


def longest_repeat_run(lm, prompt_ids, completions, token_logprobs) -> np.ndarray:
    """The longest streak of consecutive repeats, (B,).

    The maximum over runs of positions i with c_i = c_{i−1} (c_0 as in :func:`repeats`).

    The statistic of a runtime filter that stops a completion once a token has repeated
    r times in a row ("…rururururu…"): the filter fires exactly when this exceeds r.
    """
    previous = torch.cat([prompt_ids[-1:].to(completions).expand(len(completions), 1), completions[:, :-1]], dim=1)
    streak = torch.zeros(len(completions), dtype=torch.int64, device=completions.device)
    longest = torch.zeros_like(streak)
    for repeated in (completions == previous).T:
        streak = torch.where(repeated, streak + 1, 0)
        longest = torch.maximum(longest, streak)
    return longest.to(torch.float64).cpu().numpy()


def token_class_count(token_ids: Sequence[int], name: str | None = None) -> Observable:
    """Number of completion tokens in the set ``token_ids``, (B,).

    name: defaults to ``count_<ids>`` (``count_<n>tokens_<hash>`` for more than 6 ids).
    """
    try:
        ids = sorted({int(i) for i in token_ids})
    except TypeError:
        ids = []
    if not ids or ids[0] < 0:
        raise ValueError(f"token_ids must be a non-empty collection of non-negative token ids; got {token_ids!r}")
    members = torch.tensor(ids)

    def count(lm, prompt_ids, completions, token_logprobs) -> np.ndarray:
        return torch.isin(completions, members.to(completions.device)).sum(dim=1).to(torch.float64).cpu().numpy()

    if name is None:
        digest = hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()[:8]
        name = "count_" + "_".join(map(str, ids)) if len(ids) <= 6 else f"count_{len(ids)}tokens_{digest}"
    count.__name__ = name
    return count


OBSERVABLES: dict[str, Observable] = {
    "ari": ari,
    "ari_textstat": ari_textstat,
    "logprob": logprob,
    "repeats": repeats,
    "longest_repeat_run": longest_repeat_run,
}


def get_observable(name_or_callable: str | Observable) -> Observable:
    """A registered observable by name (``"ari"``, ``"logprob"``, ``"repeats"``, ...), or any callable
    with the signature."""
    if callable(name_or_callable):
        return name_or_callable
    if isinstance(name_or_callable, str) and name_or_callable in OBSERVABLES:
        return OBSERVABLES[name_or_callable]
    raise ValueError(
        f"observable must be one of {sorted(OBSERVABLES)} or a callable "
        f"(lm, prompt_ids, completions, token_logprobs) -> (B,) array; got {name_or_callable!r}"
    )


def get_observables(names: Sequence[str | Observable]) -> dict[str, Observable]:
    """Name → observable for each entry of ``names`` (duplicates dropped, order kept)."""
    if isinstance(names, str) or callable(names):
        names = [names]
    found = [get_observable(name) for name in names]
    return {fn.__name__: fn for fn in found}


def evaluate(observables: Mapping[str, Observable], lm, prompt_ids, completions, token_logprobs) -> dict:
    """Name → (B,) float64 values of each observable; ValueError on a wrong shape or a non-finite value."""
    values = {}
    for name, fn in observables.items():
        result = np.asarray(fn(lm, prompt_ids, completions, token_logprobs), dtype=np.float64)
        if result.shape != (len(completions),):
            raise ValueError(f"observable {name!r} returned shape {result.shape}; expected ({len(completions)},)")
        if not np.isfinite(result).all():
            raise ValueError(f"observable {name!r} returned non-finite values; samplers need finite φ")
        values[name] = result
    return values

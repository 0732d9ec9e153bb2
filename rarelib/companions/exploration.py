"""Exploring rare completions: what makes them rare, and whether a cheap runtime filter catches them.

* :func:`corpus_windows` cuts the training stories to the token length of prompt + completion,
  so that their readability compares with that of the model's trajectories;
* :func:`ari_terms` splits ARI into its word-length and sentence-length terms;
* :func:`repeat_filter` flags a completion whose longest streak of consecutive repeated
  tokens exceeds a cap r — the filter "stop after r repeats in a row";
* :func:`score_filter` scores flags against a target set under weighted samples (MBAR
  weights under the model, or equal weights for direct samples), in log space:
  precision P(target | flagged), recall P(flagged | target);
* :func:`estimate_filter` does so under the unbiased model from biased runs, with the
  percentile bootstrap over chains of :func:`rarelib.reweighting.bootstrap`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from rarelib import diagnostics, observables, reweighting

__all__ = [
    "ari_terms",
    "corpus_windows",
    "estimate_filter",
    "FilterEstimate",
    "FilterScore",
    "percentile_interval",
    "repeat_filter",
    "score_filter",
    "score_repeat_filter",
    "SENTENCE_LENGTH_WEIGHT",
    "WORD_LENGTH_WEIGHT",
]

WORD_LENGTH_WEIGHT = 4.71
SENTENCE_LENGTH_WEIGHT = 0.5


def corpus_windows(lm, stories: Sequence[str], n_tokens: int) -> list[str]:
    """The first ``n_tokens`` tokens of each story, decoded: (S,) texts as long as prompt + completion."""
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, (int, np.integer)) or n_tokens < 1:
        raise ValueError(f"n_tokens must be a positive integer; got {n_tokens!r}")
    return [lm.decode(lm.encode(story)[:n_tokens]) for story in stories]


def ari_terms(texts: Sequence[str]) -> np.ndarray:
    """(T, 2): the word-length term 4.71·characters/words and the sentence-length term 0.5·words/sentences.

    Counted as in :func:`rarelib.observables.readability_counts`; the uncapped ARI of a text is
    the sum of its two terms − 21.43. A text without words gets (0, 0).
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not one string")
    counts = np.array([observables.readability_counts(text) for text in texts], dtype=np.float64).reshape(-1, 3)
    characters, words, sentences = counts.T
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.stack([WORD_LENGTH_WEIGHT * characters / words, SENTENCE_LENGTH_WEIGHT * words / sentences], axis=1)
    return np.where(words[:, None] > 0, terms, 0.0)


def repeat_filter(longest_repeat_run: np.ndarray, caps) -> np.ndarray:
    """Flags (R, N): ``flagged[r, n]`` is True when completion n repeats a token more than ``caps[r]`` times in a row.

    longest_repeat_run: (N,) values of :func:`rarelib.observables.longest_repeat_run`; caps: (R,) non-negative.
    """
    caps = np.atleast_1d(np.asarray(caps, dtype=np.float64))
    if caps.ndim != 1 or not np.all(np.isfinite(caps)) or np.any(caps < 0):
        raise ValueError(f"caps must be a non-negative number or 1-D array of them; got {caps!r}")
    longest_repeat_run = np.asarray(longest_repeat_run, dtype=np.float64)
    if longest_repeat_run.ndim != 1:
        raise ValueError(
            f"longest_repeat_run must be 1-D (one value per completion); got shape {longest_repeat_run.shape}"
        )
    return longest_repeat_run[None, :] > caps[:, None]


@dataclass(frozen=True)
class FilterScore:
    """How well flags catch a target set under a weighted law.

    log_flagged: (R,) log P(flagged); log_caught: (R,) log P(flagged and target); log_target: log P(target).
    """

    log_flagged: np.ndarray
    log_caught: np.ndarray
    log_target: float

    @property
    def precision(self) -> np.ndarray:
        """P(target | flagged), (R,); NaN where nothing is flagged."""
        with np.errstate(invalid="ignore"):
            return np.exp(self.log_caught - self.log_flagged)

    @property
    def recall(self) -> np.ndarray:
        """P(flagged | target), (R,); NaN if the target set is empty."""
        with np.errstate(invalid="ignore"):
            return np.exp(self.log_caught - self.log_target)


def _weighted_log_mass(log_weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log Σ_n w_n over the True entries of each row of ``mask`` (R, N) → (R,); −inf for an empty row."""
    return logsumexp(np.where(mask, log_weights[None, :], -np.inf), axis=1)


def score_filter(log_weights: np.ndarray, flagged: np.ndarray, target: np.ndarray) -> FilterScore:
    """Score flags (R, N) against a target set (N,) bool under normalised log weights (N,)."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    flagged, target = np.atleast_2d(np.asarray(flagged, dtype=bool)), np.asarray(target, dtype=bool)
    if log_weights.ndim != 1 or target.shape != log_weights.shape or flagged.shape[1:] != log_weights.shape:
        raise ValueError(
            f"need log_weights (N,), flagged (R, N) and target (N,); got {log_weights.shape}, "
            f"{flagged.shape} and {target.shape}"
        )
    return FilterScore(
        log_flagged=_weighted_log_mass(log_weights, flagged),
        log_caught=_weighted_log_mass(log_weights, flagged & target[None, :]),
        log_target=float(_weighted_log_mass(log_weights, target[None, :])[0]),
    )


def score_repeat_filter(
    log_weights: np.ndarray, samples: Mapping[str, np.ndarray], caps, observable: str, threshold: float
) -> FilterScore:
    """:func:`score_filter` of :func:`repeat_filter` against the target ``observable ≥ threshold``.

    samples: name → (N,) values, with ``"longest_repeat_run"`` and ``observable``.
    """
    missing = sorted({"longest_repeat_run", observable} - set(samples))
    if missing:
        raise ValueError(f"samples lack {missing}; record them in every run (record=[..., 'longest_repeat_run'])")
    return score_filter(
        log_weights, repeat_filter(samples["longest_repeat_run"], caps), np.asarray(samples[observable]) >= threshold
    )


def percentile_interval(replicas: np.ndarray, level: float = diagnostics.DEFAULT_LEVEL) -> np.ndarray:
    """Percentile interval (2, ...) of bootstrap replicas (B, ...), ignoring NaN (undefined) replicas."""
    level = diagnostics.check_level(level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all replicas undefined: the interval is NaN
        return np.nanquantile(replicas, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0)


@dataclass(frozen=True)
class FilterEstimate:
    """A filter scored under the unbiased model, with percentile-bootstrap intervals.

    caps: (R,); precision, recall: (R,) with intervals (2, R) (NaN where undefined);
    flagged: (R,) P(flagged) with interval (2, R); target: P(target) with interval (2,);
    undefined_precision: (R,) fraction of bootstrap replicas that flagged nothing (left out of the interval).
    """

    caps: np.ndarray
    precision: np.ndarray
    precision_interval: np.ndarray
    recall: np.ndarray
    recall_interval: np.ndarray
    flagged: np.ndarray
    flagged_interval: np.ndarray
    target: float
    target_interval: np.ndarray
    undefined_precision: np.ndarray


def estimate_filter(
    runs,
    caps,
    observable: str,
    threshold: float,
    *,
    rng: np.random.Generator,
    settings: reweighting.Settings = reweighting.Settings(),
    warn: bool = True,
) -> FilterEstimate:
    """Precision and recall of the repeat filter for catching ``observable ≥ threshold`` under the model (λ = 0).

    runs: as for :func:`rarelib.reweighting.analyze`, every one recording ``observable`` and
    ``longest_repeat_run``. MBAR weights every pooled sample; intervals come from
    ``settings.n_bootstrap`` replicas that resample chains and redo burn-in, R-hat filter and MBAR.
    warn: raise the fit's messages as warnings (:class:`rarelib.reweighting.ReweightingWarning`).
    """
    caps = np.atleast_1d(np.asarray(caps, dtype=np.float64))
    fit = reweighting.fit_mbar(runs, settings, warn=warn)

    def statistic(replica: reweighting.MBARFit) -> dict[str, np.ndarray]:
        score = score_repeat_filter(replica.log_weights, replica.samples, caps, observable, threshold)
        return {
            "precision": score.precision,
            "recall": score.recall,
            "flagged": np.exp(score.log_flagged),
            "target": np.exp(score.log_target),
        }

    replicas = reweighting.bootstrap(reweighting.load_all(runs), statistic, settings, rng, reference=fit)
    full = statistic(fit)
    intervals = {name: percentile_interval(values, settings.level) for name, values in replicas.items()}
    return FilterEstimate(
        caps=caps,
        precision=full["precision"],
        precision_interval=intervals["precision"],
        recall=full["recall"],
        recall_interval=intervals["recall"],
        flagged=full["flagged"],
        flagged_interval=intervals["flagged"],
        target=float(full["target"]),
        target_interval=intervals["target"],
        undefined_precision=np.isnan(replicas["precision"]).mean(axis=0),
    )

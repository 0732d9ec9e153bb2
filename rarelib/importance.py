"""Guided importance sampling: whole completions from a guide, weights p_M/q, strengths combined by MIS.

Stages (each a small function):

1. :func:`sample_guided` draws n_k whole completions from the guide q_{s_k} of
   :mod:`rarelib.guides` at each strength s_k of a design s_1..s_K (the class guide
   q ∝ p_M e^{−s 1[v ∈ G]}, the temperature guide q ∝ p_M^{1−s}, or the local-tilt guide
   q ∝ p_M e^{−s g(c_{i−1}, v)}, e.g. for Repeats; s = 0 is p_M itself), with the
   batched kernel :func:`rarelib.generation.regrow` (every row cut at 0). For every sample it
   records log p_M(x) and log q_{s_j}(x) under *every* strength of the design — the guides keep
   per-position statistics from which ρ = log p_M − log q at any strength follows without
   running the model again — so strengths can be combined afterwards.
2. :func:`log_weights`: the balance heuristic of multiple importance sampling (Veach & Guibas
   1995), w(x) = p_M(x) / Σ_k (n_k/N) q_k(x): each sample is weighted as if drawn from the
   mixture of all proposals. Every q_k is normalised, so this is MBAR with the free energies
   known (all zero) and needs no self-consistent solve; it is computed here in log space.
   With one strength it is plain importance sampling.
3. :func:`tail_probabilities` estimates P(φ ≥ a) = (1/N) Σ_i w_i 1[φ_i ≥ a], unbiased, with the
   stratified variance (the n_k are fixed, so the variance is Σ_k n_k Var_k(w 1[φ ≥ a]) / N²) and a
   96% interval by the delta method on log P (or a stratified percentile bootstrap). The Kish
   effective sample size of the weights inside each event measures how many samples carry it;
   where it falls below ``min_ess`` an
   :class:`ImportanceWeightWarning` says so: a few weights then dominate and the error bar is
   itself unreliable. :func:`log_partition` gives log Z(λ) = log E_{p_M}[e^{−λφ}] the same way.

The samples are independent: no burn-in, no convergence question, and the intervals are valid
from the first sample (up to the heavy-tail caveat the ESS flags). Runs are a function of
(arguments, seed); with ``out=folder`` batches stream to ``.npz`` files with the generator state
after each, and a call with the same arguments resumes after the last complete batch (as in
:mod:`rarelib.direct`). References: Wu & Hilton 2024 (importance sampling with token-level
tilted proposals to estimate rare-output probabilities); Owen & Zhou 2000 (defensive mixtures).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from scipy.special import logsumexp
from tqdm.auto import tqdm

from rarelib import diagnostics, logspace, storage
from rarelib import observables as obs
from rarelib.generation import (
    Guidance,
    check_completion_length,
    check_positive_int,
    check_seed,
    encode_prompt,
    prompt_token_ids,
    regrow,
)
from rarelib.guides import make_guide
from rarelib.models import CausalLM, fingerprint

__all__ = [
    "ImportanceTail",
    "ImportanceWeightWarning",
    "GuidedSamples",
    "log_partition",
    "log_weights",
    "sample_guided",
    "tail_probabilities",
]

COMBINATIONS = ("balance", "own")
INTERVALS = ("delta", "bootstrap")
DEFAULT_MIN_ESS = 10.0


class ImportanceWeightWarning(UserWarning):
    """A few importance weights dominate an estimate (effective sample size below ``min_ess``)."""


@dataclass(frozen=True)
class GuidedSamples:
    """N = Σ_k n_k independent completions drawn from a guide at K strengths.

    phi: (N,) float64 observable. log_p: (N,) float64 log p_M(x). log_q: (N, K) float64
    log q_{s_j}(x) of every sample under every strength of the design. strength_index: (N,) int64,
    the k whose proposal drew the sample. strengths: (K,) float64; counts: (K,) int64 n_k.
    tokens: sampled tokens in all (N·L). attrs: the arguments of the run.
    """

    phi: np.ndarray
    log_p: np.ndarray
    log_q: np.ndarray
    strength_index: np.ndarray
    strengths: np.ndarray
    counts: np.ndarray
    tokens: int
    attrs: dict = field(default_factory=dict)

    def select(self, k: int) -> GuidedSamples:
        """The samples of strength ``k`` alone, as a one-strength design (plain importance sampling)."""
        if not 0 <= k < len(self.strengths):
            raise ValueError(f"k must index one of the {len(self.strengths)} strengths; got {k!r}")
        rows = self.strength_index == k
        return GuidedSamples(
            self.phi[rows],
            self.log_p[rows],
            self.log_q[rows][:, [k]],
            np.zeros(int(rows.sum()), dtype=np.int64),
            self.strengths[[k]],
            self.counts[[k]],
            int(self.tokens * rows.sum() // max(len(rows), 1)),
            {**self.attrs, "selected": int(k)},
        )


def _check_design(strengths, n_per_strength) -> tuple[np.ndarray, np.ndarray]:
    values = np.atleast_1d(np.asarray(strengths, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"strengths must be a non-empty list of finite numbers; got {strengths!r}")
    if len(np.unique(values)) != values.size:
        raise ValueError(f"strengths must be distinct; got {values.tolist()}")
    counts = np.atleast_1d(np.asarray(n_per_strength))
    if counts.size == 1:
        counts = np.full(values.size, counts.item())
    if counts.shape != values.shape or not all(isinstance(c, (int, np.integer)) and c >= 1 for c in counts.tolist()):
        raise ValueError(
            f"n_per_strength must be a positive integer or one per strength ({values.size}); got {n_per_strength!r}"
        )
    return values, counts.astype(np.int64)


def _plan(counts: np.ndarray, batch_size: int) -> list[tuple[int, int]]:
    """The batches of a design: (strength index k, rows), strength by strength."""
    return [
        (k, min(batch_size, int(n) - start)) for k, n in enumerate(counts) for start in range(0, int(n), batch_size)
    ]


def sample_guided(
    lm: CausalLM,
    prompt: str | Sequence[int] | torch.Tensor,
    completion_length: int,
    *,
    observable: str | obs.Observable,
    guide: Sequence[int] | str | object,
    strengths: Sequence[float],
    n_per_strength: int | Sequence[int],
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
    out: str | os.PathLike | None = None,
) -> GuidedSamples:
    """Draw ``n_per_strength`` completions from the guide at each strength and score them under all strengths.

    guide: token ids (class guide), ``"temperature"`` (every strength then < 1), ``"repeats"`` or a pairwise
    increment (the local-tilt guide); see :func:`rarelib.guides.make_guide`. out: a folder for resumable
    batches (the same arguments resume).
    """
    prompt_ids = prompt_token_ids(lm, prompt)
    length = check_completion_length(lm, len(prompt_ids), completion_length)
    values, counts = _check_design(strengths, n_per_strength)
    batch_size = check_positive_int("batch_size", batch_size)
    chosen = obs.get_observables([observable])
    guide_object = make_guide(lm, guide, values, first_previous=int(prompt_ids[-1]))
    config = {
        "model": lm.name,
        storage.FINGERPRINT_KEY: fingerprint(lm),
        "prompt_ids": prompt_ids.tolist(),
        "completion_length": length,
        "observable": list(chosen)[0],
        "guide": _guide_name(guide),
        "strengths": values.tolist(),
        "n_per_strength": counts.tolist(),
        "batch_size": batch_size,
        "seed": check_seed(seed),
    }
    generator = torch.Generator().manual_seed(config["seed"])
    plan = _plan(counts, batch_size)
    first = 0
    if out is not None:
        out = storage.check_folder_path("out", out)
        first = _resume(out, config, generator)
    context = encode_prompt(lm, prompt_ids)
    batches = [] if out is None else [storage.load_arrays(_batch_path(out, i)) for i in range(first)]
    with tqdm(
        total=int(counts.sum()),
        initial=sum(rows for _, rows in plan[:first]),
        disable=not progress,
        unit="completion",
        desc="guided IS",
    ) as bar:
        for index in range(first, len(plan)):
            k, rows = plan[index]
            arrays = _draw_batch(lm, context, guide_object, values, k, rows, length, chosen, generator)
            if out is not None:
                storage.save_arrays(
                    _batch_path(out, index),
                    {
                        **arrays,
                        "config": np.array(json.dumps(config)),
                        "generator_state": generator.get_state().numpy(),
                    },
                )
            batches.append(arrays)
            bar.update(rows)
    joined = {key: np.concatenate([batch[key] for batch in batches]) for key in ("phi", "log_p", "log_q", "k")}
    return GuidedSamples(
        joined["phi"],
        joined["log_p"],
        joined["log_q"],
        joined["k"].astype(np.int64),
        values,
        counts,
        int(counts.sum()) * length,
        config,
    )


def _guide_name(guide) -> str | list[int]:
    """How ``guide`` is recorded in a run's config: its name, or the sorted token ids of a class guide."""
    if isinstance(guide, str):
        return guide
    if hasattr(guide, "pair"):
        return str(getattr(guide, "name", type(guide).__name__))
    return sorted(int(t) for t in guide)


def _draw_batch(
    lm, context, guide, strengths: np.ndarray, k: int, rows: int, length: int, chosen, generator: torch.Generator
) -> dict[str, np.ndarray]:
    """One batch of ``rows`` completions from the guide at strengths[k]: φ, log p, log q under every strength."""
    uniforms = torch.rand((rows, length), generator=generator, dtype=torch.float64)
    start = torch.zeros((rows, length), dtype=torch.int64)
    statistics = torch.zeros((rows, length, guide.n_statistics))
    strength = torch.full((rows,), float(strengths[k]), dtype=torch.float64)
    grown = regrow(
        lm,
        context,
        start,
        start.float(),
        torch.zeros(rows, dtype=torch.int64),
        uniforms,
        guidance=Guidance(guide, strength, statistics),
    )
    phi = obs.evaluate(chosen, lm, context.ids.cpu(), grown.completions, grown.token_logprobs)[list(chosen)[0]]
    log_p = grown.token_logprobs.double().sum(dim=1)
    log_q = torch.stack(
        [
            log_p
            - guide.log_importance(
                grown.completions,
                grown.token_logprobs,
                grown.guide_statistics,
                torch.full((rows,), float(s), dtype=torch.float64),
            ).sum(dim=1)
            for s in strengths
        ],
        dim=1,
    )
    return {
        "phi": np.asarray(phi, dtype=np.float64),
        "log_p": log_p.numpy(),
        "log_q": log_q.numpy(),
        "k": np.full(rows, k, dtype=np.int64),
    }


def _batch_path(folder: Path, index: int) -> Path:
    return folder / f"guided_{index:06d}.npz"


def _resume(folder: Path, config: dict, generator: torch.Generator) -> int:
    """Index of the first batch still to draw; restores ``generator`` to the state after the last one written."""
    done = 0
    while _batch_path(folder, done).is_file():
        done += 1
    if done:
        last, saved = storage.load_with_config(_batch_path(folder, done - 1), ("generator_state",))
        storage.check_same_config(saved, config, f"guided-sampling folder {folder}")
        generator.set_state(torch.from_numpy(last["generator_state"]))
    return done


# --------------------------------------------------------------------------- weights


def log_weights(samples: GuidedSamples, combine: str = "balance") -> np.ndarray:
    """(N,) log importance weights of p_M: ``"balance"`` log p − log Σ_k (n_k/N) q_k (multiple importance
    sampling), or ``"own"`` log p − log q of the proposal that drew each sample (unbiased per strength, but one
    stratum with heavy weights then spoils the pooled estimate)."""
    if combine == "balance":
        fractions = np.log(samples.counts / samples.counts.sum())
        return samples.log_p - logsumexp(samples.log_q + fractions[None, :], axis=1)
    if combine == "own":
        return samples.log_p - np.take_along_axis(samples.log_q, samples.strength_index[:, None], axis=1)[:, 0]
    raise ValueError(f"combine={combine!r}; use one of {COMBINATIONS}")


def _stratified_log_mean(log_values: np.ndarray, strata: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Estimates (1/N) Σ_i y_i from log y (N, A), with their stratified relative standard error and Kish ESS, (A,) each.

    Var = Σ_k n_k s_k² / N², s_k² the sample variance of y within stratum k (n_k ≥ 2; with n_k = 1 the stratum
    contributes its squared deviation from the pooled mean, a conservative stand-in).
    """
    total = counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.max(log_values, axis=0)
        finite_shift = np.where(np.isfinite(shift), shift, 0.0)
        scaled = np.exp(log_values - finite_shift)  # (N, A), max 1
        mean = scaled.sum(axis=0) / total
        variance = np.zeros(log_values.shape[1])
        for k, n_k in enumerate(counts):
            rows = scaled[strata == k]
            if n_k >= 2:
                variance += n_k * rows.var(axis=0, ddof=1)
            else:
                variance += ((rows - mean) ** 2).sum(axis=0)
        log_mean = np.log(mean) + finite_shift
        relative_se = np.sqrt(variance) / total / mean
        ess = scaled.sum(axis=0) ** 2 / (scaled**2).sum(axis=0)
    log_mean = np.where(mean > 0, log_mean, -np.inf)
    return log_mean, np.where(mean > 0, relative_se, np.nan), np.where(mean > 0, ess, 0.0)


@dataclass(frozen=True)
class ImportanceTail:
    """P(φ ≥ a) (or ≤) by importance sampling at thresholds (A,).

    estimate: the :class:`~rarelib.logspace.LogEstimate` (A,) (log −inf where no sample is in the event, its
    interval then [−inf, −inf]); relative_se (A,): the standard error over the estimate (the delta-method standard
    error of log P); ess (A,): Kish's effective sample size of the weights inside each event; enough_ess (A,):
    ess ≥ min_ess; ess_total: of all N weights; n: N; messages: what the warning said, if it warned.
    """

    thresholds: np.ndarray
    estimate: logspace.LogEstimate
    relative_se: np.ndarray
    ess: np.ndarray
    enough_ess: np.ndarray
    ess_total: float
    n: int
    messages: tuple[str, ...] = ()


def _event_log_values(log_w: np.ndarray, phi: np.ndarray, thresholds: np.ndarray, side: str) -> np.ndarray:
    if logspace.check_side(side) == "upper":
        inside = phi[:, None] >= thresholds[None, :]
    else:
        inside = phi[:, None] <= thresholds[None, :]
    return np.where(inside, log_w[:, None], -np.inf)


def _check_thresholds(thresholds) -> np.ndarray:
    values = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or np.isnan(values).any():
        raise ValueError(f"thresholds must be a non-empty 1-D array of numbers; got {thresholds!r}")
    return values


def _delta_interval(log_estimate: np.ndarray, relative_se: np.ndarray, level: float) -> np.ndarray:
    """(2, A) interval log P ± z · relative s.e. (the delta method on log P); [−inf, −inf] where P̂ = 0."""
    z = stats.norm.ppf((1.0 + level) / 2.0)
    with np.errstate(invalid="ignore"):
        half = np.where(np.isfinite(log_estimate), z * relative_se, 0.0)
    return np.stack([log_estimate - half, log_estimate + half])


def tail_probabilities(
    samples: GuidedSamples,
    thresholds,
    *,
    side: str = "upper",
    combine: str = "balance",
    level: float = diagnostics.DEFAULT_LEVEL,
    interval: str = "delta",
    min_ess: float = DEFAULT_MIN_ESS,
    rng: np.random.Generator | None = None,
    n_bootstrap: int = 200,
    warn: bool = True,
) -> ImportanceTail:
    """P(φ ≥ a) (``side="upper"``) or P(φ ≤ a) under p_M from guided samples; thresholds (A,).

    interval: ``"delta"`` (normal on log P with the stratified standard error) or ``"bootstrap"``
    (percentile interval of ``n_bootstrap`` stratified resamples; needs ``rng``). Warns
    (:class:`ImportanceWeightWarning`) when a threshold with data has ESS < ``min_ess``.
    """
    level = diagnostics.check_level(level)
    thresholds = _check_thresholds(thresholds)
    if interval not in INTERVALS:
        raise ValueError(f"interval={interval!r}; use one of {INTERVALS}")
    log_w = log_weights(samples, combine)
    log_values = _event_log_values(log_w, samples.phi, thresholds, side)
    log_estimate, relative_se, ess = _stratified_log_mean(log_values, samples.strength_index, samples.counts)
    if interval == "delta":
        log_interval = _delta_interval(log_estimate, relative_se, level)
    else:
        if rng is None:
            raise ValueError("interval='bootstrap' needs rng=np.random.default_rng(seed)")
        replicas = np.empty((check_positive_int("n_bootstrap", n_bootstrap), thresholds.size))
        for r in range(len(replicas)):
            rows = np.concatenate(
                [
                    rng.choice(np.flatnonzero(samples.strength_index == k), size=int(n_k))
                    for k, n_k in enumerate(samples.counts)
                ]
            )
            replicas[r] = logsumexp(log_values[rows], axis=0) - math.log(samples.counts.sum())
        log_interval = diagnostics.log_percentile_interval(replicas, level)
    has_data = np.isfinite(log_estimate)
    enough_ess = has_data & (ess >= min_ess)
    messages = ()
    if np.any(has_data & ~enough_ess):
        weak = thresholds[has_data & ~enough_ess]
        messages = (
            f"{weak.size} thresholds ({weak.min():g} … {weak.max():g}) rest on fewer than {min_ess:g} "
            "effective samples: a few weights dominate, and the interval there is not to be trusted",
        )
        if warn:
            warnings.warn(messages[0], ImportanceWeightWarning, stacklevel=2)
    return ImportanceTail(
        thresholds,
        logspace.LogEstimate(log_estimate, log_interval),
        relative_se,
        ess,
        enough_ess,
        float(np.exp(2 * logsumexp(log_w) - logsumexp(2 * log_w))),
        int(samples.counts.sum()),
        messages,
    )


def log_partition(
    samples: GuidedSamples, lambdas, *, combine: str = "balance", level: float = diagnostics.DEFAULT_LEVEL
) -> tuple[logspace.LogEstimate, np.ndarray]:
    """Z(λ) = E_{p_M}[e^{−λφ}] for λ (J,): the estimate (J,) with its delta-method ``level`` interval, and the
    relative standard errors (J,)."""
    lambdas = _check_thresholds(lambdas)
    log_values = log_weights(samples, combine)[:, None] - lambdas[None, :] * samples.phi[:, None]
    log_estimate, relative_se, _ = _stratified_log_mean(log_values, samples.strength_index, samples.counts)
    interval = _delta_interval(log_estimate, relative_se, diagnostics.check_level(level))
    return logspace.LogEstimate(log_estimate, interval), relative_se

"""The generation kernel shared by direct sampling and TPS: regrow completions after per-row cuts.

:func:`regrow` takes B completions of length L and a cut τ_b per row (τ_b = number of kept
tokens), keeps ``completions[b, :τ_b]`` and samples the rest from the model, all rows in one
batch. Its randomness is a (B, L) array of uniforms, one per (row, position), turned into
tokens by inverse-CDF sampling; so the result does not depend on how rows are grouped into
forward passes (up to rounding in the logits), and a run is a function of (arguments,
generator state). Two variants serve the TPS moves of :mod:`rarelib.tps`: ``ends`` keeps the
tokens after a window and rescores them, and a :class:`Guidance` draws the regrown tokens
from a guide's tilted law (:mod:`rarelib.guides`) instead of the model's.

How the batch is laid out (the choice measured in ``benchmarks/sampling.py``):

* Positions stay aligned with the completion (no padding), so every row's cache has the
  same length at every step and the model needs no attention mask or position ids.
* The prompt is run once and its cache repeated for the rows.
* Rows are sorted by cut and split into ``join_groups`` groups of equal size. A group joins
  the running batch at its smallest cut: its kept prefixes up to there go through one
  parallel (teacher-forced) forward, and its cache is appended to the batch's. Inside the
  batch, rows whose cut lies ahead are teacher-forced (their kept token is fed instead of a
  sampled one). One group is the plain "everyone from min τ" loop; more groups skip more
  teacher-forced decode steps at the cost of one extra forward each. On the project's CPU,
  where a parallel forward is only 1.2–2× cheaper per token than a decode step, eight
  groups regrew 13% more tokens per CPU-second than one group on the default model (median
  of 10 paired runs, B = 64, L = 64; two groups +5%, four +11%, sixteen +9%). Rows never
  finish early in this layout, so none are dropped.
* A forward pass is never run for the last position (its token is only sampled).
* Kept prefixes are recomputed every call (a cache carried over from the previous TPS step
  would save that work but makes the state depend on the model's cache format); so a TPS
  step feeds about as many positions as generating from scratch, for half as many new
  tokens on average.

Caches must support row operations: a batch-first ``torch.Tensor`` (e.g.
:class:`rarelib.exact.solvable.MarkovLM`) or a ``transformers`` ``Cache`` of key/value layers or of
recurrent (conv + state) layers, as Mamba's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, NamedTuple

import torch

from rarelib.models import CausalLM

__all__ = [
    "check_completion_length",
    "check_positive_int",
    "check_seed",
    "check_temperature",
    "encode_prompt",
    "Guidance",
    "prompt_token_ids",
    "PromptContext",
    "regrow",
    "Regrowth",
    "sample_tokens",
    "score",
]


class PromptContext(NamedTuple):
    """A prompt run through the model once: ids (P,), next_logits (V,) for completion position 0, cache (batch 1)."""

    ids: torch.Tensor
    next_logits: torch.Tensor
    cache: Any


class Regrowth(NamedTuple):
    """Output of :func:`regrow`, on the CPU.

    completions: (B, L) int64. token_logprobs: (B, L) float32, log p_M of each token at
    temperature 1 (kept positions copied from the input). sampling_logprobs: (B, L) float32,
    log-prob of each regrown token under the sampling law (NaN at kept positions); ``None``
    when sampling from p_M itself, where it equals ``token_logprobs``. guide_statistics:
    (B, L, S) float32, the guide's statistics at every position (copied before the cut) when
    regrowing with a :class:`Guidance`, else ``None``.
    """

    completions: torch.Tensor
    token_logprobs: torch.Tensor
    sampling_logprobs: torch.Tensor | None
    guide_statistics: torch.Tensor | None = None


class Guidance(NamedTuple):
    """Regrow from a guide's law instead of p_M: guide (:mod:`rarelib.guides`), strength (B,) per
    row, statistics (B, L, S) of the input completions (only kept positions are read)."""

    guide: Any
    strength: torch.Tensor
    statistics: torch.Tensor


# --------------------------------------------------------------------------- arguments


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int ≥ 1, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_seed(seed: Any) -> int:
    """``seed`` as an int ≥ 0, else ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def check_temperature(temperature: Any) -> float:
    """``temperature`` as a finite float > 0, else ValueError."""
    if isinstance(temperature, bool) or not isinstance(temperature, Real) or not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
    return float(temperature)


def prompt_token_ids(lm: CausalLM, prompt: str | Sequence[int] | torch.Tensor) -> torch.Tensor:
    """The prompt as a LongTensor (P,) of token ids: text is encoded with ``lm.encode``."""
    if isinstance(prompt, str):
        ids = lm.encode(prompt) if prompt else []
    else:
        ids = torch.as_tensor(prompt)
        if ids.ndim != 1 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(
                f"prompt must be text or a 1-D sequence of token ids; got shape {tuple(ids.shape)}, {ids.dtype}"
            )
    ids = torch.as_tensor(ids, dtype=torch.int64)
    if ids.numel() == 0:
        raise ValueError("prompt must contain at least one token (the first completion token needs a context)")
    if ids.min() < 0 or ids.max() >= lm.vocab_size:
        raise ValueError(f"prompt has token ids outside the vocabulary 0..{lm.vocab_size - 1}")
    return ids


def check_completion_length(lm: CausalLM, n_prompt: int, completion_length: Any) -> int:
    """``completion_length`` as an int ≥ 1 that fits in the context with the prompt, else ValueError."""
    length = check_positive_int("completion_length", completion_length)
    if n_prompt >= lm.context_length:
        raise ValueError(
            f"prompt has {n_prompt} tokens, which leaves no room in the model's context_length "
            f"{lm.context_length}; use a prompt shorter than {lm.context_length} tokens"
        )
    if n_prompt + length > lm.context_length:
        raise ValueError(
            f"completion_length={length} with a {n_prompt}-token prompt exceeds the model's "
            f"context_length {lm.context_length}; use completion_length ≤ {lm.context_length - n_prompt}"
        )
    return length


# --------------------------------------------------------------------------- caches


def _repeat_rows(cache: Any, n_rows: int) -> Any:
    """A new cache holding ``n_rows`` copies of the single row of ``cache``."""
    if isinstance(cache, torch.Tensor):
        return cache.repeat_interleave(n_rows, dim=0)
    from transformers import Cache

    if isinstance(cache, Cache):
        repeated = copy.deepcopy(cache)
        repeated.reorder_cache(torch.zeros(n_rows, dtype=torch.int64))
        return repeated
    raise TypeError(
        f"cache of type {type(cache).__name__} has no row operations; rarelib samplers need a "
        "batch-first torch.Tensor or a transformers Cache from CausalLM.logits"
    )


def _append_rows(cache: Any, more: Any) -> Any:
    """``cache`` with the rows of ``more`` (same sequence length) appended; may reuse ``cache``'s storage.

    Handles key/value layers (``keys``, ``values``) and recurrent layers (``conv_states``,
    ``recurrent_states``: dicts of batch-first tensors, e.g. Mamba's).
    """
    if isinstance(cache, torch.Tensor):
        return torch.cat([cache, more])
    for layer, extra in zip(cache.layers, more.layers):
        for name in ("keys", "values"):
            if getattr(layer, name, None) is not None:
                setattr(layer, name, torch.cat([getattr(layer, name), getattr(extra, name)]))
        for name in ("conv_states", "recurrent_states"):
            states, extra_states = getattr(layer, name, {}), getattr(extra, name, {})
            for index, state in states.items():
                if state is not None:
                    states[index] = torch.cat([state, extra_states[index]])
    return cache


# --------------------------------------------------------------------------- the kernel


def encode_prompt(lm: CausalLM, prompt_ids: torch.Tensor) -> PromptContext:
    """Run the prompt (P,) once; its logits and cache are reused by every :func:`regrow` call."""
    ids = prompt_ids.to(lm.device)
    logits, cache = lm.logits(ids[None], logits_to_keep=1)
    return PromptContext(ids=ids, next_logits=logits[0, -1], cache=cache)


def sample_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0, proposal_logits: torch.Tensor | None = None
):
    """Draw one token per row from softmax(logits / temperature), or from softmax(proposal_logits), by inverse CDF.

    logits: (n, V) float32 of p_M; uniforms: (n,) float64 in [0, 1); proposal_logits: (n, V)
    (then temperature must be 1). Returns tokens (n,) int64, their log-probs at temperature 1
    (n,) float32 and under the sampling law (n,) float32. The CDF is accumulated in float64;
    tokens whose probability underflows are never drawn.
    """
    if proposal_logits is None:
        scaled = logits if temperature == 1.0 else logits / temperature
    elif temperature != 1.0:
        raise ValueError("sample with a temperature or from proposal logits, not both")
    else:
        scaled = proposal_logits
    shifted = scaled - scaled.amax(dim=-1, keepdim=True)
    cdf = shifted.exp().cumsum(dim=-1, dtype=torch.float64)
    total = cdf[:, -1:]
    tokens = torch.searchsorted(cdf, uniforms[:, None] * total, right=True).clamp_(max=logits.shape[-1] - 1)
    sampling_logprobs = (shifted.gather(1, tokens) - total.log()).float()[:, 0]
    if scaled is logits:
        return tokens[:, 0], sampling_logprobs, sampling_logprobs
    model_logprobs = (logits.gather(1, tokens) - logits.logsumexp(dim=-1, keepdim=True))[:, 0]
    return tokens[:, 0], model_logprobs, sampling_logprobs


def _join_points(sorted_cuts: list[int], completion_length: int, join_groups: int) -> dict[int, int]:
    """Position t → number of leading (cut-sorted) rows active from t on; rows with cut = L never join."""
    moving = sum(cut < completion_length for cut in sorted_cuts)
    n_groups = min(join_groups, moving)
    points: dict[int, int] = {}
    for group in range(n_groups):
        points[sorted_cuts[group * moving // n_groups]] = (group + 1) * moving // n_groups
    return points


def _prefill(lm: CausalLM, prompt: PromptContext, prefixes: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Logits (m, V) at the position after the kept ``prefixes`` (m, t), and the rows' cache."""
    cache = _repeat_rows(prompt.cache, len(prefixes))
    if prefixes.shape[1] == 0:
        return prompt.next_logits.expand(len(prefixes), -1), cache
    logits, cache = lm.logits(prefixes, cache, logits_to_keep=1)
    return logits[:, -1], cache


def regrow(
    lm: CausalLM,
    prompt: PromptContext,
    completions: torch.Tensor,
    token_logprobs: torch.Tensor,
    cuts: torch.Tensor,
    uniforms: torch.Tensor,
    temperature: float = 1.0,
    join_groups: int = 8,
    ends: torch.Tensor | None = None,
    guidance: Guidance | None = None,
) -> Regrowth:
    """Keep ``completions[b, :cuts[b]]`` and sample positions ``cuts[b]..ends[b]−1`` from the model.

    completions: (B, L) int64; token_logprobs: (B, L) float32 log p_M of the kept tokens
    (copied through before the cut; other positions are ignored); cuts: (B,) int64 in 0..L
    (L keeps the row unchanged); uniforms: (B, L) float64, the randomness of position (b, i).
    ends: (B,) int64 in cuts..L, default L: the tokens from ``ends[b]`` on are kept too, but
    follow a new window, so their ``token_logprobs`` are recomputed under it (rescored while
    the batch decodes to the end). guidance: sample regrown tokens from the guide's law at each
    row's strength (temperature must be 1). See the module docstring for the batch layout.
    """
    if guidance is not None and temperature != 1.0:
        raise ValueError("regrow with a guide or a temperature, not both")
    device = lm.device
    length = completions.shape[1]
    order = torch.argsort(cuts, stable=True)
    sorted_cuts = cuts[order].to(device)
    tokens = completions[order].to(device)
    model_lp = token_logprobs[order].to(device=device, dtype=torch.float32)
    sampling_lp = None if temperature == 1.0 and guidance is None else torch.full_like(model_lp, float("nan"))
    draws = uniforms[order].to(device=device, dtype=torch.float64)
    sorted_ends = None if ends is None else ends[order].to(device)
    if guidance is not None:
        strength = guidance.strength[order].to(device=device, dtype=torch.float32)
        statistics = guidance.statistics[order].to(device=device, dtype=torch.float32)

    points = _join_points(sorted_cuts.tolist(), length, join_groups)
    active, logits, cache = 0, None, None
    for t in range(min(points, default=length), length):
        if t in points:
            new_logits, new_cache = _prefill(lm, prompt, tokens[active : points[t], :t])
            logits = new_logits if logits is None else torch.cat([logits, new_logits])
            cache = new_cache if cache is None else _append_rows(cache, new_cache)
            active = points[t]
        proposal_logits = None
        if guidance is not None:
            log_probs = logits.log_softmax(dim=-1)
            previous = tokens[:active, t - 1] if t > 0 else prompt.ids[-1].to(device).expand(active)
            statistics[:active, t] = torch.where(
                (sorted_cuts[:active] <= t)[:, None],
                guidance.guide.statistics(log_probs, previous),
                statistics[:active, t],
            )
            proposal_logits = guidance.guide.proposal_logits(log_probs, strength[:active], previous)
        drawn, drawn_model_lp, drawn_sampling_lp = sample_tokens(
            logits, draws[:active, t], temperature, proposal_logits
        )
        regrown = sorted_cuts[:active] <= t
        if sorted_ends is not None:
            rescored = sorted_ends[:active] <= t
            regrown &= ~rescored
            kept_lp = logits.gather(1, tokens[:active, t : t + 1])[:, 0] - logits.logsumexp(dim=-1)
            model_lp[:active, t] = torch.where(rescored, kept_lp, model_lp[:active, t])
        tokens[:active, t] = torch.where(regrown, drawn, tokens[:active, t])
        model_lp[:active, t] = torch.where(regrown, drawn_model_lp, model_lp[:active, t])
        if sampling_lp is not None:
            sampling_lp[:active, t] = torch.where(regrown, drawn_sampling_lp, sampling_lp[:active, t])
        if t + 1 < length:
            step_logits, cache = lm.logits(tokens[:active, t : t + 1], cache)
            logits = step_logits[:, -1]

    unsort = torch.argsort(order).to(device)
    return Regrowth(
        completions=tokens[unsort].cpu(),
        token_logprobs=model_lp[unsort].cpu(),
        sampling_logprobs=None if sampling_lp is None else sampling_lp[unsort].cpu(),
        guide_statistics=None if guidance is None else statistics[unsort].cpu(),
    )


def score(lm: CausalLM, prompt_ids: torch.Tensor, completions: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Teacher-forced log p_M(c_i | prompt, c_<i) at temperature 1: (B, L) float32 for completions (B, L).

    One parallel forward per ``batch_size`` rows, with logits for the completion's L positions only;
    the reference that sampled log-probs must match.
    """
    prompt_ids = prompt_ids.to(lm.device)
    scored = []
    for rows in completions.to(lm.device).split(check_positive_int("batch_size", batch_size)):
        ids = torch.cat([prompt_ids.expand(len(rows), -1), rows], dim=1)
        logits, _ = lm.logits(ids[:, :-1], logits_to_keep=rows.shape[1])
        scored.append((logits.gather(2, rows[..., None])[..., 0] - logits.logsumexp(dim=-1)).cpu())
    return torch.cat(scored)

"""The generation kernel shared by direct sampling and TPS: regrow completions after per-row cuts.

:func:`regrow` takes B completions of length L and a cut τ_b per row (τ_b = number of kept
tokens), keeps ``completions[b, :τ_b]`` and samples the rest from the model, all rows in one
batch. Its randomness is a (B, L) array of uniforms, one per (row, position), turned into
tokens by inverse-CDF sampling; so the result does not depend on how rows are grouped into
forward passes (up to rounding in the logits), and a run is a function of (arguments,
generator state). Two variants serve the TPS moves of :mod:`rarelib.tps`: ``ends`` keeps the
tokens after a window and rescores them, and a :class:`Guidance` draws the regrown tokens
from a guide's tilted law (:mod:`rarelib.guides`) instead of the model's.

How the batch is laid out (measured in ``benchmarks/sampling.py``):

* Positions stay aligned with the completion (no padding), so every row's cache has the
  same length at every step and the model needs no attention mask or position ids.
* The prompt is run once; its keys and values are shared by the rows.
* Models whose cache is made of plain key–value layers (GPT-2, GPT-Neo, …; :mod:`rarelib.kvcache`)
  carry the keys and values of the completions from one call to the next (``kv`` in and out):
  a row cut at τ reuses those of its kept prefix, joins the batch at position τ − 1 (feeding its
  last kept token, the only one re-fed) and decodes from τ on, so a decode step at position t
  feeds only the rows with τ ≤ t + 1, a batch that grows, with no teacher-forced rows. Keys and
  values are written into one preallocated tensor, never concatenated. Without ``kv`` (a first
  call with cuts, or a checkpoint of another version) the kept prefixes are run once, in one
  parallel forward.
* Other models (recurrent states, sliding-window caches, the exact Markov models) recompute the
  kept prefixes: rows are sorted by cut and split into ``join_groups`` groups of equal size. A group joins
  the running batch at its smallest cut: its kept prefixes up to there go through one
  parallel (teacher-forced) forward, and its cache is appended to the batch's. Inside the
  batch, rows whose cut lies ahead are teacher-forced (their kept token is fed instead of a
  sampled one). One group is the plain "everyone from min τ" loop; more groups skip more
  teacher-forced decode steps at the cost of one extra forward each. On the project's CPU,
  where a parallel forward is only 1.2–2× cheaper per token than a decode step, eight
  groups regrew 13% more tokens per CPU-second than one group on the default model (median
  of 10 paired runs, B = 64, L = 64, before keys and values were carried; two groups +5%, four
  +11%, sixteen +9%). Such a TPS step feeds about as many positions as generating from scratch,
  for half as many new tokens on average.
* Rows never finish early in either layout, so none are dropped.
* A forward pass is never run for the last position (its token is only sampled).

Caches must support row operations: a batch-first ``torch.Tensor`` (e.g.
:class:`rarelib.exact.solvable.MarkovLM`) or a ``transformers`` ``Cache`` of key/value layers or of
recurrent (conv + state) layers, as Mamba's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
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
    regrowing with a :class:`Guidance`, else ``None``. kv: (N, 2, B, H, P + L − 1, D) the keys
    and values of the output completions (:mod:`rarelib.kvcache`), on the model's device, for
    models that carry them, else ``None``.
    """

    completions: torch.Tensor
    token_logprobs: torch.Tensor
    sampling_logprobs: torch.Tensor | None
    guide_statistics: torch.Tensor | None = None
    kv: torch.Tensor | None = None


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


@dataclass
class _Rows:
    """The rows of one :func:`regrow` call, sorted by cut, on the model's device; filled in position by position.

    cuts (B,), ends (B,) or None, tokens (B, L), model_lp (B, L) float32, sampling_lp (B, L) or None,
    draws (B, L) float64; with a guide: strength (B,) and statistics (B, L, S) float32.
    """

    cuts: torch.Tensor
    ends: torch.Tensor | None
    tokens: torch.Tensor
    model_lp: torch.Tensor
    sampling_lp: torch.Tensor | None
    draws: torch.Tensor
    temperature: float
    first_previous: torch.Tensor
    guide: Any = None
    strength: torch.Tensor | None = None
    statistics: torch.Tensor | None = None


def _draw_position(rows: _Rows, t: int, n: int, logits: torch.Tensor) -> None:
    """Sample (or rescore) position t of the first ``n`` rows from their next-token logits (n, V), in place.

    Rows whose cut lies ahead keep their token; rows past their window's end keep it and are rescored.
    """
    proposal_logits = None
    if rows.guide is not None:
        log_probs = logits.log_softmax(dim=-1)
        previous = rows.tokens[:n, t - 1] if t > 0 else rows.first_previous.expand(n)
        rows.statistics[:n, t] = torch.where(
            (rows.cuts[:n] <= t)[:, None], rows.guide.statistics(log_probs, previous), rows.statistics[:n, t]
        )
        proposal_logits = rows.guide.proposal_logits(log_probs, rows.strength[:n], previous)
    drawn, drawn_model_lp, drawn_sampling_lp = sample_tokens(
        logits, rows.draws[:n, t], rows.temperature, proposal_logits
    )
    regrown = rows.cuts[:n] <= t
    if rows.ends is not None:
        rescored = rows.ends[:n] <= t
        regrown &= ~rescored
        kept_lp = logits.gather(1, rows.tokens[:n, t : t + 1])[:, 0] - logits.logsumexp(dim=-1)
        rows.model_lp[:n, t] = torch.where(rescored, kept_lp, rows.model_lp[:n, t])
    rows.tokens[:n, t] = torch.where(regrown, drawn, rows.tokens[:n, t])
    rows.model_lp[:n, t] = torch.where(regrown, drawn_model_lp, rows.model_lp[:n, t])
    if rows.sampling_lp is not None:
        rows.sampling_lp[:n, t] = torch.where(regrown, drawn_sampling_lp, rows.sampling_lp[:n, t])


def _regrow_recomputing(lm: CausalLM, prompt: PromptContext, rows: _Rows, join_groups: int) -> None:
    """The loop for models that do not carry keys and values: kept prefixes join in ``join_groups`` groups."""
    length = rows.tokens.shape[1]
    points = _join_points(rows.cuts.tolist(), length, join_groups)
    active, logits, cache = 0, None, None
    for t in range(min(points, default=length), length):
        if t in points:
            new_logits, new_cache = _prefill(lm, prompt, rows.tokens[active : points[t], :t])
            logits = new_logits if logits is None else torch.cat([logits, new_logits])
            cache = new_cache if cache is None else _append_rows(cache, new_cache)
            active = points[t]
        _draw_position(rows, t, active, logits)
        if t + 1 < length:
            step_logits, cache = lm.logits(rows.tokens[:active, t : t + 1], cache)
            logits = step_logits[:, -1]


def _stored_kv(lm: CausalLM, prompt: PromptContext, rows: _Rows, kv: torch.Tensor | None) -> torch.Tensor:
    """Storage (N, 2, B, H, P + L − 1, D) holding the keys and values of the kept prefixes of ``rows``: ``kv`` in
    their order, or when absent computed in one parallel forward (the prompt's alone if every row regrows whole)."""
    from rarelib import kvcache

    batch, length = rows.tokens.shape
    dtype = prompt.cache.layers[0].keys.dtype
    if kv is not None:
        return kv.to(device=lm.device, dtype=dtype)
    stored = kvcache.empty(prompt.cache, batch, length)
    kept = int(rows.cuts.max()) - 1 if batch else 0
    if kept > 0:
        lm.logits(rows.tokens[:, :kept], kvcache.stored_cache(stored, batch, len(prompt.ids)), logits_to_keep=1)
    return stored


def _regrow_stored(lm: CausalLM, prompt: PromptContext, rows: _Rows, kv: torch.Tensor) -> None:
    """The loop for models that carry keys and values kv (N, 2, B, H, S, D), in row order: a row cut at τ feeds its
    last kept token at step τ − 1 and decodes from τ on; kv is updated in place."""
    from rarelib import kvcache

    length = rows.tokens.shape[1]
    if len(rows.cuts) == 0:
        return
    # counts[t]: rows with cut ≤ t, the rows sampled at position t (rows are sorted by cut)
    counts = torch.searchsorted(rows.cuts, torch.arange(length + 1, device=rows.cuts.device), right=True).tolist()
    logits = prompt.next_logits.expand(counts[0], -1)
    for t in range(max(int(rows.cuts[0]) - 1, 0), length):
        if counts[t]:
            _draw_position(rows, t, counts[t], logits)
        if t + 1 < length and counts[t + 1]:
            fed = counts[t + 1]
            cache = kvcache.stored_cache(kv, fed, len(prompt.ids) + t)
            logits = lm.logits(rows.tokens[:fed, t : t + 1], cache, logits_to_keep=1)[0][:, -1]


def _carries_kv(prompt: PromptContext) -> bool:
    """Whether the model of ``prompt`` carries keys and values between calls (:func:`rarelib.kvcache.carries`)."""
    if isinstance(prompt.cache, torch.Tensor):
        return False
    from rarelib import kvcache

    return kvcache.carries(prompt.cache)


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
    kv: torch.Tensor | None = None,
) -> Regrowth:
    """Keep ``completions[b, :cuts[b]]`` and sample positions ``cuts[b]..ends[b]−1`` from the model.

    completions: (B, L) int64; token_logprobs: (B, L) float32 log p_M of the kept tokens
    (copied through before the cut; other positions are ignored); cuts: (B,) int64 in 0..L
    (L keeps the row unchanged); uniforms: (B, L) float64, the randomness of position (b, i).
    ends: (B,) int64 in cuts..L, default L: the tokens from ``ends[b]`` on are kept too, but
    follow a new window, so their ``token_logprobs`` are recomputed under it (rescored while
    the batch decodes to the end). guidance: sample regrown tokens from the guide's law at each
    row's strength (temperature must be 1). kv: (N, 2, B, H, P + L − 1, D) the keys and values of
    ``completions``, as :attr:`Regrowth.kv` of the call that grew them (models that carry them only):
    the kept prefixes are then not recomputed. join_groups: the batching of models that do not
    carry keys and values. See the module docstring for the batch layout.
    """
    if guidance is not None and temperature != 1.0:
        raise ValueError("regrow with a guide or a temperature, not both")
    carried = _carries_kv(prompt)
    if kv is not None and (not carried or kv.shape[2] != len(completions)):
        raise ValueError(
            f"kv must be the keys and values that regrow returned for these {len(completions)} completions "
            "(Regrowth.kv), or None; this model "
            + ("carries them" if carried else f"({type(prompt.cache).__name__} cache) carries none")
        )
    device = lm.device
    order = torch.argsort(cuts, stable=True)
    rows = _Rows(
        cuts=cuts[order].to(device),
        ends=None if ends is None else ends[order].to(device),
        tokens=completions[order].to(device),
        model_lp=token_logprobs[order].to(device=device, dtype=torch.float32),
        sampling_lp=None,
        draws=uniforms[order].to(device=device, dtype=torch.float64),
        temperature=temperature,
        first_previous=prompt.ids[-1].to(device),
    )
    if temperature != 1.0 or guidance is not None:
        rows.sampling_lp = torch.full_like(rows.model_lp, float("nan"))
    if guidance is not None:
        rows.guide = guidance.guide
        rows.strength = guidance.strength[order].to(device=device, dtype=torch.float32)
        rows.statistics = guidance.statistics[order].to(device=device, dtype=torch.float32)
    stored = None
    if carried:
        stored = _stored_kv(lm, prompt, rows, None if kv is None else kv.index_select(2, order.to(kv.device)))
        _regrow_stored(lm, prompt, rows, stored)
    else:
        _regrow_recomputing(lm, prompt, rows, join_groups)

    unsort = torch.argsort(order).to(device)
    return Regrowth(
        completions=rows.tokens[unsort].cpu(),
        token_logprobs=rows.model_lp[unsort].cpu(),
        sampling_logprobs=None if rows.sampling_lp is None else rows.sampling_lp[unsort].cpu(),
        guide_statistics=None if guidance is None else rows.statistics[unsort].cpu(),
        kv=None if stored is None else stored.index_select(2, unsort),
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

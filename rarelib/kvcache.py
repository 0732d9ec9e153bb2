"""Key–value storage that a batch of completions carries from one regrowth to the next.

A TPS proposal keeps the current state's prefix, whose keys and values were computed when the
state was grown; :func:`rarelib.generation.regrow` reuses them instead of recomputing them.
They live in one preallocated tensor per batch, ``kv`` of shape (N, 2, R, H, S, D): for each of
the N layers the keys (index 0) and values (index 1) of R rows, H heads, S = P + L − 1 positions
(the prompt and the completion's tokens before the last, which is never fed) and D dimensions
per head. A forward pass sees the first ``rows`` rows and ``length`` positions of it as a
``transformers`` cache (:func:`stored_cache`) and writes the keys and values of the positions it
is fed into the storage after them: no concatenation, and no copy of the cache per decode step.

Only models whose cache is made of plain key–value layers (GPT-2, GPT-Neo, Llama-like without
sliding windows) carry their keys and values (:func:`carries`); the others (recurrent states,
sliding-window layers, the exact Markov models) regrow from their kept prefix as before.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

__all__ = ["carries", "empty", "stored_cache"]


class _StoredLayer(DynamicLayer):
    """One layer's keys and values: the first ``rows`` rows and ``length`` positions of storage (R, H, S, D)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: int, length: int):
        super().__init__()
        self.stored_keys, self.stored_values = keys, values
        self.dtype, self.device = keys.dtype, keys.device
        self.rows, self.is_initialized = rows, True
        self._show(length)

    def _show(self, length: int) -> None:
        self.keys = self.stored_keys[: self.rows, :, :length]
        self.values = self.stored_values[: self.rows, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        """Write the new positions' keys and values (rows, H, T, D) after the shown ones; return all of them."""
        start = self.keys.shape[-2]
        end = start + key_states.shape[-2]
        self.stored_keys[: self.rows, :, start:end] = key_states
        self.stored_values[: self.rows, :, start:end] = value_states
        self._show(end)
        return self.keys, self.values


def carries(cache: Any) -> bool:
    """Whether a model's cache (of the prompt) is made of plain key–value layers, so that it can be stored."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def empty(prompt_cache: Cache, rows: int, completion_length: int) -> torch.Tensor:
    """Storage kv (N, 2, R, H, P + L − 1, D) for ``rows`` completions of L tokens: the prompt's keys and values
    in every row, zeros after them."""
    first = prompt_cache.layers[0].keys
    _, heads, prompt_length, head_size = first.shape
    shape = (len(prompt_cache.layers), 2, rows, heads, prompt_length + completion_length - 1, head_size)
    kv = first.new_zeros(shape)
    for stored, layer in zip(kv, prompt_cache.layers):
        stored[0, :, :, :prompt_length] = layer.keys[0]
        stored[1, :, :, :prompt_length] = layer.values[0]
    return kv


def stored_cache(kv: torch.Tensor, rows: int, length: int) -> Cache:
    """A ``transformers`` cache over the first ``rows`` rows and ``length`` positions of kv (N, 2, R, H, S, D);
    a forward pass with it writes its positions' keys and values into kv after them."""
    return Cache(layers=[_StoredLayer(stored[0], stored[1], rows, length) for stored in kv])

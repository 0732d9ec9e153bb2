"""Direct sampling: n i.i.d. completions of a prompt, batched, optionally streamed to disk.

:func:`sample` draws completions of fixed length L with :func:`rarelib.generation.regrow`
(every row cut at 0), one batch at a time, from a ``torch.Generator`` seeded with ``seed``.
With ``out=folder`` each batch goes to ``folder/batch_<k>.npz`` (atomic write, no pickle)
together with the generator state after it, so memory stays bounded by one batch and an
interrupted run, called again with the same arguments, resumes after the last complete
batch and ends with exactly the files an uninterrupted run writes. Each batch records the model's
fingerprint (:func:`rarelib.models.fingerprint`): a folder written with other weights is refused.
:func:`load` reads such
a folder back and :func:`to_inference_data` gives the standard layout of
:mod:`rarelib.storage` (one chain, λ = 0, ``sampler="direct"``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from rarelib import observables as obs
from rarelib import storage
from rarelib.generation import (
    check_completion_length,
    check_positive_int,
    check_seed,
    check_temperature,
    encode_prompt,
    prompt_token_ids,
    regrow,
)
from rarelib.models import CausalLM, fingerprint

__all__ = ["DEFAULT_OBSERVABLES", "DirectSamples", "load", "sample", "to_inference_data"]

DEFAULT_OBSERVABLES = ("logprob", "ari", "repeats")
_OBSERVABLE_PREFIX = "observable_"


@dataclass(frozen=True)
class DirectSamples:
    """n direct samples.

    observables: name → (n,) float64. token_logprobs: (n, L) float32, log p_M of each token
    at temperature 1. sampling_logprobs: (n, L) float32 under the sampling law (None at
    temperature 1). tokens: (n, L) int32 completions (None unless ``keep_tokens``).
    attrs: the arguments of the run (model, prompt, seed, ...).
    """

    observables: dict[str, np.ndarray]
    token_logprobs: np.ndarray | None
    sampling_logprobs: np.ndarray | None = None
    tokens: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    def head(self, n: int) -> DirectSamples:
        """The first ``n`` samples (all of them if there are fewer): a smaller direct run of the same draw."""
        take = slice(0, n)
        optional = (self.token_logprobs, self.sampling_logprobs, self.tokens)
        return DirectSamples(
            {name: values[take] for name, values in self.observables.items()},
            *(None if array is None else array[take] for array in optional),
            attrs=self.attrs,
        )


def sample(
    lm: CausalLM,
    prompt: str | Sequence[int] | torch.Tensor,
    n: int,
    completion_length: int,
    *,
    observables: Sequence[str | obs.Observable] = DEFAULT_OBSERVABLES,
    temperature: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    keep_tokens: bool = False,
    progress: bool = True,
    out: str | os.PathLike | None = None,
) -> DirectSamples | Path:
    """Draw ``n`` completions of ``completion_length`` tokens at ``temperature``, ``batch_size`` at a time.

    Returns :class:`DirectSamples`; with ``out`` (a folder) streams batches there instead,
    resuming from what is already there, and returns the folder (read it with :func:`load`).
    The same arguments give identical output.
    """
    prompt_ids = prompt_token_ids(lm, prompt)
    length = check_completion_length(lm, len(prompt_ids), completion_length)
    n = check_positive_int("n", n)
    batch_size = check_positive_int("batch_size", batch_size)
    temperature = check_temperature(temperature)
    chosen = obs.get_observables(observables)
    config = {
        "model": lm.name,
        storage.FINGERPRINT_KEY: fingerprint(lm),
        "prompt": lm.decode(prompt_ids.tolist()),
        "prompt_ids": prompt_ids.tolist(),
        "n": n,
        "completion_length": length,
        "temperature": temperature,
        "batch_size": batch_size,
        "seed": check_seed(seed),
        "observables": list(chosen),
        "keep_tokens": bool(keep_tokens),
    }
    generator = torch.Generator().manual_seed(config["seed"])
    n_batches = math.ceil(n / batch_size)
    first = 0
    if out is not None:
        out = storage.check_folder_path("out", out)
        first = _resume(out, config, generator)
    context = encode_prompt(lm, prompt_ids)
    batches = []
    with tqdm(total=n, initial=min(first * batch_size, n), disable=not progress, unit="completion") as bar:
        for index in range(first, n_batches):
            rows = min(batch_size, n - index * batch_size)
            arrays = _draw_batch(lm, context, rows, length, chosen, temperature, keep_tokens, generator)
            if out is None:
                batches.append(arrays)
            else:
                arrays = {
                    **arrays,
                    "config": np.array(json.dumps(config)),
                    "generator_state": generator.get_state().numpy(),
                }
                storage.save_arrays(_batch_path(out, index), arrays)
            bar.update(rows)
    if out is not None:
        return out
    return _assemble(batches, config)


def _draw_batch(lm, context, rows, length, chosen, temperature, keep_tokens, generator) -> dict[str, np.ndarray]:
    """One batch of ``rows`` completions as named arrays (observables, per-token log-probs, tokens)."""
    uniforms = torch.rand((rows, length), generator=generator, dtype=torch.float64)
    start = torch.zeros((rows, length), dtype=torch.int64)
    grown = regrow(lm, context, start, start.float(), torch.zeros(rows, dtype=torch.int64), uniforms, temperature)
    values = obs.evaluate(chosen, lm, context.ids.cpu(), grown.completions, grown.token_logprobs)
    arrays = {_OBSERVABLE_PREFIX + name: value for name, value in values.items()}
    arrays["token_logprobs"] = grown.token_logprobs.numpy()
    if grown.sampling_logprobs is not None:
        arrays["sampling_logprobs"] = grown.sampling_logprobs.numpy()
    if keep_tokens:
        arrays["tokens"] = grown.completions.numpy().astype(np.int32)
    return arrays


def _batch_path(folder: Path, index: int) -> Path:
    return folder / f"batch_{index:06d}.npz"


def _complete_batches(folder: Path) -> int:
    """Number of consecutive batch files 0, 1, 2, ... present in ``folder``."""
    count = 0
    while _batch_path(folder, count).is_file():
        count += 1
    return count


def _resume(folder: Path, config: dict, generator: torch.Generator) -> int:
    """Index of the first batch still to draw; restores ``generator`` to the state after the last one written."""
    done = _complete_batches(folder)
    if done == 0:
        return 0
    last, saved = storage.load_with_config(_batch_path(folder, done - 1), ("generator_state",))
    storage.check_same_config(saved, config, f"direct-sampling folder {folder}")
    generator.set_state(torch.from_numpy(last["generator_state"]))
    return done


def _assemble(batches: list[dict[str, np.ndarray]], config: dict) -> DirectSamples:
    """Concatenate per-batch arrays into one :class:`DirectSamples`."""

    def joined(key: str) -> np.ndarray | None:
        return np.concatenate([batch[key] for batch in batches]) if key in batches[0] else None

    return DirectSamples(
        observables={name: joined(_OBSERVABLE_PREFIX + name) for name in config["observables"]},
        token_logprobs=joined("token_logprobs"),
        sampling_logprobs=joined("sampling_logprobs"),
        tokens=joined("tokens"),
        attrs=config,
    )


def load(folder: str | os.PathLike, per_token: bool = True) -> DirectSamples:
    """Read a folder written by ``sample(..., out=folder)``.

    per_token=False skips the (n, L) arrays (log-probs, tokens): memory then grows only with
    n × number of observables. ValueError if the run is incomplete.
    """
    folder = Path(folder)
    if not _batch_path(folder, 0).is_file():
        raise FileNotFoundError(
            f"no direct-sampling batches in {folder}; run direct.sample(..., out={str(folder)!r}) first"
        )
    _, config = storage.load_with_config(_batch_path(folder, 0))
    expected = math.ceil(config["n"] / config["batch_size"])
    done = _complete_batches(folder)
    if done < expected:
        raise ValueError(
            f"{folder} holds {done} of {expected} batches; call direct.sample with the same arguments to finish the run"
        )
    batches = [
        {
            key: value
            for key, value in storage.load_arrays(_batch_path(folder, index)).items()
            if per_token or key.startswith(_OBSERVABLE_PREFIX)
        }
        for index in range(expected)
    ]
    return _assemble(batches, config)


def to_inference_data(samples: DirectSamples, observable: str):
    """The standard ``InferenceData`` (chain=1, draw=n, bias=[0.0]) with ``phi`` = ``observable``.

    Every observable of the run is a posterior variable too; ``tokens`` when kept.
    """
    if observable not in samples.observables:
        raise ValueError(
            f"observable must be one of the run's observables {sorted(samples.observables)}; got {observable!r}"
        )
    posterior = {"phi": samples.observables[observable][None, :, None]}
    posterior.update({name: values[None, :, None] for name, values in samples.observables.items()})
    if samples.tokens is not None:
        posterior["tokens"] = samples.tokens[None, :, None, :]
    attrs = {
        key: samples.attrs[key] for key in ("model", "prompt", "completion_length", "seed", "temperature", "batch_size")
    }
    return storage.make_run(posterior, biases=[0.0], attrs={**attrs, "observable": observable, "sampler": "direct"})

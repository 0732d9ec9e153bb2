"""Load causal language models and give samplers one small interface to them.

Every sampler in rarelib talks to a model through :class:`CausalLM`: token ids in,
next-token logits out, with an opaque cache of the tokens already seen. Two kinds of
model implement it: :class:`HFLanguageModel` wraps any Hugging Face causal LM (the
embedded default story model, a local ``save_pretrained`` folder, or a hub id found in
the local cache), and the exactly solvable Markov models of :mod:`rarelib.exact`.

Security: weights are read from safetensors only and ``trust_remote_code`` is never set,
so a downloaded model folder cannot run code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DEFAULT_MODEL_NAME = "story-gptneo"
DEFAULT_MODEL_DIR = DATA_DIR / "models" / DEFAULT_MODEL_NAME


class ModelNotFoundError(FileNotFoundError):
    """A model name that is neither the default, a local folder, nor a cached hub id."""


@runtime_checkable
class CausalLM(Protocol):
    """What the samplers need from a language model.

    Attributes: ``name`` (str), ``vocab_size`` (V), ``context_length`` (longest
    prompt + completion in tokens), ``device`` (torch.device).
    """

    name: str
    vocab_size: int
    context_length: int
    device: torch.device

    def logits(self, input_ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        """Next-token logits for each position.

        input_ids: (B, T) int64, the tokens that follow those already in ``cache``.
        Returns (logits (B, T, V) float32, new cache covering all tokens seen so far).
        """

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a sequence of token ids."""


@dataclass
class HFLanguageModel:
    """A Hugging Face causal LM and its tokenizer behind the :class:`CausalLM` interface."""

    model: Any
    tokenizer: Any
    name: str
    device: torch.device

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)

    @property
    def context_length(self) -> int:
        return int(self.model.config.max_position_embeddings)

    @torch.inference_mode()
    def logits(self, input_ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        out = self.model(input_ids=input_ids.to(self.device), past_key_values=cache, use_cache=True)
        return out.logits.float(), out.past_key_values

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids])


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"cpu"`` (default), ``"cuda"``/``"cuda:N"`` when present, or ``"auto"`` (cuda if present)."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} was asked for but no CUDA device is present; use device='cpu' or 'auto'")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name!r} is not a device; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from None


def _local_model_dir(name: str | os.PathLike) -> Path | None:
    """The folder a model name refers to on disk, or None if it names no folder."""
    if str(name) == "default":
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise ModelNotFoundError(
                f"the embedded default model is missing from {DEFAULT_MODEL_DIR}; rebuild it with `make model`"
            )
        return DEFAULT_MODEL_DIR
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    looks_like_path = str(name).startswith((".", "/", "~")) or os.sep in str(name) and path.parent.exists()
    if looks_like_path or str(name).count("/") != 1:
        raise ModelNotFoundError(
            f"model {str(name)!r}: no such folder; pass 'default', a folder written by "
            "`save_pretrained` (config.json + model.safetensors), or a hub id such as 'roneneldan/TinyStories-8M'"
        )
    return None


def _check_safetensors(folder: Path) -> None:
    if not any(folder.glob("*.safetensors")):
        raise ModelNotFoundError(
            f"model folder {folder} has no *.safetensors weights; rarelib loads safetensors only "
            "(convert with `model.save_pretrained(folder, safe_serialization=True)`)"
        )


def load(
    name: str | os.PathLike = "default",
    device: str | torch.device = "cpu",
    tokenizer: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float32,
) -> HFLanguageModel:
    """Load a causal LM and its tokenizer, offline.

    name: ``"default"`` (the embedded story model in ``data/models``), a local folder
    made with ``save_pretrained``, or a Hugging Face hub id present in the local cache
    (nothing is downloaded). tokenizer: where the tokenizer lives, if not beside the
    weights (e.g. ``"EleutherAI/gpt-neo-125M"`` for TinyStories-8M).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch_device = resolve_device(device)
    folder = _local_model_dir(name)
    source = str(folder) if folder is not None else str(name)
    if folder is not None:
        _check_safetensors(folder)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=dtype
        )
        tok = AutoTokenizer.from_pretrained(
            str(tokenizer) if tokenizer is not None else source, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError) as err:
        if folder is not None:
            raise ModelNotFoundError(f"could not load model folder {folder}: {err}") from None
        raise ModelNotFoundError(
            f"model {source!r} is not available offline (no network and not in the Hugging Face cache). "
            f"On a machine with access run `transformers.AutoModelForCausalLM.from_pretrained({source!r})"
            ".save_pretrained('some/folder')` (and the same for its tokenizer), copy the folder here, "
            "and pass its path instead"
        ) from None
    model.to(torch_device).eval()
    model.requires_grad_(False)
    label = DEFAULT_MODEL_NAME if str(name) == "default" else str(name)
    return HFLanguageModel(model=model, tokenizer=tok, name=label, device=torch_device)


def character_tokenizer(alphabet: str):
    """A Hugging Face tokenizer with one token per character of ``alphabet`` (token i = alphabet[i])."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if len(set(alphabet)) != len(alphabet) or not alphabet:
        raise ValueError(f"alphabet must be non-empty with distinct characters; got {alphabet!r}")
    vocab = {char: i for i, char in enumerate(alphabet)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=alphabet[0]))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core)


def random_model(
    architecture: str = "gpt2",
    alphabet: str = "ab .",
    context_length: int = 32,
    n_layer: int = 2,
    n_embd: int = 16,
    n_head: int = 2,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> HFLanguageModel:
    """A tiny randomly initialised GPT-2 or GPT-Neo over a character vocabulary.

    Exercises the real transformer code paths (the paper's GPT-Neo architecture
    included) without downloading anything; vocab_size = len(alphabet).
    """
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoConfig, GPTNeoForCausalLM

    vocab_size = len(alphabet)
    if architecture == "gpt2":
        config = GPT2Config(vocab_size=vocab_size, n_positions=context_length, n_embd=n_embd,
                            n_layer=n_layer, n_head=n_head, bos_token_id=0, eos_token_id=0)
        build = GPT2LMHeadModel
    elif architecture == "gpt-neo":
        alternating = [[["global", "local"], n_layer // 2]] if n_layer >= 2 else []
        config = GPTNeoConfig(vocab_size=vocab_size, max_position_embeddings=context_length, hidden_size=n_embd,
                              num_layers=n_layer, num_heads=n_head,
                              attention_types=alternating + ([[["global"], 1]] if n_layer % 2 else []),
                              window_size=context_length, bos_token_id=0, eos_token_id=0)
        build = GPTNeoForCausalLM
    else:
        raise ValueError(f"architecture={architecture!r}; use 'gpt2' or 'gpt-neo'")
    torch.manual_seed(seed)
    model = build(config).to(resolve_device(device)).eval()
    model.requires_grad_(False)
    return HFLanguageModel(model=model, tokenizer=character_tokenizer(alphabet),
                           name=f"random-{architecture}-v{vocab_size}-s{seed}", device=resolve_device(device))

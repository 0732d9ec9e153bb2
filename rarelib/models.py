"""Load causal language models and give samplers one small interface to them.

Every sampler in rarelib talks to a model through :class:`CausalLM`: token ids in,
next-token logits out, with an opaque cache of the tokens already seen. Two kinds of
model implement it: :class:`HFLanguageModel` wraps any Hugging Face causal LM (the
embedded default story model, a local ``save_pretrained`` folder, or a hub id found in
the local cache), and the exactly solvable Markov models of :mod:`rarelib.exact.solvable`.

Security: weights are read from safetensors only and ``trust_remote_code`` is never set,
so a downloaded model folder cannot run code.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = [
    "CausalLM",
    "character_tokenizer",
    "CONTEXT_FIELDS",
    "check_dtype",
    "context_length_of",
    "DATA_DIR",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_MODEL_NAME",
    "DTYPES",
    "fingerprint",
    "HFLanguageModel",
    "keep_last",
    "load",
    "ModelNotFoundError",
    "random_model",
    "REPO_ROOT",
    "resolve_device",
    "TOKENIZER_FILES",
    "TOKENIZER_JSON",
    "UNLIMITED_CONTEXT",
    "UntokenizedWarning",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DEFAULT_MODEL_NAME = "story-gptneo"
DEFAULT_MODEL_DIR = DATA_DIR / "models" / DEFAULT_MODEL_NAME

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""The weight dtypes a model can be loaded in, by name: float32 (the default, and the one for CPUs), bfloat16 and
float16 (for GPUs). Logits are returned in float32 whatever the weights."""

UNLIMITED_CONTEXT = 10**9
"""``context_length`` of a model without a fixed limit (ALiBi such as Bloom, state-space models such as Mamba)."""
CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "*.model", "*.tiktoken")
TOKENIZER_JSON = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
)


class ModelNotFoundError(FileNotFoundError):
    """A model that cannot be loaded: not the default, a local folder nor a cached hub id, or refused for safety."""


class UntokenizedWarning(UserWarning):
    """A model has logits for ids that its tokenizer has no token for (a padded vocabulary)."""


@runtime_checkable
class CausalLM(Protocol):
    """What the samplers need from a language model.

    Attributes: ``name`` (str), ``vocab_size`` (V), ``context_length`` (longest
    prompt + completion in tokens; :data:`UNLIMITED_CONTEXT` for none), ``device`` (torch.device).
    """

    name: str
    vocab_size: int
    context_length: int
    device: torch.device

    def logits(
        self, input_ids: torch.Tensor, cache: Any = None, logits_to_keep: int | None = None
    ) -> tuple[torch.Tensor, Any]:
        """Next-token logits for each position, or for the last ``logits_to_keep`` positions only.

        input_ids: (B, T) int64, the tokens that follow those already in ``cache``.
        Returns (logits (B, T, V) float32, or (B, logits_to_keep, V); new cache covering all tokens seen so far).
        """

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens, except a BOS first where the model's tokenizer wants one)."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a sequence of token ids."""


@dataclass
class HFLanguageModel:
    """A Hugging Face causal LM and its tokenizer behind the :class:`CausalLM` interface.

    add_bos: put the tokenizer's BOS token first in :meth:`encode` (True), never (False), or
    as the tokenizer itself does (None: Llama, Mistral, Gemma add ``<s>``/``<bos>``; GPT-2
    and the default model do not). mask_untokenized: give the ids that have no token in the
    tokenizer (:attr:`untokenized_ids`, a padded vocabulary) probability 0. That changes the
    model's law: every next-token law is conditioned on drawing a real token.
    """

    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    add_bos: bool | None = None
    mask_untokenized: bool = False
    tokenizer_adds_bos: bool = field(init=False, repr=False)

    def __post_init__(self):
        if not (self.add_bos is None or isinstance(self.add_bos, bool)) or not isinstance(self.mask_untokenized, bool):
            raise ValueError(
                f"add_bos must be None (the tokenizer's convention), True or False, and mask_untokenized "
                f"True or False; got add_bos={self.add_bos!r}, mask_untokenized={self.mask_untokenized!r}"
            )
        bos = self.tokenizer.bos_token_id
        with_special, plain = (self.tokenizer.encode("a", add_special_tokens=special) for special in (True, False))
        self.tokenizer_adds_bos = bos is not None and with_special[:1] == [bos] != plain[:1]
        if self.add_bos and bos is None:
            raise ValueError(f"add_bos=True, but the tokenizer of {self.name!r} has no BOS token; use add_bos=None")

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)

    @property
    def context_length(self) -> int:
        return context_length_of(self.model.config)

    @property
    def bos_prefix(self) -> list[int]:
        """``[BOS id]`` when :meth:`encode` puts one first, else ``[]``."""
        adds = self.tokenizer_adds_bos if self.add_bos is None else self.add_bos
        return [int(self.tokenizer.bos_token_id)] if adds else []

    @cached_property
    def untokenized_ids(self) -> torch.Tensor:
        """Ids (U,) int64, ascending, of the logits that no tokenizer entry stands for; they decode to ''."""
        has_token = torch.zeros(self.vocab_size, dtype=torch.bool)
        has_token[[i for i in self.tokenizer.get_vocab().values() if i < self.vocab_size]] = True
        return (~has_token).nonzero()[:, 0]

    @cached_property
    def _keeps_logits(self) -> bool:
        """Whether the model's forward computes the logits of the last positions only (``logits_to_keep``)."""
        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    @cached_property
    def _cache_keyword(self) -> str:
        """The forward argument (and output field) of the cache: ``past_key_values``, or ``cache_params`` (Mamba)."""
        parameters = inspect.signature(self.model.forward).parameters
        return "cache_params" if "cache_params" in parameters else "past_key_values"

    def _forward(self, input_ids: torch.Tensor, cache: Any, logits_to_keep: int | None) -> tuple[torch.Tensor, Any]:
        keep = {"logits_to_keep": logits_to_keep} if logits_to_keep and self._keeps_logits else {}
        out = self.model(input_ids=input_ids, use_cache=True, **{self._cache_keyword: cache}, **keep)
        return keep_last(out.logits, logits_to_keep).float(), out[self._cache_keyword]

    @torch.inference_mode()
    def logits(
        self, input_ids: torch.Tensor, cache: Any = None, logits_to_keep: int | None = None
    ) -> tuple[torch.Tensor, Any]:
        ids = input_ids.to(self.device)
        if cache is not None and self.model._is_stateful:
            # a recurrent state (Mamba) continues exactly only one token at a time
            steps = []
            for position in range(ids.shape[1]):
                step, cache = self._forward(ids[:, position : position + 1], cache, None)
                steps.append(step)
            logits = keep_last(torch.cat(steps, dim=1), logits_to_keep)
        else:
            logits, cache = self._forward(ids, cache, logits_to_keep)
        if self.mask_untokenized and len(self.untokenized_ids):
            logits[..., self.untokenized_ids.to(self.device)] = torch.finfo(logits.dtype).min
        return logits, cache

    def encode(self, text: str) -> list[int]:
        return self.bos_prefix + list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, without the BOS that :meth:`encode` puts first (so decode(encode(text)) == text)."""
        ids = [int(i) for i in ids]
        prefix = self.bos_prefix
        return self.tokenizer.decode(ids[len(prefix) :] if ids[: len(prefix)] == prefix else ids)


def keep_last(logits: torch.Tensor, logits_to_keep: int | None) -> torch.Tensor:
    """The last ``logits_to_keep`` positions of logits (B, T, V) (all of them for ``None``)."""
    return logits if logits_to_keep is None else logits[:, logits.shape[1] - logits_to_keep :]


def check_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``dtype`` (a name in :data:`DTYPES` or one of their torch dtypes) as a torch dtype, else ValueError."""
    named = DTYPES.get(dtype) if isinstance(dtype, str) else dtype
    if named not in DTYPES.values():
        raise ValueError(f"dtype must be one of {sorted(DTYPES)} (or the torch dtype); got {dtype!r}")
    return named


def _dtype_suffix(dtype: torch.dtype) -> str:
    """``+bfloat16``/``+float16`` for weights in a reduced precision (their law differs in rounding), else ''."""
    return "" if dtype == torch.float32 else "+" + str(dtype).removeprefix("torch.")


def fingerprint(lm: CausalLM) -> str:
    """A short hash of the model's next-token log-probabilities on a fixed probe sequence, and of its name.

    Runs, checkpoints and batch folders record it, so that weights changed at the same path are never mixed
    with what the old ones wrote.
    """
    probe = (torch.arange(min(16, lm.context_length), dtype=torch.int64) * 7919 % lm.vocab_size)[None, :]
    logits, _ = lm.logits(probe.to(lm.device))
    rounded = torch.log_softmax(logits.double(), dim=-1).mul(1e4).round().cpu().numpy().tobytes()
    return hashlib.sha256(rounded + lm.name.encode()).hexdigest()[:16]


def context_length_of(config: Any) -> int:
    """The longest prompt + completion a model config allows: its first set field among
    :data:`CONTEXT_FIELDS`, else :data:`UNLIMITED_CONTEXT` (no position limit)."""
    lengths = [getattr(config, name, None) for name in CONTEXT_FIELDS]
    return next((int(n) for n in lengths if isinstance(n, int) and n > 0), UNLIMITED_CONTEXT)


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


def _model_folder(name: str | os.PathLike, parameter: str = "model") -> Path:
    """The folder ``name`` refers to: the embedded default, a local folder, or a hub id's cached snapshot."""
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
    if looks_like_path or str(name).count("/") > 1:
        raise ModelNotFoundError(
            f"{parameter} {str(name)!r}: no such folder; pass 'default', a folder written by `save_pretrained` "
            "(config.json + model.safetensors), or a hub id such as 'roneneldan/TinyStories-8M' or 'gpt2'"
        )
    return _cached_snapshot(str(name), parameter)


def _cached_snapshot(repo_id: str, parameter: str) -> Path:
    """The folder of hub id ``repo_id`` (``"org/name"`` or ``"name"``) in the Hugging Face cache; never downloads."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (HFValidationError, LocalEntryNotFoundError):
        raise ModelNotFoundError(
            f"{parameter} {repo_id!r} is not available offline (no such folder here, and not in the Hugging Face "
            f"cache; rarelib downloads nothing). On a machine with access run "
            f"`transformers.AutoModelForCausalLM.from_pretrained({repo_id!r}).save_pretrained('some/folder')` "
            "(and the same for its tokenizer), copy the folder here, and pass its path instead"
        ) from None


def _check_model_files(folder: Path) -> None:
    """ModelNotFoundError unless ``folder`` has a config.json, safetensors weights and no need for remote code;
    ValueError naming the file if config.json or a weights file is broken."""
    from transformers import CONFIG_MAPPING

    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"model folder {folder} has no config.json; write it with `save_pretrained`")
    if not any(folder.glob("*.safetensors")):
        raise ModelNotFoundError(
            f"model folder {folder} has no *.safetensors weights; rarelib loads safetensors only "
            "(convert with `model.save_pretrained(folder, safe_serialization=True)`)"
        )
    config = _read_json(folder / "config.json")
    if config.get("auto_map") and config.get("model_type") not in CONFIG_MAPPING:
        raise ModelNotFoundError(
            f"model folder {folder} needs remote code: its config.json maps to Python files "
            f"({sorted(config['auto_map'].values())}) and transformers has no built-in model_type "
            f"{config.get('model_type')!r}; rarelib never runs code from model folders (trust_remote_code=False)"
        )
    for weights in sorted(folder.glob("*.safetensors")):
        _check_safetensors(weights)


def _broken(path: Path, problem: str) -> ValueError:
    """The error for a model or tokenizer file that exists but cannot be read."""
    return ValueError(f"{path} is broken ({problem}); copy the file again or re-save the folder with `save_pretrained`")


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``, else ValueError naming the file."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise _broken(path, "not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise _broken(path, f"not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise _broken(path, f"a JSON {type(value).__name__}, not an object")
    return value


def _check_safetensors(path: Path) -> None:
    """ValueError naming ``path`` unless its safetensors header and data are complete (reads the header only)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            weights.keys()
    except Exception as err:  # safetensors raises its own SafetensorError (not an OSError) for a damaged file
        raise _broken(path, f"not a complete safetensors file: {err}") from None


def _check_tokenizer_json(folder: Path) -> None:
    """ValueError naming the file if a tokenizer JSON file in ``folder`` (:data:`TOKENIZER_JSON`) is not a JSON
    object, or if the tokenizers library cannot read ``tokenizer.json``."""
    from tokenizers import Tokenizer

    for name in TOKENIZER_JSON:
        if (folder / name).is_file():
            _read_json(folder / name)
    path = folder / "tokenizer.json"
    if path.is_file():
        try:
            Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for a malformed file
            raise _broken(path, f"not a tokenizer the tokenizers library can read: {err}") from None


def _check_vocabulary(model: Any, tokenizer: Any, folder: Path, tokenizer_folder: Path) -> None:
    """ValueError if the tokenizer has ids beyond the model's vocabulary (a tokenizer of another model)."""
    largest = max(tokenizer.get_vocab().values(), default=-1)
    if largest >= model.config.vocab_size:
        raise ValueError(
            f"the tokenizer in {tokenizer_folder} has token ids up to {largest}, but "
            f"{folder / 'config.json'} gives vocab_size {model.config.vocab_size}: they belong to "
            "different models; pass the model's own tokenizer with tokenizer="
        )


def _check_tokenizer_files(folder: Path, model_folder: Path) -> None:
    """ModelNotFoundError unless ``folder`` holds tokenizer files (one of :data:`TOKENIZER_FILES`)."""
    if not any(any(folder.glob(pattern)) for pattern in TOKENIZER_FILES):
        beside = "the model's weights" if folder == model_folder else "the folder given as tokenizer="
        raise ModelNotFoundError(
            f"{folder} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}) beside {beside}; pass "
            "tokenizer= a folder or cached hub id holding the model's tokenizer, e.g. "
            f"models.load({str(model_folder)!r}, tokenizer='EleutherAI/gpt-neo-125M')"
        )
    _check_tokenizer_json(folder)


def _name_suffix(lm: HFLanguageModel) -> str:
    """``+bos``/``-bos`` when add_bos overrides the tokenizer's convention, ``+masked`` when masking changes the law."""
    bos = "" if lm.add_bos in (None, lm.tokenizer_adds_bos) else ("+bos" if lm.add_bos else "-bos")
    return bos + ("+masked" if lm.mask_untokenized and len(lm.untokenized_ids) else "")


def _warn_untokenized(lm: HFLanguageModel) -> None:
    """An :class:`UntokenizedWarning` with counts when ``lm`` has unmasked logits without a token."""
    ids = lm.untokenized_ids
    if len(ids) and not lm.mask_untokenized:
        warnings.warn(
            f"model {lm.name!r}: {len(ids)} of its {lm.vocab_size} logits (ids {int(ids[0])}..{int(ids[-1])})"
            " have no token in the tokenizer; sampled, they decode to '' and text observables such as ARI "
            "read text with holes. Load with mask_untokenized=True to give them probability 0 (a change "
            "of the model's law)",
            UntokenizedWarning,
            stacklevel=3,
        )


def load(
    name: str | os.PathLike = "default",
    device: str | torch.device = "cpu",
    tokenizer: str | os.PathLike | None = None,
    dtype: str | torch.dtype = "float32",
    add_bos: bool | None = None,
    mask_untokenized: bool = False,
) -> HFLanguageModel:
    """Load a causal LM and its tokenizer, offline.

    name: ``"default"`` (the embedded story model in ``data/models``), a local folder
    made with ``save_pretrained``, or a Hugging Face hub id present in the local cache
    (``"org/name"`` or ``"gpt2"``; nothing is downloaded). tokenizer: where the tokenizer lives,
    if not beside the weights (e.g. ``"EleutherAI/gpt-neo-125M"`` for TinyStories-8M).
    dtype: the weights' dtype, a name in :data:`DTYPES` (float32 by default; bfloat16 or float16 on
    GPUs); logits come back in float32 and samplers accumulate log-probabilities in float32/float64.
    add_bos, mask_untokenized: see :class:`HFLanguageModel`; a setting that changes the
    encoding or the law is appended to the name (``+bos``, ``-bos``, ``+masked``, ``+bfloat16``, ``+float16``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch_device = resolve_device(device)
    dtype = check_dtype(dtype)
    folder = _model_folder(name)
    _check_model_files(folder)
    tokenizer_folder = folder if tokenizer is None else _model_folder(tokenizer, "tokenizer")
    _check_tokenizer_files(tokenizer_folder, folder)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=dtype
        )
        tok = AutoTokenizer.from_pretrained(str(tokenizer_folder), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ValueError(
            f"could not load model {str(name)!r} from {folder} (config.json, *.safetensors) and its "
            f"tokenizer from {tokenizer_folder}: {type(err).__name__}: {err}; check that these files "
            "belong together, or re-save the folder with `save_pretrained`"
        ) from None
    _check_vocabulary(model, tok, folder, tokenizer_folder)
    model.to(torch_device).eval()
    model.requires_grad_(False)
    label = DEFAULT_MODEL_NAME if str(name) == "default" else str(name)
    lm = HFLanguageModel(
        model=model, tokenizer=tok, name=label, device=torch_device, add_bos=add_bos, mask_untokenized=mask_untokenized
    )
    lm.name += _name_suffix(lm) + _dtype_suffix(dtype)
    _warn_untokenized(lm)
    return lm


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
    dtype: str | torch.dtype = "float32",
) -> HFLanguageModel:
    """A tiny randomly initialised GPT-2 or GPT-Neo over a character vocabulary.

    Exercises the real transformer code paths (the paper's GPT-Neo architecture
    included) without downloading anything; vocab_size = len(alphabet). dtype: as in :func:`load`.
    """
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoConfig, GPTNeoForCausalLM

    vocab_size = len(alphabet)
    if architecture == "gpt2":
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=context_length,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            bos_token_id=0,
            eos_token_id=0,
        )
        build = GPT2LMHeadModel
    elif architecture == "gpt-neo":
        alternating = [[["global", "local"], n_layer // 2]] if n_layer >= 2 else []
        config = GPTNeoConfig(
            vocab_size=vocab_size,
            max_position_embeddings=context_length,
            hidden_size=n_embd,
            num_layers=n_layer,
            num_heads=n_head,
            attention_types=alternating + ([[["global"], 1]] if n_layer % 2 else []),
            window_size=context_length,
            bos_token_id=0,
            eos_token_id=0,
        )
        build = GPTNeoForCausalLM
    else:
        raise ValueError(f"architecture={architecture!r}; use 'gpt2' or 'gpt-neo'")
    dtype = check_dtype(dtype)
    torch.manual_seed(seed)
    model = build(config).to(device=resolve_device(device), dtype=dtype).eval()
    model.requires_grad_(False)
    return HFLanguageModel(
        model=model,
        tokenizer=character_tokenizer(alphabet),
        name=f"random-{architecture}-v{vocab_size}-s{seed}" + _dtype_suffix(dtype),
        device=resolve_device(device),
    )

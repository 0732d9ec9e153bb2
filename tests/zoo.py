"""A zoo of tiny random-weight causal LMs, written as ``save_pretrained`` folders in a second or two.

One byte-level BPE tokenizer (trained here on a few story sentences) serves every model;
``llama`` gets a copy that puts ``<s>`` first, as Llama's own tokenizer does.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

STORY = (
    "Once upon a time, in a big forest, there lived a little girl named Holly. Holly played with her "
    'tractor. One day she saw a red bird! "Hello," said the bird. They were friends forever? Yes. '
) * 20
TOKENIZER_VOCAB = 300
PADDED_VOCAB = 320  # GPT-NeoX style: 20 logits without a token
BOS, EOS = "<s>", "</s>"


def tokenizer(bos_first: bool = False):
    """A byte-level BPE of TOKENIZER_VOCAB entries (ids 0, 1 = <s>, </s>); ``bos_first``: encode puts <s> first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(
        [STORY],
        trainers.BpeTrainer(
            vocab_size=TOKENIZER_VOCAB, special_tokens=[BOS, EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    if bos_first:
        core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS)


def config(family: str, **overrides):
    """A tiny config of ``family``: gpt2, gpt_neox (padded vocabulary), llama (grouped-query attention), bloom,
    mamba; ``overrides`` replace or add config fields (e.g. a longer context)."""
    import transformers as tf

    common = {"bos_token_id": 0, "eos_token_id": 1}
    if overrides:
        base = config(family)
        return type(base)(**{**base.to_dict(), **overrides})
    if family == "gpt2":
        return tf.GPT2Config(vocab_size=TOKENIZER_VOCAB, n_positions=64, n_embd=16, n_layer=2, n_head=2, **common)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(
            vocab_size=PADDED_VOCAB,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
            **common,
        )
    if family == "llama":
        return tf.LlamaConfig(
            vocab_size=TOKENIZER_VOCAB,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            **common,
        )
    if family == "bloom":
        return tf.BloomConfig(vocab_size=TOKENIZER_VOCAB, hidden_size=16, n_layer=2, n_head=2, **common)
    if family == "mamba":
        return tf.MambaConfig(
            vocab_size=TOKENIZER_VOCAB, hidden_size=16, state_size=4, num_hidden_layers=2, conv_kernel=3, **common
        )
    raise ValueError(f"family={family!r}")


FAMILIES = ("gpt2", "gpt_neox", "llama", "bloom", "mamba")


def save_model(family: str, folder: Path, with_tokenizer: bool = True, seed: int = 0, **overrides) -> Path:
    """Write a random-weight ``family`` model (safetensors) and, unless told not to, its tokenizer into ``folder``;
    ``overrides``: config fields (:func:`config`)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config(family, **overrides)).save_pretrained(folder)
    if with_tokenizer:
        tokenizer(bos_first=family == "llama").save_pretrained(folder)
    return folder


def hub_snapshot(hub_cache: Path, repo_id: str, revision: str = "0" * 40) -> Path:
    """The empty snapshot folder of ``repo_id`` in a Hugging Face cache layout (``refs/main`` → ``revision``)."""
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    return snapshot


def write_remote_code_folder(folder: Path) -> Path:
    """A folder whose config.json points at custom Python code for a model_type transformers does not know."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "my-custom-lm",
                "auto_map": {
                    "AutoConfig": "modeling_custom.CustomConfig",
                    "AutoModelForCausalLM": "modeling_custom.CustomLM",
                },
            }
        )
    )
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "modeling_custom.py").write_text("raise SystemExit('remote code ran')\n")
    return folder

"""How the embedded default story model was made: corpus → BPE tokenizer → GPT-Neo.

``python -m rarelib.storymodel.training`` (or ``make model``) rebuilds ``data/models/story-gptneo``
from nothing but a seed: the story grammar of :mod:`rarelib.storymodel.corpus` writes the corpus, a
byte-level BPE tokenizer is trained on it, and a small GPT-Neo (the TinyStories family's
architecture) is trained on CPU. Training is deterministic for a fixed seed and thread
count, checkpoints every few hundred steps (safetensors + JSON, no pickle) and resumes
where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rarelib.models import DEFAULT_MODEL_DIR
from rarelib.storymodel import corpus

__all__ = [
    "batch_starts",
    "build_model",
    "CARD_PROMPT",
    "card_samples",
    "END_OF_TEXT",
    "learning_rate",
    "load_checkpoint",
    "main",
    "mean_loss",
    "model_card",
    "next_token_loss",
    "save_checkpoint",
    "token_stream",
    "train",
    "train_tokenizer",
    "TrainingConfig",
    "windows",
]

END_OF_TEXT = "<|endoftext|>"
CARD_PROMPT = "Once upon a time, in a big forest, there lived a"


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that determines the default model; the model card records it."""

    seed: int = 0
    n_stories: int = 24_000
    validation_fraction: float = 0.05
    vocab_size: int = 2048
    context_length: int = 256
    hidden_size: int = 160
    num_layers: int = 4
    num_heads: int = 4
    batch_size: int = 32
    steps: int = 1000
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    eval_every: int = 100
    eval_batches: int = 20
    threads: int = 2


def train_tokenizer(stories: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (Hugging Face fast tokenizer) with ``<|endoftext|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(stories, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        model_max_length=10**6,
    )


def token_stream(stories: list[str], tokenizer) -> np.ndarray:
    """All stories tokenised and joined, each followed by ``<|endoftext|>``: (n_tokens,) int32."""
    eos = tokenizer.eos_token_id
    encoded = tokenizer(stories, add_special_tokens=False)["input_ids"]
    return np.fromiter((t for ids in encoded for t in (*ids, eos)), dtype=np.int32)


def build_model(config: TrainingConfig):
    """A randomly initialised GPT-Neo with alternating global/local attention, as TinyStories."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    torch.manual_seed(config.seed)
    neo = GPTNeoConfig(
        vocab_size=config.vocab_size,
        max_position_embeddings=config.context_length,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        attention_types=[[["global", "local"], config.num_layers // 2]],
        window_size=config.context_length,
        intermediate_size=4 * config.hidden_size,
        embed_dropout=0.0,
        attention_dropout=0.0,
        resid_dropout=0.0,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=True,
    )
    return GPTNeoForCausalLM(neo)


def batch_starts(n_tokens: int, config: TrainingConfig, step: int) -> np.ndarray:
    """Start offsets (batch_size,) of the training windows of ``step``: a pure function of (seed, step)."""
    rng = np.random.default_rng([config.seed, step])
    return rng.integers(0, n_tokens - config.context_length - 1, size=config.batch_size)


def windows(tokens: np.ndarray, starts: np.ndarray, length: int) -> torch.Tensor:
    """(len(starts), length + 1) int64 windows of ``tokens``."""
    index = starts[:, None] + np.arange(length + 1)[None, :]
    return torch.from_numpy(tokens[index].astype(np.int64))


def learning_rate(step: int, config: TrainingConfig) -> float:
    """Linear warm-up then cosine decay to a tenth of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def next_token_loss(model, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) of predicting batch[:, 1:] from batch[:, :-1]; batch (B, T + 1)."""
    logits = model(input_ids=batch[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def mean_loss(model, tokens: np.ndarray, config: TrainingConfig) -> float:
    """Mean next-token loss over ``eval_batches`` evenly spaced batches of windows of ``tokens``."""
    n_windows = config.eval_batches * config.batch_size
    starts = np.linspace(0, len(tokens) - config.context_length - 2, n_windows).astype(np.int64)
    model.eval()
    with torch.inference_mode():
        losses = [
            next_token_loss(model, windows(tokens, chunk, config.context_length)).item()
            for chunk in np.split(starts, config.eval_batches)
        ]
    model.train()
    return float(np.mean(losses))


def _optimized_parameters(optimizer) -> list[torch.Tensor]:
    """Every parameter the optimizer updates, in a fixed order across its groups."""
    return [param for group in optimizer.param_groups for param in group["params"]]


def save_checkpoint(folder: Path, model, optimizer, config: TrainingConfig, step: int, history: list[dict]) -> None:
    """Model and AdamW state as safetensors, step and loss history as JSON; written atomically."""
    from safetensors.torch import save_file, save_model

    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_model(model, str(tmp / "model.safetensors"))
    moments = {}
    for index, param in enumerate(_optimized_parameters(optimizer)):
        state = optimizer.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq", "step"):
            if key in state:
                moments[f"{index}.{key}"] = state[key].reshape(-1).clone()
    save_file(moments, tmp / "optimizer.safetensors")
    (tmp / "progress.json").write_text(json.dumps({"config": asdict(config), "step": step, "history": history}))
    if folder.exists():
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
    os.replace(tmp, folder)


def load_checkpoint(folder: Path, model, optimizer, config: TrainingConfig) -> tuple[int, list[dict]]:
    """Restore what :func:`save_checkpoint` wrote for the same ``config``; returns (step, history)."""
    from safetensors.torch import load_file, load_model

    progress = json.loads((folder / "progress.json").read_text())
    if progress["config"] != asdict(config):
        changed = sorted(k for k, v in asdict(config).items() if progress["config"].get(k) != v)
        raise ValueError(
            f"the checkpoint in {folder} was made with other settings ({', '.join(changed)}); "
            "delete that folder to train from scratch"
        )
    load_model(model, str(folder / "model.safetensors"))
    moments = load_file(folder / "optimizer.safetensors")
    for index, param in enumerate(_optimized_parameters(optimizer)):
        if f"{index}.exp_avg" in moments:
            optimizer.state[param] = {
                "step": moments[f"{index}.step"].reshape(()),
                "exp_avg": moments[f"{index}.exp_avg"].reshape(param.shape),
                "exp_avg_sq": moments[f"{index}.exp_avg_sq"].reshape(param.shape),
            }
    return progress["step"], progress["history"]


def train(config: TrainingConfig, out: Path, work: Path) -> dict:
    """Build corpus, tokenizer and model into ``out``; ``work`` holds checkpoints. Returns the card's facts."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    work.mkdir(parents=True, exist_ok=True)
    stories = corpus.generate_corpus(config.n_stories, seed=config.seed)
    n_validation = int(len(stories) * config.validation_fraction)
    train_stories, validation_stories = stories[n_validation:], stories[:n_validation]
    tokenizer = train_tokenizer(train_stories, config.vocab_size)
    train_tokens = token_stream(train_stories, tokenizer)
    validation_tokens = token_stream(validation_stories, tokenizer)

    model = build_model(config)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )
    checkpoint = work / "checkpoint"
    step, history = (
        load_checkpoint(checkpoint, model, optimizer, config) if (checkpoint / "progress.json").exists() else (0, [])
    )
    model.train()
    started = time.perf_counter()
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        batch = windows(train_tokens, batch_starts(len(train_tokens), config, step), config.context_length)
        loss = next_token_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % config.eval_every == 0 or step == config.steps:
            record = {
                "step": step,
                "train_batch_loss": round(loss.item(), 5),
                "validation_loss": round(mean_loss(model, validation_tokens, config), 5),
            }
            history.append(record)
            print(
                f"step {step}/{config.steps}  loss {record['train_batch_loss']:.3f}  "
                f"val {record['validation_loss']:.3f}  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            save_checkpoint(checkpoint, model, optimizer, config, step, history)
    facts = {
        "config": asdict(config),
        "n_stories": len(stories),
        "train_tokens": int(len(train_tokens)),
        "validation_tokens": int(len(validation_tokens)),
        "tokens_seen": config.steps * config.batch_size * config.context_length,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "train_loss": mean_loss(model, train_tokens, config),
        "validation_loss": mean_loss(model, validation_tokens, config),
        "history": history,
        "torch_version": torch.__version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    facts["samples"] = card_samples(model, tokenizer, seed=config.seed)
    (out / "training.json").write_text(json.dumps(facts, indent=2))
    (out / "corpus.json").write_text(json.dumps(corpus.describe(stories, config.seed), indent=2))
    (out / "README.md").write_text(model_card(facts))
    return facts


def card_samples(model, tokenizer, seed: int, n: int = 10, max_new_tokens: int = 120) -> list[str]:
    """Ten continuations of the card prompt at temperature 1 (pure ancestral sampling)."""
    torch.manual_seed(seed)
    prompt = tokenizer(CARD_PROMPT, return_tensors="pt").input_ids.repeat(n, 1)
    max_new_tokens = min(max_new_tokens, model.config.max_position_embeddings - prompt.shape[1])
    with torch.inference_mode():
        out = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.eos_token_id,
        )
    return [tokenizer.decode(row[prompt.shape[1] :], skip_special_tokens=False).split(END_OF_TEXT)[0] for row in out]


def _facts_table(facts: dict) -> str:
    """The model card's table of facts, in Markdown."""
    config = facts["config"]
    rows = [
        ("parameters", f"{facts['parameters']:,}"),
        (
            "layers × width × heads",
            f"{config['num_layers']} × {config['hidden_size']} × {config['num_heads']} "
            "(alternating global/local attention)",
        ),
        ("context", f"{config['context_length']} tokens"),
        ("tokenizer", f"byte-level BPE, vocabulary {config['vocab_size']}, `<|endoftext|>` between stories"),
        (
            "corpus",
            f"{facts['n_stories']:,} stories (seed {config['seed']}); {facts['train_tokens']:,} training tokens, "
            f"{facts['validation_tokens']:,} validation tokens",
        ),
        (
            "training",
            f"{config['steps']} steps × {config['batch_size']} × {config['context_length']} tokens = "
            f"{facts['tokens_seen']:,} tokens seen; AdamW, peak learning rate {config['learning_rate']}, cosine decay",
        ),
        ("train loss", f"{facts['train_loss']:.4f} nats/token"),
        (
            "validation loss",
            f"{facts['validation_loss']:.4f} nats/token (ratio {facts['validation_loss'] / facts['train_loss']:.3f})",
        ),
        ("torch", f"{facts['torch_version']}, {config['threads']} threads"),
    ]
    return "\n".join(["| fact | value |", "|---|---|", *(f"| {fact} | {value} |" for fact, value in rows)])


def model_card(facts: dict) -> str:
    """The model card (README.md) of the default model."""
    samples = "\n".join(f"{i + 1}. {CARD_PROMPT}{text.rstrip()}\n" for i, text in enumerate(facts["samples"]))
    return f"""# story-gptneo — the compendium's embedded default model

A small GPT-Neo (the architecture of the TinyStories models) trained from scratch on CPU on a
synthetic corpus of children's stories written by the seeded story grammar in
`rarelib/storymodel/corpus.py`. It stands in for `roneneldan/TinyStories-8M`, which cannot be downloaded
here.

{_facts_table(facts)}

Rebuild from scratch (deterministic for the same seed and thread count on the same machine):

```
make model        # = python -m rarelib.storymodel.training --out data/models/story-gptneo
```

## Ten continuations of "{CARD_PROMPT}" at temperature 1

{samples}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the embedded default story model from scratch.")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="model folder to write")
    parser.add_argument("--work", type=Path, default=Path("build/model"), help="checkpoint folder")
    parser.add_argument("--steps", type=int, default=TrainingConfig.steps)
    parser.add_argument("--seed", type=int, default=TrainingConfig.seed)
    parser.add_argument("--n-stories", type=int, default=TrainingConfig.n_stories)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.n_stories < 100:
        parser.error("--steps must be ≥ 1 and --n-stories ≥ 100")
    facts = train(TrainingConfig(seed=args.seed, steps=args.steps, n_stories=args.n_stories), args.out, args.work)
    print(
        f"wrote {args.out}: {facts['parameters']:,} parameters, train loss {facts['train_loss']:.4f}, "
        f"validation loss {facts['validation_loss']:.4f}"
    )


if __name__ == "__main__":
    main()

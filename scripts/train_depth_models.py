"""Train the small GPT-Neo models of the equi-learning chapter, once, into data/models/depth-models.

Models of depth 2, 4 and 8 (width 64, 4 heads, context 128) are trained briefly (1,200 steps of
16 windows, peak learning rate 4e-3) on the default model's story corpus (same seed, split and
tokenizer) with its optimiser and learning-rate schedule (:mod:`rarelib.storymodel.training`). The depth-8
run also keeps snapshots at steps 30, 100 and 300 for the training-dynamics section; its step-0
state is ``training.build_model`` of the same config (:func:`rarelib.companions.equilearning.untrained_twin`).
Each folder holds config.json, model.safetensors and training.json (config, losses, wall time).
All three take about 11 CPU-minutes on one thread (30 minutes wall on a busy 2-core machine).
Deterministic for a fixed thread count (1):

    OMP_NUM_THREADS=1 python scripts/train_depth_models.py
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from rarelib.companions.equilearning import DEPTH_MODEL_DIR
from rarelib.models import DEFAULT_MODEL_DIR
from rarelib.storymodel import corpus, training

BASE = training.TrainingConfig(
    context_length=128,
    hidden_size=64,
    num_heads=4,
    learning_rate=4e-3,
    batch_size=16,
    steps=1200,
    warmup_steps=40,
    eval_every=50,
    eval_batches=4,
    threads=1,
)
DEPTHS = (2, 4, 8)
SNAPSHOT_DEPTH = 8
SNAPSHOT_STEPS = (30, 100, 300)


def save(model, folder: Path, config: training.TrainingConfig, step: int, history: list[dict], seconds: float) -> None:
    """Weights (safetensors) and the JSON side-car of ``model`` after ``step`` steps."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    record = {
        "config": asdict(config),
        "step": step,
        "history": history,
        "train_seconds": round(seconds, 1),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "torch_version": torch.__version__,
    }
    (folder / "training.json").write_text(json.dumps(record, indent=2))


def train_depth_model(
    config: training.TrainingConfig,
    train_tokens: np.ndarray,
    validation_tokens: np.ndarray,
    out: Path,
    snapshot_steps: tuple[int, ...] = (),
) -> dict:
    """Train one model as :func:`rarelib.storymodel.training.train` does; write it (and snapshots) under ``out``."""
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    model = training.build_model(config)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )
    name = f"depth-{config.num_layers}"
    history = [{"step": 0, "validation_loss": round(training.mean_loss(model, validation_tokens, config), 5)}]
    started = time.perf_counter()
    model.train()
    for step in range(1, config.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = training.learning_rate(step - 1, config)
        batch = training.windows(
            train_tokens, training.batch_starts(len(train_tokens), config, step - 1), config.context_length
        )
        loss = training.next_token_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % config.eval_every == 0 or step in snapshot_steps or step == config.steps:
            history.append(
                {
                    "step": step,
                    "train_batch_loss": round(loss.item(), 5),
                    "validation_loss": round(training.mean_loss(model, validation_tokens, config), 5),
                }
            )
            print(
                f"{name} step {step}/{config.steps}  loss {loss.item():.3f}  "
                f"val {history[-1]['validation_loss']:.3f}  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        if step in snapshot_steps:
            save(model, out / f"{name}-step-{step:04d}", config, step, history, time.perf_counter() - started)
    model.eval()
    save(model, out / name, config, config.steps, history, time.perf_counter() - started)
    return history[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the depth-2/4/8 models of the equi-learning chapter.")
    parser.add_argument("--out", type=Path, default=DEPTH_MODEL_DIR, help="folder to write the models into")
    parser.add_argument("--steps", type=int, default=BASE.steps)
    args = parser.parse_args(argv)
    if args.steps < max(SNAPSHOT_STEPS) + 1:
        parser.error(f"--steps must exceed the last snapshot step {max(SNAPSHOT_STEPS)}")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL_DIR, local_files_only=True)
    stories = corpus.generate_corpus(BASE.n_stories, seed=BASE.seed)
    n_validation = int(len(stories) * BASE.validation_fraction)
    train_tokens = training.token_stream(stories[n_validation:], tokenizer)
    validation_tokens = training.token_stream(stories[:n_validation], tokenizer)
    for depth in DEPTHS:
        config = replace(BASE, num_layers=depth, steps=args.steps)
        snapshots = SNAPSHOT_STEPS if depth == SNAPSHOT_DEPTH else ()
        final = train_depth_model(config, train_tokens, validation_tokens, args.out, snapshots)
        print(f"wrote {args.out / f'depth-{depth}'}: validation loss {final['validation_loss']:.4f}", flush=True)


if __name__ == "__main__":
    main()

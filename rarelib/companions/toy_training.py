"""Tiny GPTs trained in seconds on short token sequences: the toy models of the Markov-chain chapter.

Zekri et al. (2024) train a small GPT on ONE 40-bit sequence that follows a parity rule
(next bit = parity of the previous K = 3) and read it as a Markov chain
(:mod:`rarelib.exact.chains`). This module writes such rule-following sequences, cuts them into
every window of K + 1 tokens, and trains a :func:`rarelib.models.random_model` on those
windows by full-batch AdamW with the usual next-token loss. Dropout is off (the model stays
in eval mode) and every batch is the whole training set, so the only randomness is the
initialisation: the same seed gives the same weights (for a fixed thread count).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rarelib.models import HFLanguageModel, random_model
from rarelib.storymodel.training import next_token_loss

__all__ = ["fit", "greedy_accuracy", "parity_sequence", "sliding_windows", "ToyTraining", "train_on_windows"]


def parity_sequence(initial: Sequence[int], length: int) -> np.ndarray:
    """Bits (length,) starting with ``initial`` (K bits), each later bit the parity of the K before it."""
    bits = [int(bit) for bit in initial]
    if not bits or any(bit not in (0, 1) for bit in bits):
        raise ValueError(f"initial must be a non-empty sequence of bits 0/1; got {initial!r}")
    if not isinstance(length, (int, np.integer)) or length < len(bits):
        raise ValueError(f"length must be an integer ≥ len(initial) = {len(bits)}; got {length!r}")
    window = len(bits)
    while len(bits) < length:
        bits.append(sum(bits[-window:]) % 2)
    return np.array(bits, dtype=np.int64)


def sliding_windows(tokens: Sequence[int], width: int) -> np.ndarray:
    """Every window of ``width`` consecutive tokens, (len(tokens) − width + 1, width) int64."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 1 or not isinstance(width, (int, np.integer)) or not 1 <= width <= tokens.size:
        raise ValueError(f"need a 1-D token sequence and an integer width in 1..{tokens.size}; got width={width!r}")
    return np.lib.stride_tricks.sliding_window_view(tokens, width).copy()


@dataclass(frozen=True)
class ToyTraining:
    """Size and optimiser of a toy GPT; the defaults train the parity toy in a few seconds on one core."""

    n_layer: int = 2
    n_embd: int = 32
    n_head: int = 2
    steps: int = 300
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("n_layer", "n_embd", "n_head", "steps"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be a multiple of n_head={self.n_head}")
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ValueError(
                f"learning_rate must be > 0 and weight_decay ≥ 0; got {self.learning_rate!r}, {self.weight_decay!r}"
            )


def train_on_windows(
    windows: np.ndarray, alphabet: str, config: ToyTraining = ToyTraining()
) -> tuple[HFLanguageModel, np.ndarray]:
    """A GPT-2 over ``alphabet`` trained on ``windows`` (N, K + 1) token ids; returns (model, losses (steps,)).

    The model's context length is K = windows.shape[1] − 1; the loss is the mean next-token
    cross-entropy over every position of every window (contexts of length 1..K), in nats.
    """
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[1] < 2 or windows.shape[0] < 1:
        raise ValueError(f"windows must be (N, K + 1) token ids with N ≥ 1 and K ≥ 1; got shape {windows.shape}")
    if windows.min() < 0 or windows.max() >= len(alphabet):
        raise ValueError(f"windows hold token ids outside 0..{len(alphabet) - 1} (alphabet {alphabet!r})")
    lm = random_model(
        "gpt2",
        alphabet=alphabet,
        context_length=windows.shape[1] - 1,
        n_layer=config.n_layer,
        n_embd=config.n_embd,
        n_head=config.n_head,
        seed=config.seed,
    )
    batch = torch.as_tensor(windows, dtype=torch.int64)
    return lm, fit(lm, lambda step: batch, config)


def fit(
    lm: HFLanguageModel,
    batch_at: Callable[[int], torch.Tensor],
    config: ToyTraining,
    learning_rate_at: Callable[[int], float] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> np.ndarray:
    """Train ``lm`` in place by AdamW on the next-token loss; returns the losses (steps,).

    batch_at(step): token ids (B, T) of that step; learning_rate_at(step): the step's rate
    (default: ``config.learning_rate`` throughout); progress(step, loss) is called after each step.
    """
    model = lm.model
    model.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    losses = np.empty(config.steps)
    for step in range(config.steps):
        if learning_rate_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step)
        loss = next_token_loss(model, batch_at(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses[step] = loss.item()
        if progress is not None:
            progress(step, losses[step])
    model.requires_grad_(False)
    return losses


def greedy_accuracy(lm: HFLanguageModel, windows: np.ndarray) -> float:
    """Fraction of windows (N, K + 1) whose last token is the model's most likely next token after the first K."""
    windows = np.asarray(windows, dtype=np.int64)
    logits, _ = lm.logits(torch.as_tensor(windows[:, :-1], device=lm.device))
    return float((logits[:, -1].argmax(dim=-1).cpu().numpy() == windows[:, -1]).mean())

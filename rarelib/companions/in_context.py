"""In-context learning of random Markov chains: a tiny GPT against the counting estimator.

Zekri et al. (2024) bound the error of a transformer that learns a d-state Markov chain from
its context: it falls like N^{-1/2} in the context length N. This module sets up that
experiment. Chains have rows drawn from a symmetric Dirichlet law and start from their
stationary law; a GPT-2 over the alphabet "abc…" (state i = character i) is pre-trained on
fresh chains at every step with the usual next-token loss; on held-out chains, its
next-state distribution after N tokens is compared with the true row P(x_N, ·) and with the
add-β counting estimator of the same context, and log risk is fitted against log N with a
bootstrap over chains for the standard errors.

``python -m rarelib.companions.in_context --out data/models/icl-markov`` trains the chapter's model
(deterministic for a fixed seed and thread count) and writes it as safetensors + JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.special import rel_entr

from rarelib import models
from rarelib.companions.toy_training import ToyTraining, fit
from rarelib.generation import check_positive_int
from rarelib.storymodel.training import TrainingConfig, learning_rate

__all__ = [
    "ALPHABET",
    "bootstrap_weights",
    "counting_estimates",
    "counting_kl_asymptote",
    "cross_entropy",
    "DEFAULT_MODEL_DIR",
    "fit_lengths",
    "fit_power_law",
    "ICLTraining",
    "kl_divergence",
    "load",
    "main",
    "model_estimates",
    "PowerLawFit",
    "random_transition_matrices",
    "sample_sequences",
    "save",
    "stationary_distributions",
    "total_variation",
    "train",
    "training_batch",
    "true_next_state",
]

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
DEFAULT_MODEL_DIR = models.DATA_DIR / "models" / "icl-markov"


def _check_chain_law(n_states: int, concentration: float) -> None:
    if isinstance(n_states, bool) or not isinstance(n_states, (int, np.integer)) or not 2 <= n_states <= len(ALPHABET):
        raise ValueError(f"n_states must be an integer in 2..{len(ALPHABET)}; got {n_states!r}")
    if not concentration > 0:
        raise ValueError(f"concentration must be > 0; got {concentration!r}")


def random_transition_matrices(
    n_chains: int, n_states: int, concentration: float, rng: np.random.Generator
) -> np.ndarray:
    """Transition matrices (n_chains, d, d) whose rows are independent Dirichlet(concentration·1) draws."""
    check_positive_int("n_chains", n_chains)
    _check_chain_law(n_states, concentration)
    return rng.dirichlet(np.full(n_states, float(concentration)), size=(n_chains, n_states))


def stationary_distributions(transitions: np.ndarray) -> np.ndarray:
    """Stationary laws (C, d) of transition matrices (C, d, d): solve π(P − I) = 0 with Σπ = 1."""
    transitions = np.asarray(transitions, dtype=float)
    if transitions.ndim != 3 or transitions.shape[1] != transitions.shape[2]:
        raise ValueError(f"transitions must have shape (C, d, d); got {transitions.shape}")
    n_states = transitions.shape[-1]
    system = np.swapaxes(transitions, 1, 2) - np.eye(n_states)
    system[:, -1, :] = 1.0
    right = np.zeros((len(transitions), n_states, 1))
    right[:, -1] = 1.0
    return np.linalg.solve(system, right)[..., 0]


def _draw(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One index per row of probabilities (C, d) by inversion of the uniforms (C,)."""
    cumulative = np.cumsum(probabilities, axis=-1)
    return np.minimum((cumulative < uniforms[:, None] * cumulative[:, -1:]).sum(axis=-1), probabilities.shape[-1] - 1)


def sample_sequences(transitions: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """State sequences (C, length) int64 of the chains (C, d, d), each started from its stationary law."""
    check_positive_int("length", length)
    transitions = np.asarray(transitions, dtype=float)
    uniforms = rng.random((len(transitions), length))
    chain = np.arange(len(transitions))
    states = np.empty((len(transitions), length), dtype=np.int64)
    states[:, 0] = _draw(stationary_distributions(transitions), uniforms[:, 0])
    for t in range(1, length):
        states[:, t] = _draw(transitions[chain, states[:, t - 1]], uniforms[:, t])
    return states


def true_next_state(transitions: np.ndarray, sequences: np.ndarray) -> np.ndarray:
    """P(x_N, ·) for every chain and every context length N = 1..L: (C, L, d)."""
    return np.asarray(transitions)[np.arange(len(sequences))[:, None], sequences]


def counting_estimates(sequences: np.ndarray, n_states: int, smoothing: float) -> np.ndarray:
    """Add-β estimates (C, L, d) of the row P(x_N, ·) from the N − 1 transitions inside x_1..x_N.

    Entry [c, N − 1, j] = (n(x_N → j) + β) / (n(x_N) + dβ), counts taken in sequence c's first N tokens.
    """
    sequences = np.asarray(sequences, dtype=np.int64)
    if sequences.ndim != 2 or sequences.min() < 0 or sequences.max() >= n_states:
        raise ValueError(f"sequences must be (C, L) states in 0..{n_states - 1}")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0 (β = 0 gives zero probabilities); got {smoothing!r}")
    n_chains, length = sequences.shape
    pair = np.zeros((n_chains, length, n_states * n_states), dtype=np.int32)
    pair[np.arange(n_chains)[:, None], np.arange(1, length), sequences[:, :-1] * n_states + sequences[:, 1:]] = 1
    counts = np.cumsum(pair, axis=1).reshape(n_chains, length, n_states, n_states)
    rows = np.take_along_axis(counts, sequences[:, :, None, None], axis=2)[:, :, 0] + smoothing
    return rows / rows.sum(axis=-1, keepdims=True)


@torch.inference_mode()
def model_estimates(lm: models.CausalLM, sequences: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The model's next-state distributions (C, L, d) float64 after each prefix x_1..x_N of sequences (C, L)."""
    sequences = np.asarray(sequences, dtype=np.int64)
    if sequences.ndim != 2 or sequences.shape[1] > lm.context_length:
        raise ValueError(
            f"sequences must be (C, L) with L ≤ the model's context length {lm.context_length}; "
            f"got shape {sequences.shape}"
        )
    check_positive_int("batch_size", batch_size)
    parts = []
    for start in range(0, len(sequences), batch_size):
        logits, _ = lm.logits(torch.as_tensor(sequences[start : start + batch_size], device=lm.device))
        parts.append(torch.softmax(logits.double(), dim=-1).cpu().numpy())
    return np.concatenate(parts)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p ‖ q) in nats over the last axis: (..., d), (..., d) → (...); 0·log 0 = 0."""
    return rel_entr(p, q).sum(axis=-1)


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ½ Σ|p − q| over the last axis: (..., d), (..., d) → (...)."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=-1)


def cross_entropy(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Mean −log q_N(x_{N+1}) per chain (C,) in nats/token: predictions (C, L, d), next states targets (C, L)."""
    chosen = np.take_along_axis(np.asarray(predictions), np.asarray(targets, dtype=np.int64)[..., None], axis=-1)
    return -np.log(chosen[..., 0]).mean(axis=1)


def counting_kl_asymptote(n_states: int, context_lengths: np.ndarray) -> np.ndarray:
    """Leading term d(d − 1)/(2N) of the counting estimator's KL risk on a stationary chain (any β > 0).

    Row i is visited ≈ π_i N times and an add-β estimate from n draws has KL risk (d − 1)/(2n) + O(n⁻²);
    averaging over x_N ~ π gives Σ_i π_i (d − 1)/(2 π_i N).
    """
    return n_states * (n_states - 1) / (2.0 * np.asarray(context_lengths, dtype=float))


def fit_lengths(low: int, high: int, n_points: int, sequence_length: int) -> np.ndarray:
    """About n_points context lengths (n,) int64, evenly spaced in log N from low to high ≤ sequence_length."""
    for name, value in (("low", low), ("high", high), ("n_points", n_points)):
        check_positive_int(name, value)
    if not low < high <= sequence_length or n_points < 3:
        raise ValueError(
            f"the fit range needs 1 ≤ low < high ≤ sequence_length = {sequence_length} and n_points ≥ 3; "
            f"got low={low}, high={high}, n_points={n_points}"
        )
    lengths = np.unique(np.round(np.geomspace(low, high, n_points)).astype(np.int64))
    if len(lengths) < 3:
        raise ValueError(f"the fit range {low}..{high} holds fewer than three distinct context lengths")
    return lengths


def bootstrap_weights(n_chains: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling weights (n_bootstrap, n_chains): how often each chain enters each replicate."""
    check_positive_int("n_chains", n_chains)
    check_positive_int("n_bootstrap", n_bootstrap)
    return rng.multinomial(n_chains, np.full(n_chains, 1.0 / n_chains), size=n_bootstrap).astype(float)


@dataclass(frozen=True)
class PowerLawFit:
    """Least-squares fit of log mean risk = intercept + slope·log N; standard errors from a bootstrap over chains."""

    context_lengths: np.ndarray  # (n,) the N used in the fit
    mean_risk: np.ndarray  # (n,) risk averaged over chains
    slope: float
    intercept: float
    slope_se: float
    bootstrap_slopes: np.ndarray = field(repr=False)  # (n_bootstrap,)

    def predict(self, context_lengths: np.ndarray) -> np.ndarray:
        """The fitted power law at context lengths (m,)."""
        return np.exp(self.intercept) * np.asarray(context_lengths, dtype=float) ** self.slope


def _least_squares(log_n: np.ndarray, log_risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of log_risk (..., n) against log_n (n,)."""
    centred = log_n - log_n.mean()
    slope = (log_risk * centred).sum(axis=-1) / (centred**2).sum()
    return slope, log_risk.mean(axis=-1) - slope * log_n.mean()


def fit_power_law(context_lengths: np.ndarray, risks: np.ndarray, weights: np.ndarray) -> PowerLawFit:
    """Fit mean risk ∝ N^slope over chains.

    context_lengths (n,) positive; risks (C, n) per-chain risk at those N; weights (B, C) from
    :func:`bootstrap_weights` — pass the same weights to fits that are to be compared, so their
    bootstrap replicates are paired.
    """
    context_lengths = np.asarray(context_lengths, dtype=float)
    risks = np.asarray(risks, dtype=float)
    if context_lengths.ndim != 1 or len(context_lengths) < 3 or (context_lengths <= 0).any():
        raise ValueError("context_lengths must be at least three positive numbers")
    if risks.ndim != 2 or risks.shape[1] != len(context_lengths) or risks.min() < -1e-12:  # KL may round to −1e-17
        raise ValueError(f"risks must be non-negative with shape (C, {len(context_lengths)}); got {risks.shape}")
    if weights.ndim != 2 or weights.shape[1] != risks.shape[0]:
        raise ValueError(f"weights must have shape (n_bootstrap, {risks.shape[0]}); got {weights.shape}")
    log_n = np.log(context_lengths)
    mean_risk = risks.mean(axis=0)
    slope, intercept = _least_squares(log_n, np.log(mean_risk))
    replicates, _ = _least_squares(log_n, np.log(weights @ risks / weights.sum(axis=1, keepdims=True)))
    return PowerLawFit(
        context_lengths, mean_risk, float(slope), float(intercept), float(replicates.std(ddof=1)), replicates
    )


@dataclass(frozen=True)
class ICLTraining:
    """Pre-training on random chains: the chains, the batch, and the GPT and its optimiser (``model``)."""

    n_states: int = 3
    concentration: float = 1.0
    sequence_length: int = 128
    batch_size: int = 64
    model: ToyTraining = ToyTraining(n_layer=2, n_embd=32, n_head=1, steps=4000, learning_rate=3e-3)
    warmup_steps: int = 100

    def __post_init__(self):
        _check_chain_law(self.n_states, self.concentration)
        check_positive_int("batch_size", self.batch_size)
        if (
            isinstance(self.sequence_length, bool)
            or not isinstance(self.sequence_length, int)
            or self.sequence_length < 2
        ):
            raise ValueError(f"sequence_length must be an integer ≥ 2; got {self.sequence_length!r}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative integer; got {self.warmup_steps!r}")


def training_batch(config: ICLTraining, step: int) -> torch.Tensor:
    """Sequences (batch_size, sequence_length + 1) of fresh random chains: a pure function of (seed, step)."""
    rng = np.random.default_rng([config.model.seed, step])
    transitions = random_transition_matrices(config.batch_size, config.n_states, config.concentration, rng)
    return torch.as_tensor(sample_sequences(transitions, config.sequence_length + 1, rng))


def train(
    config: ICLTraining = ICLTraining(), progress: Callable[[int, float], None] | None = None
) -> tuple[models.HFLanguageModel, np.ndarray]:
    """A GPT-2 over the first n_states letters pre-trained on fresh chains every step; returns (model, losses (steps,)).

    AdamW with the default model's schedule (linear warm-up, cosine decay to a tenth of the peak), no
    dropout; deterministic for a fixed thread count. ``progress(step, loss)``, if given, is called every step.
    """
    spec = config.model
    schedule = TrainingConfig(steps=spec.steps, learning_rate=spec.learning_rate, warmup_steps=config.warmup_steps)
    lm = models.random_model(
        "gpt2",
        alphabet=ALPHABET[: config.n_states],
        context_length=config.sequence_length,
        n_layer=spec.n_layer,
        n_embd=spec.n_embd,
        n_head=spec.n_head,
        seed=spec.seed,
    )
    losses = fit(
        lm,
        lambda step: training_batch(config, step),
        spec,
        learning_rate_at=lambda step: learning_rate(step, schedule),
        progress=progress,
    )
    return lm, losses


def save(folder: str | Path, lm: models.HFLanguageModel, config: ICLTraining, losses: np.ndarray) -> Path:
    """Write the model (config.json + model.safetensors + tokenizer) and training.json (settings, losses)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lm.model.save_pretrained(folder, safe_serialization=True)
    lm.tokenizer.save_pretrained(folder)
    facts = {
        "config": asdict(config),
        "losses": [round(float(loss), 5) for loss in losses],
        "parameters": int(sum(p.numel() for p in lm.model.parameters())),
        "torch_version": torch.__version__,
        "command": f"python -m rarelib.companions.in_context --out {folder}",
    }
    (folder / "training.json").write_text(json.dumps(facts, indent=1))
    return folder


def load(folder: str | Path = "default") -> tuple[models.HFLanguageModel, ICLTraining, np.ndarray]:
    """The model written by :func:`save` (``"default"``: the shipped one), its training settings and losses (steps,)."""
    folder = DEFAULT_MODEL_DIR if str(folder) == "default" else Path(folder)
    if not (folder / "training.json").is_file():
        raise FileNotFoundError(
            f"{folder} holds no trained in-context model; build it with "
            f"`python -m rarelib.companions.in_context --out {folder}`"
        )
    facts = json.loads((folder / "training.json").read_text())
    settings = dict(facts["config"])
    config = ICLTraining(**{**settings, "model": ToyTraining(**settings["model"])})
    lm = models.load(folder)
    if lm.vocab_size != config.n_states:
        raise ValueError(f"{folder}: model vocabulary {lm.vocab_size} ≠ n_states {config.n_states}")
    return lm, config, np.asarray(facts["losses"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pre-train the tiny GPT of the in-context Markov-chain experiment.")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="model folder to write")
    parser.add_argument("--steps", type=int, default=ICLTraining().model.steps)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the saved weights are reproducible for this thread count
    default = ICLTraining()
    config = ICLTraining(
        **{**asdict(default), "model": ToyTraining(**{**asdict(default.model), "steps": args.steps, "seed": args.seed})}
    )
    started = time.perf_counter()

    def report(step: int, loss: float) -> None:
        if (step + 1) % 500 == 0:
            print(
                f"step {step + 1}/{config.model.steps}  batch loss {loss:.4f}  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )

    lm, losses = train(config, progress=report)
    save(args.out, lm, config, losses)
    print(
        f"wrote {args.out}: {config.model.steps} steps in {time.perf_counter() - started:.0f} s, "
        f"loss {losses[:100].mean():.4f} (first 100 steps) → {losses[-100:].mean():.4f} (last 100)"
    )


if __name__ == "__main__":
    main()

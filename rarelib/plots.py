"""Figures of the book: one function per kind of figure, each drawing on a given Axes.

Conventions: labelled axes with units, log scales for tails, one message per figure.
Every function returns the Axes it drew on so notebooks can add to it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

OBSERVABLE_LABELS = {
    "ari": "ARI of prompt + completion",
    "logprob": "log-probability of the completion (nats)",
    "repeats": "repeated tokens in the completion",
}


def observable_label(name: str) -> str:
    """Axis label of an observable (its name if it has no standard label)."""
    return OBSERVABLE_LABELS.get(name, name)


def _axes(ax):
    return ax if ax is not None else plt.subplots(figsize=(6, 4))[1]


def training_curve(history: Sequence[Mapping[str, float]], ax=None):
    """Training-batch and validation loss (nats/token) against optimisation step."""
    ax = _axes(ax)
    steps = [record["step"] for record in history]
    ax.plot(steps, [record["train_batch_loss"] for record in history], "o-", label="training batch")
    ax.plot(steps, [record["validation_loss"] for record in history], "s-", label="validation")
    ax.set(xlabel="optimisation step", ylabel="cross-entropy (nats/token)")
    ax.legend()
    return ax


def histograms(samples: Mapping[str, np.ndarray], bins: np.ndarray, xlabel: str, log: bool = False, ax=None):
    """Normalised histograms (probability density) of several samples of one observable on shared bins."""
    ax = _axes(ax)
    for label, values in samples.items():
        ax.hist(np.asarray(values), bins=bins, density=True, histtype="step", linewidth=1.5, label=label)
    ax.set(xlabel=xlabel, ylabel="probability density")
    if log:
        ax.set_yscale("log")
    ax.legend()
    return ax

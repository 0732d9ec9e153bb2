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


def probability_bars(bin_edges: np.ndarray, probability: np.ndarray, interval: np.ndarray, label: str,
                     ax=None, **style):
    """Probability per bin (B,) with its interval (2, B) as error bars, on a log scale; empty bins are left out."""
    ax = _axes(ax)
    centres = 0.5 * (bin_edges[1:] + bin_edges[:-1])
    seen = probability > 0
    errors = np.abs(np.stack([probability, probability]) - interval)[:, seen]
    ax.errorbar(centres[seen], probability[seen], yerr=errors, fmt=style.pop("fmt", "o"), capsize=2,
                markersize=3, label=label, **style)
    ax.set_yscale("log")
    ax.set_ylabel("probability per bin")
    return ax


def probability_band(bin_edges: np.ndarray, probability: np.ndarray, interval: np.ndarray, label: str,
                     ax=None, **style):
    """Probability per bin (B,) as a line with its interval (2, B) as a shaded band, on a log scale."""
    ax = _axes(ax)
    centres = 0.5 * (bin_edges[1:] + bin_edges[:-1])
    line, = ax.plot(centres, probability, label=label, **style)
    ax.fill_between(centres, interval[0], interval[1], color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_yscale("log")
    ax.set_ylabel("probability per bin")
    return ax

"""Figures of the book: one function per kind of figure, each drawing on a given Axes.

Conventions: labelled axes with units, log scales for tails, one message per figure.
Every function returns the Axes it drew on so notebooks can add to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "coloured_scatter",
    "convergence_to_stationary",
    "cost_curves",
    "counts",
    "cumulative_averages",
    "effective_sample_fraction",
    "estimate_tail",
    "grouped_bars",
    "grouped_scatter",
    "growth_curves",
    "histograms",
    "log_partition_curve",
    "observable_label",
    "OBSERVABLE_LABELS",
    "overlap_matrix",
    "per_bias",
    "pmf_comparison",
    "prediction_residuals_by_layer",
    "probability_band",
    "probability_bars",
    "proportion_curves",
    "relative_change",
    "relative_half_widths",
    "reproduction_curves",
    "risk_against_context",
    "tail_band",
    "tps_trace",
    "training_curve",
    "transition_matrix",
    "verdict_tail",
]

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


def probability_bars(
    bin_edges: np.ndarray, probability: np.ndarray, interval: np.ndarray, label: str, ax=None, **style
):
    """Probability per bin (J,) with its interval (2, J) as error bars, on a log scale; empty bins are left out."""
    ax = _axes(ax)
    centres = 0.5 * (bin_edges[1:] + bin_edges[:-1])
    seen = probability > 0
    errors = np.abs(np.stack([probability, probability]) - interval)[:, seen]
    ax.errorbar(
        centres[seen],
        probability[seen],
        yerr=errors,
        fmt=style.pop("fmt", "o"),
        capsize=2,
        markersize=3,
        label=label,
        **style,
    )
    ax.set_yscale("log")
    ax.set_ylabel("probability per bin")
    return ax


def probability_band(
    bin_edges: np.ndarray, probability: np.ndarray, interval: np.ndarray, label: str, ax=None, **style
):
    """Probability per bin (J,) as a line with its interval (2, J) as a shaded band, on a log scale."""
    ax = _axes(ax)
    centres = 0.5 * (bin_edges[1:] + bin_edges[:-1])
    (line,) = ax.plot(centres, probability, label=label, **style)
    ax.fill_between(centres, interval[0], interval[1], color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_yscale("log")
    ax.set_ylabel("probability per bin")
    return ax


def counts(samples: Mapping[str, np.ndarray], bins: np.ndarray, xlabel: str, ax=None):
    """Raw counts per bin (log scale) of several samples of one observable on shared bins."""
    ax = _axes(ax)
    for label, values in samples.items():
        ax.hist(np.asarray(values).ravel(), bins=bins, histtype="step", linewidth=1.5, label=label)
    ax.set(xlabel=xlabel, ylabel="samples per bin", yscale="log")
    ax.legend()
    return ax


def tail_band(
    thresholds: np.ndarray,
    probability: np.ndarray,
    interval: np.ndarray,
    label: str,
    side: str = "upper",
    ax=None,
    **style,
):
    """A tail curve P(φ ≥ a) (side="upper") or P(φ ≤ a) (side="lower") against a, (A,), with its
    interval (2, A) as a shaded band, on a log scale; thresholds beyond every sample are left out."""
    ax = _axes(ax)
    seen = probability > 0
    (line,) = ax.step(thresholds[seen], probability[seen], where="mid", label=label, **style)
    ax.fill_between(
        thresholds[seen],
        interval[0][seen],
        interval[1][seen],
        step="mid",
        color=line.get_color(),
        alpha=0.25,
        linewidth=0,
    )
    ax.set_yscale("log")
    ax.set_ylabel("P(φ ≥ a)" if side == "upper" else "P(φ ≤ a)")
    return ax


def verdict_tail(verdict, label: str, ax=None, **style):
    """The tail a :class:`rarelib.convergence.Verdict` reports: resolved thresholds as a curve with its
    band, unresolved ones as open circles at their raw estimate (no band: their interval is unknown)."""
    ax = _axes(ax)
    tail, resolved = verdict.tail, verdict.resolved
    shown = resolved & (tail.log > -np.inf)
    line = ax.plot(verdict.thresholds[shown], tail.value[shown], ".-", label=f"{label}: resolved", **style)[0]
    ax.fill_between(
        verdict.thresholds[shown], *tail.interval[:, shown], color=line.get_color(), alpha=0.25, linewidth=0
    )
    flagged = ~resolved & (tail.log > -np.inf)
    ax.plot(
        verdict.thresholds[flagged],
        tail.value[flagged],
        "o",
        mfc="none",
        color=line.get_color(),
        label=f"{label}: unresolved (estimate only)",
    )
    ax.set_yscale("log")
    ax.set_ylabel("P(φ ≥ a)" if verdict.side == "upper" else "P(φ ≤ a)")
    return ax


def estimate_tail(estimate, ax=None):
    """An :class:`rarelib.estimation.Estimate`: its tail as :func:`verdict_tail` draws it, direct sampling's
    tail with its intervals where it saw events, and the mean of φ at each rung of the ladder (dotted)."""
    ax = verdict_tail(estimate, "TPS + MBAR", ax=ax)
    direct, seen = estimate.direct, estimate.direct.log > -np.inf
    value, (low, high) = direct.value[seen], direct.interval[:, seen]
    ax.errorbar(
        estimate.thresholds[seen],
        value,
        yerr=[value - low, high - value],
        fmt="s",
        markersize=3,
        color="grey",
        label=f"direct sampling ({estimate.n_direct:,} samples)",
    )
    for index, mean in enumerate(estimate.rung_means):
        ax.axvline(mean, color="grey", linewidth=0.6, linestyle=":", label="⟨φ⟩ at each rung" if index == 0 else None)
    ax.set_xlabel(observable_label(estimate.question["observable"]))
    ax.legend(fontsize="small")
    return ax


def overlap_matrix(overlap: np.ndarray, states: np.ndarray, ax=None):
    """MBAR overlap matrix (K, K) between states λ (K,), as a heat map on a log colour scale."""
    from matplotlib.colors import LogNorm

    ax = _axes(ax)
    shown = np.where(overlap > 0, overlap, np.nan)
    image = ax.imshow(shown, norm=LogNorm(vmin=1e-4, vmax=1.0), cmap="viridis")
    labels = [f"{lam:g}" for lam in states]
    ax.set_xticks(range(len(states)), labels, rotation=90)
    ax.set_yticks(range(len(states)), labels)
    ax.set(xlabel="state λ", ylabel="state λ")
    ax.figure.colorbar(image, ax=ax, label="overlap")
    return ax


def relative_half_widths(
    bin_edges: np.ndarray,
    half_widths: Mapping[str, np.ndarray],
    xlabel: str,
    ax=None,
    styles: Mapping[str, Mapping] | None = None,
):
    """Relative 96% half-width per bin, (J,) for each labelled estimator, on a log scale; NaN bins are left out."""
    ax = _axes(ax)
    centres = 0.5 * (bin_edges[1:] + bin_edges[:-1])
    for label, values in half_widths.items():
        style = {"marker": "o", "markersize": 3, "linestyle": "none", **((styles or {}).get(label, {}))}
        ax.plot(centres, values, label=label, **style)
    ax.set(xlabel=xlabel, ylabel="relative 96% half-width", yscale="log")
    ax.legend()
    return ax


def relative_change(
    bin_edges: np.ndarray,
    reference: np.ndarray,
    other: np.ndarray,
    reference_half_width: np.ndarray,
    xlabel: str,
    label: str,
    ax=None,
):
    """Relative change (other − reference)/reference per bin, (J,), beside ± the reference's
    relative half-width (J,) as a band; bins where either estimate is zero are left out."""
    ax = _axes(ax)
    centres = 0.5 * (bin_edges[1:] + bin_edges[:-1])
    seen = (reference > 0) & (other > 0)
    ax.fill_between(
        centres[seen],
        -reference_half_width[seen],
        reference_half_width[seen],
        step="mid",
        color="grey",
        alpha=0.3,
        linewidth=0,
        label="± relative 96% half-width (full chains)",
    )
    ax.plot(centres[seen], other[seen] / reference[seen] - 1.0, "o", markersize=3, label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set(xlabel=xlabel, ylabel="relative change of the bin probability")
    ax.set_ylim(bottom=-1.05)  # a probability can fall by at most 100%
    ax.legend()
    return ax


def effective_sample_fraction(biases: np.ndarray, fractions: Mapping[str, np.ndarray], ax=None):
    """Kish effective sample size as a fraction of the sample size (K,) against the bias λ (K,), log scale."""
    ax = _axes(ax)
    for label, values in fractions.items():
        ax.plot(biases, values, "o-", markersize=3, label=label)
    ax.set(xlabel="bias λ", ylabel="effective sample size / n", yscale="log")
    ax.legend()
    return ax


def log_partition_curve(biases: np.ndarray, log_z: np.ndarray, estimates: Mapping[str, tuple], ax=None):
    """Exact log Z(λ) (K,) on a grid of λ (K,) as a line; estimates: label → (λ (k,), log Z (k,), error (k,))."""
    ax = _axes(ax)
    ax.plot(biases, log_z, color="black", linewidth=1, label="exact")
    for label, (at, values, errors) in estimates.items():
        ax.errorbar(at, values, yerr=errors, fmt="o", markersize=4, capsize=3, label=label)
    ax.set(xlabel="bias λ", ylabel="log Z(λ) (nats)")
    ax.legend()
    return ax


def tps_trace(proposed: np.ndarray, chain: np.ndarray, accepted: np.ndarray, ylabel: str, ax=None):
    """One TPS chain along its steps (n,): φ of each proposal (filled: accepted, open: rejected) and of the chain."""
    ax = _axes(ax)
    steps = np.arange(1, len(chain) + 1)
    accepted = np.asarray(accepted, dtype=bool)
    ax.step(steps, chain, where="post", color="black", linewidth=1, label="chain")
    ax.plot(steps[accepted], proposed[accepted], "o", color="tab:green", markersize=4, label="accepted proposal")
    ax.plot(
        steps[~accepted],
        proposed[~accepted],
        "o",
        markerfacecolor="none",
        color="tab:red",
        markersize=4,
        label="rejected proposal",
    )
    ax.set(xlabel="TPS step", ylabel=ylabel)
    ax.legend()
    return ax


def cumulative_averages(phi: np.ndarray, biases: np.ndarray, ylabel: str, dropped: np.ndarray | None = None, ax=None):
    """Running mean of φ within each bias segment of annealed chains, phi (M, N, K), segments laid end to end.

    dropped (K,) bool: segments shaded as excluded (e.g. by the R-hat filter).
    """
    ax = _axes(ax)
    n_chains, n_draws, n_biases = phi.shape
    running = np.cumsum(phi, axis=1) / np.arange(1, n_draws + 1)[None, :, None]
    for k in range(n_biases):
        steps = k * n_draws + np.arange(1, n_draws + 1)
        ax.plot(steps, running[:, :, k].T, color=f"C{k}", linewidth=0.8, alpha=0.8)
        if dropped is not None and dropped[k]:
            ax.axvspan(k * n_draws, (k + 1) * n_draws, color="grey", alpha=0.25, linewidth=0)
        ax.text(
            (k + 0.5) * n_draws,
            1.0,
            f"λ={biases[k]:g}",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set(xlabel="TPS step (annealed, all biases)", ylabel=f"running mean of {ylabel}")
    return ax


def per_bias(biases: np.ndarray, values: Mapping[str, np.ndarray], ylabel: str, ax=None):
    """One marked line per named quantity (K,) against the bias λ (K,), e.g. acceptance rates."""
    ax = _axes(ax)
    for label, series in values.items():
        ax.plot(biases, series, "o-", markersize=4, label=label)
    ax.set(xlabel="bias λ", ylabel=ylabel)
    ax.legend()
    return ax


def pmf_comparison(
    values: np.ndarray, exact: np.ndarray, sampled: Mapping[str, np.ndarray], xlabel: str, log: bool = True, ax=None
):
    """An exact law on atoms ``values`` (B,) as bars, sampled frequencies (B,) as markers; log scale if ``log``."""
    ax = _axes(ax)
    ax.bar(values, exact, width=0.8, color="lightgrey", edgecolor="grey", label="exact")
    for index, (label, frequency) in enumerate(sampled.items()):
        seen = frequency > 0
        ax.plot(values[seen] + 0.15 * (index - (len(sampled) - 1) / 2), frequency[seen], "o", markersize=4, label=label)
    ax.set(xlabel=xlabel, ylabel="probability", yscale="log" if log else "linear")
    ax.legend()
    return ax


def transition_matrix(matrix: np.ndarray, labels: Sequence[str], marked: Sequence[int] = (), ax=None):
    """A transition matrix (S, S) as a heat map of its entries on a log colour scale (zeros blank);
    states whose indices are in ``marked`` get bold tick labels."""
    from matplotlib.colors import LogNorm

    ax = _axes(ax)
    shown = np.where(matrix > 0, matrix, np.nan)
    image = ax.imshow(shown, norm=LogNorm(vmin=max(np.nanmin(shown), 1e-12), vmax=1.0), cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    for index in marked:
        ax.get_xticklabels()[index].set_fontweight("bold")
        ax.get_yticklabels()[index].set_fontweight("bold")
    ax.set(xlabel="next state j", ylabel="state i")
    ax.figure.colorbar(image, ax=ax, label="Q_ij")
    return ax


def convergence_to_stationary(
    steps: np.ndarray, distances: Mapping[str, np.ndarray], bounds: Mapping[str, np.ndarray] | None = None, ax=None
):
    """Worst-start total-variation distance to π against steps n (solid), with bounds (dashed) in
    the same colour order; log-log axes."""
    ax = _axes(ax)
    for index, (label, distance) in enumerate(distances.items()):
        ax.plot(steps, distance, color=f"C{index}", label=label)
        if bounds is not None and label in bounds:
            ax.plot(steps, bounds[label], color=f"C{index}", linestyle="--")
    ax.set(xscale="log", yscale="log", xlabel="steps n", ylabel="max_i TV(δ_i Qⁿ, π)")
    ax.legend()
    return ax


def risk_against_context(
    context_lengths: np.ndarray,
    risks: Mapping[str, np.ndarray],
    ylabel: str,
    fits: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ax=None,
):
    """Mean risk (n,) of each estimator against the context length N (n,) (solid), with fitted power laws
    given as (N (m,), risk (m,)) in the same colour order (dashed); log-log axes."""
    ax = _axes(ax)
    for index, (label, risk) in enumerate(risks.items()):
        ax.plot(context_lengths, risk, color=f"C{index}", label=label)
        if fits is not None and label in fits:
            ax.plot(*fits[label], color=f"C{index}", linestyle="--", linewidth=2)
    ax.set(xscale="log", yscale="log", xlabel="context length N (tokens)", ylabel=ylabel)
    ax.legend()
    return ax


def prediction_residuals_by_layer(
    residuals: Mapping[str, np.ndarray],
    errors: Mapping[str, np.ndarray] | None = None,
    fits: Mapping[str, object] | None = None,
    ax=None,
):
    """Prediction residual PR_l (L + 1,) against layer l (0 = embeddings) on a log axis, one series per
    label, with ± error bars where given and each fitted law 10^(intercept + slope l) dashed over its layers."""
    ax = _axes(ax)
    for index, (label, values) in enumerate(residuals.items()):
        layers = np.arange(len(values))
        error = None if errors is None or label not in errors else errors[label]
        ax.errorbar(
            layers, values, yerr=error, fmt="o-", color=f"C{index}", markersize=4, linewidth=0.8, capsize=2, label=label
        )
        if fits is not None and label in fits:
            fit = fits[label]
            ax.plot(fit.layers, 10 ** (fit.intercept + fit.slope * fit.layers), color=f"C{index}", linestyle="--")
    ax.set(yscale="log", xlabel="layer l (0 = embeddings)", ylabel="prediction residual PR_l = 1 − R²")
    ax.yaxis.set_major_formatter(plt.FormatStrFormatter("%.2g"))
    ax.yaxis.set_minor_formatter(plt.FormatStrFormatter("%.2g"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    return ax


def grouped_bars(values: Mapping[str, Mapping[str, Sequence[float]]], ylabel: str, ax=None):
    """Bars of repeated measurements: group → label → (median, min, max); min–max as error bars."""
    ax = _axes(ax)
    groups = list(values)
    labels = list(dict.fromkeys(label for group in groups for label in values[group]))
    width = 0.8 / len(labels)
    for index, label in enumerate(labels):
        present = [g for g, group in enumerate(groups) if label in values[group]]
        median, low, high = np.array([values[groups[g]][label] for g in present], dtype=np.float64).T
        ax.bar(
            np.array(present) + (index - (len(labels) - 1) / 2) * width,
            median,
            width,
            label=label,
            yerr=np.stack([median - low, high - median]),
            capsize=3,
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel=ylabel)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    return ax


def cost_curves(x: np.ndarray, curves: Mapping[str, Sequence[np.ndarray]], xlabel: str, ylabel: str, ax=None):
    """Cost against size on log–log axes.

    ``series``: label → (median (n,), min (n,), max (n,)) over repeats; min–max are drawn as error bars."""
    ax = _axes(ax)
    x = np.asarray(x, dtype=np.float64)
    for label, (median, low, high) in curves.items():
        median, low, high = (np.asarray(v, dtype=np.float64) for v in (median, low, high))
        ax.errorbar(x, median, yerr=np.stack([median - low, high - median]), fmt="o-", capsize=3, label=label)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.set_xticks(x, [f"{value:g}" for value in x])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.legend(fontsize="small")
    return ax


def growth_curves(
    steps: np.ndarray,
    measured: Mapping[str, np.ndarray],
    predicted: Mapping[str, np.ndarray],
    errors: Mapping[str, np.ndarray] | None = None,
    ylabel: str = "erroneous candidates",
    ax=None,
):
    """Mean counts (n + 1,) against step n on a log scale: measured as points (± ``errors`` (n + 1,) if given),
    predicted as lines, one colour per label; zeros are left out."""
    ax = _axes(ax)
    for index, (label, values) in enumerate(measured.items()):
        shown = np.asarray(values) > 0
        error = None if errors is None else np.asarray(errors[label])[shown]
        ax.errorbar(
            np.asarray(steps)[shown],
            np.asarray(values)[shown],
            yerr=error,
            fmt="o",
            markersize=3,
            capsize=2,
            color=f"C{index}",
            label=label,
        )
        if label in predicted:
            ax.plot(steps, predicted[label], color=f"C{index}")
    ax.set(xlabel="step n", ylabel=ylabel, yscale="log")
    ax.legend()
    return ax


def reproduction_curves(thresholds: np.ndarray, curves: Mapping[str, np.ndarray], ax=None):
    """Measured reproduction number R₀ (K,) against the list threshold θ (K,), log-log, one line per label;
    NaN (no erroneous candidate to measure it on) is left as a gap; R₀ = 1 dashed."""
    from matplotlib.ticker import ScalarFormatter

    ax = _axes(ax)
    for label, values in curves.items():
        ax.plot(thresholds, values, "o-", markersize=4, label=label)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set(xscale="log", yscale="log", xlabel="list threshold θ", ylabel="measured R₀ (children per error)")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.legend()
    return ax


def coloured_scatter(
    x: np.ndarray,
    y: np.ndarray,
    colour: np.ndarray,
    xlabel: str,
    ylabel: str,
    colour_label: str,
    levels: Mapping[str, float] | None = None,
    ax=None,
):
    """Points (x, y), each (N,), coloured by ``colour`` (N,) with a colour bar (highest values drawn on top);
    dashed horizontal lines at the named ``levels`` of y."""
    ax = _axes(ax)
    order = np.argsort(colour, kind="stable")
    points = ax.scatter(
        np.asarray(x)[order], np.asarray(y)[order], c=np.asarray(colour)[order], s=4, cmap="viridis", rasterized=True
    )
    ax.figure.colorbar(points, ax=ax, label=colour_label)
    for index, (label, level) in enumerate((levels or {}).items()):
        ax.axhline(level, color=f"C{index + 1}", linestyle="--", linewidth=1.2, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if levels:
        ax.legend(fontsize="small", loc="lower left")
    return ax


def grouped_scatter(
    groups: Mapping[str, tuple[np.ndarray, np.ndarray]],
    xlabel: str,
    ylabel: str,
    constant_sums: Mapping[str, float] | None = None,
    ax=None,
):
    """One point cloud (x (N,), y (N,)) per label; a dotted line x + y = c for each named value c
    of ``constant_sums``."""
    ax = _axes(ax)
    for label, (x, y) in groups.items():
        ax.scatter(x, y, s=6, alpha=0.5, label=label, rasterized=True)
    x_range = np.array(ax.get_xlim())
    y_range = ax.get_ylim()
    for label, total in (constant_sums or {}).items():
        ax.plot(x_range, total - x_range, color="grey", linestyle=":", linewidth=1)
        ax.annotate(label, (x_range[0], total - x_range[0]), fontsize="small", color="grey", va="bottom")
    ax.set(xlim=x_range, ylim=y_range, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize="small", markerscale=2)
    return ax


def proportion_curves(
    x: np.ndarray,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    xlabel: str,
    ylabel: str,
    log: bool = False,
    ax=None,
):
    """Proportions against x (R,): label → (values (R,), interval (2, R)) as marked lines with error bars; NaN left out.

    log: log scale, zeros left out; the axis starts a decade below the smallest positive value or bound, and a
    lower bound of 0 is drawn down to it.
    """
    ax = _axes(ax)
    x = np.asarray(x, dtype=np.float64)
    curves = {
        label: (np.asarray(values, dtype=np.float64), np.asarray(interval, dtype=np.float64))
        for label, (values, interval) in curves.items()
    }
    positive = np.concatenate([np.ravel(array) for pair in curves.values() for array in pair])
    positive = positive[np.isfinite(positive) & (positive > 0)]
    floor = positive.min() / 10 if log and positive.size else 0.0
    for label, (values, interval) in curves.items():
        shown = np.isfinite(values) & (values > 0 if log else True)
        bounds = np.maximum(interval, floor)
        errors = np.clip(np.abs(np.stack([values, values]) - bounds), 0, None)[:, shown]
        ax.errorbar(x[shown], values[shown], yerr=errors, fmt="o-", markersize=4, capsize=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, yscale="log" if log else "linear")
    ax.set_ylim((floor, None) if log else (-0.02, 1.02))
    ax.legend(fontsize="small")
    return ax

"""Convergence checks and error bars: burn-in, R-hat, ESS, acceptance, bootstrap percentiles, Wilson.

Chains arrive as arrays ``(chain, draw, bias)`` — the layout of :mod:`rarelib.storage` —
and every per-bias diagnostic returns one number per bias, ``(K,)``. ArviZ computes R-hat
and ESS; this module only slices the arrays and says what a missing value means:

* R-hat is ``NaN`` where it cannot be computed: fewer than 2 chains, fewer than 4 draws,
  or a constant observable. :mod:`rarelib.reweighting` keeps such biases and says so.
* ESS is ``NaN`` with fewer than 4 draws; acceptance is ``NaN`` where nothing was recorded.

Intervals are 96% (2nd/98th percentiles) unless ``level`` says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import xarray as xr
from scipy import stats

from rarelib import logspace, storage

__all__ = [
    "generated_tokens",
    "TPS_SAMPLERS",
    "acceptance_per_bias",
    "after_burn_in",
    "BiasDiagnostics",
    "burn_in_draws",
    "check_bin_edges",
    "check_burn_in",
    "check_level",
    "chi_square_p_value",
    "DEFAULT_BURN_IN",
    "DEFAULT_LEVEL",
    "expand_log_interval",
    "expansion_factor",
    "diagnose",
    "diagnose_run",
    "direct_histogram",
    "direct_tail",
    "DirectHistogram",
    "drop_burn_in",
    "ESS_METHODS",
    "ess_per_bias",
    "log_percentile_interval",
    "MIN_DRAWS",
    "RHAT_METHODS",
    "rhat_per_bias",
    "swap_acceptance",
    "tail_agreement",
    "wilson_interval",
]

DEFAULT_BURN_IN = 0.1
DEFAULT_LEVEL = 0.96
RHAT_METHODS = {"rank": "rank-normalised split R-hat", "identity": "classic Gelman-Rubin R-hat"}
ESS_METHODS = ("bulk", "tail")
MIN_DRAWS = 4  # ArviZ's minimum for R-hat and ESS


def check_level(level: float) -> float:
    """Return ``level`` if it is a probability strictly between 0 and 1, else raise ValueError."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}; use a coverage probability strictly between 0 and 1, e.g. 0.96")
    return float(level)


def check_bin_edges(edges, name: str = "bins") -> np.ndarray:
    """Return ``edges`` as float64 (J+1,) after checking they are finite and strictly increasing."""
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 bin edges; got shape {edges.shape}")
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"{name} must be finite and strictly increasing; got {edges}")
    return edges


def _check_chains(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError(f"{name} must have dims (chain, draw, bias); got shape {values.shape}")
    return values


def check_burn_in(fraction: float) -> float:
    """Return ``fraction`` if it is a burn-in fraction in [0, 1), else raise ValueError."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"burn_in={fraction!r}; use a fraction of each bias segment in [0, 1)")
    return float(fraction)


def burn_in_draws(n_draws: int, fraction: float) -> int:
    """Number of leading draws to drop from a segment of ``n_draws``: floor(fraction · n_draws)."""
    return int(np.floor(check_burn_in(fraction) * n_draws))


def drop_burn_in(values: np.ndarray, fraction: float = DEFAULT_BURN_IN) -> np.ndarray:
    """Drop the first ``fraction`` of the draw axis (axis 1) of (M, N, K, ...) → (M, N − n_burn, K, ...)."""
    values = np.asarray(values)
    return values[:, burn_in_draws(values.shape[1], fraction) :]


def rhat_per_bias(phi: np.ndarray, method: str = "rank") -> np.ndarray:
    """R-hat of each bias over chains: phi (M, N, K) → (K,); NaN where it cannot be computed.

    method: ``"rank"`` (ArviZ's rank-normalised split R-hat) or ``"identity"`` (classic
    Gelman–Rubin, the paper's choice).
    """
    if method not in RHAT_METHODS:
        raise ValueError(f"rhat_method={method!r}; use one of {sorted(RHAT_METHODS)}")
    phi = _check_chains(phi, "phi")
    if phi.shape[0] < 2 or phi.shape[1] < MIN_DRAWS:
        return np.full(phi.shape[2], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant chains: 0/0, reported as NaN
        return _per_bias(storage.arviz().rhat, phi, method=method)


def _per_bias(diagnostic, values: np.ndarray, **options) -> np.ndarray:
    """An ArviZ diagnostic of every bias at once: values (M, N, K) → (K,), vectorised over the bias dim."""
    dataset = xr.Dataset({"phi": (("chain", "draw", "bias"), values)})
    return np.asarray(diagnostic(dataset, **options)["phi"].values, dtype=np.float64)


def ess_per_bias(values: np.ndarray, method: str = "bulk") -> np.ndarray:
    """Effective sample size of each bias (ArviZ): values (M, N, K) → (K,); NaN with fewer than 4 draws."""
    if method not in ESS_METHODS:
        raise ValueError(f"ess method={method!r}; use one of {ESS_METHODS}")
    values = _check_chains(values, "values")
    if values.shape[1] < MIN_DRAWS:
        return np.full(values.shape[2], np.nan)
    return _per_bias(storage.arviz().ess, values, method=method)


def acceptance_per_bias(accepted: np.ndarray) -> np.ndarray:
    """Fraction of accepted moves per bias: accepted (M, N, K) bool → (K,)."""
    accepted = _check_chains(accepted, "accepted")
    return accepted.mean(axis=(0, 1), dtype=np.float64)


@dataclass(frozen=True)
class BiasDiagnostics:
    """Diagnostics of bias segments, one entry per segment: every field is an array (K,)."""

    bias: np.ndarray
    n_chains: np.ndarray
    n_draws: np.ndarray
    rhat_rank: np.ndarray
    rhat_identity: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray
    acceptance: np.ndarray

    @classmethod
    def concatenate(cls, parts: Sequence[BiasDiagnostics]) -> BiasDiagnostics:
        """The segments of several runs in one table."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def rhat(self, method: str) -> np.ndarray:
        """R-hat by ``method`` ("rank" or "identity"), (K,)."""
        if method not in RHAT_METHODS:
            raise ValueError(f"rhat_method={method!r}; use one of {sorted(RHAT_METHODS)}")
        return self.rhat_rank if method == "rank" else self.rhat_identity


def diagnose(phi: np.ndarray, biases: np.ndarray, accepted: np.ndarray | None = None) -> BiasDiagnostics:
    """All per-bias diagnostics of (already burnt-in) chains.

    phi: (M, N, K) the biased observable; biases: (K,) λ per segment;
    accepted: (M, N, K) bool or None (acceptance is then NaN).
    """
    phi = _check_chains(phi, "phi")
    biases = np.asarray(biases, dtype=np.float64)
    n_chains, n_draws, n_biases = phi.shape
    if biases.shape != (n_biases,):
        raise ValueError(f"biases has shape {biases.shape}; phi has {n_biases} biases")
    if accepted is None:
        acceptance = np.full(n_biases, np.nan)
    elif np.shape(accepted) != phi.shape:
        raise ValueError(f"accepted has shape {np.shape(accepted)}; phi has shape {phi.shape}")
    else:
        acceptance = acceptance_per_bias(accepted)
    return BiasDiagnostics(
        bias=biases,
        n_chains=np.full(n_biases, n_chains),
        n_draws=np.full(n_biases, n_draws),
        rhat_rank=rhat_per_bias(phi, "rank"),
        rhat_identity=rhat_per_bias(phi, "identity"),
        ess_bulk=ess_per_bias(phi, "bulk"),
        ess_tail=ess_per_bias(phi, "tail"),
        acceptance=acceptance,
    )


def after_burn_in(run, name: str = "phi", fraction: float = DEFAULT_BURN_IN) -> np.ndarray:
    """A recorded variable of a run (InferenceData) without each segment's burn-in: (M, N', K, ...)."""
    group = run.posterior if name in run.posterior else run.sample_stats
    return drop_burn_in(group[name].values, fraction)


def diagnose_run(run, fraction: float = DEFAULT_BURN_IN) -> BiasDiagnostics:
    """:func:`diagnose` of a biased run (InferenceData of :mod:`rarelib.tps`) after the burn-in ``fraction``."""
    accepted = after_burn_in(run, "accepted", fraction) if "accepted" in run.sample_stats else None
    return diagnose(after_burn_in(run, "phi", fraction), run.posterior["bias"].values, accepted)


def swap_acceptance(run) -> np.ndarray:
    """Fraction of accepted replica swaps between rungs k and k + 1 of a tempering run, (K − 1,)."""
    stats_ = run.sample_stats
    if "swap_attempted" not in stats_:
        raise ValueError("this run has no replica swaps; swap acceptance exists for parallel tempering runs only")
    attempted = stats_["swap_attempted"].values.sum(axis=(0, 1))[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return stats_["swap_accepted"].values.sum(axis=(0, 1))[:-1] / attempted


def log_percentile_interval(log_values: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Percentile interval of positive bootstrap replicas given as logs: (R, ...) → (2, ...).

    Returns the logs of the (1 − level)/2 and (1 + level)/2 percentiles of exp(log_values)
    along axis 0, interpolating linearly between order statistics of the values
    themselves (numpy's default rule), computed in log space so that zeros (log = −inf)
    and values far below 1e-300 stay exact.
    """
    level = check_level(level)
    log_values = np.sort(np.asarray(log_values, dtype=np.float64), axis=0)
    n_replicas = log_values.shape[0]
    if n_replicas < 2:
        raise ValueError(f"a percentile interval needs at least 2 bootstrap replicas; got {n_replicas}")
    positions = (n_replicas - 1) * np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    below = np.floor(positions).astype(int)
    above = np.minimum(below + 1, n_replicas - 1)
    fraction = (positions - below).reshape((2,) + (1,) * (log_values.ndim - 1))
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log1p(-fraction) + log_values[below], np.log(fraction) + log_values[above])


def expansion_factor(n_units: int, level: float = DEFAULT_LEVEL) -> float:
    """How much wider a percentile bootstrap interval over ``n_units`` independent units must be to keep its
    ``level``: √(n/(n − 1)) · t_{n−1}((1 + level)/2) / z((1 + level)/2) (Hesterberg 2015's expanded percentile
    interval). The plain percentile interval of a mean of n units behaves like a normal interval with the
    plug-in variance, so it is too narrow for small n: 1.31 for 8 units, 1.13 for 16, 1.06 for 32; 1 for
    fewer than 2 units, where nothing is resampled."""
    level = check_level(level)
    if n_units < 2:
        return 1.0
    quantile = (1.0 + level) / 2.0
    return float(math.sqrt(n_units / (n_units - 1)) * stats.t.ppf(quantile, n_units - 1) / stats.norm.ppf(quantile))


def expand_log_interval(
    log_estimate: np.ndarray, log_interval: np.ndarray, factor: float, log_ceiling: float = math.inf
) -> np.ndarray:
    """log_interval (2, ...) widened ``factor``-fold on each side around the estimate (clipped into the interval
    first), in log space, the upper bound kept ≤ ``log_ceiling`` (0 for probabilities); bounds that are not
    finite (zeros) stay as they were."""
    low, high = np.asarray(log_interval, dtype=np.float64)
    centre = np.clip(log_estimate, low, high)
    with np.errstate(invalid="ignore"):
        wider = np.stack([low - (factor - 1.0) * (centre - low), high + (factor - 1.0) * (high - centre)])
    wider = np.where(np.isfinite(wider), wider, log_interval)
    wider[1] = np.minimum(wider[1], np.maximum(log_ceiling, high))
    return wider


def direct_tail(values, thresholds, side: str = "upper", level: float = DEFAULT_LEVEL) -> logspace.LogEstimate:
    """Empirical tail P(φ ≥ a) (``side="upper"``) or P(φ ≤ a) of direct samples, with Wilson intervals.

    values: (N,) observable of independent samples; thresholds: (A,). Returns the proportions
    and their ``level`` Wilson intervals as an estimate (A,).
    """
    logspace.check_side(side)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array of samples; got shape {values.shape}")
    ordered = np.sort(values)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if side == "upper":
        count = ordered.size - np.searchsorted(ordered, thresholds, side="left")
    else:
        count = np.searchsorted(ordered, thresholds, side="right")
    return logspace.LogEstimate.from_values(count / values.size, np.stack(wilson_interval(count, values.size, level)))


def tail_agreement(estimate: logspace.LogEstimate, direct: logspace.LogEstimate) -> dict[str, np.ndarray]:
    """Where a tail estimate (A,) stands against direct sampling's (A,), at the thresholds with direct data.

    Returns bool arrays (A,): ``seen`` (direct sampling has events), ``agree`` (seen, and the two
    intervals overlap), ``too_low`` / ``too_high`` (seen, and the estimate's interval lies entirely
    below / above the direct one).
    """
    seen = np.isfinite(direct.log)
    return {
        "seen": seen,
        "agree": seen & estimate.overlaps(direct),
        "too_low": seen & (estimate.log_interval[1] < direct.log_interval[0]),
        "too_high": seen & (estimate.log_interval[0] > direct.log_interval[1]),
    }


def wilson_interval(successes, trials, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions, vectorised (arrays broadcast).

    successes, trials: integer arrays (...) with 0 ≤ successes ≤ trials, trials ≥ 1.
    Returns (lower, upper), each (...), the bounds of the ``level`` interval.
    """
    level = check_level(level)
    successes = np.asarray(successes, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    try:
        successes, trials = np.broadcast_arrays(successes, trials)
    except ValueError:
        raise ValueError(f"successes {successes.shape} and trials {trials.shape} do not broadcast") from None
    if np.any(trials < 1) or np.any(successes < 0) or np.any(successes > trials):
        raise ValueError("need 0 ≤ successes ≤ trials and trials ≥ 1 for every proportion")
    z = stats.norm.ppf((1.0 + level) / 2.0)
    proportion = successes / trials
    shrink = 1.0 + z**2 / trials
    centre = (proportion + z**2 / (2.0 * trials)) / shrink
    half_width = z / shrink * np.sqrt(proportion * (1.0 - proportion) / trials + z**2 / (4.0 * trials**2))
    lower = np.where(successes == 0, 0.0, np.clip(centre - half_width, 0.0, 1.0))  # exact at the ends, where
    upper = np.where(successes == trials, 1.0, np.clip(centre + half_width, 0.0, 1.0))  # rounding would miss them
    return lower, upper


@dataclass(frozen=True)
class DirectHistogram:
    """Histogram of N i.i.d. samples: bin_edges (J+1,), counts (J,), n_samples N, and
    bin_probability (J,): counts / N with Wilson intervals."""

    bin_edges: np.ndarray
    counts: np.ndarray
    n_samples: int
    bin_probability: logspace.LogEstimate

    @property
    def density(self) -> np.ndarray:
        """Probability per unit φ, (J,)."""
        return self.bin_probability.value / np.diff(self.bin_edges)

    @property
    def density_interval(self) -> np.ndarray:
        """Wilson bounds on the density, (2, J)."""
        return self.bin_probability.interval / np.diff(self.bin_edges)

    @property
    def one_count_relative_half_width(self) -> float:
        """The relative half-width a bin holding a single count would have: what an empty bin is short of."""
        low, high = wilson_interval(1, self.n_samples)
        return float((high - low) * self.n_samples / 2.0)


def direct_histogram(samples: np.ndarray, bins, level: float = DEFAULT_LEVEL) -> DirectHistogram:
    """Histogram of direct (i.i.d.) samples with Wilson intervals per bin.

    samples: (N,) observable values (any shape is flattened). bins: (J+1,) edges, numpy's
    convention (the last bin is closed). Probabilities are per sample drawn, so samples
    outside the bins count in the denominator.
    """
    edges = check_bin_edges(bins)
    samples = np.asarray(samples, dtype=np.float64).ravel()
    if samples.size == 0 or not np.all(np.isfinite(samples)):
        raise ValueError(f"samples must be non-empty and finite; got {samples.size} values")
    counts, _ = np.histogram(samples, bins=edges)
    interval = np.stack(wilson_interval(counts, samples.size, level))
    return DirectHistogram(
        edges, counts, samples.size, logspace.LogEstimate.from_values(counts / samples.size, interval)
    )


def chi_square_p_value(counts, probabilities) -> float:
    """Pearson goodness-of-fit p-value of cell ``counts`` (C,) against cell ``probabilities`` (C,).

    Cells expected to hold fewer than 5 counts are pooled into one, so the chi-square
    approximation holds; ``probabilities`` are renormalised.
    """
    from scipy import stats

    observed = np.asarray(counts, dtype=np.float64).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    if observed.shape != probabilities.shape or observed.sum() <= 0 or (probabilities < 0).any():
        raise ValueError(
            f"counts {observed.shape} and probabilities {probabilities.shape} must be matching, "
            "with at least one count and no negative probability"
        )
    expected = probabilities / probabilities.sum() * observed.sum()
    small = expected < 5
    if small.any():
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    return float(stats.chisquare(observed, expected).pvalue)


TPS_SAMPLERS = ("annealed_tps", "parallel_tempering")


def generated_tokens(run) -> int:
    """Tokens a run drew from the model: the budget of a run.

    Direct: n·L. TPS: Σ (L − cut) over every recorded move, plus L for the initial draw of
    each of the M chains (annealing) or K·M chains (parallel tempering). Kept prefixes are recomputed by
    the sampler but not drawn, so they are not counted: this is the quantity the paper's "~4 × 10^8 tokens"
    counts.
    """
    posterior = run.posterior
    length = int(posterior.attrs["completion_length"])
    sampler = str(posterior.attrs["sampler"])
    if sampler == "direct":
        return int(posterior["phi"].size) * length
    if sampler not in TPS_SAMPLERS:
        raise ValueError(f"run has sampler={sampler!r}; generated_tokens knows 'direct' and {TPS_SAMPLERS}")
    cuts = np.asarray(run.sample_stats["cut"].values, dtype=np.int64)
    n_rows = cuts.shape[0] * (cuts.shape[2] if sampler == "parallel_tempering" else 1)
    return int((length - cuts).sum()) + n_rows * length

"""Gumbel-tail forecasting: extrapolate P(φ ≥ a) from the top quantiles of direct samples.

Jones et al. 2025 ("Forecasting rare language model behaviors") forecast the largest of many
scores from a modest sample by assuming that the upper tail of the score lies in the Gumbel
domain of attraction: the top quantiles of n samples then lie on a straight line on Gumbel
probability paper, and the line is extrapolated. Here the score is the observable φ of n i.i.d.
direct samples (they score queries by their elicitation probability; the method is the same).

Stages:

1. :func:`fit` — sort φ, take the top k order statistics φ_(n) ≥ … ≥ φ_(n−k+1), give the i-th
   largest its empirical survival probability i/(n+1) and its Gumbel reduced variate
   z_i = −log(−log(1 − i/(n+1))), and fit φ = μ + β z by least squares (a Gumbel law
   F(x) = exp(−e^{−(x−μ)/β}) matched to the top quantiles).
2. :func:`log_tail` — log P(φ ≥ a) = log(1 − exp(−e^{−(a−μ)/β})), in log space, so the
   extrapolation goes to any depth (for large a it is the exponential tail −(a − μ)/β).
3. :func:`tail_probabilities` — the fit with a 96% percentile-bootstrap interval over the n
   samples (refit on each resample).

Where it goes wrong (chapter "Other estimators"): the interval covers the *sampling* noise of
the fit only, not the error of the model. An exponential tail is a strong assumption: a bounded
observable (a count that cannot exceed L), a tail that falls faster than exponentially (a sum of
nearly independent tokens, Gaussian-like: the forecast is far too high), or a mixture of
mechanisms (a rare loop that takes over: the forecast from the bulk is far too low) all break
it, and nothing in the direct samples tells which. Integer-valued φ puts ties among the top
order statistics, so the fit needs at least two distinct values among them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rarelib import diagnostics, logspace
from rarelib.generation import check_positive_int

__all__ = ["GumbelFit", "GumbelTail", "fit", "log_tail", "reduced_variates", "tail_probabilities"]

DEFAULT_TOP = 10


@dataclass(frozen=True)
class GumbelFit:
    """A Gumbel law fitted to the top order statistics: location μ, scale β > 0 (units of φ); n samples, top k."""

    location: float
    scale: float
    n: int
    top: int


def _check_samples(phi) -> np.ndarray:
    values = np.asarray(phi, dtype=np.float64)
    if values.ndim != 1 or values.size < 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"phi must be a 1-D array of at least 2 finite samples; got shape {values.shape}")
    return values


def reduced_variates(n: int, top: int) -> np.ndarray:
    """(top,) Gumbel reduced variates −log(−log(1 − i/(n+1))) of the i-th largest of n samples, i = 1..top."""
    survival = np.arange(1, top + 1) / (n + 1.0)
    return -np.log(-np.log1p(-survival))


def fit(phi, top: int = DEFAULT_TOP) -> GumbelFit:
    """Fit φ_(i) = μ + β z_i to the ``top`` largest of the samples phi (n,); ValueError if they are all equal."""
    values = _check_samples(phi)
    top = check_positive_int("top", top)
    if not 2 <= top <= values.size:
        raise ValueError(f"top must lie in 2..n = {values.size} (the number of order statistics fitted); got {top}")
    largest = np.sort(values)[::-1][:top]
    if largest[0] == largest[-1]:
        raise ValueError(f"the top {top} samples all equal {largest[0]:g}: no tail to fit; raise top or sample more")
    z = reduced_variates(values.size, top)
    scale, location = np.polyfit(z, largest, 1)
    if not scale > 0:
        raise ValueError(f"the fitted Gumbel scale is {scale:g} ≤ 0 (the top samples do not rise with the quantile)")
    return GumbelFit(float(location), float(scale), int(values.size), top)


def log_tail(gumbel: GumbelFit, thresholds) -> np.ndarray:
    """log P(φ ≥ a) = log(1 − exp(−e^{−(a−μ)/β})) under the fitted law, shaped like ``thresholds``."""
    reduced = (np.asarray(thresholds, dtype=np.float64) - gumbel.location) / gumbel.scale
    with np.errstate(over="ignore", divide="ignore"):
        return np.log(-np.expm1(-np.exp(-reduced)))


@dataclass(frozen=True)
class GumbelTail:
    """Forecast tails at thresholds (A,): estimate, a :class:`~rarelib.logspace.LogEstimate` (A,) whose interval is
    the percentile bootstrap of the fit; the fit itself; failed: bootstrap resamples that could not be fitted."""

    thresholds: np.ndarray
    estimate: logspace.LogEstimate
    fit: GumbelFit
    failed: int


def tail_probabilities(
    phi,
    thresholds,
    *,
    rng: np.random.Generator,
    top: int = DEFAULT_TOP,
    n_bootstrap: int = 200,
    level: float = diagnostics.DEFAULT_LEVEL,
) -> GumbelTail:
    """Gumbel-tail forecast of P(φ ≥ a) from direct samples phi (n,) at thresholds (A,), with a bootstrap interval."""
    values = _check_samples(phi)
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    level = diagnostics.check_level(level)
    gumbel = fit(values, top)
    replicas, failed = [], 0
    for _ in range(check_positive_int("n_bootstrap", n_bootstrap)):
        try:
            replicas.append(log_tail(fit(rng.choice(values, size=values.size), top), thresholds))
        except ValueError:
            failed += 1
    if len(replicas) < 2:
        raise ValueError(f"only {len(replicas)} of {n_bootstrap} bootstrap resamples could be fitted; raise top")
    interval = diagnostics.log_percentile_interval(np.array(replicas), level)
    return GumbelTail(thresholds, logspace.LogEstimate(log_tail(gumbel, thresholds), interval), gumbel, failed)

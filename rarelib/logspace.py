"""Probabilities in log space: the one estimate type every estimator returns, and its helpers.

Rare-event probabilities fall far below 1e-300, so rarelib keeps them as natural logs. Every
estimate — MBAR's tails and bins, direct sampling's proportions, importance sampling, exact
validation — is a :class:`LogEstimate`: the log of the estimate (...) and of its interval (2, ...).
``reach`` says how deep a tail curve goes; ``grouped_logsumexp`` and ``cumulative_log_tail``
turn weighted samples into bin and tail probabilities without leaving log space.

Letters: N samples, A thresholds, J bins (the book's notation page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SIDES",
    "LogEstimate",
    "check_side",
    "cumulative_log_tail",
    "grouped_logsumexp",
    "logsumexp",
    "reach",
    "reach_index",
    "reached",
]

SIDES = {"upper": "≥", "lower": "≤"}
"""Tail sides: ``"upper"`` is P(φ ≥ a), ``"lower"`` is P(φ ≤ a)."""


def check_side(side: str) -> str:
    """Return ``side`` if it names a tail, else raise ValueError."""
    if side not in SIDES:
        raise ValueError(f"side={side!r}; use 'upper' for P(φ ≥ a) or 'lower' for P(φ ≤ a)")
    return side


@dataclass(frozen=True)
class LogEstimate:
    """A positive quantity estimated in log space, with its interval.

    log: (...) natural log of the estimate (−inf for an estimated zero);
    log_interval: (2, ...) natural logs of the lower and upper bounds.
    """

    log: np.ndarray
    log_interval: np.ndarray

    @classmethod
    def from_values(cls, value, interval) -> LogEstimate:
        """The estimate of non-negative ``value`` (...) with bounds ``interval`` (2, ...); zeros become −inf."""
        with np.errstate(divide="ignore"):
            return cls(np.log(np.asarray(value, dtype=np.float64)), np.log(np.asarray(interval, dtype=np.float64)))

    @property
    def value(self) -> np.ndarray:
        """The estimate, exp(log): exact between ~1e-308 and ~1e308; use ``log10`` beyond."""
        return np.exp(self.log)

    @property
    def interval(self) -> np.ndarray:
        """(2, ...) lower and upper bounds."""
        return np.exp(self.log_interval)

    @property
    def log10(self) -> np.ndarray:
        """log10 of the estimate."""
        return self.log / np.log(10.0)

    @property
    def log10_interval(self) -> np.ndarray:
        """(2, ...) log10 of the bounds."""
        return self.log_interval / np.log(10.0)

    @property
    def resolved(self) -> np.ndarray:
        """(...) bool: the interval excludes zero (False past the data, where nothing was sampled)."""
        return np.isfinite(self.log_interval[0])

    @property
    def relative_half_width(self) -> np.ndarray:
        """(upper − lower) / (2 · estimate), computed in log space; NaN where the estimate is 0."""
        with np.errstate(invalid="ignore", over="ignore"):
            offsets = np.exp(self.log_interval - self.log)
        return np.where(np.isfinite(self.log), (offsets[1] - offsets[0]) / 2.0, np.nan)

    def overlaps(self, other: LogEstimate, slack: float = 1e-9) -> np.ndarray:
        """(...) bool: the two intervals share a point (up to a relative ``slack`` for rounding at 1)."""
        log_slack = math.log1p(slack)
        return (self.log_interval[0] <= other.log_interval[1] + log_slack) & (
            other.log_interval[0] <= self.log_interval[1] + log_slack
        )

    def covers(self, log_values) -> np.ndarray:
        """(...) bool: the interval contains the values whose logs are ``log_values`` (...), e.g. exact answers."""
        return (self.log_interval[0] <= log_values) & (log_values <= self.log_interval[1])

    def __getitem__(self, index) -> LogEstimate:
        """The estimates at ``index`` of the trailing axes (thresholds, bins)."""
        return LogEstimate(self.log[index], self.log_interval[:, index])


def reached(tail: LogEstimate, max_relative_half_width: float = math.inf) -> np.ndarray:
    """(A,) bool: a probability below 1 whose interval excludes zero, with relative half-width ≤ the limit."""
    with np.errstate(invalid="ignore"):
        return tail.resolved & (tail.log < 0.0) & (tail.relative_half_width <= max_relative_half_width)


def reach_index(tail: LogEstimate, max_relative_half_width: float = math.inf) -> int:
    """Index of the smallest estimate among those :func:`reached`; −1 if none is."""
    candidates = np.flatnonzero(reached(tail, max_relative_half_width))
    return int(candidates[np.argmin(tail.log[candidates])]) if candidates.size else -1


def reach(tail: LogEstimate, max_relative_half_width: float = math.inf) -> float:
    """log10 of the smallest estimate of a tail curve (A,) that is :func:`reached`: how far it reaches."""
    index = reach_index(tail, max_relative_half_width)
    if index < 0:
        limit = math.isfinite(max_relative_half_width) * f" and a relative half-width ≤ {max_relative_half_width:g}"
        raise ValueError(f"no estimate of this tail is below 1 with an interval that excludes zero{limit}")
    return float(tail.log10[index])


def logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    """log Σ exp(values) along ``axis``; −inf where every term is −inf (faster than scipy's in tight loops)."""
    peak = np.max(values, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(values - peak), axis=axis)) + np.squeeze(peak, axis=axis)


def grouped_logsumexp(log_values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """logsumexp of log_values (N,) within each group (N,) int in [0, n_groups) → (n_groups,); −inf if empty."""
    group_max = np.full(n_groups, -np.inf)
    np.maximum.at(group_max, group, log_values)
    shift = np.where(np.isfinite(group_max), group_max, 0.0)
    sums = np.bincount(group, weights=np.exp(log_values - shift[group]), minlength=n_groups)
    with np.errstate(divide="ignore"):
        return shift + np.log(sums)


def cumulative_log_tail(values: np.ndarray, log_weights: np.ndarray, thresholds, side: str = "upper") -> np.ndarray:
    """log Σ_{φ_n ≥ a} w_n (``side="upper"``) or log Σ_{φ_n ≤ a} w_n: values, log_weights (N,), thresholds (A,) → (A,).

    A cumulative log-sum-exp over the sorted values, so tails far below 1e-300 stay finite.
    """
    check_side(side)
    order = np.argsort(values, kind="stable")
    values, log_weights = np.asarray(values)[order], np.asarray(log_weights, dtype=np.float64)[order]
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if side == "upper":
        at_or_above = np.append(np.logaddexp.accumulate(log_weights[::-1])[::-1], -np.inf)
        return at_or_above[np.searchsorted(values, thresholds, side="left")]
    at_or_below = np.insert(np.logaddexp.accumulate(log_weights), 0, -np.inf)
    return at_or_below[np.searchsorted(values, thresholds, side="right")]

"""rarelib.logspace: the one estimate type, reach, and log-space sums against direct computation."""

import math

import numpy as np
import pytest

from rarelib import diagnostics, logspace


def estimate_from_log10(log10_estimate, log10_interval) -> logspace.LogEstimate:
    return logspace.LogEstimate(np.asarray(log10_estimate) * math.log(10), np.asarray(log10_interval) * math.log(10))


def test_relative_half_width_from_logs():
    with np.errstate(divide="ignore"):
        estimate = logspace.LogEstimate.from_values([0.1, 1e-20, 0.0], [[0.05, 0.5e-20, 0.0], [0.15, 3e-20, 1e-3]])
    widths = estimate.relative_half_width
    assert np.allclose(widths[:2], [0.5, 1.25]) and np.isnan(widths[2])
    assert estimate.resolved.tolist() == [True, True, False]


def test_reach_is_the_smallest_estimate_below_one_within_half_width():
    log10_estimate = np.array([-0.1, -2.0, -5.0, -3.0, -np.inf, 0.0])
    half = np.array([0.1, 0.4, 0.9, 0.49, 0.0, 0.0])  # relative half-widths: −5 is too wide, −3 qualifies
    with np.errstate(divide="ignore", invalid="ignore"):
        log10_interval = np.stack([log10_estimate + np.log10(1 - half), log10_estimate + np.log10(1 + half)])
    tail = estimate_from_log10(log10_estimate, log10_interval)
    assert logspace.reached(tail, 0.5).tolist() == [True, True, False, True, False, False]
    assert logspace.reach_index(tail, 0.5) == 3 and logspace.reach(tail, 0.5) == pytest.approx(-3.0)
    assert logspace.reach(tail) == pytest.approx(-5.0)  # without a width limit: every resolved estimate below 1
    assert logspace.reach_index(tail[[2, 4]], 0.5) == -1
    with pytest.raises(ValueError, match="relative half-width ≤ 0.5"):
        logspace.reach(tail[[2, 4]], 0.5)


def test_overlap_of_intervals_allows_rounding_at_one():
    a = logspace.LogEstimate.from_values([0.5, 0.1, 1.0], [[0.4, 0.05, 1.0], [0.6, 0.2, 1.0]])
    b = logspace.LogEstimate.from_values([0.7, 0.4, 1.0], [[0.6, 0.3, 1.0 - 1e-12], [0.8, 0.5, 1.0 - 1e-12]])
    assert a.overlaps(b).tolist() == [True, False, True]


def test_grouped_and_cumulative_sums_match_direct_sums():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, 200).astype(float)
    log_weights = rng.normal(-800.0, 3.0, 200)  # far below 1e-300: only log space keeps them
    groups = logspace.grouped_logsumexp(log_weights, values.astype(int), 7)
    shifted = np.exp(log_weights + 800.0)
    direct = [np.log(shifted[values == g].sum()) - 800.0 if np.any(values == g) else -np.inf for g in range(7)]
    assert np.allclose(groups, direct)
    thresholds = np.array([-1.0, 0.0, 2.5, 5.0, 9.0])
    upper = logspace.cumulative_log_tail(values, log_weights, thresholds, "upper")
    lower = logspace.cumulative_log_tail(values, log_weights, thresholds, "lower")
    with np.errstate(divide="ignore"):
        assert np.allclose(upper, [np.log(shifted[values >= a].sum()) - 800.0 for a in thresholds])
        assert np.allclose(lower, [np.log(shifted[values <= a].sum()) - 800.0 for a in thresholds])
    with pytest.raises(ValueError, match="side"):
        logspace.cumulative_log_tail(values, log_weights, thresholds, "both")


def test_direct_tail_is_a_log_estimate_with_wilson_bounds():
    phi = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    thresholds = np.array([2.0, 4.0, 6.0])
    upper = diagnostics.direct_tail(phi, thresholds, "upper")
    lower = diagnostics.direct_tail(phi, thresholds, "lower")
    assert np.allclose(upper.value, [4 / 5, 1 / 5, 0.0]) and np.allclose(lower.value, [3 / 5, 4 / 5, 1.0])
    assert np.allclose(upper.interval, diagnostics.wilson_interval(np.array([4, 1, 0]), 5))
    assert upper.resolved.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="side"):
        diagnostics.direct_tail(phi, thresholds, "both")

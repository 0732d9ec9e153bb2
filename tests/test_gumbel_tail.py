"""Tests of rarelib.gumbel_tail: the fit is exact on Gumbel quantiles, extrapolates a Gumbel sample, and its
failure on a bounded observable is visible against the exact answer.

The sampling check uses n = 20000 Gumbel draws and the top 400: the forecast of a tail 100 times below 1/n
is compared with the truth within 5 bootstrap half-widths (the fitted line's slope has relative error
≈ 1/√400 = 5%, giving ≈ 0.35 nats at that depth, so the bound is ≈ 10 standard errors away: a false
failure is far rarer than 1e-3).
"""

import numpy as np
import pytest

from rarelib import gumbel_tail
from rarelib.exact import solvable, validation


def test_fit_recovers_location_and_scale_from_exact_quantiles():
    n, top, location, scale = 1000, 50, 2.0, 1.5
    z = gumbel_tail.reduced_variates(n, top)
    phi = np.concatenate([location + scale * z, np.full(n - top, location + scale * z[-1] - 5.0)])
    fitted = gumbel_tail.fit(phi, top)
    assert fitted.location == pytest.approx(location) and fitted.scale == pytest.approx(scale)
    np.testing.assert_allclose(gumbel_tail.log_tail(fitted, [location]), np.log(1 - np.exp(-1.0)))


def test_extrapolates_a_gumbel_sample():
    rng = np.random.default_rng(0)
    phi = rng.gumbel(2.0, 1.5, size=20_000)
    threshold = 2.0 - 1.5 * np.log(-np.log1p(-1e-6))  # P(φ ≥ a) = 1e-6
    tail = gumbel_tail.tail_probabilities(phi, [threshold], rng=rng, top=400, n_bootstrap=100)
    half_width = (tail.estimate.log_interval[1, 0] - tail.estimate.log_interval[0, 0]) / 2
    assert abs(tail.estimate.log[0] - np.log(1e-6)) < max(5 * half_width, 0.0) and half_width < 2.0


def test_forecasts_impossible_events_on_a_bounded_count():
    """A count of loop tokens cannot exceed L; the Gumbel law has no upper end, so it forecasts P(φ ≥ L + 1) > 0."""
    model = validation.repetition_loop_lm(5, 0.1, 0.005, np.random.default_rng(1))
    problem = validation.Problem(model, "bca", 10, solvable.AdditiveObservable("token_count", {0}))
    phi = validation.sample_direct(problem, 2000, seed=0).posterior["phi"].values.ravel()
    fitted = gumbel_tail.fit(phi, 20)
    assert np.isfinite(gumbel_tail.log_tail(fitted, [11.0])[0])
    assert problem.exact.log_prob_at_least(11.0) == -np.inf


def test_bad_inputs():
    with pytest.raises(ValueError, match="all equal"):
        gumbel_tail.fit(np.r_[np.zeros(100), np.ones(20)], top=10)
    with pytest.raises(ValueError, match="top"):
        gumbel_tail.fit(np.arange(5.0), top=6)
    with pytest.raises(ValueError, match="phi"):
        gumbel_tail.fit([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="level"):
        gumbel_tail.tail_probabilities(np.arange(50.0), [60.0], rng=np.random.default_rng(0), level=0.0)

"""Tests of rarelib.diagnostics: Wilson intervals, percentile intervals, burn-in, R-hat, ESS, acceptance."""

import math

import numpy as np
import pytest
from scipy import optimize, stats
from synthetic import ar1_chains

from rarelib import diagnostics, logspace, tps
from rarelib.exact import solvable

# ----------------------------------------------------------------------------- Wilson


def score_test_bounds(successes: int, trials: int, level: float) -> tuple[float, float]:
    """Wilson bounds derived independently: the p at which the score statistic
    |p̂ − p| / sqrt(p (1 − p) / n) equals z, found by root bracketing on each side of p̂."""
    z = stats.norm.ppf((1 + level) / 2)
    p_hat = successes / trials

    def score_gap(p):
        return abs(p_hat - p) / np.sqrt(p * (1 - p) / trials) - z

    lower = 0.0 if successes == 0 else optimize.brentq(score_gap, 1e-15, p_hat, xtol=1e-14)
    upper = 1.0 if successes == trials else optimize.brentq(score_gap, p_hat, 1 - 1e-15, xtol=1e-14)
    return lower, upper


@pytest.mark.parametrize(
    "successes,trials,level", [(1, 10, 0.96), (37, 80, 0.96), (3, 1000, 0.9), (999, 1000, 0.99), (5, 7, 0.5)]
)
def test_wilson_matches_score_test_inversion(successes, trials, level):
    lower, upper = diagnostics.wilson_interval(successes, trials, level)
    assert (lower, upper) == pytest.approx(score_test_bounds(successes, trials, level), abs=1e-6)


def test_wilson_closed_forms_at_zero_and_all_successes():
    # p̂ = 0: the quadratic (p̂ − p)² = z² p(1 − p)/n has roots 0 and z²/(n + z²); p̂ = 1 mirrors it.
    trials = np.arange(1, 3001)
    z = stats.norm.ppf(0.98)
    lower0, upper0 = diagnostics.wilson_interval(0, trials)
    lower1, upper1 = diagnostics.wilson_interval(trials, trials)
    assert np.all(lower0 == 0.0) and np.all(upper1 == 1.0)  # exactly: an observed 0 or 1 is never excluded
    np.testing.assert_allclose(upper0, z**2 / (trials + z**2), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lower1, trials / (trials + z**2), rtol=0, atol=1e-12)


def test_wilson_matches_published_values():
    # Newcombe (1998), Stat. Med. 17:857, Table I, method 3 (score, no continuity correction), 95%;
    # published to 4 decimals, hence the tolerance of half a unit in the last place.
    cases = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }
    successes, trials = np.array(list(cases)).T
    lower, upper = diagnostics.wilson_interval(successes, trials, level=0.95)
    np.testing.assert_allclose(np.stack([lower, upper], axis=1), np.array(list(cases.values())), atol=5e-5)


def test_wilson_broadcasts():
    lower, upper = diagnostics.wilson_interval(np.array([[0], [3], [10]]), np.array([10, 20]))
    assert lower.shape == upper.shape == (3, 2)
    assert upper[2, 0] == pytest.approx(1.0) and lower[0, 1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "successes,trials,level,match",
    [
        (5, 4, 0.96, "successes ≤ trials"),
        (0, 0, 0.96, "trials ≥ 1"),
        (-1, 4, 0.96, "0 ≤ successes"),
        (1, 4, 1.5, "level"),
        ([1, 2, 3], [4, 5], 0.96, "broadcast"),
    ],
)
def test_wilson_rejects_bad_input(successes, trials, level, match):
    with pytest.raises(ValueError, match=match):
        diagnostics.wilson_interval(successes, trials, level)


def test_direct_histogram_counts_every_sample_in_the_denominator():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=2000)
    edges = np.linspace(-1.0, 1.0, 9)
    histogram = diagnostics.direct_histogram(samples, edges)
    counts, _ = np.histogram(samples, edges)
    np.testing.assert_array_equal(histogram.counts, counts)
    probability = histogram.bin_probability
    np.testing.assert_allclose(probability.value, counts / 2000)
    np.testing.assert_allclose(probability.interval, np.stack(diagnostics.wilson_interval(counts, 2000)))
    np.testing.assert_allclose(histogram.density, counts / 2000 / 0.25)
    assert np.all(probability.interval[0] <= probability.value) and np.all(probability.value <= probability.interval[1])
    low, high = diagnostics.wilson_interval(1, 2000)
    assert histogram.one_count_relative_half_width == pytest.approx((high - low) / 2 * 2000)


def test_direct_histogram_closes_the_last_bin():
    histogram = diagnostics.direct_histogram(np.array([0.0, 1.0, 2.0]), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(histogram.counts, [1, 2])


@pytest.mark.parametrize("bins", [[1.0], [[0.0, 1.0]], [0.0, 2.0, 1.0], [0.0, np.nan, 1.0], [0.0, 0.0]])
def test_bad_bins_are_rejected(bins):
    with pytest.raises(ValueError, match="bins"):
        diagnostics.direct_histogram(np.zeros(3), bins)


# ----------------------------------------------------------------------------- bootstrap percentiles


def test_log_percentile_interval_is_numpys_percentile_of_the_values():
    rng = np.random.default_rng(1)
    values = rng.lognormal(size=(37, 4))
    values[:10, 0] = 0.0  # replicas that saw no sample in a bin
    with np.errstate(divide="ignore"):
        log_values = np.log(values) - 800.0
    interval = diagnostics.log_percentile_interval(log_values, level=0.96)
    expected = np.percentile(values, [2.0, 98.0], axis=0)
    # percentiles commute with a common scale factor e^{-800}, far below the smallest float64
    np.testing.assert_allclose(np.exp(interval + 800.0), expected, rtol=1e-12)
    assert interval[0, 0] == -np.inf


def test_log_percentile_interval_needs_two_replicas():
    with pytest.raises(ValueError, match="2 bootstrap replicas"):
        diagnostics.log_percentile_interval(np.zeros((1, 3)))


# ----------------------------------------------------------------------------- chains


def test_burn_in_drops_the_floor_of_the_fraction():
    values = np.arange(2 * 25 * 3).reshape(2, 25, 3)
    trimmed = diagnostics.drop_burn_in(values, 0.1)
    assert trimmed.shape == (2, 23, 3)
    np.testing.assert_array_equal(trimmed, values[:, 2:])
    assert diagnostics.drop_burn_in(values, 0.0).shape == values.shape
    with pytest.raises(ValueError, match="burn_in"):
        diagnostics.drop_burn_in(values, 1.0)


def test_rhat_flags_the_bias_whose_chains_disagree():
    rng = np.random.default_rng(2)
    phi = rng.normal(size=(4, 500, 3))
    phi[:, :, 1] += np.arange(4)[:, None]  # chains of bias 1 sit at different levels
    for method in ("rank", "identity"):
        rhat = diagnostics.rhat_per_bias(phi, method)
        # i.i.d. chains: R-hat − 1 is O(1/N); chains offset by 1 sd: R-hat ≈ sqrt(1 + var(offsets)) ≈ 1.5
        assert rhat[1] > 1.3
        assert np.all(np.abs(rhat[[0, 2]] - 1.0) < 0.02)


def test_rhat_is_undefined_for_one_chain_or_constant_values():
    rng = np.random.default_rng(3)
    assert np.all(np.isnan(diagnostics.rhat_per_bias(rng.normal(size=(1, 100, 2)))))
    constant = np.ones((4, 100, 1))
    assert np.isnan(diagnostics.rhat_per_bias(constant, "rank"))[0]
    assert np.isnan(diagnostics.rhat_per_bias(constant, "identity"))[0]


def test_rhat_and_ess_reject_bad_input():
    with pytest.raises(ValueError, match="rhat_method"):
        diagnostics.rhat_per_bias(np.zeros((2, 10, 1)), "split")
    with pytest.raises(ValueError, match=r"\(chain, draw, bias\)"):
        diagnostics.rhat_per_bias(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="ess method"):
        diagnostics.ess_per_bias(np.zeros((2, 10, 1)), "mean")


def test_bulk_ess_matches_ar1_theory():
    # AR(1) with coefficient ρ: ESS = M N (1 − ρ) / (1 + ρ). The spread of ESS/theory over 30 seeds
    # was measured at 2%, 4% and 7% for ρ = 0, 0.5, 0.8; the tolerances are 4 of those.
    rho = np.array([0.0, 0.5, 0.8])
    chains = ar1_chains(np.random.default_rng(4), rho, n_chains=4, n_draws=5000)
    theory = 4 * 5000 * (1 - rho) / (1 + rho)
    assert np.all(np.abs(diagnostics.ess_per_bias(chains, "bulk") / theory - 1.0) < [0.08, 0.16, 0.28])
    tail = diagnostics.ess_per_bias(chains, "tail")
    assert tail[0] > tail[1] > tail[2]


def test_acceptance_per_bias():
    accepted = np.zeros((2, 10, 3), dtype=bool)
    accepted[:, :3, 1] = True
    accepted[:, :, 2] = True
    np.testing.assert_allclose(diagnostics.acceptance_per_bias(accepted), [0.0, 0.3, 1.0])


def test_diagnose_collects_every_diagnostic_per_bias():
    rng = np.random.default_rng(5)
    phi = rng.normal(size=(3, 50, 2))
    table = diagnostics.diagnose(phi, [-0.1, -0.2], accepted=np.ones((3, 50, 2), dtype=bool))
    np.testing.assert_array_equal(table.n_chains, [3, 3])
    np.testing.assert_array_equal(table.acceptance, [1.0, 1.0])
    np.testing.assert_array_equal(table.rhat("identity"), diagnostics.rhat_per_bias(phi, "identity"))
    assert np.all(np.isnan(diagnostics.diagnose(phi, [-0.1, -0.2]).acceptance))
    both = diagnostics.BiasDiagnostics.concatenate([table, table])
    assert both.bias.shape == (4,)
    with pytest.raises(ValueError, match="accepted has shape"):
        diagnostics.diagnose(phi, [-0.1, -0.2], accepted=np.ones((3, 49, 2), dtype=bool))
    with pytest.raises(ValueError, match="biases has shape"):
        diagnostics.diagnose(phi, [-0.1])


def test_direct_tail_counts_both_sides_with_wilson_intervals():
    values = np.array([0.0, 1.0, 2.0, 3.0])
    upper = diagnostics.direct_tail(values, [0.0, 2.0, 3.5], "upper")
    lower = diagnostics.direct_tail(values, [0.0, 2.0, 3.5], "lower")
    np.testing.assert_allclose(upper.value, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(lower.value, [0.25, 0.75, 1.0])
    np.testing.assert_allclose(upper.interval, np.stack(diagnostics.wilson_interval(np.array([4, 2, 0]), 4)))
    assert upper.interval[0, -1] == 0.0 and lower.interval[1, -1] == 1.0
    with pytest.raises(ValueError, match="side"):
        diagnostics.direct_tail(values, [1.0], "both")


def test_tail_agreement_sorts_thresholds_by_where_the_intervals_lie():
    direct = logspace.LogEstimate.from_values([0.5, 0.1, 0.01, 0.0], [[0.4, 0.08, 0.005, 0.0], [0.6, 0.12, 0.02, 1e-3]])
    estimate = logspace.LogEstimate.from_values(
        [0.55, 0.01, 0.05, 1e-6], [[0.5, 0.005, 0.03, 1e-7], [0.6, 0.02, 0.07, 1e-5]]
    )
    verdict = diagnostics.tail_agreement(estimate, direct)
    assert verdict["seen"].tolist() == [True, True, True, False]
    assert verdict["agree"].tolist() == [True, False, False, False]
    assert verdict["too_low"].tolist() == [False, True, False, False]
    assert verdict["too_high"].tolist() == [False, False, True, False]


def test_run_diagnostics_read_the_inference_data():
    lm = solvable.random_markov_lm(3, 1, np.random.default_rng(0))
    run = tps.run_tempering(lm, [0], 6, "repeats", [0.0, -0.5, -1.0], 20, 4, seed=1, record=(), progress=False)
    d = diagnostics.diagnose_run(run, 0.2)
    phi = diagnostics.drop_burn_in(run.posterior["phi"].values, 0.2)
    np.testing.assert_array_equal(d.bias, run.posterior["bias"].values)
    np.testing.assert_array_equal(d.rhat_rank, diagnostics.rhat_per_bias(phi, "rank"))
    np.testing.assert_array_equal(diagnostics.after_burn_in(run, "phi", 0.2), phi)
    swaps = diagnostics.swap_acceptance(run)
    assert swaps.shape == (run.posterior.sizes["bias"] - 1,) and np.all((swaps >= 0) & (swaps <= 1))


def test_the_expansion_factor_is_hesterbergs():
    # √(n/(n−1)) t_{n−1}(0.98) / z(0.98): the t quantiles of a two-sided 96% interval
    assert diagnostics.expansion_factor(8) == pytest.approx(math.sqrt(8 / 7) * 2.5168 / 2.0537, rel=1e-3)
    assert diagnostics.expansion_factor(16) == pytest.approx(1.131, abs=1e-3)
    assert diagnostics.expansion_factor(100_000) == pytest.approx(1.0, abs=1e-4)
    assert diagnostics.expansion_factor(1) == 1.0 and diagnostics.expansion_factor(0) == 1.0
    factors = [diagnostics.expansion_factor(n) for n in range(2, 64)]
    assert np.all(np.diff(factors) < 0)  # more chains, less widening


def test_expanding_an_interval_widens_it_around_the_estimate():
    with np.errstate(divide="ignore"):  # log 0 = −inf
        log_estimate = np.log([0.1, 0.1, 0.0, 0.2])
        log_interval = np.log([[0.05, 0.0, 0.0, 0.05], [0.2, 0.3, 0.0, 0.1]])  # the last estimate lies above it
    wider = diagnostics.expand_log_interval(log_estimate, log_interval, 1.5)
    np.testing.assert_allclose(wider[:, 0], np.log(0.1) + 1.5 * (np.log([0.05, 0.2]) - np.log(0.1)))
    assert wider[0, 1] == -np.inf and wider[1, 1] == pytest.approx(np.log(0.1) + 1.5 * np.log(3.0))
    assert np.all(wider[:, 2] == -np.inf)  # a zero stays a zero
    np.testing.assert_allclose(wider[:, 3], [np.log(0.05) - 0.5 * np.log(2.0), np.log(0.1)])
    np.testing.assert_array_equal(diagnostics.expand_log_interval(log_estimate, log_interval, 1.0), log_interval)
    capped = diagnostics.expand_log_interval(np.log([0.5]), np.log([[0.3], [0.9]]), 2.0, log_ceiling=0.0)
    assert capped[1, 0] == 0.0 and capped[0, 0] == pytest.approx(np.log(0.5) + 2 * np.log(0.6))  # ≤ 1

"""Tests of rarelib.reweighting on synthetic runs whose answers are known exactly.

Two toys with exact tilted laws (p_λ ∝ e^{−λφ} p_M):
* Binomial: φ ~ Binomial(n, p) under the base law; p_λ = Binomial(n, p e^{−λ} / (1 − p + p e^{−λ}));
  Z(λ) = (1 − p + p e^{−λ})^n.
* Gaussian: base N(0, 1); p_λ = N(−λ, 1); Z(λ) = e^{λ²/2}.
Biased runs hold exact draws (i.i.d., or stationary AR(1) chains) arranged as (chain, draw, bias).
Tolerances are k standard errors from pymbar's analytic uncertainties, or bootstrap intervals.
"""

import json
import warnings

import arviz as az
import numpy as np
import pytest
from scipy import stats
from synthetic import biased_run, direct_run, gaussian_chains, gaussian_runs

from rarelib import diagnostics, logspace, reweighting, storage

# pymbar's compute_expectations takes the log of the observable, which is 0 for some samples
PYMBAR_LOG_OF_ZERO = pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")
N_TRIALS, P_SUCCESS = 30, 0.2
BINOMIAL_LAMBDAS = np.array([-0.5, -1.0, -1.5, -2.0])


def binomial_tilted_p(lam):
    return P_SUCCESS * np.exp(-lam) / (1 - P_SUCCESS + P_SUCCESS * np.exp(-lam))


def binomial_log_z(lam):
    return N_TRIALS * np.log(1 - P_SUCCESS + P_SUCCESS * np.exp(-np.asarray(lam)))


def quiet(function, *args, **kwargs):
    """Call ``function`` and fail if it warns: the synthetic runs here are well converged and overlapping."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", reweighting.ReweightingWarning)
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def binomial_fit():
    rng = np.random.default_rng(10)
    direct = rng.binomial(N_TRIALS, P_SUCCESS, size=2000).astype(float)
    tilted = rng.binomial(N_TRIALS, binomial_tilted_p(BINOMIAL_LAMBDAS), size=(8, 250, BINOMIAL_LAMBDAS.size)).astype(
        float
    )
    runs = [
        direct_run(direct, phi_squared=direct**2),
        biased_run(tilted, BINOMIAL_LAMBDAS, sampler="annealed_tps", phi_squared=tilted**2),
    ]
    return quiet(reweighting.fit_mbar, runs)


@pytest.fixture(scope="module")
def gaussian_toy_runs():
    return gaussian_runs(np.random.default_rng(11), [-2.0, -4.0, -6.0], n_chains=10, n_draws=100)


@pytest.fixture(scope="module")
def gaussian_analysis(gaussian_toy_runs):
    settings = reweighting.Settings(n_bootstrap=100)
    bins = np.linspace(-3.0, 9.0, 25)
    return quiet(
        reweighting.analyze, gaussian_toy_runs, bins, rng=np.random.default_rng(12), thresholds=[6.0], settings=settings
    )


# ----------------------------------------------------------------------------- known answers


def test_binomial_log_partition_within_three_standard_errors(binomial_fit):
    log_z, std = reweighting.sampled_log_partition(binomial_fit)
    np.testing.assert_array_equal(binomial_fit.states, [-2.0, -1.5, -1.0, -0.5, 0.0])
    np.testing.assert_array_equal(binomial_fit.selection.samples_per_state, [1800, 1800, 1800, 1800, 2000])
    assert std[-1] == 0 and np.all(std[:-1] > 0)
    assert np.all(np.abs(log_z - binomial_log_z(binomial_fit.states)) <= 3 * std)
    np.testing.assert_allclose(reweighting.log_partition(binomial_fit, binomial_fit.states), log_z, atol=1e-9)


def test_log_partition_at_unsampled_lambdas(binomial_fit):
    lambdas = np.array([-2.5, -1.25, -0.75, 0.3])
    phi = binomial_fit.samples["phi"]
    perturbed = binomial_fit.mbar.compute_perturbed_free_energies(
        np.vstack([np.zeros_like(phi), np.outer(lambdas, phi)])
    )
    pymbar_log_z, std = -perturbed["Delta_f"][0, 1:], perturbed["dDelta_f"][0, 1:]
    log_z = reweighting.log_partition(binomial_fit, lambdas)
    np.testing.assert_allclose(log_z, pymbar_log_z, rtol=1e-10, atol=1e-10)
    assert np.all(np.abs(log_z - binomial_log_z(lambdas)) <= 3 * std)


@PYMBAR_LOG_OF_ZERO
def test_expectations_of_phi_and_of_other_variables(binomial_fit):
    lambdas = np.array([0.0, -0.75, -1.75])
    phi = binomial_fit.samples["phi"]
    means = reweighting.expectation(binomial_fit, "phi", lambdas)
    exact = N_TRIALS * binomial_tilted_p(lambdas)
    for lam, mean, truth in zip(lambdas, means, exact):
        reference = binomial_fit.mbar.compute_expectations(phi, lam * phi)
        assert mean == pytest.approx(reference["mu"][0], rel=1e-10)
        assert abs(mean - truth) <= 3 * reference["sigma"][0]
    second_moment = N_TRIALS * P_SUCCESS * (1 - P_SUCCESS) + (N_TRIALS * P_SUCCESS) ** 2
    sigma = binomial_fit.mbar.compute_expectations(phi**2, np.zeros_like(phi))["sigma"][0]
    assert abs(reweighting.expectation(binomial_fit, "phi_squared") - second_moment) <= 3 * sigma
    by_function = reweighting.expectation(binomial_fit, lambda samples: samples["phi"] ** 2)
    assert by_function == pytest.approx(reweighting.expectation(binomial_fit, "phi_squared"), rel=1e-12)


@PYMBAR_LOG_OF_ZERO
def test_tails_and_bins_match_the_exact_binomial_law(binomial_fit):
    phi = binomial_fit.samples["phi"]
    thresholds = np.array([6.0, 12.0, 16.0, 20.0])
    upper = reweighting.log_tail_probabilities(binomial_fit, thresholds, "upper")
    lower = reweighting.log_tail_probabilities(binomial_fit, thresholds, "lower")
    exact_upper = stats.binom.logsf(thresholds - 1, N_TRIALS, P_SUCCESS)
    exact_lower = stats.binom.logcdf(thresholds, N_TRIALS, P_SUCCESS)
    for a, log_estimate, truth in zip(thresholds, upper, exact_upper):
        reference = binomial_fit.mbar.compute_expectations((phi >= a).astype(float), np.zeros_like(phi))
        assert np.exp(log_estimate) == pytest.approx(reference["mu"][0], rel=1e-9)
        assert abs(np.exp(log_estimate) - np.exp(truth)) <= 3 * reference["sigma"][0]
    for a, log_estimate, truth in zip(thresholds, lower, exact_lower):
        sigma = binomial_fit.mbar.compute_expectations((phi <= a).astype(float), np.zeros_like(phi))["sigma"][0]
        assert abs(np.exp(log_estimate) - np.exp(truth)) <= 3 * sigma
    edges = np.arange(-0.5, 31.0)  # one bin per value of φ
    bins = np.exp(reweighting.log_bin_probabilities(binomial_fit, edges))
    pmf = stats.binom.pmf(np.arange(31), N_TRIALS, P_SUCCESS)
    sampled = np.isin(np.arange(31), phi)
    sigma = np.array(
        [
            binomial_fit.mbar.compute_expectations((phi == k).astype(float), np.zeros_like(phi))["sigma"][0]
            for k in np.arange(31)[sampled]
        ]
    )
    assert np.all(np.abs(bins[sampled] - pmf[sampled]) <= 3 * sigma)
    assert np.all(bins[~sampled] == 0)


def test_bins_and_tails_are_consistent(binomial_fit):
    phi = binomial_fit.samples["phi"]
    edges = np.linspace(phi.min(), phi.max(), 8)
    log_bins = reweighting.log_bin_probabilities(binomial_fit, edges)
    assert reweighting.log_partition(binomial_fit, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert np.logaddexp.reduce(log_bins) == pytest.approx(0.0, abs=1e-12)
    upper = np.exp(reweighting.log_tail_probabilities(binomial_fit, edges, "upper"))
    np.testing.assert_allclose(np.exp(log_bins[:-1]), upper[:-2] - upper[1:-1], rtol=1e-9, atol=1e-15)


def test_gaussian_tail_at_six_sigma_within_bootstrap_interval(gaussian_analysis):
    exact = stats.norm.sf(6.0)  # ≈ 9.9e-10
    lower, upper = gaussian_analysis.upper_tail.interval[:, 0]
    assert lower <= exact <= upper
    np.testing.assert_allclose(gaussian_analysis.upper_tail.log10, gaussian_analysis.upper_tail.log / np.log(10))
    log_z = gaussian_analysis.partition_function.log
    assert np.all(np.abs(log_z - gaussian_analysis.states**2 / 2) <= 3 * gaussian_analysis.log_z_std)
    pf_lower, pf_upper = gaussian_analysis.partition_function.log_interval
    assert np.all((pf_lower <= log_z + 1e-12) & (log_z - 1e-12 <= pf_upper))


def test_density_agrees_with_direct_sampling_in_the_bulk(gaussian_toy_runs, gaussian_analysis):
    # the 96% Wilson intervals of the direct run alone and MBAR's bootstrap intervals must
    # overlap in every bin of the bulk, where direct sampling resolves the density
    direct = gaussian_toy_runs[0].posterior["phi"].values
    edges = gaussian_analysis.bin_edges
    histogram = diagnostics.direct_histogram(direct, edges)
    bulk = (edges[:-1] >= -2.0) & (edges[1:] <= 2.0)
    mbar_lower, mbar_upper = gaussian_analysis.density_interval[:, bulk]
    direct_lower, direct_upper = histogram.density_interval[:, bulk]
    assert np.all((mbar_lower <= direct_upper) & (direct_lower <= mbar_upper))
    np.testing.assert_allclose(gaussian_analysis.density * np.diff(edges), gaussian_analysis.bin_probability.value)
    assert np.all(gaussian_analysis.bin_probability.relative_half_width[bulk] > 0)


def test_tails_near_1e_minus_300_stay_finite():
    rng = np.random.default_rng(12)
    lambdas = -np.append(np.arange(3.0, 37.0, 3.0), 37.0)  # N(−λ, 1) ladder up to mean 37
    runs = [direct_run(rng.normal(size=200)), biased_run(gaussian_chains(rng, lambdas, 2, 112), lambdas)]
    fit = quiet(reweighting.fit_mbar, runs)
    phi = fit.samples["phi"]
    thresholds = np.array([37.0, 1e3])
    log_tail = reweighting.log_tail_probabilities(fit, thresholds, "upper")
    # reference: pymbar's perturbed free energy of the state "φ ≥ 37" (u = +inf below 37), in log space
    indicator_potential = np.where(phi >= 37.0, 0.0, np.inf)
    perturbed = fit.mbar.compute_perturbed_free_energies(np.vstack([np.zeros_like(phi), indicator_potential]))
    assert log_tail[0] == pytest.approx(-perturbed["Delta_f"][0, 1], rel=1e-9)
    assert abs(log_tail[0] - stats.norm.logsf(37.0)) <= 3 * perturbed["dDelta_f"][0, 1]
    tail = np.exp(log_tail[0])
    assert 1e-302 < tail < 1e-297 and np.isfinite(log_tail[0] / np.log(10))
    assert log_tail[1] == -np.inf and np.exp(log_tail[1]) == 0.0
    log_bins = reweighting.log_bin_probabilities(fit, [30.0, 34.0, 38.0])
    assert np.all(np.isfinite(log_bins)) and np.all(np.exp(log_bins) > 0)


def test_bootstrap_interval_coverage():
    # 50 repetitions of a small problem with a known answer, P(x ≥ 3) ≈ 1.35e-3 under N(0, 1),
    # from 300 direct draws and 8 AR(1) chains (ρ = 0.3, 60 draws) at λ = −3. A chain bootstrap over
    # M chains behaves like a t interval with M − 1 degrees of freedom: the plain percentile interval
    # covered 87 of 100 such repetitions, the expanded one (×1.31 for 8 chains) 95 of 100. 25 replicas
    # per interval (not 100) keep the test fast. If the expanded intervals cover with probability ≥ 0.93,
    # fewer than 40 of 50 cover with probability 5.7e-4 (binomial).
    rng = np.random.default_rng(13)
    settings = reweighting.Settings(n_bootstrap=25)
    covered = []
    for _ in range(50):
        runs = gaussian_runs(rng, [-3.0], n_chains=8, n_draws=60, n_direct=300, rho=0.3)
        analysis = reweighting.analyze(runs, [-4.0, 8.0], rng=rng, thresholds=[3.0], settings=settings)
        lower, upper = analysis.upper_tail.interval[:, 0]
        covered.append(lower <= stats.norm.sf(3.0) <= upper)
    assert sum(covered) >= 40


def test_the_intervals_are_the_percentile_intervals_expanded_for_the_number_of_chains():
    runs = gaussian_runs(np.random.default_rng(5), [-2.0, -4.0], n_chains=8, n_draws=50, n_direct=400)
    analyses = {
        correct: reweighting.analyze(
            runs,
            [-3.0, 8.0],
            rng=np.random.default_rng(6),
            thresholds=[2.0, 4.0],
            settings=reweighting.Settings(n_bootstrap=20, small_sample_correction=correct),
        )
        for correct in (True, False)
    }
    factor = reweighting.interval_expansion(reweighting.load_all(runs), reweighting.Settings())
    assert factor == pytest.approx(1.31, abs=0.005)  # 8 chains
    for name in ("upper_tail", "bin_probability", "partition_function"):
        plain, expanded = getattr(analyses[False], name), getattr(analyses[True], name)
        np.testing.assert_array_equal(expanded.log, plain.log)
        ceiling = np.inf if name == "partition_function" else 0.0  # probabilities stay ≤ 1
        np.testing.assert_allclose(
            expanded.log_interval, diagnostics.expand_log_interval(plain.log, plain.log_interval, factor, ceiling)
        )
        assert np.all(expanded.log_interval[0] <= plain.log_interval[0])
        assert np.all(expanded.log_interval[1] >= plain.log_interval[1])
    loaded = reweighting.Analysis.from_dataset(analyses[True].to_dataset())
    assert loaded.settings.small_sample_correction


def test_analysis_files_without_the_setting_hold_plain_percentile_intervals(gaussian_analysis):
    dataset = gaussian_analysis.to_dataset()
    settings = json.loads(dataset.attrs["settings"])
    del settings["small_sample_correction"]
    dataset.attrs["settings"] = json.dumps(settings)
    assert not reweighting.Analysis.from_dataset(dataset).settings.small_sample_correction


# ----------------------------------------------------------------------------- the R-hat filter, merging, overlap


def test_rhat_filter_drops_and_reports_the_unconverged_bias():
    rng = np.random.default_rng(14)
    lambdas = [-1.0, -2.0, -3.0]
    chains = gaussian_chains(rng, lambdas, 6, 200)
    chains[:, :, 1] += np.linspace(-1.0, 1.0, 6)[:, None]  # chains of λ = −2 disagree
    runs = [direct_run(rng.normal(size=500)), biased_run(chains, lambdas)]
    for method in ("rank", "identity"):
        settings = reweighting.Settings(rhat_method=method, n_bootstrap=5)
        with pytest.warns(reweighting.ReweightingWarning, match=r"dropped λ=-2 \(.*R-hat 1\.\d+ ≥ 1\.1\)"):
            analysis = reweighting.analyze(runs, np.linspace(-3, 6, 10), rng=rng, settings=settings)
        np.testing.assert_array_equal(analysis.states, [-3.0, -1.0, 0.0])
        assert [(run, lam) for run, lam, _ in analysis.dropped] == [(1, -2.0)]
        assert analysis.dropped[0][2] >= 1.1
        assert analysis.dropped[0][2] == analysis.segments.rhat(method)[2]
        with pytest.warns(reweighting.ReweightingWarning, match="dropped λ=-2"):
            fit = reweighting.fit_mbar(runs, settings)
        np.testing.assert_array_equal(fit.selection.segment_bias, [0.0, -1.0, -2.0, -3.0])
        np.testing.assert_array_equal(fit.selection.segment_kept, [True, True, False, True])
        assert fit.selection.segment_rhat[2] == analysis.dropped[0][2] and np.isnan(fit.selection.segment_rhat[0])
    lenient = quiet(reweighting.fit_mbar, runs, reweighting.Settings(rhat_threshold=5.0))
    np.testing.assert_array_equal(lenient.states, [-3.0, -2.0, -1.0, 0.0])


def test_a_bias_with_one_chain_is_kept_unchecked():
    rng = np.random.default_rng(15)
    runs = [
        direct_run(rng.normal(size=300)),
        biased_run(gaussian_chains(rng, [-1.5], 1, 200), [-1.5], sampler="annealed_tps"),
    ]
    with pytest.warns(reweighting.ReweightingWarning, match=r"kept λ=-1\.5 unchecked"):
        fit = reweighting.fit_mbar(runs)
    np.testing.assert_array_equal(fit.states, [-1.5, 0.0])
    np.testing.assert_array_equal(fit.selection.samples_per_state, [180, 300])


def test_equal_lambdas_across_runs_merge_into_one_state():
    rng = np.random.default_rng(16)
    first, second = gaussian_chains(rng, [-1.0, -2.0], 4, 100), gaussian_chains(rng, [-2.0], 4, 100)
    fit = quiet(
        reweighting.fit_mbar,
        [direct_run(rng.normal(size=400)), biased_run(first, [-1.0, -2.0]), biased_run(second, [-2.0])],
    )
    np.testing.assert_array_equal(fit.states, [-2.0, -1.0, 0.0])
    np.testing.assert_array_equal(fit.selection.samples_per_state, [720, 360, 400])
    after_burn_in = np.concatenate([first[:, 10:, 1].ravel(), second[:, 10:, 0].ravel()])
    np.testing.assert_array_equal(np.sort(fit.samples["phi"][:720]), np.sort(after_burn_in))
    log_z, std = reweighting.sampled_log_partition(fit)
    assert np.all(np.abs(log_z - fit.states**2 / 2) <= 3 * std)


def test_low_overlap_warning_names_the_pair_and_drops_the_state_beyond_the_gap():
    rng = np.random.default_rng(17)
    runs = [direct_run(rng.normal(size=300)), biased_run(gaussian_chains(rng, [-1.0, -9.0], 4, 100), [-1.0, -9.0])]
    with pytest.warns(reweighting.ReweightingWarning) as record:
        fit = reweighting.fit_mbar(runs)
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 2
    assert "between neighbouring states λ=-9 and λ=-1" in messages[0]
    assert messages[1].startswith("dropped λ=-9: beyond an overlap gap")
    np.testing.assert_array_equal(fit.states, [-1.0, 0.0])  # λ = −9 is not linked to the unbiased state
    overlap = reweighting.overlap_matrix(fit)
    np.testing.assert_allclose(overlap.sum(axis=1), 1.0)
    assert reweighting.neighbour_overlap(fit.selection.samples_per_state, overlap)[0] >= 0.03


def test_states_are_linked_to_the_unbiased_one_through_their_neighbours_only():
    rng = np.random.default_rng(25)
    lambdas = [-8.0, -7.5, -1.0, 0.5, 6.0]  # gaps between −7.5 and −1 and between 0.5 and 6
    runs = [direct_run(rng.normal(size=500)), biased_run(gaussian_chains(rng, lambdas, 4, 200), lambdas)]
    fit = reweighting._fit_chains(reweighting.load_all(runs), reweighting.Settings())  # no gap handling yet
    overlap = reweighting.overlap_matrix(fit)
    linked = reweighting.linked_to_unbiased(fit, overlap, 0.03)
    np.testing.assert_array_equal(fit.states[linked], [-1.0, 0.0, 0.5])


def test_estimates_past_an_overlap_gap_are_unresolved_not_narrow():
    # Far rungs beyond a gap would give a confident deep tail; the analysis must not report it.
    rng = np.random.default_rng(26)
    lambdas = [-1.0, -9.0, -9.5]
    runs = [direct_run(rng.normal(size=400)), biased_run(gaussian_chains(rng, lambdas, 4, 150), lambdas)]
    thresholds = np.array([0.0, 2.0, 8.0])
    with pytest.warns(reweighting.ReweightingWarning, match="beyond an overlap gap"):
        analysis = reweighting.analyze(
            runs,
            np.linspace(-4, 12, 9),
            thresholds=thresholds,
            rng=np.random.default_rng(0),
            settings=reweighting.Settings(n_bootstrap=20),
        )
    np.testing.assert_array_equal(analysis.states, [-1.0, 0.0])
    assert not analysis.segment_kept[1:].all()  # the far segments are marked as not used
    resolved = analysis.upper_tail.resolved
    assert resolved[0] and not resolved[-1]  # P(φ ≥ 8) lies past the remaining data
    assert logspace.reach(analysis.upper_tail) > np.log10(stats.norm.sf(8.0))


def test_without_a_direct_run_the_unbiased_state_is_extrapolated():
    rng = np.random.default_rng(18)
    lambdas = [-0.5, -1.0, -1.5]
    fit = quiet(reweighting.fit_mbar, biased_run(gaussian_chains(rng, lambdas, 6, 200), lambdas))
    np.testing.assert_array_equal(fit.selection.samples_per_state, [1080, 1080, 1080, 0])
    log_z, std = reweighting.sampled_log_partition(fit)
    assert np.all(np.abs(log_z - fit.states**2 / 2) <= 3 * std)


def test_exponential_averaging_guess_bridges_an_unsampled_unbiased_state():
    # one annealed family per sign and no direct run: λ = 0 sits between sampled states
    rng = np.random.default_rng(24)
    negative, positive = [-1.0, -0.5], [0.5, 1.0]
    runs = [
        biased_run(gaussian_chains(rng, negative, 5, 220), negative, sampler="annealed_tps"),
        biased_run(gaussian_chains(rng, positive, 5, 220), positive, sampler="annealed_tps"),
    ]
    fit = quiet(reweighting.fit_mbar, runs)
    np.testing.assert_array_equal(fit.selection.samples_per_state, [990, 990, 0, 990, 990])
    guess = reweighting.exponential_averaging_log_z(fit.selection)
    # each step of 0.5 averages e^{±0.5 x} over 990 unit-Gaussian draws: a lognormal mean whose
    # log has variance (e^{0.25} − 1)/990; steps between λ and 0 add up
    step_variance = (np.exp(0.25) - 1) / 990
    assert np.all(np.abs(guess - fit.states**2 / 2) <= 4 * np.sqrt(step_variance * np.abs(fit.states) / 0.5))
    log_z, std = reweighting.sampled_log_partition(fit)
    assert np.all(np.abs(log_z - fit.states**2 / 2) <= 3 * std)


# ----------------------------------------------------------------------------- bootstrap pieces


def test_resampling_takes_whole_chains_and_direct_draws():
    rng = np.random.default_rng(19)
    phi = gaussian_chains(rng, [-1.0, -2.0], 5, 30)
    chains = reweighting.load_chains(biased_run(phi, [-1.0, -2.0], accepted=phi > 1.5))
    resampled = reweighting.resample_chains(chains, np.random.default_rng(0))
    index = np.random.default_rng(0).integers(0, 5, size=5)
    np.testing.assert_array_equal(resampled.phi, phi[index])
    np.testing.assert_array_equal(resampled.accepted, (phi > 1.5)[index])
    direct = reweighting.load_chains(direct_run(np.arange(50.0)))
    draws = reweighting.resample_chains(direct, np.random.default_rng(1)).phi
    assert draws.shape == (1, 50, 1) and np.all(np.isin(draws, np.arange(50.0))) and np.unique(draws).size < 50


def test_first_half_comparison_agrees_for_stationary_chains():
    rng = np.random.default_rng(20)
    runs = gaussian_runs(rng, [-2.0, -4.0], n_chains=8, n_draws=120, n_direct=600)
    settings = reweighting.Settings(n_bootstrap=20)
    full, half = quiet(
        reweighting.first_half_comparison,
        runs,
        np.linspace(-3, 7, 11),
        rng=rng,
        thresholds=[3.0, 5.0],
        settings=settings,
    )
    np.testing.assert_array_equal(full.segments.n_draws, [600, 108, 108])
    np.testing.assert_array_equal(half.segments.n_draws, [300, 54, 54])
    # both estimate the same tails: their 96% intervals overlap
    assert np.all(half.upper_tail.interval[0] <= full.upper_tail.interval[1])
    assert np.all(full.upper_tail.interval[0] <= half.upper_tail.interval[1])


# ----------------------------------------------------------------------------- the result on disk


def test_analysis_round_trips_through_netcdf(gaussian_analysis, tmp_path):
    path = gaussian_analysis.save(tmp_path / "analysis.nc")
    loaded = reweighting.Analysis.load(path)
    assert loaded.observable == "x" and loaded.settings == gaussian_analysis.settings
    assert loaded.messages == gaussian_analysis.messages
    for name in (
        "states",
        "samples_per_state",
        "log_z_std",
        "overlap",
        "bin_edges",
        "thresholds",
        "upper_tail_share",
        "lower_tail_share",
        "segment_run",
        "segment_direct",
        "segment_kept",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gaussian_analysis, name))
    for name in ("partition_function", "bin_probability", "upper_tail", "lower_tail"):
        np.testing.assert_array_equal(getattr(loaded, name).log, getattr(gaussian_analysis, name).log)
        np.testing.assert_array_equal(getattr(loaded, name).log_interval, getattr(gaussian_analysis, name).log_interval)
    np.testing.assert_array_equal(loaded.segments.ess_bulk, gaussian_analysis.segments.ess_bulk)
    np.testing.assert_array_equal(loaded.density, gaussian_analysis.density)


def test_loading_a_missing_or_corrupt_file_fails_clearly(gaussian_analysis, tmp_path):
    with pytest.raises(FileNotFoundError, match="no analysis file"):
        reweighting.Analysis.load(tmp_path / "absent.nc")
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netCDF file" * 20)
    with pytest.raises(ValueError, match="not a readable netCDF analysis file"):
        reweighting.Analysis.load(garbage)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(gaussian_analysis.save(tmp_path / "whole.nc").read_bytes()[:2000])
    with pytest.raises(ValueError, match="not a readable netCDF analysis file"):
        reweighting.Analysis.load(truncated)
    samples_file = storage.save(direct_run(np.zeros(3)), tmp_path / "samples.nc")
    with pytest.raises(ValueError, match="not an analysis file: it lacks"):
        reweighting.Analysis.load(samples_file)


# ----------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def small_runs():
    rng = np.random.default_rng(21)
    return gaussian_runs(rng, [-1.0, -2.0], n_chains=4, n_draws=50, n_direct=200)


def test_all_biases_filtered_out_names_them_and_their_rhat():
    rng = np.random.default_rng(22)
    chains = gaussian_chains(rng, [-1.0, -2.0], 4, 100) + np.arange(4)[:, None, None]
    runs = [direct_run(rng.normal(size=100)), biased_run(chains, [-1.0, -2.0])]
    with pytest.raises(
        ValueError, match=r"no biased samples survive.*dropped λ=-1 \(.*R-hat \d\.\d+ ≥ 1\.1\).*dropped λ=-2"
    ):
        reweighting.fit_mbar(runs)


def test_a_bias_with_no_samples_is_named():
    rng = np.random.default_rng(23)
    chains = gaussian_chains(rng, [-1.0, -2.0], 4, 50)
    chains[:, :, 1] = np.nan
    with pytest.raises(ValueError, match=r"biases λ=\[-2\.0\] have missing samples"):
        reweighting.fit_mbar(biased_run(chains, [-1.0, -2.0]))
    with pytest.raises(ValueError, match="no samples"):
        reweighting.fit_mbar(biased_run(np.zeros((4, 0, 2)), [-1.0, -2.0]))


def test_bins_outside_the_data_are_rejected(small_runs):
    with pytest.raises(ValueError, match=r"bins span \[20, 30\] but the .* kept samples lie in"):
        reweighting.analyze(small_runs, [20.0, 25.0, 30.0], rng=np.random.default_rng(0))


def test_mismatched_shapes_are_rejected(small_runs):
    phi = np.zeros((4, 50, 2))
    accepted = biased_run(np.zeros((3, 50, 2)), [-1.0, -2.0], accepted=np.ones((3, 50, 2), dtype=bool))
    mismatched = az.InferenceData(posterior=biased_run(phi, [-1.0, -2.0]).posterior, sample_stats=accepted.sample_stats)
    with pytest.raises(ValueError, match=r"accepted has shape \(3, 50, 2\); phi has \(4, 50, 2\)"):
        reweighting.load_chains(mismatched)
    fit = quiet(reweighting.fit_mbar, small_runs)
    with pytest.raises(ValueError, match="one value per sample"):
        reweighting.expectation(fit, lambda samples: samples["phi"][:10])
    with pytest.raises(ValueError, match="lambdas must be"):
        reweighting.log_partition(fit, [[0.0, 1.0]])


@pytest.mark.parametrize(
    "runs_of,match",
    [
        (lambda runs: [runs[0]], "nothing to reweight.*no biased run"),
        (lambda runs: [], "runs is empty"),
        (
            lambda runs: [
                storage.make_run({"phi": np.zeros((1, 5, 1))}, [-1.0], attrs={"observable": "x", "sampler": "direct"})
            ],
            "direct run must have bias=\\[0.0\\]",
        ),
        (lambda runs: [runs[0], biased_run(np.zeros((2, 5, 1)), [-1.0], observable="ari")], "different observables"),
    ],
)
def test_bad_runs_are_rejected(small_runs, runs_of, match):
    with pytest.raises(ValueError, match=match):
        reweighting.fit_mbar(runs_of(small_runs))


def test_bad_requests_are_rejected(small_runs):
    fit = quiet(reweighting.fit_mbar, small_runs)
    with pytest.raises(ValueError, match=r"quantity='ari'.*\['phi'\]"):
        reweighting.expectation(fit, "ari")
    with pytest.raises(ValueError, match="side='both'"):
        reweighting.log_tail_probabilities(fit, [1.0], side="both")
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        reweighting.analyze(small_runs, [-3.0, 3.0], rng=0)


@pytest.mark.parametrize(
    "field,value",
    [
        ("burn_in", 1.0),
        ("rhat_threshold", 1.0),
        ("rhat_method", "split"),
        ("n_bootstrap", 1),
        ("level", 0.0),
        ("min_overlap", -0.1),
    ],
)
def test_bad_settings_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        reweighting.Settings(**{field: value})


def test_runs_load_from_paths(small_runs, tmp_path):
    paths = [storage.save(run, tmp_path / f"run{i}.nc") for i, run in enumerate(small_runs)]
    from_paths = quiet(reweighting.fit_mbar, paths)
    np.testing.assert_array_equal(from_paths.log_weights, quiet(reweighting.fit_mbar, small_runs).log_weights)
    with pytest.raises(FileNotFoundError):
        reweighting.fit_mbar(tmp_path / "absent.nc")


def test_tails_need_no_bins(small_runs):
    thresholds = np.array([0.0, 1.5, 3.0])
    without = quiet(reweighting.analyze, small_runs, rng=np.random.default_rng(5), thresholds=thresholds)
    edges = np.linspace(-6.0, 8.0, 15)
    with_bins = quiet(reweighting.analyze, small_runs, edges, rng=np.random.default_rng(5), thresholds=thresholds)
    np.testing.assert_array_equal(without.upper_tail.log, with_bins.upper_tail.log)
    np.testing.assert_array_equal(without.upper_tail.log_interval, with_bins.upper_tail.log_interval)
    phi = np.concatenate([reweighting.load_chains(run).phi.ravel() for run in small_runs])
    assert without.bin_edges.size == reweighting.DEFAULT_BINS + 1
    assert without.bin_edges[0] == phi.min() and without.bin_edges[-1] == phi.max()

"""Tests of rarelib.importance: guided importance sampling against exact tails on solvable Markov LMs.

Every statistical check is a z-test on an error bar the estimator reports, Bonferroni-corrected over
the thresholds checked so that a correct estimator fails it with probability ≤ 1e-3 (for the
delta-method interval, to the normal approximation, which holds here: every threshold checked has an
effective sample size of ≥ 50). The same check is shown to fail for an estimator with wrong weights.
"""

import math

import numpy as np
import pytest
from scipy import stats

from rarelib import importance
from rarelib import observables as obs
from rarelib.exact import solvable, validation

FALSE_FAILURE = 1e-3


@pytest.fixture(scope="module")
def problem():
    model = validation.repetition_loop_lm(5, 0.1, 0.005, np.random.default_rng(1))
    return validation.Problem(model, "bca", 10, solvable.AdditiveObservable("token_count", {0}))


@pytest.fixture(scope="module")
def samples(problem):
    return importance.sample_guided(
        problem.model,
        list(problem.prompt),
        problem.completion_length,
        observable=obs.token_class_count([0]),
        guide=[0],
        strengths=[0.0, -2.0, -4.0],
        n_per_strength=1000,
        seed=3,
        progress=False,
    )


def z_scores(estimate: importance.ImportanceTail, log_exact: np.ndarray) -> np.ndarray:
    """(A,) |P̂ − P| / s.e.(P̂), the standard error taken from the estimate (relative s.e. × P̂)."""
    log = estimate.estimate.log
    return np.abs(np.exp(log - log_exact) - 1.0) * np.exp(log_exact - log) / estimate.relative_se


def consistent(estimate: importance.ImportanceTail, log_exact: np.ndarray) -> bool:
    """Every threshold's estimate within the Bonferroni z bound (family-wise false failure ≤ 1e-3)."""
    bound = stats.norm.ppf(1 - FALSE_FAILURE / (2 * len(log_exact)))
    return bool(np.all(np.isfinite(estimate.estimate.log)) and np.all(z_scores(estimate, log_exact) <= bound))


def test_balance_heuristic_recovers_exact_tails_to_1e_10(problem, samples):
    estimate = importance.tail_probabilities(samples, problem.thresholds)
    log_exact = problem.exact.log_prob_at_least(problem.thresholds)
    assert log_exact.min() < math.log(1e-9) and np.all(estimate.ess >= 50)
    assert consistent(estimate, log_exact)


def test_wrong_weights_are_caught(problem, samples):
    """Weights that ignore the proposal (w = 1 for samples of q) fail the same check by a wide margin."""
    unweighted = importance.GuidedSamples(
        samples.phi,
        samples.log_p,
        np.repeat(samples.log_p[:, None], 3, axis=1),
        samples.strength_index,
        samples.strengths,
        samples.counts,
        samples.tokens,
    )
    estimate = importance.tail_probabilities(unweighted, problem.thresholds, warn=False)
    assert not consistent(estimate, problem.exact.log_prob_at_least(problem.thresholds))


def test_recorded_proposal_log_probs_are_exact(problem):
    """log q_s(x) under every strength of the design, against the class-tilted row of the model's table (L = 1)."""
    row = problem.model.log_probs[problem.prompt[-1]]  # (T,) log p(x | last prompt token), all distinct
    drawn = importance.sample_guided(
        problem.model,
        list(problem.prompt),
        1,
        observable="logprob",
        guide=[0],
        strengths=[0.0, -1.5, 2.0],
        n_per_strength=20,
        seed=1,
        progress=False,
    )
    tokens = np.abs(drawn.log_p[:, None] - row[None, :]).argmin(axis=1)
    np.testing.assert_allclose(drawn.log_p, row[tokens], atol=1e-5)
    for k, s in enumerate(drawn.strengths):
        tilted = row - s * (np.arange(row.size) == 0)
        np.testing.assert_allclose(drawn.log_q[:, k], (tilted - np.logaddexp.reduce(tilted))[tokens], atol=1e-5)


def test_balance_weights_are_bounded_by_the_defensive_component(samples):
    """With s = 0 (q = p_M) in the design, w ≤ N/n_0: the mixture never under-weights p_M by more than that."""
    log_w = importance.log_weights(samples)
    assert np.all(log_w <= math.log(samples.counts.sum() / samples.counts[0]) + 1e-9)


def test_one_strength_is_plain_importance_sampling(problem, samples):
    one = samples.select(1)
    np.testing.assert_allclose(importance.log_weights(one, "balance"), importance.log_weights(one, "own"))
    np.testing.assert_allclose(importance.log_weights(one), one.log_p - one.log_q[:, 0])


def test_log_partition_and_bootstrap_interval(problem, samples):
    lambdas = np.array([-1.0, -3.0])
    z, relative_se = importance.log_partition(samples, lambdas)
    log_z, interval = z.log, z.log_interval
    bound = stats.norm.ppf(1 - FALSE_FAILURE / 4)
    assert np.all(np.abs(np.exp(problem.exact_log_partition(lambdas) - log_z) - 1) <= bound * relative_se)
    assert np.all(interval[0] < log_z) and np.all(log_z < interval[1])
    boot = importance.tail_probabilities(
        samples, problem.thresholds, interval="bootstrap", rng=np.random.default_rng(0), n_bootstrap=50
    )
    assert np.all(boot.estimate.log_interval[0] <= boot.estimate.log)
    assert np.all(boot.estimate.log <= boot.estimate.log_interval[1])


def test_few_dominant_weights_warn(problem):
    tiny = importance.sample_guided(
        problem.model,
        list(problem.prompt),
        problem.completion_length,
        observable=obs.token_class_count([0]),
        guide=[0],
        strengths=[0.0],
        n_per_strength=200,
        seed=0,
        progress=False,
    )
    with pytest.warns(importance.ImportanceWeightWarning, match="effective samples"):
        estimate = importance.tail_probabilities(tiny, problem.thresholds)
    seen = np.isfinite(estimate.estimate.log)
    assert not estimate.enough_ess[seen].all() and not seen.all()
    assert np.all(estimate.estimate.log_interval[:, ~seen] == -np.inf)


def test_resumes_to_the_same_samples(problem, tmp_path):
    arguments = dict(
        observable=obs.token_class_count([0]),
        guide="temperature",
        strengths=[0.0, 0.5],
        n_per_strength=40,
        batch_size=16,
        seed=5,
        progress=False,
    )
    whole = importance.sample_guided(problem.model, list(problem.prompt), 6, **arguments)
    importance.sample_guided(problem.model, list(problem.prompt), 6, out=tmp_path, **arguments)
    files = sorted(tmp_path.glob("guided_*.npz"))
    assert len(files) == 6
    for file in files[3:]:
        file.unlink()
    resumed = importance.sample_guided(problem.model, list(problem.prompt), 6, out=tmp_path, **arguments)
    for name in ("phi", "log_p", "log_q", "strength_index"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(resumed, name))
    with pytest.raises(ValueError, match="different arguments"):
        importance.sample_guided(problem.model, list(problem.prompt), 6, out=tmp_path, **{**arguments, "seed": 6})


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(strengths=[0.0, 0.0]), "distinct"),
        (dict(strengths=[]), "strengths"),
        (dict(n_per_strength=0), "n_per_strength"),
        (dict(n_per_strength=[5, 5, 5]), "n_per_strength"),
        (dict(guide="temperature", strengths=[0.0, 1.5]), "temperature"),
        (dict(guide=[99]), "token ids"),
    ],
)
def test_bad_sampling_arguments(problem, change, message):
    arguments = dict(observable="logprob", guide=[0], strengths=[0.0, -1.0], n_per_strength=4, progress=False)
    with pytest.raises(ValueError, match=message):
        importance.sample_guided(problem.model, list(problem.prompt), 4, **{**arguments, **change})


def test_bad_estimation_arguments(problem, samples):
    with pytest.raises(ValueError, match="side"):
        importance.tail_probabilities(samples, [1.0], side="both")
    with pytest.raises(ValueError, match="combine"):
        importance.tail_probabilities(samples, [1.0], combine="max")
    with pytest.raises(ValueError, match="rng"):
        importance.tail_probabilities(samples, [1.0], interval="bootstrap")
    with pytest.raises(ValueError, match="thresholds"):
        importance.tail_probabilities(samples, [])
    with pytest.raises(ValueError, match="level"):
        importance.tail_probabilities(samples, [1.0], level=96)
    with pytest.raises(ValueError, match="k must"):
        samples.select(7)

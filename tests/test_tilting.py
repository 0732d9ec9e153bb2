"""rarelib.tilting: importance weights recover exact tilted partition functions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rarelib import direct, tilting
from rarelib.exact import solvable

finite = st.floats(-50, 50, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_normalised_weights_sum_to_one_and_ess_is_bounded(log_w):
    weights = np.exp(tilting.normalised_log_weights(log_w))
    assert weights.sum() == pytest.approx(1.0)
    assert 1.0 - 1e-9 <= tilting.effective_sample_size(log_w) <= len(log_w) + 1e-9


def test_equal_weights_give_full_ess_and_plain_mean():
    assert tilting.effective_sample_size(np.zeros(10)) == pytest.approx(10)
    assert tilting.self_normalised_mean(np.arange(10.0), np.full(10, -3.0)) == pytest.approx(4.5)


@pytest.mark.parametrize("lam", [-0.5, 0.4])
def test_temperature_proposal_recovers_exact_logprob_partition_function(lam):
    """Z(λ) = E_{p_M}[p_M^{−λ}] = E_q[p_M^{1−λ}/q] with q = per-token temperature 1/(1−λ)."""
    lm = solvable.random_markov_lm(vocab_size=4, order=1, rng=np.random.default_rng(3), concentration=0.7)
    prompt, length = [1], 6
    temperature = tilting.temperature_for_logprob_tilt(lam)
    samples = direct.sample(
        lm, prompt, 4000, length, temperature=temperature, seed=11, progress=False, observables=["logprob"]
    )
    model_logprob = samples.token_logprobs.sum(axis=1)
    proposal_logprob = samples.sampling_logprobs.sum(axis=1)
    log_w = tilting.tilted_log_weights(model_logprob, lam, model_logprob, proposal_logprob)
    estimate = tilting.log_mean_weight(log_w)
    truth = float(solvable.log_partition(lm, "logprob", prompt, length, [lam])[0])
    weights = np.exp(log_w - log_w.max())
    relative_error = weights.std(ddof=1) / weights.mean() / np.sqrt(len(weights))
    assert abs(estimate - truth) < 4 * relative_error
    assert abs(estimate) > 8 * relative_error  # the tilt matters: Z(λ) is far from 1


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="log_weights"):
        tilting.effective_sample_size([])
    with pytest.raises(ValueError, match="same length"):
        tilting.tilted_log_weights([1.0, 2.0], 0.1, [0.0], [0.0])
    with pytest.raises(ValueError, match="below 1"):
        tilting.temperature_for_logprob_tilt(1.0)


def test_standard_errors_equal_the_delta_method_on_plain_weights():
    rng = np.random.default_rng(31)
    log_weights, values = rng.normal(0, 2, 500), rng.normal(size=500)
    weights = np.exp(log_weights)
    log_z, error = tilting.log_mean_weight_with_error(log_weights + 700.0)  # far beyond exp's range: logs only
    assert np.isclose(log_z, np.log(weights.mean()) + 700.0)
    assert np.isclose(error, weights.std(ddof=1) / weights.mean() / np.sqrt(weights.size))
    mean, mean_error = tilting.self_normalised_mean_with_error(values, log_weights)
    normalised = weights / weights.sum()
    assert np.isclose(mean, normalised @ values)
    assert np.isclose(mean_error, np.sqrt(np.sum(normalised**2 * (values - mean) ** 2)))
    with pytest.raises(ValueError, match="at least 2"):
        tilting.log_mean_weight_with_error([0.0])

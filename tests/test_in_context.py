"""rarelib.companions.in_context: random chains, the counting estimator, risks, power-law fits, the pre-trained GPT."""

import numpy as np
import pytest
import torch

from rarelib import diagnostics, models
from rarelib.companions import in_context
from rarelib.companions.toy_training import ToyTraining

TINY = in_context.ICLTraining(
    n_states=3,
    sequence_length=16,
    batch_size=8,
    model=ToyTraining(n_layer=1, n_embd=8, n_head=1, steps=3, learning_rate=1e-2),
)


def test_random_transition_matrices_are_dirichlet_rows():
    rng = np.random.default_rng(0)
    transitions = in_context.random_transition_matrices(4000, 3, 0.5, rng)
    assert transitions.shape == (4000, 3, 3) and (transitions >= 0).all()
    np.testing.assert_allclose(transitions.sum(axis=-1), 1.0, atol=1e-12)
    # each entry is Beta(α, 2α): mean 1/3, variance (1/3)(2/3)/(3α + 1)
    standard_error = np.sqrt((1 / 3) * (2 / 3) / (3 * 0.5 + 1) / 4000)
    assert np.abs(transitions.mean(axis=0) - 1 / 3).max() < 4 * standard_error


def test_stationary_distributions_are_invariant():
    transitions = in_context.random_transition_matrices(50, 4, 1.0, np.random.default_rng(1))
    pi = in_context.stationary_distributions(transitions)
    np.testing.assert_allclose(np.einsum("ci,cij->cj", pi, transitions), pi, atol=1e-12)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-12)
    power = np.linalg.matrix_power(transitions, 200)[:, 0]
    np.testing.assert_allclose(pi, power, atol=1e-9)


def test_sequences_start_stationary_and_follow_the_chain():
    transitions = np.repeat([[[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.05, 0.15, 0.8]]], 3000, axis=0)
    states = in_context.sample_sequences(transitions, 40, np.random.default_rng(2))
    assert states.shape == (3000, 40) and states.dtype == np.int64
    pi = in_context.stationary_distributions(transitions[:1])[0]
    assert diagnostics.chi_square_p_value(np.bincount(states[:, 0], minlength=3), pi) > 1e-3
    for row in range(3):
        after = states[:, 1:][states[:, :-1] == row]
        assert diagnostics.chi_square_p_value(np.bincount(after, minlength=3), transitions[0, row]) > 1e-3


def test_true_next_state_reads_the_current_row():
    transitions = in_context.random_transition_matrices(2, 3, 1.0, np.random.default_rng(3))
    sequences = np.array([[0, 2, 1], [1, 1, 0]])
    truth = in_context.true_next_state(transitions, sequences)
    np.testing.assert_array_equal(truth[0, 1], transitions[0, 2])
    np.testing.assert_array_equal(truth[1, 2], transitions[1, 0])


def test_counting_estimates_by_hand():
    estimates = in_context.counting_estimates(np.array([[0, 1, 0, 0]]), 2, smoothing=1.0)[0]
    # N = 1, 2: no transition out of the current state yet; N = 3: 0 → 1 seen; N = 4: 0 → 1 and 0 → 0 seen
    np.testing.assert_allclose(estimates, [[0.5, 0.5], [0.5, 0.5], [1 / 3, 2 / 3], [0.5, 0.5]])
    half = in_context.counting_estimates(np.array([[0, 1, 0, 0]]), 2, smoothing=0.5)[0]
    np.testing.assert_allclose(half[2], [0.5 / 2, 1.5 / 2])


def test_counting_estimates_converge_to_the_rows():
    transitions = in_context.random_transition_matrices(200, 3, 1.0, np.random.default_rng(4))
    states = in_context.sample_sequences(transitions, 512, np.random.default_rng(5))
    truth = in_context.true_next_state(transitions, states)
    risk = in_context.kl_divergence(truth, in_context.counting_estimates(states, 3, 1.0)).mean(axis=0)
    assert risk[511] < risk[63] < risk[7]
    assert risk[511] < 2 * in_context.counting_kl_asymptote(3, 512)


def test_divergences():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(in_context.kl_divergence(p, q), [np.log(2), 0.0], atol=1e-15)
    np.testing.assert_allclose(in_context.total_variation(p, q), [0.5, 0.0], atol=1e-15)
    rng = np.random.default_rng(6)
    a, b = rng.dirichlet(np.ones(3), size=1000), rng.dirichlet(np.ones(3), size=1000)
    assert (in_context.total_variation(a, b) <= np.sqrt(in_context.kl_divergence(a, b) / 2) + 1e-12).all()  # Pinsker


def test_cross_entropy_is_the_true_entropy_plus_the_kl_risk():
    transitions = in_context.random_transition_matrices(3000, 3, 1.0, np.random.default_rng(12))
    states = in_context.sample_sequences(transitions, 33, np.random.default_rng(13))
    contexts, targets = states[:, :-1], states[:, 1:]
    truth = in_context.true_next_state(transitions, contexts)
    uniform = np.full(truth.shape, 1 / 3)
    np.testing.assert_allclose(in_context.cross_entropy(uniform, targets), np.log(3))
    # E[−log q(x_{N+1})] = E[H(P(x_N, ·))] + E[KL(P(x_N, ·) ‖ q)], checked per chain-average within 4 standard errors
    q = in_context.counting_estimates(contexts, 3, 1.0)
    difference = in_context.cross_entropy(q, targets) - in_context.cross_entropy(truth, targets)
    kl = in_context.kl_divergence(truth, q).mean(axis=1)
    residual = difference - kl
    assert abs(residual.mean()) < 4 * residual.std(ddof=1) / np.sqrt(len(residual))


def test_power_law_fit_recovers_the_slope_within_its_error():
    rng = np.random.default_rng(7)
    context_lengths = np.geomspace(8, 256, 10)
    risks = 3.0 * context_lengths**-0.5 * rng.lognormal(0.0, 1.0, size=(2000, 10))
    fit = in_context.fit_power_law(context_lengths, risks, in_context.bootstrap_weights(2000, 400, rng))
    # the lognormal noise is independent across N, so the slope's error is about σ/sqrt(C Σ (log N − mean)²)
    expected_se = np.sqrt(np.expm1(1.0)) / np.sqrt(
        2000 * ((np.log(context_lengths) - np.log(context_lengths).mean()) ** 2).sum()
    )
    assert abs(fit.slope + 0.5) < 4 * fit.slope_se
    assert 0.7 < fit.slope_se / expected_se < 1.4
    np.testing.assert_allclose(fit.predict(context_lengths), np.exp(fit.intercept) * context_lengths**fit.slope)


def test_fit_lengths():
    np.testing.assert_array_equal(in_context.fit_lengths(8, 128, 5, 128), [8, 16, 32, 64, 128])
    assert len(in_context.fit_lengths(1, 4, 20, 10)) == 4  # rounding merges duplicates
    for low, high, n_points in ((8, 256, 5), (16, 8, 5), (8, 128, 2), (2, 3, 5), (0, 8, 5)):
        with pytest.raises(ValueError, match="fit range|low|fewer"):
            in_context.fit_lengths(low, high, n_points, 128)


def test_paired_bootstrap_cancels_shared_noise():
    rng = np.random.default_rng(8)
    context_lengths = np.geomspace(4, 128, 6)
    shared = rng.lognormal(0.0, 1.0, size=(500, 6))
    weights = in_context.bootstrap_weights(500, 300, rng)
    first = in_context.fit_power_law(context_lengths, context_lengths**-1.0 * shared, weights)
    second = in_context.fit_power_law(context_lengths, 2 * context_lengths**-1.0 * shared, weights)
    np.testing.assert_allclose(first.bootstrap_slopes, second.bootstrap_slopes, atol=1e-12)
    assert first.slope_se > 0.01


def test_model_estimates_are_causal_distributions():
    lm = models.random_model(alphabet="abc", context_length=12, n_embd=8, n_head=1, seed=0)
    states = in_context.sample_sequences(
        in_context.random_transition_matrices(5, 3, 1.0, np.random.default_rng(9)), 12, np.random.default_rng(10)
    )
    estimates = in_context.model_estimates(lm, states, batch_size=2)
    assert estimates.shape == (5, 12, 3) and estimates.dtype == np.float64
    np.testing.assert_allclose(estimates.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(in_context.model_estimates(lm, states[:, :7])[:, -1], estimates[:, 6], atol=1e-6)


def test_training_is_deterministic_and_round_trips(tmp_path):
    torch.set_num_threads(1)
    first, losses = in_context.train(TINY)
    second, again = in_context.train(TINY)
    np.testing.assert_array_equal(losses, again)
    assert losses.shape == (3,) and abs(losses[0] - np.log(3)) < 0.2
    np.testing.assert_array_equal(in_context.training_batch(TINY, 2), in_context.training_batch(TINY, 2))
    assert in_context.training_batch(TINY, 2).shape == (8, 17)
    in_context.save(tmp_path / "icl", first, TINY, losses)
    loaded, config, saved_losses = in_context.load(tmp_path / "icl")
    assert config == TINY
    np.testing.assert_allclose(saved_losses, losses, atol=1e-5)
    states = in_context.training_batch(TINY, 99).numpy()[:, :16]
    np.testing.assert_allclose(
        in_context.model_estimates(loaded, states), in_context.model_estimates(second, states), atol=1e-6
    )


@pytest.mark.skipif(not (in_context.DEFAULT_MODEL_DIR / "training.json").is_file(), reason="no shipped model")
def test_shipped_model_learns_in_context():
    lm, config, _ = in_context.load()
    rng = np.random.default_rng(11)
    transitions = in_context.random_transition_matrices(300, config.n_states, config.concentration, rng)
    states = in_context.sample_sequences(transitions, config.sequence_length, rng)
    truth = in_context.true_next_state(transitions, states)
    model = in_context.kl_divergence(truth, in_context.model_estimates(lm, states)).mean(axis=0)
    counting = in_context.kl_divergence(truth, in_context.counting_estimates(states, config.n_states, 1.0)).mean(axis=0)
    assert model[-1] < 0.5 * model[3], "the model's risk falls with the context length"
    assert model[-1] < 2 * counting[-1], "and comes close to the counting estimator's"


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_states"):
        in_context.random_transition_matrices(3, 1, 1.0, rng)
    with pytest.raises(ValueError, match="concentration"):
        in_context.random_transition_matrices(3, 3, 0.0, rng)
    with pytest.raises(ValueError, match="length"):
        in_context.sample_sequences(np.eye(3)[None], 0, rng)
    with pytest.raises(ValueError, match="smoothing"):
        in_context.counting_estimates(np.zeros((1, 4), dtype=int), 3, 0.0)
    with pytest.raises(ValueError, match="sequences"):
        in_context.counting_estimates(np.full((1, 4), 3), 3, 1.0)
    with pytest.raises(ValueError, match="context_lengths"):
        in_context.fit_power_law(np.array([1.0, 2.0]), np.ones((4, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="weights"):
        in_context.fit_power_law(np.array([1.0, 2.0, 4.0]), np.ones((4, 3)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="sequence_length"):
        in_context.ICLTraining(sequence_length=1)
    with pytest.raises(ValueError, match="context length"):
        in_context.model_estimates(models.random_model(alphabet="abc", context_length=4), np.zeros((1, 5), dtype=int))
    with pytest.raises(FileNotFoundError, match="in_context"):
        in_context.load("/nonexistent/folder")

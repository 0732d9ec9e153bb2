"""rarelib.exact.chains: tiny random transformers read as Markov chains on their contexts (Zekri et al.).

Checked against an independent construction of Q from single-context model calls, against
dense linear algebra (matrix powers, eigenvalues) and against the sliding-window transformer.
"""

import itertools

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from rarelib import models
from rarelib.exact import chains, solvable

WINDOW = 3
FLOAT32 = 1e-5  # the model's logits are float32


@pytest.fixture(scope="module", params=["ab", "ab ."], ids=["T2K3", "T4K3"])
def transformer(request):
    return models.random_model(alphabet=request.param, seed=3)


@pytest.fixture(scope="module")
def chain(transformer):
    return chains.model_as_chain(transformer, WINDOW)


def model_log_probs(lm, context, temperature=1.0):
    """log p(· | context) from one model call, (T,) float64."""
    logits, _ = lm.logits(torch.tensor([list(context)]))
    return torch.log_softmax(logits[0, -1].double() / temperature, dim=-1).numpy()


def test_state_space_and_block_structure(chain):
    T, K = chain.vocab_size, WINDOW
    structure = chains.chain_structure(chain)
    assert structure.n_states == T * (T**K - 1) // (T - 1) == {2: 14, 4: 84}[T]
    assert structure.n_recurrent == T**K
    assert structure.max_row_sum_error < 1e-12
    assert structure.stored_per_row == structure.positive_per_row == (T, T)
    assert structure.nonzero_fraction == pytest.approx((T - 1) / (T**K - 1), rel=1e-12)
    assert structure.transient_nilpotency == K - 1  # a context of length 1 is full after K − 1 steps
    assert structure.recurrent_closed
    assert structure.recurrent_components == 1
    assert structure.recurrent_period == 1


def test_transition_matrix_matches_an_independent_construction(transformer, chain):
    T = chain.vocab_size
    states = [s for length in range(1, WINDOW + 1) for s in itertools.product(range(T), repeat=length)]
    index = {state: i for i, state in enumerate(states)}
    expected = np.zeros((len(states), len(states)))
    for state in states:
        for token, log_p in enumerate(model_log_probs(transformer, state)):
            expected[index[state], index[(state + (token,))[-WINDOW:]]] += np.exp(log_p)
    np.testing.assert_allclose(chain.transition.toarray(), expected, atol=FLOAT32)


def test_stationary_distribution_matches_matrix_powers(chain):
    limit = np.linalg.matrix_power(chain.transition.toarray(), 4096)  # every row → (0 on transient, π)
    start = chain.first_recurrent
    assert np.abs(limit[:, :start]).max() == 0.0
    for method in ("eigs", "power"):
        pi = chains.stationary_distribution(chain, method)
        assert pi.shape == (chain.vocab_size**WINDOW,)
        np.testing.assert_allclose(limit[:, start:], np.broadcast_to(pi, limit[:, start:].shape), rtol=0, atol=1e-10)


def test_spectral_gap_and_epsilon_match_dense_linear_algebra(chain):
    moduli = np.sort(np.abs(np.linalg.eigvals(chain.recurrent_block.toarray())))[::-1]
    assert moduli[0] == pytest.approx(1.0, abs=1e-12)
    assert chains.spectral_gap(chain) == pytest.approx(1 - moduli[1], abs=1e-10)
    k_step = np.linalg.matrix_power(chain.transition.toarray(), WINDOW)[
        chain.first_recurrent :, chain.first_recurrent :
    ]
    assert chains.log_epsilon(chain) == pytest.approx(np.log(k_step.min()), abs=1e-10)
    assert chains.log_epsilon(chain) <= -WINDOW * np.log(chain.vocab_size)  # ε ≤ T^(−K): a row of Q^K sums to 1


def test_worst_start_distance_decreases_below_the_zekri_bound(chain):
    steps = np.arange(WINDOW, 10 * WINDOW + 1)
    distance = chains.tv_distance_to_stationary(chain, steps)
    assert np.all(np.diff(distance) <= 1e-15)
    assert np.all(distance <= chains.zekri_bound(chains.log_epsilon(chain), WINDOW, steps))
    assert distance[-1] < 1e-3


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_markov_lm_from_chain_reproduces_the_transformer_on_full_contexts(transformer, temperature):
    markov = chains.chain_to_markov_lm(chains.model_as_chain(transformer, WINDOW, temperature))
    contexts = torch.as_tensor(solvable.enumerate_sequences(transformer.vocab_size, WINDOW))
    logits, _ = transformer.logits(contexts)
    expected = torch.log_softmax(logits[:, -1].double() / temperature, dim=-1)
    markov_logits, _ = markov.logits(contexts)
    assert markov.order == WINDOW and markov.symbols == tuple(transformer.decode([t]) for t in range(markov.vocab_size))
    np.testing.assert_allclose(markov_logits[:, -1].numpy(), expected.numpy(), atol=FLOAT32)


def test_exact_answers_hold_for_the_sliding_window_transformer(transformer, chain):
    """The chain's Markov LM scores a completion as the transformer sees its last K tokens."""
    markov = chains.chain_to_markov_lm(chain)
    prompt, length = [0, 1, 1], 7
    completions = solvable.enumerate_sequences(chain.vocab_size, length, max_sequences=20_000)
    rows = np.random.default_rng(0).choice(completions.shape[0], size=5, replace=False)
    for completion in completions[rows]:
        tokens = prompt + completion.tolist()
        steps = range(len(prompt), len(tokens))
        expected = sum(model_log_probs(transformer, tokens[t - WINDOW : t])[tokens[t]] for t in steps)
        computed = solvable.completion_log_probs(markov, prompt, completion[None])[0].sum()
        assert computed == pytest.approx(expected, abs=FLOAT32)
    log_p = solvable.completion_log_probs(markov, prompt, completions).sum(axis=1)
    repeats = solvable.observable_values(markov, "repeats", prompt, completions)
    lambdas = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(
        solvable.log_partition(markov, "repeats", prompt, length, lambdas),
        logsumexp(log_p - lambdas[:, None] * repeats, axis=1),
        atol=1e-10,
    )


def test_chain_of_a_markov_lm_returns_the_same_model():
    order_one = solvable.random_markov_lm(3, 1, np.random.default_rng(4))
    rebuilt = chains.chain_to_markov_lm(chains.model_as_chain(order_one, window=2))
    lambdas = np.array([-0.5, 0.5])
    for observable in ("logprob", "repeats"):
        np.testing.assert_allclose(
            solvable.log_partition(rebuilt, observable, [2, 0], 12, lambdas),
            solvable.log_partition(order_one, observable, [2, 0], 12, lambdas),
            atol=1e-12,
        )


def test_bad_input_gives_clear_value_errors(transformer, chain):
    with pytest.raises(ValueError, match="T\\(T\\^K − 1\\)/\\(T − 1\\) = 22,369,620 states"):
        chains.model_as_chain(models.random_model(alphabet="ab .", seed=0), window=12)
    with pytest.raises(ValueError, match="window must be an integer K in 1..32"):
        chains.model_as_chain(transformer, window=40)
    with pytest.raises(ValueError, match="temperature"):
        chains.model_as_chain(transformer, WINDOW, temperature=0.0)
    with pytest.raises(ValueError, match="method='svd'"):
        chains.stationary_distribution(chain, "svd")
    with pytest.raises(ValueError, match="n_steps must all be ≥ window K=3"):
        chains.zekri_bound(chains.log_epsilon(chain), WINDOW, [1, 5])
    with pytest.raises(ValueError, match="max_states=10"):
        chains.tv_distance_to_stationary(chain, [1, 2], max_states=10)


@pytest.mark.parametrize("threshold", [0.1, 1e-3])
def test_mixing_time_is_the_first_step_below_the_threshold(chain, threshold):
    n = chains.mixing_time(chain, threshold)
    distances = chains.tv_distance_to_stationary(chain, np.arange(n + 1))
    assert distances[n] <= threshold < distances[n - 1]
    assert chains.mixing_time(chain, threshold, max_steps=n - 1) is None
    with pytest.raises(ValueError, match="threshold"):
        chains.mixing_time(chain, 1.5)

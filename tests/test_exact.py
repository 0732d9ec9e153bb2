"""rarelib.exact.solvable against brute-force enumeration, binomial closed forms and sampling through CausalLM.

Exact routes are compared to 1e-10 (relative error of probabilities = absolute error of their
logs); the sampling tests use chi-square p-values and k-standard-error bands.
"""

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from rarelib.exact import solvable
from rarelib.models import CausalLM

VOCAB, ORDER, LENGTH = 4, 2, 6
PROMPT = [3, 0, 1]
LAMBDAS = np.array([-2.0, -0.5, 0.0, 0.3, 1.5])
TOKEN_CLASS = solvable.AdditiveObservable("token_count", {0, 2})
OBSERVABLES = ["logprob", "repeats", TOKEN_CLASS]
INTEGER_OBSERVABLES = ["repeats", TOKEN_CLASS]
EXACT = 1e-10


@pytest.fixture(scope="module")
def model():
    return solvable.random_markov_lm(VOCAB, ORDER, np.random.default_rng(7), concentration=0.5)


@pytest.fixture(scope="module")
def completions():
    return solvable.enumerate_sequences(VOCAB, LENGTH)


@pytest.fixture(scope="module")
def log_p(model, completions):
    """log p_M of every completion of LENGTH tokens, (T^L,)."""
    return solvable.completion_log_probs(model, PROMPT, completions).sum(axis=1)


def log_sum(log_weights, mask):
    return logsumexp(log_weights[mask]) if mask.any() else -np.inf


def sample_completions(lm, prompt, length, batch, generator):
    """Batched ancestral sampling through the CausalLM interface, (batch, length) int64."""
    logits, cache = lm.logits(torch.tensor([prompt] * batch))
    tokens = []
    for _ in range(length):
        token = torch.multinomial(torch.softmax(logits[:, -1], dim=-1), 1, generator=generator)
        tokens.append(token)
        logits, cache = lm.logits(token, cache)
    return torch.cat(tokens, dim=1).numpy()


def transition_counts(prompt, samples, vocab_size, order):
    """counts[c, x] of next token x after context code c, over every completion step, (T^k, T)."""
    prompt_tail = np.broadcast_to(prompt[len(prompt) - order :], (samples.shape[0], order))
    history = np.concatenate([prompt_tail, samples], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(history, order + 1, axis=1).reshape(-1, order + 1)
    codes = windows @ vocab_size ** np.arange(order, -1, -1)
    return np.bincount(codes, minlength=vocab_size ** (order + 1)).reshape(-1, vocab_size)


def chi_square_p_value(counts, probabilities):
    """Pearson chi-square of next-token counts (C, T) against row laws (C, T), visited contexts only."""
    visited = counts.sum(axis=1) > 0
    expected = counts[visited].sum(axis=1, keepdims=True) * probabilities[visited]
    statistic = ((counts[visited] - expected) ** 2 / expected).sum()
    return stats.chi2.sf(statistic, df=visited.sum() * (counts.shape[1] - 1))


# --------------------------------------------------------------------------- exact vs enumeration


@pytest.mark.parametrize("observable", OBSERVABLES)
def test_log_partition_matches_enumeration(model, completions, log_p, observable):
    phi = solvable.observable_values(model, observable, PROMPT, completions)
    expected = logsumexp(log_p - LAMBDAS[:, None] * phi, axis=1)
    computed = solvable.log_partition(model, observable, PROMPT, LENGTH, LAMBDAS)
    np.testing.assert_allclose(computed, expected, rtol=0, atol=EXACT)


@pytest.mark.parametrize("observable", OBSERVABLES)
def test_tilted_mean_matches_enumeration(model, completions, log_p, observable):
    phi = solvable.observable_values(model, observable, PROMPT, completions)
    log_tilted = log_p - LAMBDAS[:, None] * phi
    expected = (np.exp(log_tilted - logsumexp(log_tilted, axis=1, keepdims=True)) * phi).sum(axis=1)
    computed = solvable.tilted_mean(model, observable, PROMPT, LENGTH, LAMBDAS)
    np.testing.assert_allclose(computed, expected, rtol=EXACT)


@pytest.mark.parametrize("observable", INTEGER_OBSERVABLES)
def test_distribution_and_tails_match_enumeration(model, completions, log_p, observable):
    phi = solvable.observable_values(model, observable, PROMPT, completions)
    law = solvable.exact_distribution(model, observable, PROMPT, LENGTH)
    np.testing.assert_array_equal(law.values, np.arange(LENGTH + 1))
    np.testing.assert_allclose(law.log_pmf, [log_sum(log_p, phi == v) for v in law.values], rtol=0, atol=EXACT)
    thresholds = np.arange(-2, 2 * LENGTH + 5) / 2  # integers and half-integers from -1 to L + 2
    upper = [log_sum(log_p, phi >= a) for a in thresholds]
    lower = [log_sum(log_p, phi <= a) for a in thresholds]
    np.testing.assert_allclose(law.log_prob_at_least(thresholds), upper, atol=EXACT)
    np.testing.assert_allclose(law.log_prob_at_most(thresholds), lower, atol=EXACT)


@pytest.mark.parametrize("observable", OBSERVABLES)
def test_brute_force_distribution_agrees_with_transfer_matrices(model, observable):
    brute = solvable.brute_force_distribution(model, observable, PROMPT, LENGTH)
    np.testing.assert_allclose(logsumexp(brute.log_pmf), 0.0, atol=EXACT)
    log_z = solvable.log_partition(model, observable, PROMPT, LENGTH, LAMBDAS)
    np.testing.assert_allclose(brute.log_partition(LAMBDAS), log_z, atol=EXACT)
    mean = solvable.tilted_mean(model, observable, PROMPT, LENGTH, LAMBDAS)
    np.testing.assert_allclose(brute.tilted_mean(LAMBDAS), mean, rtol=EXACT)


@pytest.mark.parametrize("observable", INTEGER_OBSERVABLES)
def test_distribution_and_transfer_matrix_agree_beyond_enumeration(model, observable):
    length = 50  # 4^50 completions: only the two exact routes can be compared
    law = solvable.exact_distribution(model, observable, PROMPT, length)
    np.testing.assert_allclose(logsumexp(law.log_pmf), 0.0, atol=EXACT)
    log_z = solvable.log_partition(model, observable, PROMPT, length, LAMBDAS)
    np.testing.assert_allclose(law.log_partition(LAMBDAS), log_z, atol=1e-9)
    mean = solvable.tilted_mean(model, observable, PROMPT, length, LAMBDAS)
    np.testing.assert_allclose(law.tilted_mean(LAMBDAS), mean, rtol=1e-9)


def test_higher_order_copy_of_a_model_gives_the_same_answers(model):
    """An order-k table broadcast over an extra, ignored oldest token is the same model."""
    lifted = solvable.MarkovLM(np.broadcast_to(model.log_probs, (VOCAB,) * (ORDER + 2)))
    for observable in OBSERVABLES:
        np.testing.assert_allclose(
            solvable.log_partition(lifted, observable, PROMPT, 9, LAMBDAS),
            solvable.log_partition(model, observable, PROMPT, 9, LAMBDAS),
            atol=1e-12,
        )


# --------------------------------------------------------------------------- tails below 1e-30


def test_token_count_of_iid_model_is_binomial_far_into_the_tail():
    p_class, length = 0.05, 80
    iid = solvable.MarkovLM(np.log([p_class, 0.3, 0.3, 0.35]))
    law = solvable.exact_distribution(iid, solvable.AdditiveObservable("token_count", {0}), [1], length)
    counts = np.arange(length + 1)
    np.testing.assert_allclose(law.log_pmf, stats.binom.logpmf(counts, length, p_class), atol=1e-9)
    np.testing.assert_allclose(law.log_prob_at_least(counts), stats.binom.logsf(counts - 1, length, p_class), atol=1e-9)
    np.testing.assert_allclose(law.log_prob_at_most(counts), stats.binom.logcdf(counts, length, p_class), atol=1e-9)
    assert np.isfinite(law.log_prob_at_least(length)) and law.log_prob_at_least(60) < np.log(1e-30)


def test_repeats_of_constant_repeat_probability_chain_are_binomial():
    """Repeating with probability q from every state makes Repeats ~ Binomial(L, q)."""
    q, vocab_size, length = 0.01, 3, 60
    table = np.full((vocab_size, vocab_size), (1 - q) / (vocab_size - 1))
    np.fill_diagonal(table, q)
    law = solvable.exact_distribution(solvable.MarkovLM(np.log(table)), "repeats", [2], length)
    thresholds = np.array([1, 10, 30, 45, 60])
    expected = stats.binom.logsf(thresholds - 1, length, q)
    np.testing.assert_allclose(law.log_prob_at_least(thresholds), expected, atol=1e-9)
    assert law.log_prob_at_least(45) < np.log(1e-60)


def test_tiny_tail_matches_enumeration():
    rare_repeat = 1e-7
    probabilities = np.random.default_rng(3).dirichlet(np.ones(VOCAB), size=(VOCAB, VOCAB))
    probabilities[:, np.arange(VOCAB), np.arange(VOCAB)] = rare_repeat  # repeating the previous token is rare
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    rare = solvable.MarkovLM(np.log(probabilities))
    completions = solvable.enumerate_sequences(VOCAB, LENGTH)
    log_p = solvable.completion_log_probs(rare, PROMPT, completions).sum(axis=1)
    phi = solvable.observable_values(rare, "repeats", PROMPT, completions)
    law = solvable.exact_distribution(rare, "repeats", PROMPT, LENGTH)
    for threshold in (4, 5, 6):
        expected = log_sum(log_p, phi >= threshold)
        assert expected < np.log(1e-25)
        np.testing.assert_allclose(law.log_prob_at_least(threshold), expected, atol=EXACT)
    assert law.log_prob_at_least(LENGTH) < np.log(1e-40)


def test_logprob_bounds_sandwich_the_enumerated_tails(model, log_p):
    bin_width = 0.05
    low, high = solvable.logprob_distribution_bounds(model, PROMPT, LENGTH, bin_width)
    brute = solvable.brute_force_distribution(model, "logprob", PROMPT, LENGTH)
    thresholds = np.linspace(log_p.min() - 1, 0.5, 301)
    slack = 1e-12
    assert np.all(low.log_prob_at_least(thresholds) <= brute.log_prob_at_least(thresholds) + slack)
    assert np.all(brute.log_prob_at_least(thresholds) <= high.log_prob_at_least(thresholds) + slack)
    assert np.all(high.log_prob_at_most(thresholds) <= brute.log_prob_at_most(thresholds) + slack)
    assert np.all(brute.log_prob_at_most(thresholds) <= low.log_prob_at_most(thresholds) + slack)
    # the sandwich is at most L·h wide: φ_high ≤ φ + L·h
    shifted = brute.log_prob_at_least(thresholds - LENGTH * bin_width)
    assert np.all(high.log_prob_at_least(thresholds) <= shifted + slack)
    for law in (low, high):
        np.testing.assert_allclose(logsumexp(law.log_pmf), 0.0, atol=EXACT)


# --------------------------------------------------------------------------- the CausalLM interface


def test_markov_lm_is_a_causal_lm(model):
    assert isinstance(model, CausalLM)
    assert (model.vocab_size, model.order, model.context_length) == (VOCAB, ORDER, 10**9)
    assert model.decode(model.encode("abdca")) == "abdca"


def test_logits_read_the_table_and_the_cache_continues_them(model):
    sequences = torch.as_tensor(np.random.default_rng(0).integers(0, VOCAB, size=(5, 9)))
    logits, cache = model.logits(sequences)
    assert logits.shape == (5, 9, VOCAB) and logits.dtype == torch.float32
    assert torch.isnan(logits[:, : ORDER - 1]).all() and not torch.isnan(logits[:, ORDER - 1 :]).any()
    contexts = np.lib.stride_tricks.sliding_window_view(sequences.numpy(), ORDER, axis=1)  # (5, 9 − k + 1, k)
    expected = model.log_probs[tuple(np.moveaxis(contexts, -1, 0))]
    np.testing.assert_allclose(logits[:, ORDER - 1 :].numpy(), expected, atol=1e-6)
    torch.testing.assert_close(cache, sequences[:, -ORDER:])
    first, first_cache = model.logits(sequences[:, :4])
    rest, rest_cache = model.logits(sequences[:, 4:], first_cache)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), logits, equal_nan=True)
    torch.testing.assert_close(rest_cache, cache)
    last, last_cache = model.logits(sequences, logits_to_keep=2)
    torch.testing.assert_close(last, logits[:, -2:])
    torch.testing.assert_close(last_cache, cache)


@pytest.fixture(scope="module")
def sampled():
    """A well-conditioned model and 3000 sampled completions of 12 tokens (36,000 transitions)."""
    lm = solvable.random_markov_lm(3, 2, np.random.default_rng(11), concentration=5.0)
    prompt = [0, 2]
    samples = sample_completions(lm, prompt, 12, 3000, torch.Generator().manual_seed(5))
    return lm, prompt, samples


def test_sampling_through_the_interface_follows_the_table(sampled):
    lm, prompt, samples = sampled
    counts = transition_counts(prompt, samples, lm.vocab_size, lm.order)
    probabilities = np.exp(lm.context_log_probs(lm.order))
    assert chi_square_p_value(counts, probabilities) > 1e-3
    other = np.exp(solvable.random_markov_lm(3, 2, np.random.default_rng(12), concentration=5.0).context_log_probs(2))
    assert chi_square_p_value(counts, other) < 1e-6  # the test has power against a wrong table


def test_fit_recovers_the_sampling_model_within_standard_errors(sampled):
    lm, prompt, samples = sampled
    sequences = [list(prompt) + row.tolist() for row in samples]
    fitted = solvable.fit_markov_lm(sequences, lm.symbols, order=2, smoothing=0.0)
    visits = transition_counts(prompt, samples, lm.vocab_size, lm.order).sum(axis=1, keepdims=True)
    truth = np.exp(lm.context_log_probs(2))
    standard_error = np.sqrt(truth * (1 - truth) / visits)
    assert np.all(np.abs(np.exp(fitted.context_log_probs(2)) - truth) <= 5 * standard_error)


def test_fit_counts_with_add_alpha_smoothing():
    smoothed = solvable.fit_markov_lm([[0, 1, 0, 1, 1]], "ab", order=1, smoothing=1.0)
    np.testing.assert_allclose(np.exp(smoothed.log_probs), [[1 / 4, 3 / 4], [2 / 4, 2 / 4]], rtol=1e-14)
    maximum_likelihood = solvable.fit_markov_lm([[0, 1, 0, 1, 1]], "ab", order=1, smoothing=0.0)
    np.testing.assert_allclose(np.exp(maximum_likelihood.log_probs), [[0, 1], [1 / 2, 1 / 2]], rtol=1e-14)


def test_text_mapped_to_a_small_alphabet_fits_and_round_trips():
    coarse = solvable.map_to_alphabet("Once upon a time, a rhino ate. Then it slept!")
    assert coarse == "abba abab a baba, a bbaba aba. bbab ab bbabb."
    symbols = list(solvable.COARSE_GROUPS)
    lm = solvable.fit_markov_lm([solvable.encode_symbols(coarse, symbols)], symbols, order=2)
    assert lm.decode(lm.encode(coarse)) == coarse
    assert solvable.encode_symbols("<a>b<a>", ["<a>", "b", "<"]) == [0, 1, 0]  # longest symbol first


# --------------------------------------------------------------------------- bad input


def test_bad_input_gives_clear_value_errors(model):
    with pytest.raises(ValueError, match="rows must be normalised"):
        solvable.MarkovLM(np.log(np.full((3, 3), 0.3)))
    with pytest.raises(ValueError, match=r"shape \(T,\)\*k \+ \(T,\)"):
        solvable.MarkovLM(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="not additive"):
        solvable.log_partition(model, "ari", PROMPT, LENGTH, LAMBDAS)
    with pytest.raises(ValueError, match="kind='perplexity'"):
        solvable.AdditiveObservable("perplexity")
    with pytest.raises(ValueError, match=r"prompt has token ids \[7\] outside the vocabulary 0..3"):
        solvable.log_partition(model, "repeats", [0, 7], LENGTH, LAMBDAS)
    with pytest.raises(ValueError, match="'z' at position 1"):
        solvable.log_partition(model, "repeats", "azb", LENGTH, LAMBDAS)
    with pytest.raises(ValueError, match="at least max.k, 1. = 2 tokens"):
        solvable.exact_distribution(model, "repeats", [1], LENGTH)
    with pytest.raises(ValueError, match="4\\^11 = 4,194,304 sequences"):
        solvable.brute_force_distribution(model, "repeats", PROMPT, 11)
    with pytest.raises(ValueError, match="integer-valued"):
        solvable.exact_distribution(model, "logprob", PROMPT, LENGTH)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        solvable.exact_distribution(model, solvable.AdditiveObservable("token_count", {4}), PROMPT, LENGTH)
    with pytest.raises(ValueError, match="needs at least 2 tokens of prompt"):
        model.logits(torch.tensor([[1]]))
    with pytest.raises(ValueError, match="input_ids has token ids"):
        model.logits(torch.tensor([[1, 2, 4]]))
    with pytest.raises(ValueError, match="never occur"):
        solvable.fit_markov_lm([[0, 0, 0]], "ab", order=1, smoothing=0.0)
    with pytest.raises(ValueError, match="bin_width"):
        solvable.logprob_distribution_bounds(model, PROMPT, LENGTH, bin_width=0.0)


def test_mean_under_another_law_matches_enumeration_and_the_model_itself():
    model = solvable.random_markov_lm(vocab_size=3, order=2, rng=np.random.default_rng(41), concentration=0.7)
    hot = solvable.at_temperature(model, 2.0)
    assert np.allclose(np.exp(hot.log_probs).sum(axis=-1), 1.0)
    prompt, length = [0, 1], 5
    completions = solvable.enumerate_sequences(3, length)
    q = np.exp(solvable.completion_log_probs(hot, prompt, completions).sum(axis=1))
    for observable in ("logprob", "repeats", solvable.AdditiveObservable("token_count", {2})):
        phi = solvable.observable_values(model, observable, prompt, completions)
        assert np.isclose(solvable.mean_under(hot, model, observable, prompt, length), q @ phi)
        assert np.isclose(
            solvable.mean_under(model, model, observable, prompt, length),
            solvable.tilted_mean(model, observable, prompt, length, 0.0),
        )
    with pytest.raises(ValueError, match="share vocabulary"):
        solvable.mean_under(solvable.random_markov_lm(4, 2, np.random.default_rng(0)), model, "logprob", prompt, length)

"""rarelib.companions.list_decoding: the branching process, the additive-rule language, the list decoder,
the rare event."""

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from rarelib import diagnostics, models
from rarelib.companions import list_decoding as ld

FAMILY_Z = stats.norm.ppf(1 - 1e-4 / 2)  # two-sided z at error rate 1e-4 per comparison


# --------------------------------------------------------------------------- the branching process


def test_geometric_sum_and_its_limit_at_one():
    r0 = np.array([0.0, 0.5, 1.0 - 1e-12, 1.0, 1.0 + 1e-12, 1.5])
    direct = np.array([sum(r**k for k in range(7)) for r in r0])
    np.testing.assert_allclose(ld.geometric_sum(r0, 7), direct, rtol=1e-9)
    assert ld.geometric_sum(1.0, 7) == 7.0
    np.testing.assert_array_equal(ld.geometric_sum(0.7, np.array([0, 1])), [0.0, 1.0])


def test_log_geometric_sum_where_the_sum_overflows():
    assert np.isclose(ld.log_geometric_sum(1.5, 10**4), 10**4 * np.log(1.5) - np.log(0.5))
    assert np.isclose(ld.log_geometric_sum(0.5, 10**4), np.log(2.0))
    assert ld.log_geometric_sum(1.0, 10**4) == np.log(10**4) and ld.log_geometric_sum(2.0, 0) == -np.inf
    np.testing.assert_allclose(np.exp(ld.log_geometric_sum([0.3, 1.2], 9)), ld.geometric_sum([0.3, 1.2], 9))


def test_expected_errors_closed_form():
    np.testing.assert_allclose(ld.expected_errors(2.0, 0.5, 3), 2.0 * (1 - 0.5**3) / 0.5)
    np.testing.assert_allclose(ld.expected_errors(2.0, 1.0, np.arange(4)), 2.0 * np.arange(4))


@pytest.mark.parametrize("reproduction", [0.5, 1.0, 1.5])
def test_simulated_mean_matches_the_closed_form(reproduction):
    counts = ld.simulate_errors(1.5, reproduction, 12, 20000, np.random.default_rng(1))
    assert counts.shape == (20000, 13) and (counts[:, 0] == 0).all()
    mean, standard_error = counts.mean(axis=0)[1:], counts.std(axis=0, ddof=1)[1:] / np.sqrt(20000)
    exact = ld.expected_errors(1.5, reproduction, np.arange(1, 13))
    assert np.all(np.abs(mean - exact) <= FAMILY_Z * standard_error)


def test_extinction_iterates_converge_to_the_fixed_point():
    for r0 in (0.5, 1.0, 1.5, 3.0):
        q = float(ld.extinction_probability(r0))
        assert np.isclose(q, np.exp(r0 * (q - 1)), atol=1e-12) and 0 <= q <= 1
        iterates = ld.lineage_extinction(r0, 4000)
        assert np.all(np.diff(iterates) >= 0) and iterates[0] == 0.0
        assert abs(iterates[-1] - q) < (1e-3 if r0 == 1.0 else 1e-9)  # at R₀ = 1 the approach is like 2/n
    assert ld.extinction_probability(0.0) == 1.0
    assert ld.extinction_probability(2.0) < 1.0


def test_extinction_and_error_free_probabilities_match_simulation():
    rng = np.random.default_rng(2)
    lineage = ld.simulate_errors(0.0, 1.2, 8, 20000, rng, initial=1)
    low, high = diagnostics.wilson_interval((lineage == 0).sum(axis=0)[1:], 20000, level=1 - 1e-4)  # Z_0 is fixed
    exact = ld.lineage_extinction(1.2, 8)
    assert exact[0] == 0.0 and np.all((low <= exact[1:]) & (exact[1:] <= high))
    immigrants = ld.simulate_errors(0.7, 0.9, 8, 20000, rng)
    low, high = diagnostics.wilson_interval((immigrants == 0).sum(axis=0)[1:], 20000, level=1 - 1e-4)
    exact = np.exp(ld.log_prob_error_free(0.7, 0.9, 8))
    assert exact[0] == 1.0 and np.all((low <= exact[1:]) & (exact[1:] <= high))


def test_branching_rejects_bad_input():
    with pytest.raises(ValueError, match="reproduction"):
        ld.expected_errors(1.0, -0.5, 3)
    with pytest.raises(ValueError, match="immigration"):
        ld.simulate_errors(np.nan, 1.0, 3, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="steps"):
        ld.expected_errors(1.0, 0.5, 2.5)
    with pytest.raises(ValueError, match="rng"):
        ld.simulate_errors(1.0, 1.0, 3, 10, rng=0)
    with pytest.raises(ValueError, match="initial"):
        ld.simulate_errors(1.0, 1.0, 3, 10, np.random.default_rng(0), initial=-1)


# --------------------------------------------------------------------------- the language and the model's law


def test_additive_rule_sequences():
    sequences = ld.additive_rule_sequences(5, 7)
    assert sequences.shape == (25, 7)
    np.testing.assert_array_equal(sequences[3 * 5 + 4, :4], [3, 4, 2, 1])
    assert np.all(sequences[:, 2:] == (sequences[:, 1:-1] + sequences[:, :-2]) % 5)
    with pytest.raises(ValueError, match="vocab_size"):
        ld.additive_rule_sequences(1, 7)


def test_rule_violations_counts_broken_steps():
    violations = ld.make_rule_violations(5)
    prompt = torch.tensor([0, 3, 4])
    completions = torch.tensor([[2, 1, 3], [2, 2, 4], [0, 0, 0]])  # on the rule; one wrong token then the rule; …
    values = violations(None, prompt, completions, None)
    np.testing.assert_array_equal(values, [0.0, 1.0, 2.0])
    assert violations.__name__ == "rule_violations"


@pytest.fixture(scope="module")
def tiny_lm():
    return models.random_model(alphabet="abc", context_length=6, n_layer=1, n_embd=8, n_head=2, seed=3)


def test_next_token_log_probs_enumerate_the_vocabulary(tiny_lm):
    prefixes = torch.tensor([[0, 1, 2], [2, 2, 1], [1, 0, 0]])
    log_probs = ld.next_token_log_probs(tiny_lm, prefixes, temperature=0.5, batch_size=2)
    assert log_probs.shape == (3, 3) and log_probs.dtype == torch.float64
    np.testing.assert_allclose(log_probs.exp().sum(dim=1), 1.0, atol=1e-12)
    logits, _ = tiny_lm.logits(prefixes)
    np.testing.assert_allclose(log_probs, torch.log_softmax(logits[:, -1].double() / 0.5, dim=-1), atol=1e-6)
    with pytest.raises(ValueError, match="context_length"):
        ld.next_token_log_probs(tiny_lm, torch.zeros((1, 7), dtype=torch.int64))


def _sequence_log_prob(lm, prompt, completion, temperature=1.0):
    sequence = [*prompt.tolist(), *completion]
    return sum(
        ld.next_token_log_probs(lm, torch.tensor([sequence[:t]]), temperature)[0, sequence[t]].item()
        for t in range(len(prompt), len(sequence))
    )


def test_leaving_probability_by_enumeration(tiny_lm):
    prompt, correct = torch.tensor([0, 1]), torch.tensor([2, 0, 1])
    for temperature in (1.0, 0.3):
        off_path = [
            _sequence_log_prob(tiny_lm, prompt, c, temperature)
            for c in itertools.product(range(3), repeat=3)
            if list(c) != correct.tolist()
        ]
        exact = np.log(np.exp(off_path).sum())
        assert np.isclose(ld.log_prob_leaving_path(tiny_lm, prompt, correct, temperature), exact, atol=1e-6)
        tempered = ld.TemperedLM(tiny_lm, temperature)
        assert np.isclose(ld.log_prob_leaving_path(tempered, prompt, correct), exact, atol=1e-6)


def test_tempered_lm_divides_the_logits(tiny_lm):
    tempered = ld.TemperedLM(tiny_lm, 0.25)
    ids = torch.tensor([[0, 2, 1]])
    np.testing.assert_allclose(tempered.logits(ids)[0], tiny_lm.logits(ids)[0] / 0.25, rtol=1e-6)
    assert (tempered.vocab_size, tempered.context_length) == (3, 6) and tempered.decode([0, 1]) == "ab"
    with pytest.raises(ValueError, match="temperature"):
        ld.TemperedLM(tiny_lm, 0.0)


# --------------------------------------------------------------------------- the list decoder


def _brute_force_lists(lm, prompt, correct, threshold, temperature):
    """Every candidate list by recursion, one forward pass per candidate: [(tokens, on_path, log_prob)] per step."""
    lists = [[(list(prompt), True, 0.0)]]
    for step in range(len(correct)):
        children = []
        for tokens, on_path, log_prob in lists[-1]:
            log_probs = ld.next_token_log_probs(lm, torch.tensor([tokens]), temperature)[0]
            for token in range(lm.vocab_size):
                if log_probs[token] >= np.log(threshold):
                    children.append(
                        (tokens + [token], on_path and token == correct[step], log_prob + log_probs[token].item())
                    )
        lists.append(children)
    return lists


def test_list_decoder_matches_brute_force(tiny_lm):
    prompts, correct = np.array([[0, 1], [2, 2]]), np.array([[2, 0, 1], [1, 1, 0]])
    result = ld.list_decode(tiny_lm, prompts, correct, threshold=0.3, temperature=0.8, max_candidates=1000)
    children = parents = 0
    for row in range(2):
        lists = _brute_force_lists(tiny_lm, prompts[row], correct[row], 0.3, 0.8)
        np.testing.assert_array_equal(result.list_size[row], [len(c) for c in lists])
        np.testing.assert_array_equal(result.errors[row], [sum(not on for _, on, _ in c) for c in lists])
        final = lists[-1]
        on_path = [lp for _, on, lp in final if on]
        assert result.correct_kept[row] == bool(on_path)
        assert result.top_is_correct[row] == (bool(on_path) and on_path[0] >= max(lp for _, _, lp in final))
        for step in range(3):
            wrong_parents = [tokens for tokens, on, _ in lists[step] if not on]
            parents += len(wrong_parents)
            children += sum(tokens[:-1] in wrong_parents for tokens, _, _ in lists[step + 1])
    assert result.overflow_step.tolist() == [4, 4]
    assert parents > 0 and np.isclose(result.reproduction_number, children / parents)
    assert result.error_parents.sum() == parents


def test_list_decoder_overflow_and_input_checks(tiny_lm):
    result = ld.list_decode(tiny_lm, [[0, 1]], [[2, 0, 1]], threshold=0.01, max_candidates=2)
    assert result.overflow_step[0] == 1 and np.isnan(result.errors[0, 1:]).all()
    assert not result.correct_kept[0] and result.accuracy == 0.0 and np.isnan(result.mean_errors()[1])
    with pytest.raises(ValueError, match="threshold"):
        ld.list_decode(tiny_lm, [[0, 1]], [[2, 0, 1]], threshold=0.0)
    with pytest.raises(ValueError, match="prompts"):
        ld.list_decode(tiny_lm, [[0, 1]], [[2, 0, 1], [1, 1, 1]], threshold=0.5)


def _tallies(error_parents, error_children, path_parents, path_error_children) -> ld.ListDecoding:
    empty = np.zeros((1, len(error_parents) + 1))
    return ld.ListDecoding(
        empty,
        empty,
        np.array([len(error_parents) + 1]),
        np.array([True]),
        np.array([True]),
        *(
            np.asarray(values, dtype=float)
            for values in (error_parents, error_children, path_parents, path_error_children)
        ),
    )


def test_closed_form_errors_at_pooled_rates_and_when_rates_are_unmeasured():
    steps = np.arange(4)
    measured = _tallies([0, 2, 3], [0, 3, 3], [1, 1, 1], [2, 0, 1])  # m_c = 1, R₀ = 6/5
    np.testing.assert_allclose(measured.closed_form_errors(steps), ld.expected_errors(1.0, 1.2, steps))
    error_free = _tallies([0, 0, 0], [0, 0, 0], [1, 1, 1], [0, 0, 0])  # no error ever entered
    assert np.isnan(error_free.reproduction_number) and np.all(error_free.closed_form_errors(steps) == 0)
    late = _tallies([0, 0, 0], [0, 0, 0], [1, 1, 1], [0, 0, 2])  # errors entered at the last step only
    assert np.isnan(late.closed_form_errors(steps)).all()


# --------------------------------------------------------------------------- the rare-event estimate


def test_log_mean_estimate_covers_a_known_proportion():
    rng = np.random.default_rng(4)
    hits = rng.random(4000) < 0.02
    estimate = ld.log_mean_estimate(np.where(hits, 0.0, -np.inf), np.random.default_rng(5), n_bootstrap=400)
    assert np.isclose(estimate.value, hits.mean())
    assert (
        estimate.interval[0] <= 0.02 <= estimate.interval[1]
        and estimate.interval[0] < hits.mean() < estimate.interval[1]
    )
    weighted = ld.log_mean_estimate(np.log([1.0, 3.0]), np.random.default_rng(0), n_bootstrap=50)
    assert np.isclose(weighted.value, 2.0) and 1.0 <= weighted.interval[0] <= weighted.interval[1] <= 3.0
    with pytest.raises(ValueError, match="log_values"):
        ld.log_mean_estimate([np.nan], rng)

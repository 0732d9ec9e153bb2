"""Tests of rarelib.exact.validation: TPS + MBAR against exact tails on a solvable model.

The main check runs the real TPS sampler (parallel tempering: in this small budget annealed TPS
mixes too slowly to pass the R-hat filter reliably; the benchmark checks annealing at full
length) and the real MBAR analysis on a repetition-loop Markov LM (vocabulary 4, L = 10,
P(φ = 10) = 0.15^10 ≈ 6e-9) on a fixed seed, then asks what the issue asks: the exact tails inside
the 96% bootstrap intervals at ≥ 90% of the thresholds with data, log Z(λ_k) within a
Bonferroni-corrected number of bootstrap standard errors of the exact value, and a deepest tail
orders of magnitude below what direct sampling with the same token budget sees. Every tolerance
comes from an error bar.
"""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from rarelib import diagnostics
from rarelib.exact import solvable, validation

LOOP_TOKEN_COUNT = solvable.AdditiveObservable("token_count", {0})
FAMILY_WISE_ERROR = 0.01  # for checks repeated over several states or a whole run


def loop_problem(length: int = 10, stay: float = 0.15, entry: float = 0.01) -> validation.Problem:
    model = validation.repetition_loop_lm(4, stay, entry, np.random.default_rng(3))
    return validation.Problem(model, [1, 2, 0], length, LOOP_TOKEN_COUNT)


@pytest.fixture(scope="module")
def problem():
    return loop_problem()


@pytest.fixture(scope="module")
def validated(problem):
    """One validation run: parallel tempering over an exact ladder to ⟨φ⟩ = 2.5, direct samples at λ = 0."""
    torch.set_num_threads(1)
    ladder = validation.bias_ladder(problem.exact_tilted_mean, target=2.5)
    return validation.validate(
        problem, ladder, sampler="parallel_tempering", n_steps=3000, n_chains=16, n_direct=4000, seed=2, thin=10
    )


# ----------------------------------------------------------------------------- the problem


def test_sampler_observable_matches_the_exact_definition(problem):
    rng = np.random.default_rng(0)
    completions = rng.integers(0, problem.model.vocab_size, size=(200, problem.completion_length))
    for observable in (LOOP_TOKEN_COUNT, solvable.AdditiveObservable("repeats")):
        case = validation.Problem(problem.model, problem.prompt, problem.completion_length, observable)
        sampled = case.sampler_observable(problem.model, torch.tensor(case.prompt), torch.from_numpy(completions), None)
        np.testing.assert_array_equal(
            sampled, solvable.observable_values(problem.model, observable, case.prompt, completions)
        )


def test_thresholds_span_the_support_above_its_minimum(problem):
    np.testing.assert_array_equal(problem.thresholds, np.arange(1, problem.completion_length + 1))
    log_tail = problem.exact.log_prob_at_least(problem.thresholds)
    assert np.all(log_tail < 0) and np.all(np.isfinite(log_tail))
    assert log_tail[-1] == pytest.approx(problem.completion_length * np.log(0.15))  # a run of L loop tokens


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(observable="logprob"), "integer-valued"),
        (dict(observable=solvable.AdditiveObservable("token_count", {7})), "outside the vocabulary"),
        (dict(prompt=[]), "prompt"),
    ],
)
def test_bad_problems_are_refused(problem, arguments, message):
    given = dict(model=problem.model, prompt=problem.prompt, completion_length=6, observable="repeats") | arguments
    with pytest.raises(ValueError, match=message):
        validation.Problem(**given)


def test_a_model_that_is_not_solvable_is_refused():
    with pytest.raises(ValueError, match="solvable.MarkovLM"):
        validation.Problem("story-gptneo", "ab", 6, "repeats")


def test_repetition_loop_lm_has_the_loop_it_promises():
    model = validation.repetition_loop_lm(5, 0.2, 0.01, np.random.default_rng(0))
    probabilities = np.exp(model.log_probs)
    assert probabilities[0, 0] == pytest.approx(0.2) and np.allclose(probabilities[1:, 0], 0.01)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="stay and entry"):
        validation.repetition_loop_lm(5, 1.5, 0.01, np.random.default_rng(0))


# ----------------------------------------------------------------------------- bias ladders


def test_ladder_moves_the_mean_by_spacing_standard_deviations(problem):
    spacing, target = 0.7, 5.0
    ladder = validation.bias_ladder(problem.exact_tilted_mean, target, spacing)
    lambdas = np.concatenate([[0.0], ladder])
    means = problem.exact_tilted_mean(lambdas)
    step = 1e-5
    sigma = np.sqrt(
        (problem.exact_tilted_mean(lambdas - step) - problem.exact_tilted_mean(lambdas + step)) / (2 * step)
    )
    assert np.all(np.diff(lambdas) < 0)  # an upper target needs λ < 0
    np.testing.assert_allclose(np.diff(means)[:-1], spacing * sigma[:-2], rtol=1e-5)
    assert 0 < means[-1] - means[-2] <= spacing * sigma[-2] * (1 + 1e-5)
    assert means[-1] == pytest.approx(target, abs=1e-8)


def test_neighbouring_ladder_laws_overlap(problem):
    """One standard deviation apart, neighbouring tilted laws share most of their mass."""
    ladder = np.concatenate([[0.0], validation.bias_ladder(problem.exact_tilted_mean, 6.0)])
    laws = np.exp(problem.exact.log_pmf - ladder[:, None] * problem.exact.values)
    laws /= laws.sum(axis=1, keepdims=True)
    shared = np.minimum(laws[1:], laws[:-1]).sum(axis=1)
    assert np.all(shared > 0.5), shared


def test_a_lower_target_gives_positive_biases():
    case = loop_problem(stay=0.6, entry=0.3)
    ladder = validation.bias_ladder(case.exact_tilted_mean, target=1.0)
    assert np.all(ladder > 0) and np.all(np.diff(ladder) > 0)
    assert case.exact_tilted_mean(ladder[-1]) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize(
    "target, spacing, message",
    [
        (11.0, 1.0, "beyond the reach"),  # φ ≤ L = 10
        (5.0, 0.0, "spacing"),
        (5.0, 0.01, "max_biases"),
    ],
)
def test_bad_ladders_are_refused(problem, target, spacing, message):
    with pytest.raises(ValueError, match=message):
        validation.bias_ladder(problem.exact_tilted_mean, target, spacing)


def test_ladder_refuses_a_target_at_the_unbiased_mean(problem):
    with pytest.raises(ValueError, match="equals"):
        validation.bias_ladder(lambda lam: 1.0, 1.0)


# ----------------------------------------------------------------------------- token budgets


def test_direct_budget_is_n_times_l(problem):
    run = validation.sample_direct(problem, 37, seed=0)
    assert diagnostics.generated_tokens(run) == 37 * problem.completion_length


@pytest.mark.parametrize("sampler, rows_per_chain", [("annealed_tps", 1), ("parallel_tempering", 3)])
def test_tps_budget_counts_regrown_tokens(problem, sampler, rows_per_chain):
    """With cuts uniform on 0..L−1 a move regrows (L+1)/2 tokens on average, variance (L²−1)/12."""
    n_chains, n_steps, biases, length = 4, 60, [-0.5, -1.0, -1.5], problem.completion_length
    run = validation.sample_biased(problem, biases, sampler=sampler, n_steps=n_steps, n_chains=n_chains, seed=2)
    moves = n_chains * n_steps * len(biases)
    regrown = diagnostics.generated_tokens(run) - n_chains * rows_per_chain * length
    z = (regrown - moves * (length + 1) / 2) / math.sqrt(moves * (length**2 - 1) / 12)
    assert abs(z) < stats.norm.isf(FAMILY_WISE_ERROR / 2), z


def test_unknown_sampler_and_bad_thinning_are_refused(problem):
    with pytest.raises(ValueError, match="sampler"):
        validation.sample_biased(problem, [-1.0], sampler="gibbs", n_steps=2, n_chains=2, seed=0)
    run = validation.sample_direct(problem, 4, seed=0)
    with pytest.raises(ValueError, match="thin"):
        validation.thin_draws(run, 0)


# ----------------------------------------------------------------------------- TPS + MBAR against exact


def test_exact_tails_lie_inside_the_bootstrap_intervals(validated):
    tails = validated.tails
    assert tails.has_data.sum() >= 6
    assert tails.coverage >= 0.9, validation.format_table(validated)


def test_log_partition_matches_exact_within_bootstrap_errors(validated):
    """|estimate − exact| ≤ z σ, σ from the 96% bootstrap interval, z Bonferroni-corrected over the states."""
    partition = validated.partition
    sigma = np.diff(partition.log_interval, axis=0)[0] / (2 * stats.norm.isf(0.02))
    z = stats.norm.isf(FAMILY_WISE_ERROR / (2 * partition.biases.size))
    assert partition.biases.size >= 1 and np.all(sigma > 0)
    assert np.all(np.abs(partition.error) <= z * sigma), validation.format_table(validated)


def test_tps_reaches_orders_of_magnitude_deeper_than_direct(problem, validated):
    tails, direct = validated.tails, validated.direct
    assert 0 <= tails.tokens - direct.tokens < problem.completion_length  # the same budget, to one completion
    deepest, direct_deepest = tails.log10_exact[tails.deepest], direct.log10_exact[direct.deepest]
    assert deepest <= direct_deepest - 3, validation.format_table(validated)


def test_table_and_json_report_every_threshold(validated):
    table = validation.format_table(validated)
    assert table.count("\n") >= validated.tails.thresholds.size + validated.partition.biases.size + 5
    summary = json.loads(json.dumps(validated.to_dict(), allow_nan=False))
    assert summary["coverage"] == pytest.approx(validated.tails.coverage)
    assert len(summary["tails"]["log10_exact"]) == validated.tails.thresholds.size


# ----------------------------------------------------------------------------- exact tilted samples, reference tails


def test_tilted_samples_follow_the_exact_tilted_law():
    model = solvable.random_markov_lm(4, 2, np.random.default_rng(5), 0.7)
    prompt, length, lam, n = [0, 1], 9, -0.9, 40_000
    completions = solvable.sample_tilted(model, "repeats", prompt, length, lam, n, np.random.default_rng(6))
    phi = solvable.observable_values(model, "repeats", prompt, completions)
    law = solvable.exact_distribution(model, "repeats", prompt, length)
    tilted = np.exp(law.log_pmf - lam * law.values - law.log_partition(lam))
    counts = np.array([np.sum(phi == v) for v in law.values])
    expected = n * tilted
    seen = expected >= 5
    chi2 = np.sum((counts[seen] - expected[seen]) ** 2 / expected[seen])
    assert stats.chi2.sf(chi2, seen.sum() - 1) > 1e-3
    assert counts[~seen].sum() <= stats.poisson.isf(1e-3, expected[~seen].sum())
    draws = solvable.sample_tilted(model, "repeats", prompt, length, 0.0, n, np.random.default_rng(7))
    untilted = solvable.observable_values(model, "repeats", prompt, draws)
    assert abs(untilted.mean() - law.tilted_mean(0.0)) < 4.0 * untilted.std() / math.sqrt(n)  # λ = 0: p_M itself


@pytest.mark.parametrize("side", ["lower", "upper"])
def test_reference_logprob_tails_match_brute_force_within_their_errors(side):
    model = solvable.random_markov_lm(3, 1, np.random.default_rng(2), 0.5)
    prompt, length = [0], 8
    law = solvable.brute_force_distribution(model, "logprob", prompt, length)
    thresholds = law.tilted_mean(np.array([1.5, 0.6]) if side == "lower" else np.array([-0.3, -1.0]))
    exact = law.log_prob_at_most(thresholds) if side == "lower" else law.log_prob_at_least(thresholds)
    reference = validation.tilted_tail_reference(
        model, "logprob", prompt, length, thresholds, side, 20_000, np.random.default_rng(3)
    )
    assert np.all(reference.log_se < 0.05) and np.all(np.sign(reference.biases) == (1 if side == "lower" else -1))
    z = stats.norm.isf(FAMILY_WISE_ERROR / 2 / thresholds.size)
    assert np.all(np.abs(reference.log - exact) <= z * reference.log_se)
    assert exact.min() < (math.log(1e-3) if side == "lower" else 0.0)  # lower: a real tail, not the bulk


def test_sample_tilted_refuses_bad_arguments():
    model = solvable.random_markov_lm(3, 1, np.random.default_rng(2))
    with pytest.raises(ValueError, match="n"):
        solvable.sample_tilted(model, "repeats", [0], 4, 0.5, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="lam"):
        solvable.sample_tilted(model, "repeats", [0], 4, math.nan, 10, np.random.default_rng(0))

"""Tests of rarelib.rounds (tempering in rounds until the verdict holds) and of the verdict on real runs.

The problem: Repeats on a random first-order Markov LM with 5 tokens, L = 12, whose tails are
known exactly (:mod:`rarelib.exact.solvable`), sampled with the real samplers and the Repeats guide.
"""

import numpy as np
import pytest

from rarelib import convergence, reweighting, rounds, tps
from rarelib.exact import solvable, validation

LENGTH = 12
GUIDED = tps.Move(guide="repeats", scale=1.0)


@pytest.fixture(scope="module")
def problem():
    return validation.Problem(solvable.random_markov_lm(5, 1, np.random.default_rng(4)), (0,), LENGTH, "repeats")


@pytest.fixture(scope="module")
def ladder(problem):
    return np.append(0.0, validation.bias_ladder(problem.exact_tilted_mean, target=8.0, spacing=1.5))


def exact_tails(problem, thresholds) -> np.ndarray:
    return np.array([np.logaddexp.reduce(problem.exact.log_pmf[problem.exact.values >= a]) for a in thresholds])


def call(problem, ladder, folder, budget, **options):
    arguments = dict(thresholds=[3.0, 6.0, 9.0], first_steps=20, n_chains=8, seed=1, move=GUIDED, progress=False)
    arguments.update(options)
    return rounds.run_rounds(
        problem.model,
        list(problem.prompt),
        LENGTH,
        problem.sampler_observable,
        ladder,
        budget_tokens=budget,
        folder=folder,
        **arguments,
    )


@pytest.fixture(scope="module")
def short(problem, ladder, tmp_path_factory):
    return call(problem, ladder, tmp_path_factory.mktemp("rounds"), budget=2.5e4)


def test_rounds_double_the_steps_until_the_budget_is_spent(short):
    steps = [h["n_steps"] for h in short.history]
    assert steps[0] == 20 and len(steps) >= 2
    assert all(later == 2 * earlier for earlier, later in zip(steps[:-2], steps[1:-1]))  # the last may be cut
    assert short.tokens <= short.budget_tokens
    assert [h["round"] for h in short.history] == list(range(len(steps)))
    assert short.history[-1]["stopped"] and not any(h["stopped"] for h in short.history[:-1])


def test_a_run_stopped_by_its_budget_says_so_and_reports_no_narrow_interval(short):
    # 8 chains of at most a few hundred steps cannot give a bulk ESS of 400 at every rung
    assert not short.verdict.complete
    assert "budget of" in short.summary() and "UNRESOLVED" in short.summary()
    unresolved = ~short.verdict.resolved
    np.testing.assert_array_equal(
        short.tail.log_interval[:, unresolved], [[-np.inf] * unresolved.sum(), [0.0] * unresolved.sum()]
    )


def test_calling_again_resumes_without_sampling_and_returns_the_same(problem, ladder, short, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "rounds0"
    again = call(problem, ladder, folder, budget=2.5e4)
    assert again.history == short.history
    np.testing.assert_array_equal(again.tail.log, short.tail.log)
    np.testing.assert_array_equal(again.analysis.upper_tail.log_interval, short.analysis.upper_tail.log_interval)


def test_a_larger_budget_continues_a_run_that_stopped_for_lack_of_one(problem, ladder, tmp_path):
    first = call(problem, ladder, tmp_path, budget=1.2e4)
    more = call(problem, ladder, tmp_path, budget=2.5e4)
    assert more.history[: len(first.history) - 1] == first.history[:-1]
    assert more.history[-1]["n_steps"] > first.history[-1]["n_steps"]


def test_other_arguments_are_refused_for_the_same_folder(problem, ladder, tmp_path):
    call(problem, ladder, tmp_path, budget=6e3)
    with pytest.raises(ValueError, match=r"rounds folder .*growth=2\.0 there, 3\.0 now"):
        call(problem, ladder, tmp_path, budget=6e3, growth=3.0)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"thresholds": []}, "thresholds must be a non-empty sequence"),
        ({"budget": 0}, "budget_tokens=0; use a positive number"),
        ({"growth": 1.0}, "growth=1.0; use a number above 1"),
        ({"direct_fraction": 1.0}, r"direct_fraction=1.0; use a number in \(0, 1\)"),
        ({"side": "both"}, "side='both'"),
    ],
)
def test_bad_arguments_are_refused(problem, ladder, tmp_path, change, message):
    budget = change.pop("budget", 6e3)
    with pytest.raises(ValueError, match=message):
        call(problem, ladder, tmp_path, budget=budget, **change)


def test_a_deliberately_short_run_is_not_called_converged_and_hides_no_miss(problem, ladder):
    # 15 steps of 8 chains: the largest rank-normalised R-hat over the rungs lies far above 1.01 (between
    # 1.22 and 1.68 at each of 10 seeds tried), so the verdict cannot pass, and every threshold whose
    # exact value the raw interval misses must be flagged unresolved.
    run = tps.run_tempering(
        problem.model,
        list(problem.prompt),
        LENGTH,
        problem.sampler_observable,
        ladder,
        n_steps=15,
        n_chains=8,
        seed=2,
        record=(),
        move=GUIDED,
        progress=False,
    )
    at_zero = validation.sample_direct(problem, 500, seed=3)
    thresholds = problem.thresholds[:-1]
    full, half = reweighting.first_half_comparison(
        [run, at_zero],
        rng=np.random.default_rng(0),
        thresholds=thresholds,
        warn=False,
        settings=reweighting.Settings(rhat_threshold=np.inf, n_bootstrap=40),
    )
    verdict = convergence.assess(full, half, runs=[run])
    exact = exact_tails(problem, thresholds)
    inside = (verdict.estimate.log_interval[0] <= exact) & (exact <= verdict.estimate.log_interval[1])
    assert not verdict.converged
    assert not (verdict.resolved & ~inside).any(), verdict.summary()

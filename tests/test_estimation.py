"""Tests of rarelib.estimation: one call from a model, a prompt and a question to a tail with honest intervals.

The end-to-end problem is chapter 6's solvable model: a random first-order Markov LM with 4 tokens,
L = 20, φ = the count of token 0, whose tails are known exactly (:mod:`rarelib.exact.solvable`),
sampled with the real samplers and the class guide; no ladder is given.
"""

import math

import numpy as np
import pytest
import zoo
from scipy import stats

from rarelib import convergence, estimation, reweighting, tps
from rarelib import observables as obs
from rarelib.exact import solvable, validation

LENGTH = 20
GUIDE = tps.Move(guide=[0])


@pytest.fixture(scope="module")
def problem():
    markov = solvable.random_markov_lm(4, 1, np.random.default_rng(0), concentration=5.0)
    return validation.Problem(markov, (0,), LENGTH, solvable.AdditiveObservable("token_count", frozenset({0})))


def exact_log_tails(problem, thresholds) -> np.ndarray:
    return np.array([np.logaddexp.reduce(problem.exact.log_pmf[problem.exact.values >= a]) for a in thresholds])


SMALL_RUN = dict(
    budget_tokens=4e5,
    n_chains=8,
    pilot_samples=500,
    ladder_steps=30,
    settings=reweighting.Settings(rhat_threshold=math.inf, n_bootstrap=30),
    progress=False,
    seed=0,
)
"""The arguments of a small call: 4e5 tokens, 8 chains, 30 bootstrap replicas."""


def call(problem, folder, **options):
    arguments = dict(SMALL_RUN, completion_length=LENGTH, spacing=1.5, move=GUIDE, checkpoint=folder)
    arguments.update(options)
    return estimation.estimate(problem.model, list(problem.prompt), problem.sampler_observable, **arguments)


# --------------------------------------------------------------------------- pure parts


def test_the_chernoff_bound_of_a_gaussian_is_exact():
    # φ ~ N(μ, σ²): ⟨φ⟩_λ = μ − λσ² is linear, so the trapezoid rule is exact, and the bound is −(m − μ)²/(2σ²)
    mu, sigma = 3.0, 2.0
    biases = np.linspace(0.0, -1.5, 7)
    means = mu - biases * sigma**2
    assert estimation.chernoff_log_bound(biases, means) == pytest.approx(-((means[-1] - mu) ** 2) / (2 * sigma**2))


def test_the_pilot_ladder_moves_the_mean_one_standard_deviation_per_rung():
    rng = np.random.default_rng(3)
    phi = rng.normal(0.0, 1.0, 20000)
    ladder = estimation._pilot_ladder(phi, target=2.0, side="upper", spacing=1.0)
    # for a standard normal ⟨φ⟩_λ = −λ: two rungs, at −1 and −2 up to the pilot's sampling error
    np.testing.assert_allclose(ladder, [-1.0, -2.0], atol=0.1)
    lower = estimation._pilot_ladder(phi, target=-2.0, side="lower", spacing=1.0)
    np.testing.assert_allclose(lower, [1.0, 2.0], atol=0.1)


def test_a_pilot_with_a_single_value_still_gives_a_first_rung_towards_the_tail():
    ladder = estimation._pilot_ladder(np.zeros(100), target=5.0, side="upper", spacing=1.0)
    assert ladder.size == 1 and ladder[0] < 0


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(thresholds=[]), "thresholds"),
        (dict(thresholds=[np.nan]), "thresholds"),
        (dict(side="middle"), "side"),
        (dict(budget_tokens=0), "budget_tokens"),
        (dict(depth=2.0), "depth"),
        (dict(spacing=-1.0), "spacing"),
        (dict(n_chains=0), "n_chains"),
        (dict(budget_tokens=1e3), "raise it to"),
    ],
)
def test_bad_arguments_are_named(problem, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        call(problem, tmp_path, **{"thresholds": [8.0], **options})


# --------------------------------------------------------------------------- end to end, against exact answers


@pytest.fixture(scope="module")
def answer(problem, tmp_path_factory):
    exact = exact_log_tails(problem, problem.thresholds) / math.log(10.0)
    thresholds = problem.thresholds[(exact <= -1.0) & (exact >= -14.0)]
    return call(problem, tmp_path_factory.mktemp("estimate"), thresholds=thresholds)


def test_with_no_ladder_given_it_reaches_a_tail_of_1e_minus_12(problem, answer):
    exact = exact_log_tails(problem, answer.thresholds)
    assert exact.min() / math.log(10.0) <= -12.0
    assert answer.ladder[0] == 0.0 and np.all(np.diff(answer.ladder) < 0)
    # the outermost rung's mean passes the deepest threshold (the ladder's stopping rule)
    assert answer.rung_means[-1] >= answer.thresholds.max() - 1
    assert answer.tokens <= answer.budget_tokens


def test_exact_answers_lie_inside_the_resolved_intervals(problem, answer):
    # each resolved 96% interval misses with probability ≤ 0.04 if the intervals are honest; the number of misses
    # exceeds the binomial 0.999 quantile with probability ≤ 1e-3 (for independent thresholds; neighbouring
    # thresholds are positively correlated, which widens the count's spread — so the check is a floor on honesty)
    exact = exact_log_tails(problem, answer.thresholds)
    misses = int(np.sum(answer.resolved & ~answer.tail.covers(exact)))
    assert misses <= stats.binom.ppf(0.999, int(answer.resolved.sum()), 0.04)
    # an unresolved threshold reports the interval [0, 1], which always covers
    assert np.all(answer.tail.covers(exact)[~answer.resolved])
    # at 4e5 tokens few thresholds resolve, so the checks above may check little; the raw estimates must still
    # lie within a decade of the exact tails (measured errors: ≤ 0.1 decades, with 96% half-widths of 0.02–0.1)
    assert np.all(np.abs(answer.raw.log - exact) / math.log(10.0) < 1.0)


def test_the_summary_states_the_verdict_and_every_threshold(answer):
    text = answer.summary()
    assert ("NOT converged" in text) != answer.converged
    assert text.count("\n") >= answer.thresholds.size + 3
    assert ("UNRESOLVED" in text) == (not answer.resolved.all())


def test_save_and_load_give_the_same_estimate(answer, tmp_path):
    loaded = estimation.load(answer.save(tmp_path / "answer.nc"))
    assert loaded.summary() == answer.summary()
    np.testing.assert_array_equal(loaded.tail.log_interval, answer.tail.log_interval)
    np.testing.assert_array_equal(loaded.raw.log_interval, answer.raw.log_interval)
    np.testing.assert_array_equal(loaded.rungs.failures, answer.rungs.failures)
    assert loaded.history == answer.history


def test_calling_again_resumes_without_sampling(problem, answer, tmp_path_factory):
    again = call(problem, tmp_path_factory.getbasetemp() / "estimate0", thresholds=answer.thresholds)
    assert again.history == answer.history
    np.testing.assert_array_equal(again.tail.log, answer.tail.log)


def test_other_arguments_in_the_same_checkpoint_are_refused(problem, answer, tmp_path_factory):
    with pytest.raises(ValueError, match="spacing"):
        call(problem, tmp_path_factory.getbasetemp() / "estimate0", thresholds=answer.thresholds, spacing=0.5)


def test_loading_something_else_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no estimate"):
        estimation.load(tmp_path / "missing.nc")
    (tmp_path / "junk.nc").write_text("not netCDF")
    with pytest.raises(ValueError, match="not an estimate"):
        estimation.load(tmp_path / "junk.nc")


def test_the_criteria_are_those_of_the_verdict(answer):
    assert isinstance(answer.rungs, convergence.RungTable)
    np.testing.assert_array_equal(np.sort(answer.rungs.bias), np.sort(answer.ladder))  # every rung is judged


# --------------------------------------------------------------------------- on a foreign model
# (an interrupted call resuming to the same answer: tests/test_cli.py, with a real Ctrl-C)


def test_a_whole_tail_curve_of_a_tiny_llama_from_its_folder(tmp_path):
    folder = zoo.save_model("llama", tmp_path / "tiny-llama", max_position_embeddings=256)
    result = estimation.estimate(
        str(folder),
        "Once upon a time",
        "logprob",
        side="lower",
        depth=1e-4,  # a short curve: the temperature guide's rungs approach λ = 1 halfway at a time
        budget_tokens=4e4,
        completion_length=8,
        n_chains=4,
        pilot_samples=200,
        ladder_steps=10,
        first_steps=10,
        settings=reweighting.Settings(rhat_threshold=math.inf, n_bootstrap=10),
        checkpoint=tmp_path / "estimate",
        progress=False,
    )
    assert result.thresholds.size >= 5 and result.tokens <= result.budget_tokens
    assert result.question["model"].endswith("tiny-llama") and result.side == "lower"
    assert np.all(np.diff(result.ladder) > 0)  # the lower tail: λ > 0
    assert np.all(result.tail.log <= 1e-12)  # probabilities
    ax = result.plot()
    assert ax.get_yscale() == "log"


def test_a_ladder_cut_short_says_so(problem, tmp_path):
    pilot = validation.sample_direct(problem, 500, seed=0).posterior["phi"].values.ravel()
    ladder = estimation.place_ladder(
        problem.model,
        list(problem.prompt),
        LENGTH,
        problem.sampler_observable,
        pilot,
        target=20.0,
        side="upper",
        move=GUIDE,
        n_chains=4,
        ladder_steps=10,
        max_rungs=2,
        folder=tmp_path,
    )
    assert ladder.biases.size - 1 >= 2 and ladder.biases[0] == 0.0
    assert any("max_rungs=2" in note for note in ladder.notes)
    assert ladder.tokens > 0


def test_an_outermost_rung_without_spread_repeats_the_last_step():
    # every chain at the outermost rung holds the same φ: no spread to measure, so the last step in λ is repeated
    new = estimation._extension(
        np.array([0.0, -0.5]), np.array([1.0, 3.0]), np.array([1.0, 0.0]), 9.0, "upper", 1.0, tps.FORWARD_SHOOTING
    )
    np.testing.assert_allclose(new, [-1.0, -1.5, -2.0, -2.5])


# --------------------------------------------------------------------------- Repeats and Log-Prob, exactly known


def repeats_problem():
    """Repeats on a random 4-token chain, L = 30: exact tails by dynamic programming."""
    markov = solvable.random_markov_lm(4, 1, np.random.default_rng(0))
    problem = validation.Problem(markov, (0,), 30, solvable.AdditiveObservable("repeats"))
    return markov, 30, obs.repeats, "upper", problem.thresholds, problem.exact.log_prob_at_least(problem.thresholds)


def logprob_problem():
    """Log-Prob on a random 3-token chain, L = 12: exact lower tails from all 3^12 completions."""
    markov = solvable.random_markov_lm(3, 1, np.random.default_rng(0))
    log_probs = np.sort(solvable.observable_values(markov, "logprob", (0,), solvable.enumerate_sequences(3, 12)))
    return markov, 12, obs.logprob, "lower", log_probs, np.logaddexp.accumulate(log_probs)


@pytest.mark.parametrize("make_problem", [repeats_problem, logprob_problem], ids=["repeats", "logprob"])
def test_repeats_and_logprob_reach_1e_minus_12_with_the_exact_answers_inside(make_problem, tmp_path):
    markov, length, observable, side, values, log_tails = make_problem()
    # thresholds at exact depths 1e-2, 1e-4, …, 1e-12 (the exact tail at each value; Log-Prob's includes it)
    nearest = [int(np.argmin(np.abs(log_tails / math.log(10.0) - depth))) for depth in (-2, -4, -6, -8, -10, -12)]
    thresholds, exact = values[nearest], log_tails[nearest]
    answer = estimation.estimate(
        markov,
        [0],
        observable,
        thresholds=thresholds,
        side=side,
        completion_length=length,
        checkpoint=tmp_path,
        **SMALL_RUN,
    )
    exact = exact[np.argsort(thresholds)]  # the answer's thresholds are sorted
    assert exact.min() / math.log(10.0) <= -11.5
    # the ladder and the move of the observable's guide reach 1e-12: every raw estimate is finite and within a
    # decade of the exact tail (measured errors: ≤ 0.1 decades, with 96% half-widths of 0.05–0.2 decades)
    assert np.all(np.abs(answer.raw.log - exact) / math.log(10.0) < 1.0)
    # honest intervals ([0, 1] where unresolved): a miss has probability ≤ 0.04 per threshold; more misses than
    # the binomial 0.999 quantile happen with probability ≤ 1e-3 (for independent thresholds)
    misses = int(np.sum(~answer.tail.covers(exact)))
    assert misses <= stats.binom.ppf(0.999, exact.size, 0.04)

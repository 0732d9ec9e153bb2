"""Tests of rarelib.convergence: the per-rung criteria and the per-threshold verdict.

Synthetic runs with exact tilted laws (base N(0, 1), p_λ = N(−λ, 1)): i.i.d. chains pass every
criterion — their largest rank-normalised R-hat over 3 rungs of 8 × 500 draws was 1.004 in 300
seeds (mean 1.0011, standard deviation 0.0007), so the bound 1.01 lies 13 standard deviations
away — and a rung whose half of chains sits 1 standard deviation off (a lag) has R-hat ≈ 1.1.
"""

import numpy as np
import pytest
from scipy import stats
from synthetic import biased_run, direct_run, gaussian_chains

from rarelib import convergence, reweighting

LADDER = [-1.5, -3.0, -4.5]
THRESHOLDS = [1.0, 3.0, 4.5, 6.0]
SETTINGS = reweighting.Settings(rhat_threshold=np.inf, n_bootstrap=40)


def toy_runs(seed: int, lag: float = 0.0, swap_accepted=None):
    """[direct N(0, 1) × 4000, tempering-shaped run 8 × 500 at LADDER], the deepest rung's chains 0–3 shifted by
    ``lag``; swap_accepted (K − 1,) fractions make swap statistics."""
    rng = np.random.default_rng(seed)
    chains = gaussian_chains(rng, LADDER, 8, 500)
    chains[:4, :, -1] -= lag
    stats_ = None
    if swap_accepted is not None:
        attempted = np.zeros(chains.shape, dtype=bool)
        attempted[:, :, :-1] = True
        accepted = np.zeros(chains.shape, dtype=bool)
        for k, fraction in enumerate(swap_accepted):
            accepted[:, : int(fraction * 500), k] = True
        stats_ = {"swap_attempted": attempted, "swap_accepted": accepted}
    accepted_moves = np.ones(chains.shape, dtype=bool)
    return [direct_run(rng.normal(size=4000)), biased_run(chains, LADDER, accepted=accepted_moves, sample_stats=stats_)]


def analyses(runs, seed: int = 0):
    return reweighting.first_half_comparison(
        runs, rng=np.random.default_rng(seed), thresholds=THRESHOLDS, settings=SETTINGS, warn=False
    )


@pytest.fixture(scope="module")
def converged():
    runs = toy_runs(1)
    full, half = analyses(runs)
    return convergence.assess(full, half, runs=runs)


@pytest.fixture(scope="module")
def lagging():
    runs = toy_runs(2, lag=1.0)
    full, half = analyses(runs)
    return convergence.assess(full, half, runs=runs)


def test_converged_chains_pass_and_resolve_every_threshold(converged):
    assert converged.converged and converged.complete, converged.summary()
    np.testing.assert_array_equal(converged.rungs.bias, LADDER[::-1])
    assert converged.resolved.all() and converged.failures == []
    np.testing.assert_array_equal(converged.tail.log_interval, converged.estimate.log_interval)


def test_exact_tails_lie_inside_the_converged_intervals(converged):
    # 4 thresholds, 96% bootstrap intervals of well-mixed i.i.d. data: each misses with probability
    # about 0.04, so three or more misses have probability about 4 · 0.04³ ≈ 3e-4 (taking the
    # thresholds as independent, an approximation: their estimates share samples)
    exact = stats.norm.logsf(THRESHOLDS)
    inside = (converged.tail.log_interval[0] <= exact) & (exact <= converged.tail.log_interval[1])
    assert inside.sum() >= 2, (converged.tail.log_interval, exact)


def test_a_lagging_rung_fails_and_unresolves_only_the_thresholds_that_rest_on_it(lagging):
    assert not lagging.converged
    assert len(lagging.failures) == 1 and lagging.failures[0].startswith("λ=-4.5: R-hat 1.")
    # P(φ ≥ 1) rests on λ = 0, −1.5 and −3 (λ = −4.5 carries about 5% of it, under the 10% allowed
    # beyond); from a = 3 on, the samples of λ = −4.5 carry 38% or more
    np.testing.assert_array_equal(lagging.resolved, [True, False, False, False])
    assert all(why == "rests on failing rungs λ = -4.5" for why in lagging.reasons[1:])


def test_unresolved_thresholds_keep_their_estimate_but_lose_their_interval(lagging):
    tail = lagging.tail
    np.testing.assert_array_equal(tail.log, lagging.estimate.log)
    np.testing.assert_array_equal(tail.log_interval[:, 1:], [[-np.inf] * 3, [0.0] * 3])
    np.testing.assert_array_equal(tail.log_interval[:, 0], lagging.estimate.log_interval[:, 0])
    assert not tail.resolved[1:].any()
    assert "NOT converged" in lagging.summary() and "UNRESOLVED" in lagging.summary()


def test_an_estimate_that_moved_since_the_previous_analysis_is_unresolved():
    runs, moved = toy_runs(3), toy_runs(4, lag=-3.0)  # half of the deepest rung's chains far beyond it
    full, _ = analyses(runs)
    before, _ = analyses(moved)
    verdict = convergence.assess(full, before, criteria=convergence.Criteria(max_rhat=np.inf))
    assert verdict.converged and not verdict.resolved[-1]
    assert "changed beyond its interval" in verdict.reasons[-1]


def test_low_swap_acceptance_fails_the_outer_rung_of_the_pair():
    runs = toy_runs(5, swap_accepted=[0.3, 0.02])  # pairs (−1.5, −3) and (−3, −4.5), in the run's order
    full, half = analyses(runs)
    verdict = convergence.assess(full, half, runs=runs)
    swaps = dict(zip(verdict.rungs.bias, verdict.rungs.swap_acceptance))
    assert swaps[-3.0] == pytest.approx(0.3) and swaps[-4.5] == pytest.approx(0.02)
    assert np.isnan(swaps[-1.5])  # the run has no rung at λ = 0 to swap with
    assert [line.split(":")[0] for line in verdict.failures] == ["λ=-4.5"]
    assert "swap acceptance inward 0.020 < 0.1" in verdict.failures[0]


def test_a_state_cut_off_by_low_overlap_fails():
    rng = np.random.default_rng(6)
    lambdas = [-1.5, -12.0]  # N(12, 1) shares no mass with N(1.5, 1)
    runs = [direct_run(rng.normal(size=2000)), biased_run(gaussian_chains(rng, lambdas, 8, 300), lambdas)]
    full, half = analyses(runs)
    verdict = convergence.assess(full, half)
    assert not verdict.converged
    assert any(line.startswith("λ=-12:") and "dropped by the analysis" in line for line in verdict.failures)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("max_rhat", 1.0, "max_rhat=1.0; use a number above 1"),
        ("min_ess_bulk", -1, "min_ess_bulk=-1; use a number ≥ 0"),
        ("min_overlap", 1.5, r"min_overlap=1.5; use a number in \[0, 1\)"),
    ],
)
def test_bad_criteria_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        convergence.Criteria(**{field: value})


def test_analyses_at_other_thresholds_cannot_be_compared(converged):
    runs = toy_runs(1)
    full, _ = analyses(runs)
    other = reweighting.analyze(runs, rng=np.random.default_rng(0), thresholds=[2.0], settings=SETTINGS, warn=False)
    with pytest.raises(ValueError, match="previous was analysed at other thresholds"):
        convergence.assess(full, other)
    with pytest.raises(ValueError, match="side='middle'"):
        convergence.assess(full, full, side="middle")


def test_the_plot_draws_a_band_only_over_resolved_thresholds(lagging):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rarelib import plots

    figure, ax = plt.subplots()
    plots.verdict_tail(lagging, "toy", ax=ax)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["toy: resolved"].get_xdata(), lagging.thresholds[lagging.resolved])
    np.testing.assert_array_equal(lines["toy: unresolved (estimate only)"].get_xdata(), lagging.thresholds[1:])
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "P(φ ≥ a)"
    plt.close(figure)

"""Tests of rarelib.smc: the SMC estimate of Z(λ) is unbiased, checked against exact log Z on Markov LMs.

Each check compares the mean of the islands' Ẑ_m with the exact Z(λ) in units of its standard error
estimated over the M islands, against the Student-t quantile with M − 1 degrees of freedom at a
two-sided false-failure probability of 1e-3 divided by the number of checks in the test (Bonferroni).
The islands are independent and Ẑ_m has finite variance, so the t-statistic is asymptotically
t-distributed; with M ≥ 64 islands the bound is conservative enough in practice. Small islands
(N = 8 particles) make log Ẑ_m visibly biased (Jensen), so these checks test the unbiasedness of Ẑ
itself, not the consistency of log Ẑ. The same check fails for SMC with a wrong weight.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rarelib import smc
from rarelib.exact import solvable, validation

FALSE_FAILURE = 1e-3


@pytest.fixture(scope="module")
def loop():
    model = validation.repetition_loop_lm(5, 0.1, 0.005, np.random.default_rng(1))
    return model, [1, 2, 0], 10


@pytest.fixture(scope="module")
def order2():
    return solvable.random_markov_lm(4, 2, np.random.default_rng(3)), [0, 1], 10


def unbiased(result: smc.SMCResult, log_exact: float, n_checks: int = 1) -> bool:
    """|mean Ẑ_m / Z − 1| within the t bound times the island standard error."""
    t = stats.t.ppf(1 - FALSE_FAILURE / (2 * n_checks), len(result.log_z_islands) - 1)
    ratio = np.exp(result.log_z_islands - log_exact)
    return bool(abs(ratio.mean() - 1.0) <= t * ratio.std(ddof=1) / math.sqrt(ratio.size))


CASES = {  # name → (model fixture, run_smc options)
    "loop count, class guide": (
        "loop",
        dict(lam=-3.0, observable="token_count", tokens=[0], guide=[0], guide_strength=-3.0),
    ),
    "loop count, from p_M": ("loop", dict(lam=-2.0, observable="token_count", tokens=[0])),
    "repeats, order 2": ("order2", dict(lam=-1.0, observable="repeats")),
    "repeats, local-tilt guide": ("order2", dict(lam=-1.5, observable="repeats", guide="repeats", guide_strength=-1.5)),
    "log-prob, temperature guide": (
        "order2",
        dict(lam=0.5, observable="logprob", guide="temperature", guide_strength=0.5),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_z_is_unbiased_on_exact_models(case, request):
    fixture, options = CASES[case]
    model, prompt, length = request.getfixturevalue(fixture)
    kind = options["observable"]
    observable = solvable.AdditiveObservable(kind, set(options.get("tokens", ())))
    log_exact = float(solvable.log_partition(model, observable, prompt, length, options["lam"]))
    result = smc.run_smc(model, prompt, length, n_particles=8, n_islands=400, seed=11, progress=False, **options)
    assert unbiased(result, log_exact)
    assert result.tokens == 8 * 400 * length


def test_a_wrong_weight_is_caught(loop, monkeypatch):
    """SMC that forgets the proposal's correction ρ = log p_M − log q estimates the wrong Z, and the check says so."""
    model, prompt, length = loop
    log_exact = float(
        solvable.log_partition(model, solvable.AdditiveObservable("token_count", {0}), prompt, length, -3.0)
    )
    options = dict(
        lam=-3.0,
        observable="token_count",
        tokens=[0],
        guide=[0],
        guide_strength=-3.0,
        n_particles=8,
        n_islands=400,
        seed=11,
        progress=False,
    )
    monkeypatch.setattr(
        smc, "_log_correction", lambda logits, proposal, tokens: torch.zeros(len(tokens), dtype=torch.float64)
    )
    assert not unbiased(smc.run_smc(model, prompt, length, **options), log_exact)


def test_any_twist_keeps_z_unbiased_and_tails_follow(loop):
    """A twist that over-tilts the prefixes changes the path, not the target; tails come out of the final particles."""
    model, prompt, length = loop
    observable = solvable.AdditiveObservable("token_count", {0})
    log_exact = float(solvable.log_partition(model, observable, prompt, length, -2.0))
    result = smc.run_smc(
        model,
        prompt,
        length,
        lam=-2.0,
        observable="token_count",
        tokens=[0],
        twist=lambda t, completions, phi: 3.0 * phi,
        n_particles=64,
        n_islands=64,
        seed=4,
        progress=False,
    )
    assert unbiased(result, log_exact, n_checks=2)
    threshold = np.array([4.0])  # near ⟨φ⟩ at λ = −2, where the final particles are
    tail, relative_se = result.tail_probabilities(threshold)
    log_tail, interval = tail.log, tail.log_interval
    exact_tail = solvable.exact_distribution(model, observable, prompt, length).log_prob_at_least(threshold)
    t = stats.t.ppf(1 - FALSE_FAILURE / 4, 63)
    assert abs(math.exp(log_tail[0] - exact_tail[0]) - 1.0) <= t * relative_se[0] * math.exp(
        log_tail[0] - exact_tail[0]
    )
    assert interval[0, 0] < log_tail[0] < interval[1, 0]


def test_resampling_follows_the_ess_fraction(order2):
    model, prompt, length = order2
    never = smc.run_smc(
        model, prompt, length, lam=-1.0, resample_fraction=0.0, n_particles=16, n_islands=4, progress=False
    )
    always = smc.run_smc(
        model, prompt, length, lam=-1.0, resample_fraction=1.0, n_particles=16, n_islands=4, progress=False
    )
    assert never.n_resampling.tolist() == [0] * 4 and always.n_resampling.tolist() == [length - 1] * 4
    np.testing.assert_allclose(np.exp(always.log_weights).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(n_islands=1), "n_islands"),
        (dict(n_particles=0), "n_particles"),
        (dict(resample_fraction=2.0), "resample"),
        (dict(observable="ari"), "kind"),
        (dict(observable="token_count"), "tokens"),
        (dict(lam=math.inf), "lam"),
        (dict(guide="temperature", guide_strength=1.5), "temperature"),
        (dict(level=1.2), "level"),
    ],
)
def test_bad_arguments(order2, change, message):
    model, prompt, length = order2
    with pytest.raises(ValueError, match=message):
        smc.run_smc(model, prompt, length, **{**dict(lam=-1.0, progress=False), **change})

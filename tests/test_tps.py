"""TPS: exact tilted laws on an enumerable model, λ = 0 against direct sampling, swaps, resume, errors."""

import itertools

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import stats
from scipy.special import logsumexp

from rarelib import direct, generation, guides, models, tps
from rarelib import observables as obs
from rarelib.diagnostics import chi_square_p_value
from rarelib.exact import solvable, validation

PROMPT = "ab a"
LENGTH = 4  # 4 tokens over a 4-letter vocabulary: 256 completions, enumerated exactly
SMALL_RUN = dict(
    completion_length=5,
    observable="repeats",
    biases=[-0.5, -1.0],
    n_chains=3,
    seed=11,
    record=("logprob", "repeats"),
    keep_tokens=True,
    progress=False,
)


@pytest.fixture(scope="module")
def lm():
    return models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3)


def cell_of(tokens: np.ndarray) -> np.ndarray:
    """Index in 0..255 of each completion (..., 4) (base-4 code, first token most significant)."""
    return (tokens.astype(np.int64) * 4 ** np.arange(LENGTH - 1, -1, -1)).sum(-1)


def tilted_law(lm, observable: str, lam: float) -> np.ndarray:
    """p_λ(x) ∝ e^{−λφ(x)} p_M(x) over all 256 completions, by scoring every one with the model."""
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    every = torch.tensor(list(itertools.product(range(4), repeat=LENGTH)))
    token_logprobs = generation.score(lm, prompt_ids, every)
    phi = obs.evaluate({observable: obs.get_observable(observable)}, lm, prompt_ids, every, token_logprobs)[observable]
    log_weights = token_logprobs.double().sum(1).numpy() - lam * phi
    return np.exp(log_weights - logsumexp(log_weights))


def final_state_p_value(lm, idata, observable: str, bias_index: int) -> float:
    """Chi-square p-value of the chains' last states at one bias against the exact tilted law.

    One state per chain: the chains are independent, so the cells are multinomial.
    """
    tokens = idata.posterior["tokens"].values[:, -1, bias_index]
    lam = float(idata.posterior["bias"].values[bias_index])
    return chi_square_p_value(np.bincount(cell_of(tokens), minlength=4**LENGTH), tilted_law(lm, observable, lam))


@pytest.mark.parametrize("observable, biases", [("repeats", [-0.5, -1.5]), ("logprob", [0.6, -1.0])])
def test_annealed_tps_samples_the_exact_tilted_law(lm, observable, biases):
    """60 steps per bias: enough to forget the previous segment (25 were not: the chains lagged behind)."""
    idata = tps.run_annealed(
        lm,
        PROMPT,
        LENGTH,
        observable,
        biases,
        steps_per_bias=60,
        n_chains=1200,
        seed=1,
        record=(),
        keep_tokens=True,
        progress=False,
    )
    for index in range(len(biases)):
        assert final_state_p_value(lm, idata, observable, index) > 1e-3


def test_parallel_tempering_samples_the_exact_tilted_law_at_every_rung(lm):
    ladder = [0.0, -0.75, -1.5]
    idata = tps.run_tempering(
        lm,
        PROMPT,
        LENGTH,
        "repeats",
        ladder,
        n_steps=50,
        n_chains=800,
        swap_every=1,
        seed=2,
        record=(),
        keep_tokens=True,
        progress=False,
    )
    for rung in range(len(ladder)):
        assert final_state_p_value(lm, idata, "repeats", rung) > 1e-3
    attempted = idata.sample_stats["swap_attempted"].values
    assert attempted[:, 0::2, 0].all() and not attempted[:, 0::2, 1].any()  # even pairs after steps 1, 3, ...
    assert attempted[:, 1::2, 1].all() and not attempted[:, 1::2, 0].any()  # odd pairs after steps 2, 4, ...
    assert not attempted[:, :, 2].any()
    rate = idata.sample_stats["swap_accepted"].values.sum((0, 1)) / attempted.sum((0, 1)).clip(1)
    assert (0.2 < rate[:2]).all() and (rate[:2] < 1).all()


# --------------------------------------------------------------------------- window and guided moves
# On an order-1 Markov LM whose loop token 0 strongly prefers itself, so that the suffix kept by
# a window move really changes probability, and the guide class {0} is the counted class.

LOOP_LENGTH = 5  # 3^5 = 243 completions, enumerated exactly


@pytest.fixture(scope="module")
def loop_lm():
    return validation.repetition_loop_lm(3, stay=0.6, entry=0.05, rng=np.random.default_rng(0))


def loop_tilted_law(loop_lm, lam: float) -> np.ndarray:
    """p_λ(x) ∝ p(x) e^{−λ·#0(x)} over all 243 completions after the prompt [0], read from the Markov table."""
    every = solvable.enumerate_sequences(3, LOOP_LENGTH)
    log_weights = solvable.completion_log_probs(loop_lm, [0], every).sum(1) - lam * (every == 0).sum(1)
    return np.exp(log_weights - logsumexp(log_weights))


def loop_p_values(loop_lm, idata) -> list[float]:
    """Chi-square p-value of the chains' last states at each bias against the exact tilted law."""
    tokens = idata.posterior["tokens"].values[:, -1]
    codes = (tokens.astype(np.int64) * 3 ** np.arange(LOOP_LENGTH - 1, -1, -1)).sum(-1)
    return [
        chi_square_p_value(np.bincount(codes[:, k], minlength=3**LOOP_LENGTH), loop_tilted_law(loop_lm, float(lam)))
        for k, lam in enumerate(idata.posterior["bias"].values)
    ]


def run_loop(loop_lm, driver=tps.run_annealed, biases=(-1.5, 1.0), n_steps=60, **move):
    steps = {"n_steps": n_steps} if driver is tps.run_tempering else {"steps_per_bias": n_steps}
    return driver(
        loop_lm,
        [0],
        LOOP_LENGTH,
        obs.token_class_count([0]),
        list(biases),
        n_chains=1500,
        seed=7,
        record=(),
        keep_tokens=True,
        progress=False,
        **steps,
        move=tps.Move(**move),
    )


@pytest.mark.parametrize(
    "move",
    [
        {"window": 1, "n_steps": 240},
        {"window": 2},
        {"guide": [0]},
        {"guide": [0], "window": 2},
        {"guide": [0], "scale": 0.5},
        {"guide": [1, 2], "scale": -0.7},
        {"guide": "temperature", "scale": 0.3},
        {"guide": "repeats", "scale": 0.8},
        {"guide": "repeats", "window": 2},
    ],
)
def test_window_and_guided_moves_sample_the_exact_tilted_law(loop_lm, move):
    """Width-1 windows change one token a step, so they need more steps to forget the start (60 were not enough)."""
    assert min(loop_p_values(loop_lm, run_loop(loop_lm, **move))) > 1e-3


def test_guided_tempering_samples_the_exact_tilted_law_at_every_rung(loop_lm):
    """Swaps move states between biases: the guided proposal law of the old path must follow its new bias."""
    idata = run_loop(loop_lm, tps.run_tempering, biases=(0.0, -1.0, -2.0), guide=[0])
    assert min(loop_p_values(loop_lm, idata)) > 1e-3
    assert idata.posterior.attrs["guide"] == "0"


@pytest.mark.parametrize(
    "move, broken, replacement",
    [
        ({"window": 2}, "suffix_log_ratio", lambda new, old, ends: np.zeros(len(ends))),
        (
            {"guide": [0]},
            "ShootingKernel._guide_log_importance",
            lambda self, state, tilt, regrown: np.zeros(len(tilt)),
        ),
        (
            {"guide": "temperature", "scale": 0.3},
            "ShootingKernel._guide_log_importance",
            lambda self, state, tilt, regrown: np.zeros(len(tilt)),
        ),
        (
            {"guide": "repeats", "scale": 1.5},
            "ShootingKernel._guide_log_importance",
            lambda self, state, tilt, regrown: np.zeros(len(tilt)),
        ),
    ],
)
def test_dropping_a_term_of_the_ratio_is_detected(loop_lm, monkeypatch, move, broken, replacement):
    """The same runs without the suffix term (windows) or the proposal term (guides) miss the law."""
    monkeypatch.setattr(f"rarelib.tps.{broken}", replacement)
    assert max(loop_p_values(loop_lm, run_loop(loop_lm, **move))) < 1e-6


@pytest.mark.parametrize(
    "observable, guide, driver, biases, seed",
    [
        ("logprob", "temperature", tps.run_annealed, [0.6, -1.0], 9),
        ("logprob", "temperature", tps.run_tempering, [0.0, 0.45, 0.9], 9),
        ("repeats", "repeats", tps.run_annealed, [-1.0, 0.8], 5),
        ("repeats", "repeats", tps.run_tempering, [0.0, -0.7, -1.4], 5),
    ],
)
def test_the_observables_own_guide_samples_its_exact_tilt(lm, observable, guide, driver, biases, seed):
    """Proposals that pre-pay the tilt token by token — at temperature 1/(1 − λ) for Log-Prob's
    p_M^{1−λ}, with e^{−λ·1[c_i = c_{i−1}]} for Repeats — on the enumerable GPT-2."""
    steps = {"n_steps": 60} if driver is tps.run_tempering else {"steps_per_bias": 60}
    idata = driver(
        lm,
        PROMPT,
        LENGTH,
        observable,
        biases,
        n_chains=1200,
        seed=seed,
        record=(),
        keep_tokens=True,
        move=tps.Move(guide=guide),
        progress=False,
        **steps,
    )
    assert idata.posterior.attrs["guide"] == guide
    for index in range(len(biases)):
        assert final_state_p_value(lm, idata, observable, index) > 1e-3


def test_a_pairwise_increment_guide_is_a_local_tilt(lm):
    """A user's (V, V) increments: the repeats matrix gives the repeats guide's proposal law."""
    kernel = tps.build_kernel(lm, PROMPT, LENGTH, "repeats", move=tps.Move(guide="repeats"), biases=[-1.0])
    matrix = guides.MatrixIncrement(torch.eye(lm.vocab_size, dtype=torch.float64), name="diagonal")
    custom = tps.build_kernel(lm, PROMPT, LENGTH, "repeats", move=tps.Move(guide=matrix), biases=[-1.0])
    first, second = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    a, b = kernel.init(50, first, lam=-1.0), custom.init(50, second, lam=-1.0)
    assert torch.equal(a.completions, b.completions)
    np.testing.assert_allclose(a.guide_statistics, b.guide_statistics, atol=1e-6)
    with pytest.raises(ValueError, match="needs the biases"):
        tps.build_kernel(lm, PROMPT, LENGTH, "repeats", move=tps.Move(guide="repeats"))


def test_the_temperature_guide_needs_the_biases_and_a_positive_temperature(lm):
    with pytest.raises(ValueError, match="needs the biases"):
        tps.build_kernel(lm, PROMPT, LENGTH, "logprob", move=tps.Move(guide="temperature"))
    with pytest.raises(ValueError, match="must be positive"):
        tps.run_annealed(
            lm,
            PROMPT,
            LENGTH,
            "logprob",
            [0.5, 1.0],
            steps_per_bias=2,
            n_chains=2,
            move=tps.Move(guide="temperature"),
            progress=False,
        )
    with pytest.raises(ValueError, match="guide must be token ids, 'temperature' or one of"):
        tps.build_kernel(lm, PROMPT, LENGTH, "logprob", move=tps.Move(guide="warm"), biases=[0.5])
    kernel = tps.build_kernel(lm, PROMPT, LENGTH, "logprob", move=tps.Move(guide="temperature"), biases=[0.5])
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="knows the strengths"):
        kernel.step(kernel.init(3, generator), 0.25, generator)


def test_width_one_windows_change_the_token_at_the_cut_only(loop_lm):
    idata = run_loop(loop_lm, biases=[-1.5], window=1)
    tokens, cuts = idata.posterior["tokens"].values[:, :, 0], idata.sample_stats["cut"].values[:, :, 0]
    changed = tokens[:, 1:] != tokens[:, :-1]
    assert changed.any() and not (changed & (np.arange(LOOP_LENGTH) != cuts[:, 1:, None])).any()
    assert idata.posterior.attrs["window"] == 1


def test_guided_proposals_are_accepted_more_at_a_strong_bias(loop_lm):
    plain, guided = (run_loop(loop_lm, biases=[-3.0], **move) for move in ({}, {"guide": [0]}))
    rates = [run.sample_stats["accepted"].values.mean() for run in (plain, guided)]
    assert rates[1] > rates[0] + 0.1


def test_paper_cuts_freeze_the_first_token_and_miss_the_tilted_law(lm):
    idata = tps.run_annealed(
        lm,
        PROMPT,
        LENGTH,
        "repeats",
        [-1.5],
        steps_per_bias=25,
        n_chains=1500,
        seed=3,
        record=(),
        keep_tokens=True,
        move=tps.Move(cuts="paper"),
        progress=False,
    )
    first_tokens = idata.posterior["tokens"].values[:, :, 0, 0]
    assert (first_tokens == first_tokens[:, :1]).all()
    cuts = idata.sample_stats["cut"].values
    assert cuts.min() == 1 and cuts.max() == LENGTH
    assert final_state_p_value(lm, idata, "repeats", 0) < 1e-6


def test_at_lambda_zero_tps_samples_what_direct_sampling_samples():
    """Two-sample chi-square on Repeats: last TPS states of independent chains vs direct samples (GPT-Neo)."""
    neo = models.random_model("gpt-neo", alphabet="abc .", context_length=24, seed=4)
    chains = tps.run_annealed(
        neo, PROMPT, 8, "repeats", [0.0], steps_per_bias=10, n_chains=1500, seed=4, record=(), progress=False
    )
    assert chains.sample_stats["accepted"].values.all()
    from_tps = chains.posterior["phi"].values[:, -1, 0].astype(int)
    from_direct = (
        direct.sample(neo, PROMPT, 3000, 8, observables=["repeats"], seed=5, batch_size=500, progress=False)
        .observables["repeats"]
        .astype(int)
    )
    table = np.stack([np.bincount(from_tps, minlength=9), np.bincount(from_direct, minlength=9)])
    pooled = np.concatenate([table[:, :4], table[:, 4:].sum(1, keepdims=True)], axis=1)  # few samples above 3
    assert pooled.min() >= 5
    assert stats.chi2_contingency(pooled).pvalue > 1e-3


def test_recorded_observables_follow_the_accepted_state(lm):
    idata = tps.run_annealed(lm, PROMPT, **{**SMALL_RUN, "n_chains": 6}, steps_per_bias=8)
    post = idata.posterior
    np.testing.assert_array_equal(post["phi"].values, post["repeats"].values)
    tokens = torch.from_numpy(post["tokens"].values.reshape(-1, 5)).long()
    scored = generation.score(lm, generation.prompt_token_ids(lm, PROMPT), tokens).double().sum(1).numpy()
    np.testing.assert_allclose(post["logprob"].values.ravel(), scored, atol=1e-4)
    moved = (post["tokens"].values[:, 1:] != post["tokens"].values[:, :-1]).any(-1)
    np.testing.assert_array_equal(moved, moved & idata.sample_stats["accepted"].values[:, 1:])


@pytest.mark.parametrize("join_groups", [1, 3, 8])
def test_regrow_keeps_prefixes_and_scores_what_it_grows(lm, join_groups):
    generator = torch.Generator().manual_seed(6)
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    context = generation.encode_prompt(lm, prompt_ids)
    start = torch.randint(0, 4, (12, 10), generator=generator)
    start_logprobs = generation.score(lm, prompt_ids, start)
    cuts = torch.tensor([0, 10, 3, 3, 9, 1, 0, 5, 7, 10, 2, 6])
    uniforms = torch.rand((12, 10), generator=generator, dtype=torch.float64)
    grown = generation.regrow(lm, context, start, start_logprobs, cuts, uniforms, join_groups=join_groups)
    reference = generation.regrow(lm, context, start, start_logprobs, cuts, uniforms, join_groups=1)
    kept = torch.arange(10)[None, :] < cuts[:, None]
    assert torch.equal(grown.completions[kept], start[kept])
    assert not torch.equal(grown.completions[~kept], start[~kept])
    np.testing.assert_allclose(grown.token_logprobs, generation.score(lm, prompt_ids, grown.completions), atol=1e-5)
    assert torch.equal(grown.completions, reference.completions)


def full_forward_kv(lm, prompt_ids, completions) -> torch.Tensor:
    """Keys and values (N, 2, B, H, P + L − 1, D) of the prompt and completions (B, L) from one parallel forward."""
    ids = torch.cat([prompt_ids.expand(len(completions), -1), completions[:, :-1]], dim=1)
    _, cache = lm.logits(ids)
    return torch.stack([torch.stack([layer.keys, layer.values]) for layer in cache.layers])


@pytest.mark.parametrize("architecture", ["gpt2", "gpt-neo"])
@pytest.mark.parametrize("windows", [False, True])
def test_regrow_reuses_the_carried_keys_and_values_of_the_kept_prefixes(architecture, windows):
    """Carried keys and values give the tokens that recomputing the prefixes gives, and are those of the output."""
    lm = models.random_model(architecture, alphabet="ab .", context_length=24, seed=5)
    generator = torch.Generator().manual_seed(8)
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    context = generation.encode_prompt(lm, prompt_ids)
    start = torch.zeros((10, 12), dtype=torch.int64)
    whole = torch.zeros(10, dtype=torch.int64)
    uniforms = torch.rand(start.shape, generator=generator, dtype=torch.float64)
    first = generation.regrow(lm, context, start, start.float(), whole, uniforms)
    cuts = torch.tensor([0, 12, 3, 3, 11, 1, 0, 5, 7, 2])
    ends = (cuts + 3).clamp(max=12) if windows else None
    uniforms = torch.rand(start.shape, generator=generator, dtype=torch.float64)
    carried, recomputed = (
        generation.regrow(lm, context, first.completions, first.token_logprobs, cuts, uniforms, ends=ends, kv=kv)
        for kv in (first.kv, None)
    )
    assert torch.equal(carried.completions, recomputed.completions)
    kept = torch.arange(12)[None, :] < cuts[:, None]
    assert torch.equal(carried.completions[kept], first.completions[kept])
    assert not torch.equal(carried.completions, first.completions)
    scored = generation.score(lm, prompt_ids, carried.completions)
    np.testing.assert_allclose(carried.token_logprobs, scored, atol=1e-5)
    for grown in (first, carried, recomputed):
        assert grown.kv.shape == (2, 2, 10, 2, len(prompt_ids) + 11, 8)
        torch.testing.assert_close(grown.kv, full_forward_kv(lm, prompt_ids, grown.completions), atol=1e-5, rtol=1e-5)


def test_models_without_carried_keys_and_values_regrow_as_before():
    markov = solvable.random_markov_lm(4, 2, np.random.default_rng(0))
    context = generation.encode_prompt(markov, generation.prompt_token_ids(markov, "ab"))
    start = torch.zeros((3, 5), dtype=torch.int64)
    cuts, uniforms = torch.zeros(3, dtype=torch.int64), torch.rand((3, 5), dtype=torch.float64)
    grown = generation.regrow(markov, context, start, start.float(), cuts, uniforms)
    assert grown.kv is None
    with pytest.raises(ValueError, match="kv must be the keys and values that regrow returned.*carries none"):
        generation.regrow(markov, context, start, start.float(), cuts, uniforms, kv=torch.zeros(1, 2, 3, 1, 6, 1))


def test_chains_carry_the_keys_and_values_of_their_states_through_moves_and_swaps(lm):
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    seen = []

    def check(step, state, info):
        torch.testing.assert_close(state.kv, full_forward_kv(lm, prompt_ids, state.completions), atol=1e-5, rtol=1e-5)
        seen.append(step)

    tps.run_tempering(
        lm, PROMPT, **{**SMALL_RUN, "move": tps.Move(guide=[1], window=3)}, n_steps=6, swap_every=1, callback=check
    )
    assert seen == list(range(6))


@pytest.mark.parametrize(
    "guide",
    [
        guides.ClassGuide(torch.tensor([1, 3])),
        guides.TemperatureGuide(torch.tensor([-2.0, 0.0, 0.5, 0.7], dtype=torch.float64)),
        guides.LocalTiltGuide(
            guides.RepeatIncrement(), torch.tensor([-2.0, 0.0, 0.5, 0.7], dtype=torch.float64), 0, vocab_size=4
        ),
    ],
)
def test_guided_regrowth_reports_the_statistics_and_the_proposal_law(lm, guide):
    """Statistics at every regrown position match the model's next-token law; ρ = log p_M − log q follows from them."""
    generator = torch.Generator().manual_seed(12)
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    context = generation.encode_prompt(lm, prompt_ids)
    start = torch.randint(0, 4, (6, 8), generator=generator)
    cuts = torch.tensor([0, 3, 8, 5, 1, 7])
    strength = torch.tensor([-2.0, 0.0, 0.5, 0.7, -2.0, 0.5], dtype=torch.float64)
    uniforms = torch.rand((6, 8), generator=generator, dtype=torch.float64)
    stale = torch.full((6, 8, guide.n_statistics), -9.0)
    grown = generation.regrow(
        lm,
        context,
        start,
        generation.score(lm, prompt_ids, start),
        cuts,
        uniforms,
        guidance=generation.Guidance(guide, strength, stale),
    )
    ids = torch.cat([prompt_ids.expand(6, -1), grown.completions], dim=1)
    log_probs = torch.log_softmax(lm.logits(ids[:, :-1])[0][:, len(prompt_ids) - 1 :], dim=-1)
    regrown = torch.arange(8)[None, :] >= cuts[:, None]
    previous = ids[:, len(prompt_ids) - 1 : -1]  # c_{i−1} of every completion position i
    expected = guide.statistics(log_probs[regrown], previous[regrown])
    np.testing.assert_allclose(grown.guide_statistics[regrown], expected, atol=1e-5)
    assert (grown.guide_statistics[~regrown] == -9.0).all()
    log_q = grown.token_logprobs.double() - guide.log_importance(
        grown.completions, grown.token_logprobs, grown.guide_statistics, strength
    )
    np.testing.assert_allclose(grown.sampling_logprobs[regrown], log_q[regrown].float(), atol=1e-5)
    assert grown.sampling_logprobs[~regrown].isnan().all()


def test_regrow_in_windows_keeps_the_suffix_and_rescores_it(lm):
    generator = torch.Generator().manual_seed(10)
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    context = generation.encode_prompt(lm, prompt_ids)
    start = torch.randint(0, 4, (8, 10), generator=generator)
    start_logprobs = generation.score(lm, prompt_ids, start)
    cuts = torch.tensor([0, 2, 5, 9, 10, 0, 3, 7])
    ends = torch.tensor([3, 2, 10, 10, 10, 10, 4, 8])
    uniforms = torch.rand((8, 10), generator=generator, dtype=torch.float64)
    grown = generation.regrow(lm, context, start, start_logprobs, cuts, uniforms, ends=ends, join_groups=3)
    window = (torch.arange(10)[None, :] >= cuts[:, None]) & (torch.arange(10)[None, :] < ends[:, None])
    assert torch.equal(grown.completions[~window], start[~window])
    np.testing.assert_allclose(grown.token_logprobs, generation.score(lm, prompt_ids, grown.completions), atol=1e-5)
    to_the_end = generation.regrow(lm, context, start, start_logprobs, cuts, uniforms, ends=torch.full((8,), 10))
    plain = generation.regrow(lm, context, start, start_logprobs, cuts, uniforms)
    assert torch.equal(to_the_end.completions, plain.completions)
    assert torch.equal(to_the_end.token_logprobs, plain.token_logprobs)


def test_swap_neighbours_exchanges_states_by_the_metropolis_rule():
    # 3 rungs × 2 replica sets; λ steps of 100 make each swap certain (Δ > 0) or hopeless (Δ ≤ −1)
    phi = np.array([5.0, 0.0, 1.0, 3.0, 2.0, 2.0])
    state = tps.TPSState(torch.arange(6)[:, None].repeat(1, 3), torch.zeros(6, 3), phi, {"phi_copy": phi.copy()})
    ladder = np.array([0.0, -100.0, -200.0])
    swapped, attempted, accepted = tps.swap_neighbours(state, ladder, 0, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(swapped.completions[:, 0].numpy(), [2, 1, 0, 3, 4, 5])
    np.testing.assert_array_equal(swapped.phi, [1.0, 0.0, 5.0, 3.0, 2.0, 2.0])
    np.testing.assert_array_equal(swapped.recorded["phi_copy"], swapped.phi)
    np.testing.assert_array_equal(attempted, [True, True, False, False, False, False])
    np.testing.assert_array_equal(accepted, [True, False, False, False, False, False])
    swapped, attempted, accepted = tps.swap_neighbours(state, ladder, 1, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(swapped.completions[:, 0].numpy(), [0, 1, 2, 5, 4, 3])  # rung 1 set 1: 3 > 2
    np.testing.assert_array_equal(attempted, [False, False, True, True, False, False])


class Interrupted(Exception):
    pass


def interrupt_at(step_to_fail: int):
    def callback(step, state, info):
        if step == step_to_fail:
            raise Interrupted

    return callback


@pytest.mark.parametrize(
    "driver, steps",
    [
        (tps.run_annealed, {"steps_per_bias": 5}),
        (tps.run_tempering, {"n_steps": 7, "swap_every": 2}),
        (tps.run_tempering, {"n_steps": 7, "move": tps.Move(guide=[1], window=3)}),
    ],
)
def test_resume_after_an_interruption_is_bit_for_bit(lm, tmp_path, driver, steps):
    arguments = {**SMALL_RUN, **steps}
    uninterrupted = driver(lm, PROMPT, **arguments)
    path = tmp_path / "run.npz"
    with pytest.raises(Interrupted):
        driver(lm, PROMPT, **arguments, checkpoint=path, checkpoint_every=3, callback=interrupt_at(4))
    calls = []
    resumed = driver(
        lm,
        PROMPT,
        **arguments,
        checkpoint=path,
        checkpoint_every=3,
        callback=lambda step, state, info: calls.append(step),
    )
    assert calls[0] == 3  # from the checkpoint after steps 0, 1, 2
    for group in ("posterior", "sample_stats"):
        xr.testing.assert_identical(resumed[group], uninterrupted[group])
    calls.clear()
    finished = driver(lm, PROMPT, **arguments, checkpoint=path, callback=lambda step, state, info: calls.append(step))
    assert calls == []
    xr.testing.assert_identical(finished.posterior, uninterrupted.posterior)
    with pytest.raises(ValueError, match="n_chains=3 there, 4 now"):
        driver(lm, PROMPT, **{**arguments, "n_chains": 4}, checkpoint=path)


def test_resume_with_reduced_precision_weights_is_bit_for_bit(tmp_path):
    """The carried keys and values of a bfloat16 model survive the float32 checkpoint exactly."""
    half = models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3, dtype="bfloat16")
    arguments = {**SMALL_RUN, "n_steps": 6}
    uninterrupted = tps.run_tempering(half, PROMPT, **arguments)
    path, carried = tmp_path / "run.npz", {}

    def keep_and_interrupt(step, state, info):
        carried[step] = state.kv.clone()
        interrupt_at(3)(step, state, info)

    with pytest.raises(Interrupted):
        tps.run_tempering(half, PROMPT, **arguments, checkpoint=path, checkpoint_every=2, callback=keep_and_interrupt)
    stored = torch.from_numpy(np.load(path)["state_kv"])
    assert carried[3].dtype == torch.bfloat16 and torch.equal(stored.to(torch.bfloat16), carried[3])  # saved at step 3
    resumed = tps.run_tempering(half, PROMPT, **arguments, checkpoint=path)
    xr.testing.assert_identical(resumed.posterior, uninterrupted.posterior)


def test_same_seed_same_run_and_another_seed_differs(lm):
    first, again, other = (
        tps.run_annealed(lm, PROMPT, **{**SMALL_RUN, "seed": seed}, steps_per_bias=4) for seed in (1, 1, 2)
    )
    xr.testing.assert_identical(first.posterior, again.posterior)
    xr.testing.assert_identical(first.sample_stats, again.sample_stats)
    assert not np.array_equal(first.posterior["tokens"].values, other.posterior["tokens"].values)


def test_layout_and_metadata(lm):
    idata = tps.run_annealed(lm, PROMPT, **SMALL_RUN, steps_per_bias=4)
    assert idata.posterior["phi"].dims == ("chain", "draw", "bias")
    assert idata.posterior["phi"].shape == (3, 4, 2) and idata.posterior["tokens"].shape == (3, 4, 2, 5)
    np.testing.assert_array_equal(idata.posterior["bias"].values, [-0.5, -1.0])
    attrs = idata.posterior.attrs
    assert {
        key: attrs[key]
        for key in (
            "observable",
            "sampler",
            "model",
            "prompt",
            "completion_length",
            "seed",
            "cuts",
            "steps_per_bias",
            "n_chains",
        )
    } == {
        "observable": "repeats",
        "sampler": "annealed_tps",
        "model": lm.name,
        "prompt": PROMPT,
        "completion_length": 5,
        "seed": 11,
        "cuts": "uniform",
        "steps_per_bias": 4,
        "n_chains": 3,
    }
    pt = tps.run_tempering(lm, PROMPT, **SMALL_RUN, n_steps=3)
    assert pt.posterior.attrs["sampler"] == "parallel_tempering" and pt.posterior["phi"].shape == (3, 3, 2)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"biases": []}, "biases must be a non-empty"),
        ({"biases": [0.1, float("nan")]}, "biases must be a non-empty"),
        ({"biases": [float("-inf")]}, "biases must be a non-empty"),
        ({"biases": "strong"}, "biases must be a non-empty"),
        ({"completion_length": 0}, "completion_length must be a positive integer"),
        ({"completion_length": 13}, "completion_length=13 .* context_length 16"),
        ({"observable": "toxicity"}, "observable must be one of"),
        ({"record": ["ari", "toxicity"]}, "observable must be one of"),
        ({"n_chains": 0}, "n_chains must be a positive integer"),
        ({"steps_per_bias": 0}, "steps_per_bias must be a positive integer"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"move": tps.Move(cuts="random")}, r"cuts must be one of \('uniform', 'paper'\)"),
        ({"move": tps.Move(window=0)}, "window must be a positive integer"),
        ({"move": tps.Move(window=2.5)}, "window must be a positive integer"),
        ({"move": tps.Move(guide=[7])}, r"guide must be a non-empty collection of token ids in 0\.\.3"),
        ({"move": tps.Move(guide=[])}, "guide must be a non-empty"),
        ({"move": tps.Move(guide=[1], scale=float("nan"))}, "the move's scale must be a finite number"),
        ({"move": {"guide": [1]}}, "move must be a tps.Move"),
        ({"checkpoint_every": 0}, "checkpoint_every must be a positive integer"),
        ({"start": "far"}, r"start must be one of \('overdispersed', 'model'\)"),
        ({"prompt": ""}, "prompt must contain at least one token"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(lm, change, message):
    arguments = {"prompt": PROMPT, **SMALL_RUN, "steps_per_bias": 2, **change}
    with pytest.raises(ValueError, match=message):
        tps.run_annealed(lm, **arguments)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_steps": 0}, "n_steps must be a positive integer"),
        ({"swap_every": 0}, "swap_every must be a positive integer"),
    ],
)
def test_bad_tempering_arguments(lm, change, message):
    with pytest.raises(ValueError, match=message):
        tps.run_tempering(lm, PROMPT, **{**SMALL_RUN, "n_steps": 2, **change})


# ----------------------------------------------------------------------------- over-dispersed starts


def test_far_rows_are_the_second_half_of_the_chains_at_every_biased_rung():
    layout = tps._Layout(np.array([-1.0, 0.0, 0.5]), draws=3, n_chains=4, tempering=True)
    far = layout.far_rows("overdispersed").reshape(3, 4)  # rung-major rows
    np.testing.assert_array_equal(far, [[0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 1, 1]])
    assert not layout.far_rows("model").any()
    annealing = tps._Layout(np.array([0.0, -0.5, -1.0]), draws=3, n_chains=5, tempering=False)
    np.testing.assert_array_equal(annealing.far_rows("overdispersed"), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(annealing.start_biases(), [-1.0] * 5)


def test_overdispersed_chains_start_beyond_their_rung_and_r_hat_sees_the_spread(loop_lm):
    # Guided pool at the strongest bias of each sign: far rows start with more loop tokens on the λ < 0 side
    # and fewer on the λ > 0 side than the rows started from p_M; the first draws then disagree across chains.
    kernel = tps.build_kernel(
        loop_lm, [0], LOOP_LENGTH, obs.token_class_count([0]), record=(), move=tps.Move(guide=[0])
    )
    layout = tps._Layout(np.array([-3.0, -1.5, 0.0, 1.0]), draws=1, n_chains=200, tempering=True)
    far = layout.far_rows("overdispersed")
    state = kernel.start(layout.start_biases(), far, torch.Generator().manual_seed(3))
    phi, far, rung = state.phi.reshape(4, 200), far.reshape(4, 200), np.arange(4)
    assert phi[0][far[0]].min() > np.median(phi[0][~far[0]])
    assert phi[3][far[3]].max() <= np.median(phi[3][~far[3]])
    assert phi[0][far[0]].mean() >= phi[1][far[1]].mean()  # the most extreme states go to the strongest rung
    assert not far[rung == 2].any()

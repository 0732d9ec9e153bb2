"""Direct sampling: exact law, log-probs = teacher-forced scoring, reproducibility, streaming and resume."""

import itertools

import numpy as np
import pytest
import torch

from rarelib import direct, generation, models, storage
from rarelib.diagnostics import chi_square_p_value
from rarelib.exact import solvable

PROMPT = "ab a"


@pytest.fixture(scope="module")
def lm():
    return models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3)


@pytest.fixture(scope="module")
def neo():
    return models.random_model("gpt-neo", alphabet="abc .", context_length=24, seed=4)


def test_samples_follow_the_model_law_exactly(lm):
    """All 4^4 completions enumerated and scored: the sampled frequencies match p_M (chi-square)."""
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    every = torch.tensor(list(itertools.product(range(4), repeat=4)))
    p_model = generation.score(lm, prompt_ids, every).double().sum(1).exp().numpy()
    samples = direct.sample(lm, PROMPT, 4000, 4, batch_size=1000, seed=1, keep_tokens=True, progress=False)
    cells = (samples.tokens.astype(np.int64) * 4 ** np.arange(3, -1, -1)).sum(1)
    assert p_model.sum() == pytest.approx(1.0, abs=1e-5)
    assert chi_square_p_value(np.bincount(cells, minlength=256), p_model / p_model.sum()) > 1e-3


@pytest.mark.parametrize("model", ["lm", "neo"])
def test_token_logprobs_equal_teacher_forced_scoring(model, request):
    lm = request.getfixturevalue(model)
    samples = direct.sample(lm, PROMPT, 20, 12, batch_size=8, seed=2, keep_tokens=True, progress=False)
    scored = generation.score(lm, generation.prompt_token_ids(lm, PROMPT), torch.from_numpy(samples.tokens).long())
    np.testing.assert_allclose(samples.token_logprobs, scored.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(samples.observables["logprob"], scored.double().sum(1).numpy(), rtol=0, atol=1e-4)
    assert samples.sampling_logprobs is None


def test_temperature_changes_the_sampling_law_but_not_the_reported_model_logprobs(lm):
    samples = direct.sample(lm, PROMPT, 16, 10, temperature=2.5, seed=3, keep_tokens=True, progress=False)
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    tokens = torch.from_numpy(samples.tokens).long()
    ids = torch.cat([prompt_ids.expand(16, -1), tokens], dim=1)
    logits = lm.logits(ids[:, :-1])[0][:, len(prompt_ids) - 1 :]
    at_temperature = torch.log_softmax(logits / 2.5, -1).gather(2, tokens[..., None])[..., 0]
    np.testing.assert_allclose(samples.sampling_logprobs, at_temperature.numpy(), atol=1e-5)
    np.testing.assert_allclose(samples.token_logprobs, generation.score(lm, prompt_ids, tokens).numpy(), atol=1e-5)


def test_markov_model_with_a_tensor_cache(lm):
    """Any CausalLM works: an exact order-2 Markov model (cache = last tokens) samples its own law."""
    markov = solvable.random_markov_lm(3, 2, np.random.default_rng(0), symbols="xyz")
    samples = direct.sample(markov, "xyx", 30, 6, batch_size=7, keep_tokens=True, progress=False)
    prompt_ids = generation.prompt_token_ids(markov, "xyx")
    scored = generation.score(markov, prompt_ids, torch.from_numpy(samples.tokens).long())
    np.testing.assert_allclose(samples.token_logprobs, scored.numpy(), atol=1e-6)


def test_same_seed_same_output_and_another_seed_differs(lm):
    first, again, other = (
        direct.sample(lm, PROMPT, 24, 8, batch_size=5, seed=seed, keep_tokens=True, progress=False)
        for seed in (7, 7, 8)
    )
    np.testing.assert_array_equal(first.tokens, again.tokens)
    np.testing.assert_array_equal(first.token_logprobs, again.token_logprobs)
    assert first.observables.keys() == again.observables.keys()
    for name in first.observables:
        np.testing.assert_array_equal(first.observables[name], again.observables[name])
    assert not np.array_equal(first.tokens, other.tokens)


def test_streaming_resumes_after_an_interruption_and_matches_memory(lm, tmp_path):
    arguments = dict(n=11, completion_length=6, batch_size=4, seed=5, keep_tokens=True, progress=False)
    in_memory = direct.sample(lm, PROMPT, **arguments)
    folder = tmp_path / "direct"
    assert direct.sample(lm, PROMPT, out=folder, **arguments) == folder
    complete = {path.name: path.read_bytes() for path in sorted(folder.glob("batch_*.npz"))}
    assert list(complete) == ["batch_000000.npz", "batch_000001.npz", "batch_000002.npz"]
    for name in ("batch_000001.npz", "batch_000002.npz"):  # a crash after the first batch
        (folder / name).unlink()
    with pytest.raises(ValueError, match="1 of 3 batches"):
        direct.load(folder)
    direct.sample(lm, PROMPT, out=folder, **arguments)
    assert {path.name: path.read_bytes() for path in sorted(folder.glob("batch_*.npz"))} == complete

    loaded = direct.load(folder)
    np.testing.assert_array_equal(loaded.tokens, in_memory.tokens)
    np.testing.assert_array_equal(loaded.token_logprobs, in_memory.token_logprobs)
    for name, values in in_memory.observables.items():
        np.testing.assert_array_equal(loaded.observables[name], values)
    light = direct.load(folder, per_token=False)
    assert light.tokens is None and light.token_logprobs is None
    assert set(light.observables) == set(in_memory.observables)

    with pytest.raises(ValueError, match="seed=5 there, 6 now"):
        direct.sample(lm, PROMPT, out=folder, **{**arguments, "seed": 6})


def test_inference_data_layout(lm, tmp_path):
    samples = direct.sample(lm, PROMPT, 9, 5, batch_size=4, keep_tokens=True, progress=False)
    idata = direct.to_inference_data(samples, "repeats")
    path = storage.save(idata, tmp_path / "direct.nc")
    loaded = storage.load(path)
    assert loaded.posterior["phi"].shape == (1, 9, 1)
    assert loaded.posterior["tokens"].shape == (1, 9, 1, 5)
    np.testing.assert_array_equal(loaded.posterior["phi"].values[0, :, 0], samples.observables["repeats"])
    np.testing.assert_array_equal(loaded.posterior["bias"].values, [0.0])
    assert loaded.posterior.attrs["sampler"] == "direct" and loaded.posterior.attrs["observable"] == "repeats"
    assert loaded.posterior.attrs["prompt"] == PROMPT and loaded.posterior.attrs["model"] == lm.name
    with pytest.raises(ValueError, match="observable must be one of"):
        direct.to_inference_data(samples, "toxicity")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"completion_length": 0}, "completion_length must be a positive integer"),
        ({"completion_length": 13}, "completion_length=13 with a 4-token prompt exceeds the model's context_length 16"),
        ({"batch_size": -2}, "batch_size must be a positive integer"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
        ({"temperature": float("nan")}, "temperature must be a finite number > 0"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"observables": ["ari", "toxicity"]}, "observable must be one of"),
        ({"prompt": ""}, "prompt must contain at least one token"),
        ({"prompt": [0, 7]}, "prompt has token ids outside the vocabulary 0..3"),
        ({"prompt": [0.5, 1.0]}, "prompt must be text or a 1-D sequence of token ids"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(lm, change, message):
    arguments = {"prompt": PROMPT, "n": 4, "completion_length": 4, "progress": False, **change}
    with pytest.raises(ValueError, match=message):
        direct.sample(lm, **arguments)


def test_load_of_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no direct-sampling batches"):
        direct.load(tmp_path / "nowhere")

"""Any causal LM, any tokenizer: tiny random-weight models of several families through the whole pipeline.

Each zoo model (tests/zoo.py) is loaded from a save_pretrained folder, sampled directly,
regrown after random cuts, run through a short tempering run and analysed; every sampled
log-prob must equal a plain teacher-forced forward of the Hugging Face model.
"""

import warnings

import huggingface_hub
import numpy as np
import pytest
import torch
import zoo

from rarelib import direct, generation, models, reweighting, tps

PROMPT = "Once upon a time, Holly"
LENGTH = 10


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    return {family: zoo.save_model(family, root / family) for family in zoo.FAMILIES}


def load(folders, family, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.UntokenizedWarning)
        return models.load(folders[family], **options)


def plain_logprobs(lm, prompt_ids, completions):
    """log p(c_i | prompt, c_<i) (B, L) from one full forward of the Hugging Face model, no cache."""
    ids = torch.cat([prompt_ids.expand(len(completions), -1), completions], dim=1)
    with torch.no_grad():
        logits = lm.model(input_ids=ids).logits[:, len(prompt_ids) - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1).gather(2, completions[..., None])[..., 0]


@pytest.mark.filterwarnings("ignore::rarelib.models.UntokenizedWarning")
@pytest.mark.parametrize("family", zoo.FAMILIES)
def test_zoo_model_runs_the_pipeline_with_exact_log_probs(folders, family):
    lm = load(folders, family)
    prompt_ids = generation.prompt_token_ids(lm, PROMPT)
    samples = direct.sample(
        lm,
        PROMPT,
        6,
        LENGTH,
        batch_size=4,
        seed=1,
        keep_tokens=True,
        progress=False,
        observables=["logprob", "ari", "ari_textstat"],
    )
    tokens = torch.as_tensor(samples.tokens, dtype=torch.int64)
    torch.testing.assert_close(
        torch.as_tensor(samples.token_logprobs), plain_logprobs(lm, prompt_ids, tokens), atol=1e-5, rtol=0
    )

    context = generation.encode_prompt(lm, prompt_ids)
    cuts = torch.tensor([0, 3, 9, 5, 10, 1])
    uniforms = torch.rand(6, LENGTH, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grown = generation.regrow(
        lm, context, tokens, torch.as_tensor(samples.token_logprobs), cuts, uniforms, join_groups=3
    )
    assert torch.equal(grown.completions[:, :3][cuts >= 3], tokens[:, :3][cuts >= 3])
    torch.testing.assert_close(
        grown.token_logprobs, plain_logprobs(lm, prompt_ids, grown.completions), atol=1e-5, rtol=0
    )

    run = tps.run_tempering(lm, PROMPT, LENGTH, "logprob", [0.0, 0.5], n_steps=6, n_chains=2, seed=3, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", reweighting.ReweightingWarning)
        analysis = reweighting.analyze(
            run,
            np.linspace(-200.0, 0.0, 5),
            rng=np.random.default_rng(0),
            settings=reweighting.Settings(n_bootstrap=2, rhat_threshold=100.0),
        )
    assert analysis.observable == "logprob" and analysis.upper_tail.log[0] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    "family, limit",
    [
        ("gpt2", 64),
        ("gpt_neox", 64),
        ("llama", 64),
        ("bloom", models.UNLIMITED_CONTEXT),
        ("mamba", models.UNLIMITED_CONTEXT),
    ],
)
def test_context_length_comes_from_whichever_field_the_family_uses(folders, family, limit):
    assert load(folders, family).context_length == limit


def test_bos_follows_the_tokenizer_unless_switched(folders):
    llama, gpt2 = load(folders, "llama"), load(folders, "gpt2")
    assert llama.encode(PROMPT)[0] == 0 and gpt2.encode(PROMPT)[0] != 0
    assert llama.decode(llama.encode(PROMPT)) == PROMPT == gpt2.decode(gpt2.encode(PROMPT))
    without = load(folders, "llama", add_bos=False)
    assert without.encode(PROMPT) == llama.encode(PROMPT)[1:] and without.name.endswith("-bos")
    forced = load(folders, "gpt2", add_bos=True)
    assert forced.encode(PROMPT) == [0] + gpt2.encode(PROMPT) and forced.name.endswith("+bos")
    assert llama.name == str(folders["llama"])
    with pytest.raises(ValueError, match="add_bos"):
        load(folders, "gpt2", add_bos="yes")


def test_padded_vocabulary_warns_with_counts_and_can_be_masked(folders):
    with pytest.warns(models.UntokenizedWarning, match=r"20 of its 320 logits \(ids 300\.\.319\)"):
        lm = models.load(folders["gpt_neox"])
    assert torch.equal(lm.untokenized_ids, torch.arange(zoo.TOKENIZER_VOCAB, zoo.PADDED_VOCAB))
    with pytest.warns(models.UntokenizedWarning, match=r"of 64 completions hold \d+ token ids without a token"):
        direct.sample(lm, PROMPT, 64, LENGTH, seed=0, observables=["ari"], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", models.UntokenizedWarning)
        masked = models.load(folders["gpt_neox"], mask_untokenized=True)
        samples = direct.sample(
            masked, PROMPT, 64, LENGTH, seed=0, observables=["ari"], keep_tokens=True, progress=False
        )
    assert samples.tokens.max() < zoo.TOKENIZER_VOCAB and masked.name.endswith("+masked")
    assert np.isfinite(samples.token_logprobs).all()


def test_weights_without_tokenizer_name_the_missing_files_and_the_fix(folders, tmp_path):
    bare = zoo.save_model("gpt2", tmp_path / "bare", with_tokenizer=False)
    with pytest.raises(models.ModelNotFoundError, match="no tokenizer files.*tokenizer="):
        models.load(bare)
    lm = models.load(bare, tokenizer=folders["gpt2"])
    assert lm.decode(lm.encode(PROMPT)) == PROMPT


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache in a temporary HF_HOME, offline."""
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read at import
    return tmp_path / "hub"


def test_cached_hub_id_without_organisation_loads(hub_cache, folders):
    zoo.save_model("gpt2", zoo.hub_snapshot(hub_cache, "gpt2"))
    lm = models.load("gpt2")
    assert lm.name == "gpt2" and lm.decode(lm.encode(PROMPT)) == PROMPT
    with pytest.raises(models.ModelNotFoundError, match="'distilgpt2' is not available offline.*save_pretrained"):
        models.load("distilgpt2")


def test_cached_repos_refused_for_safety_say_why(hub_cache):
    pickled = zoo.hub_snapshot(hub_cache, "someone/pickled")
    (pickled / "config.json").write_text('{"model_type": "gpt2"}')
    (pickled / "pytorch_model.bin").write_bytes(b"never unpickled")
    with pytest.raises(models.ModelNotFoundError, match="no \\*.safetensors weights"):
        models.load("someone/pickled")
    zoo.write_remote_code_folder(zoo.hub_snapshot(hub_cache, "someone/custom"))
    with pytest.raises(models.ModelNotFoundError, match="needs remote code.*never runs code"):
        models.load("someone/custom")

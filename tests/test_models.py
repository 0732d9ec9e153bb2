"""rarelib.models: loading offline, the CausalLM interface, clear errors."""

import pytest
import torch

from rarelib import models


@pytest.fixture(scope="module")
def default_lm():
    return models.load("default")


def test_default_model_loads_and_fits_the_protocol(default_lm):
    assert isinstance(default_lm, models.CausalLM)
    assert default_lm.vocab_size == 2048
    assert default_lm.context_length >= 256
    ids = default_lm.encode("Once upon a time, in a big forest, there lived a")
    assert default_lm.decode(ids) == "Once upon a time, in a big forest, there lived a"


def test_default_model_is_small_and_stored_as_safetensors():
    weights = list(models.DEFAULT_MODEL_DIR.glob("*.safetensors"))
    assert weights and sum(w.stat().st_size for w in weights) <= 20 * 2**20
    assert not list(models.DEFAULT_MODEL_DIR.glob("*.bin"))


@pytest.mark.parametrize("architecture", ["gpt2", "gpt-neo"])
def test_cached_logits_equal_full_forward(architecture):
    lm = models.random_model(architecture, alphabet="ab .", context_length=16, seed=3)
    ids = torch.tensor([[0, 1, 2, 3, 0, 1], [3, 3, 2, 1, 0, 0]])
    full, _ = lm.logits(ids)
    head, cache = lm.logits(ids[:, :4])
    tail, _ = lm.logits(ids[:, 4:], cache)
    torch.testing.assert_close(torch.cat([head, tail], dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("architecture", ["gpt2", "gpt-neo"])
def test_logits_to_keep_gives_the_last_positions_of_the_full_forward(architecture):
    lm = models.random_model(architecture, alphabet="ab .", context_length=16, seed=3)
    ids = torch.tensor([[0, 1, 2, 3, 0, 1], [3, 3, 2, 1, 0, 0]])
    full, _ = lm.logits(ids)
    for keep in (1, 4):
        last, cache = lm.logits(ids, logits_to_keep=keep)
        assert last.shape == (2, keep, 4) and last.dtype == torch.float32
        torch.testing.assert_close(last, full[:, -keep:], atol=1e-5, rtol=1e-5)
    after, _ = lm.logits(torch.tensor([[2], [1]]), cache, logits_to_keep=1)
    torch.testing.assert_close(after, lm.logits(torch.cat([ids, torch.tensor([[2], [1]])], dim=1))[0][:, -1:])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", torch.bfloat16])
def test_reduced_precision_weights_give_float32_logits_close_to_float32(tmp_path, dtype):
    lm = models.random_model("gpt-neo", seed=1)
    lm.model.save_pretrained(tmp_path, safe_serialization=True)
    lm.tokenizer.save_pretrained(tmp_path)
    reduced = models.load(tmp_path, dtype=dtype)
    name = models.check_dtype(dtype)
    assert reduced.model.dtype == name and reduced.name.endswith("+" + str(name).removeprefix("torch."))
    assert models.random_model("gpt-neo", seed=1, dtype=dtype).model.dtype == name
    ids = torch.tensor([[0, 1, 2, 3]])
    logits = reduced.logits(ids)[0]
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, lm.logits(ids)[0], atol=0.05, rtol=0.05)
    assert models.fingerprint(reduced) != models.fingerprint(models.load(tmp_path))


@pytest.mark.parametrize("dtype", ["fp32", "float64", torch.float64, 32])
def test_unknown_dtype_is_refused_with_the_allowed_names(dtype):
    with pytest.raises(ValueError, match=r"dtype must be one of \['bfloat16', 'float16', 'float32'\]"):
        models.check_dtype(dtype)
    with pytest.raises(ValueError, match="dtype must be one of"):
        models.random_model("gpt-neo", dtype=dtype)


def test_saved_folder_round_trips(tmp_path):
    lm = models.random_model("gpt-neo", seed=1)
    lm.model.save_pretrained(tmp_path, safe_serialization=True)
    lm.tokenizer.save_pretrained(tmp_path)
    loaded = models.load(tmp_path)
    ids = torch.tensor([[0, 1, 2, 3]])
    torch.testing.assert_close(loaded.logits(ids)[0], lm.logits(ids)[0])
    assert loaded.decode([0, 1, 2]) == "ab "


def test_missing_folder_names_the_problem(tmp_path):
    with pytest.raises(models.ModelNotFoundError, match="no such folder"):
        models.load(tmp_path / "nowhere")


def test_unavailable_hub_id_says_offline_and_how_to_fix():
    with pytest.raises(models.ModelNotFoundError, match="not available offline.*save_pretrained"):
        models.load("roneneldan/TinyStories-8M-not-cached")


def test_folder_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(models.ModelNotFoundError, match="safetensors"):
        models.load(tmp_path)


def test_device_selection():
    assert models.resolve_device("cpu") == torch.device("cpu")
    assert models.resolve_device("auto").type in {"cpu", "cuda"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            models.resolve_device("cuda")
    with pytest.raises(ValueError, match="not a device"):
        models.resolve_device("tpu-9")


def test_character_tokenizer_rejects_repeated_symbols():
    with pytest.raises(ValueError, match="distinct"):
        models.character_tokenizer("aab")


@pytest.mark.parametrize("n_layer", [1, 2, 3, 4])
def test_random_gpt_neo_alternates_global_and_local_attention_at_any_depth(n_layer):
    lm = models.random_model("gpt-neo", n_layer=n_layer)
    assert lm.model.config.attention_layers == (["global", "local"] * n_layer)[:n_layer]

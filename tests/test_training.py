"""rarelib.storymodel.training: determinism, resumable checkpoints, a loadable model folder."""

import json
from dataclasses import replace

import pytest
import torch

import rarelib.storymodel.training as training
from rarelib import models

TINY = training.TrainingConfig(
    n_stories=120,
    vocab_size=300,
    context_length=32,
    hidden_size=16,
    num_layers=2,
    num_heads=2,
    batch_size=4,
    steps=6,
    warmup_steps=2,
    eval_every=3,
    eval_batches=2,
    threads=1,
)


def test_training_is_deterministic_and_writes_a_loadable_model(tmp_path):
    first = training.train(TINY, tmp_path / "a", tmp_path / "work_a")
    second = training.train(TINY, tmp_path / "b", tmp_path / "work_b")
    assert first["validation_loss"] == second["validation_loss"]
    lm = models.load(tmp_path / "a")
    assert lm.vocab_size == TINY.vocab_size and lm.context_length == TINY.context_length
    assert (tmp_path / "a" / "model.safetensors").is_file()
    card = (tmp_path / "a" / "README.md").read_text()
    assert "validation loss" in card and card.count(training.CARD_PROMPT) >= 10
    assert json.loads((tmp_path / "a" / "training.json").read_text())["parameters"] == first["parameters"]


def test_interrupted_training_resumes_bit_for_bit(tmp_path, monkeypatch):
    reference = training.train(TINY, tmp_path / "ref", tmp_path / "work_ref")
    save = training.save_checkpoint

    def stop_after_first_checkpoint(folder, model, optimizer, config, step, history):
        save(folder, model, optimizer, config, step, history)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", stop_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        training.train(TINY, tmp_path / "out", tmp_path / "work")
    monkeypatch.setattr(training, "save_checkpoint", save)
    resumed = training.train(TINY, tmp_path / "out", tmp_path / "work")
    assert resumed["validation_loss"] == reference["validation_loss"]
    assert resumed["history"] == reference["history"]


def test_checkpoint_from_other_settings_is_refused(tmp_path):
    training.train(replace(TINY, steps=3), tmp_path / "out", tmp_path / "work")
    with pytest.raises(ValueError, match="other settings.*steps"):
        training.train(TINY, tmp_path / "out", tmp_path / "work")


def test_learning_rate_schedule_warms_up_then_decays():
    rates = [training.learning_rate(step, TINY) for step in range(TINY.steps)]
    assert rates[0] < rates[1] == pytest.approx(TINY.learning_rate)
    assert all(a >= b for a, b in zip(rates[1:], rates[2:]))
    assert rates[-1] >= 0.1 * TINY.learning_rate


def test_windows_are_pure_functions_of_seed_and_step():
    starts = training.batch_starts(10_000, TINY, step=5)
    assert (starts == training.batch_starts(10_000, TINY, step=5)).all()
    assert not (starts == training.batch_starts(10_000, TINY, step=6)).all()
    tokens = torch.arange(10_000).numpy()
    batch = training.windows(tokens, starts, TINY.context_length)
    assert batch.shape == (TINY.batch_size, TINY.context_length + 1)
    assert (batch[:, 1:] - batch[:, :-1] == 1).all()

"""rarelib.companions.toy_training: rule-following bit sequences and tiny GPTs trained on them in seconds."""

import numpy as np
import pytest
import torch

from rarelib.companions import toy_training
from rarelib.exact import chains

FAST = toy_training.ToyTraining(steps=100)


@pytest.fixture(scope="module")
def parity_windows():
    return toy_training.sliding_windows(toy_training.parity_sequence([0, 0, 1], 40), 4)


def test_parity_sequence_follows_the_rule():
    bits = toy_training.parity_sequence([1, 0, 1, 1], 30)
    assert bits.shape == (30,) and list(bits[:4]) == [1, 0, 1, 1]
    assert all(bits[t] == bits[t - 4 : t].sum() % 2 for t in range(4, 30))


@pytest.mark.parametrize("initial, length", [([], 5), ([0, 2], 5), ([0, 1, 1], 2), ([0, 1, 1], 4.5)])
def test_parity_sequence_rejects_bad_input(initial, length):
    with pytest.raises(ValueError, match="initial|length"):
        toy_training.parity_sequence(initial, length)


def test_sliding_windows(parity_windows):
    assert parity_windows.shape == (37, 4)  # the seed paper's 37 training windows of a 40-bit sequence
    np.testing.assert_array_equal(parity_windows[5], toy_training.parity_sequence([0, 0, 1], 40)[5:9])
    with pytest.raises(ValueError, match="width"):
        toy_training.sliding_windows([0, 1, 1], 4)


def test_training_is_deterministic_and_learns_the_training_windows(parity_windows):
    torch.set_num_threads(1)
    first, losses = toy_training.train_on_windows(parity_windows, "01", FAST)
    second, again = toy_training.train_on_windows(parity_windows, "01", FAST)
    np.testing.assert_array_equal(losses, again)
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    assert losses[-1] < 0.5 * losses[0]
    assert toy_training.greedy_accuracy(first, parity_windows) == 1.0
    assert not any(p.requires_grad for p in first.model.parameters())
    # read as a chain, the states seen in training carry nearly all of the stationary mass
    chain = chains.model_as_chain(first, 3)
    seen = {int("".join(map(str, w[:3])), 2) for w in parity_windows}
    assert chains.stationary_distribution(chain)[sorted(seen)].sum() > 0.9


def test_training_rejects_bad_input(parity_windows):
    with pytest.raises(ValueError, match="windows"):
        toy_training.train_on_windows(parity_windows[:, :1], "01", FAST)
    with pytest.raises(ValueError, match="outside"):
        toy_training.train_on_windows(parity_windows + 1, "01", FAST)
    with pytest.raises(ValueError, match="n_embd"):
        toy_training.ToyTraining(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="steps"):
        toy_training.ToyTraining(steps=0)

"""Observables: ARI counting rules against hand counts, repeats' c_0 convention, the registry."""

import math

import numpy as np
import pytest
import torch

from rarelib import models
from rarelib import observables as obs

ALPHABET = "abT .!?"


@pytest.fixture(scope="module")
def lm():
    return models.random_model("gpt2", alphabet=ALPHABET, context_length=32)


def ids(text: str) -> torch.Tensor:
    return torch.tensor([ALPHABET.index(char) for char in text])


@pytest.mark.parametrize(
    "text, counts",
    [
        # words, with their letters/digits: The 3, cat 3, sat. 3; one terminated sentence
        ("The cat sat.", (9, 3, 1)),
        # "Hi!" ends a sentence; "I am Bob" is an unterminated final fragment, a second sentence
        ("Hi! I am Bob", (8, 4, 2)),
        # closing quote after "!" still ends the sentence; "3.14" is a word that ends none;
        # "--" has no letter or digit so is not a word; the ellipsis run counts once
        ('"Run!" she said. -- 3.14 is pi...', (17, 6, 3)),
        ("Wait?!  Now", (7, 2, 2)),
        ("", (0, 0, 0)),
        (" .!? -- ", (0, 0, 0)),
    ],
)
def test_readability_counts_match_hand_counts(text, counts):
    assert obs.readability_counts(text) == counts


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The cat sat.", 4.71 * 9 / 3 + 0.5 * 3 / 1 - 21.43),
        ("Hi! I am Bob", 4.71 * 8 / 4 + 0.5 * 4 / 2 - 21.43),
        ('"Run!" she said. -- 3.14 is pi...', 4.71 * 17 / 6 + 0.5 * 6 / 3 - 21.43),
        ("", -21.43),
        (" .!? ", -21.43),
        ("Supercalifragilisticexpialidocious", 15.0),
    ],
)
def test_automated_readability_index(text, expected):
    assert obs.automated_readability_index(text) == pytest.approx(expected, abs=1e-12)


def test_cap_is_configurable():
    word = "Supercalifragilisticexpialidocious"
    uncapped = 4.71 * len(word) + 0.5 - 21.43
    assert obs.automated_readability_index(word, cap=math.inf) == pytest.approx(uncapped)
    assert obs.make_ari(cap=math.inf).__name__ == "ari_capinf"
    assert obs.make_ari().__name__ == "ari"
    with pytest.raises(ValueError, match="cap"):
        obs.make_ari(cap=float("nan"))


def test_ari_on_a_batch_reads_prompt_and_completion(lm):
    completions = torch.stack([ids("b.Taa"), ids("  ..."), ids("a!T b")])
    values = obs.ari(lm, ids("Ta "), completions, torch.zeros(3, 5))
    texts = ["Ta b.Taa", "Ta   ...", "Ta a!T b"]
    np.testing.assert_allclose(values, [obs.automated_readability_index(text) for text in texts])
    assert values.dtype == np.float64 and values.shape == (3,)


def test_ari_textstat_is_textstat_capped_on_random_texts():
    import textstat

    alphabet = "abcXYZ019 .,!?'\"-\n"
    lm = models.random_model("gpt2", alphabet=alphabet, context_length=64)
    weights = np.array([6.0 if char == " " else 1.0 for char in alphabet])  # words of a few characters
    rng = np.random.default_rng(7)
    completions = torch.as_tensor(rng.choice(len(alphabet), size=(300, 40), p=weights / weights.sum()))
    texts = ["X" + "".join(alphabet[i] for i in row) for row in completions.tolist()]
    values = obs.ari_textstat(lm, torch.tensor([alphabet.index("X")]), completions, torch.zeros(300, 40))
    expected = [min(textstat.automated_readability_index(text), 15.0) for text in texts]
    np.testing.assert_array_equal(values, expected)
    assert 0.2 < np.mean(values < 15.0) and np.any(values == 15.0)


def test_sentence_end_tokens_are_the_ones_that_can_end_an_ari_sentence(lm):
    assert obs.sentence_end_token_ids(lm) == [ALPHABET.index(char) for char in ".!?"]
    with pytest.raises(ValueError, match="no token containing"):
        obs.sentence_end_token_ids(models.random_model("gpt2", alphabet="ab ", context_length=8))


def test_logprob_sums_token_logprobs_in_float64(lm):
    token_logprobs = torch.tensor([[-0.5, -1.25, -2.0], [-1e-8, -3.0, -0.125]])
    values = obs.logprob(lm, ids("a"), torch.zeros(2, 3, dtype=torch.int64), token_logprobs)
    np.testing.assert_allclose(values, token_logprobs.double().sum(1).numpy(), rtol=0, atol=1e-12)


def test_repeats_counts_the_last_prompt_token_as_c0(lm):
    completions = torch.stack([ids("bba"), ids("aba"), ids("aaa")])
    # c_0 = "b": "bba" → b=b, b=b, a≠b → 2; "aba" → 0; "aaa" → a≠b, a=a, a=a → 2
    np.testing.assert_array_equal(obs.repeats(lm, ids("ab"), completions, torch.zeros(3, 3)), [2, 0, 2])


def test_longest_repeat_run_is_the_longest_streak_of_repeats(lm):
    completions = torch.stack([ids("bbab"), ids("abaa"), ids("aaaa"), ids("abab")])
    # c_0 = "b": "bbab" → streak 2 then broken; "abaa" → 1; "aaaa" → 3; "abab" → 0
    np.testing.assert_array_equal(obs.longest_repeat_run(lm, ids("ab"), completions, torch.zeros(4, 4)), [2, 1, 3, 0])


def test_longest_repeat_run_matches_a_plain_loop(lm):
    rng = np.random.default_rng(0)
    completions = torch.from_numpy(rng.integers(0, 2, size=(200, 12)))
    prompt = torch.tensor([1])
    expected = []
    for row in [[1] + r for r in completions.tolist()]:
        streak = longest = 0
        for before, token in zip(row, row[1:]):
            streak = streak + 1 if token == before else 0
            longest = max(longest, streak)
        expected.append(longest)
    found = obs.longest_repeat_run(lm, prompt, completions, torch.zeros(completions.shape))
    np.testing.assert_array_equal(found, expected)
    assert (found <= obs.repeats(lm, prompt, completions, torch.zeros(completions.shape))).all()


def test_token_class_count(lm):
    count = obs.token_class_count([ALPHABET.index("a"), ALPHABET.index("T")])
    completions = torch.stack([ids("aTab."), ids("     "), ids("TTTTa")])
    np.testing.assert_array_equal(count(lm, ids("a"), completions, torch.zeros(3, 5)), [3, 0, 5])
    assert count.__name__ == "count_0_2"
    assert obs.token_class_count(range(10)).__name__.startswith("count_10tokens_")
    for bad in ([], [-1, 2], None):
        with pytest.raises(ValueError, match="token_ids"):
            obs.token_class_count(bad)


def test_registry_returns_observables_by_name_or_callable():
    assert obs.get_observable("ari") is obs.ari
    assert obs.get_observable("logprob") is obs.logprob
    assert obs.get_observable(obs.repeats) is obs.repeats
    assert list(obs.get_observables(["repeats", "ari", "repeats"])) == ["repeats", "ari"]
    assert obs.get_observable("ari_textstat") is obs.ari_textstat
    with pytest.raises(ValueError, match=r"\['ari', 'ari_textstat', 'logprob', 'longest_repeat_run', 'repeats'\]"):
        obs.get_observable("readability")


def test_evaluate_rejects_wrong_shapes_and_non_finite_values(lm):
    completions = torch.zeros(2, 3, dtype=torch.int64)

    def too_short(lm, prompt_ids, completions, token_logprobs):
        return np.zeros(1)

    def not_finite(lm, prompt_ids, completions, token_logprobs):
        return np.array([0.0, np.nan])

    with pytest.raises(ValueError, match="too_short.*shape"):
        obs.evaluate({"too_short": too_short}, lm, ids("a"), completions, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="not_finite.*non-finite"):
        obs.evaluate({"not_finite": not_finite}, lm, ids("a"), completions, torch.zeros(2, 3))

"""Tests of rarelib.storymodel.prompts: stories at corpus percentiles and prompts cut from them."""

import numpy as np
import pytest

from rarelib import models, observables
from rarelib.storymodel import corpus, prompts


@pytest.fixture(scope="module")
def lm():
    return models.load("default")


@pytest.fixture(scope="module")
def stories() -> list[str]:
    return corpus.generate_corpus(200, seed=3)


def test_percentile_indices_pick_minimum_median_and_maximum():
    scores = np.array([5.0, -1.0, 3.0, 9.0, 0.0])
    assert prompts.percentile_indices(scores, [0, 50, 100]).tolist() == [1, 2, 3]


def test_percentile_indices_break_ties_by_position():
    scores = np.array([2.0, 1.0, 2.0, 1.0])
    assert prompts.percentile_indices(scores, [0, 100]).tolist() == [1, 2]


def test_percentile_indices_match_numpy_nearest_rank_values():
    scores = np.random.default_rng(0).normal(size=101)
    percentiles = [0, 13, 33, 67, 100]
    chosen = scores[prompts.percentile_indices(scores, percentiles)]
    np.testing.assert_array_equal(chosen, np.percentile(scores, percentiles, method="nearest"))


@pytest.mark.parametrize(
    "scores, percentiles, name",
    [
        ([], [0], "scores"),
        ([[1.0, 2.0]], [0], "scores"),
        ([1.0, np.nan], [0], "scores"),
        ([1.0, 2.0], [101], "percentiles"),
        ([1.0, 2.0], [-5], "percentiles"),
    ],
)
def test_percentile_indices_reject_bad_input(scores, percentiles, name):
    with pytest.raises(ValueError, match=name):
        prompts.percentile_indices(scores, percentiles)


def test_prompt_is_the_text_of_the_first_tokens(lm, stories):
    prompt = prompts.prompt_from_text(lm, stories[0], 20)
    assert stories[0].startswith(prompt)
    assert lm.encode(prompt) == lm.encode(stories[0])[:20]


@pytest.mark.parametrize("n_tokens", [0, 2.5, True, 10**6])
def test_prompt_rejects_bad_token_counts(lm, stories, n_tokens):
    with pytest.raises(ValueError, match="n_tokens"):
        prompts.prompt_from_text(lm, stories[0], n_tokens)


def test_prompts_at_percentiles_follow_the_corpus_scores(lm, stories):
    chosen = prompts.prompts_at_percentiles(lm, stories, [0, 33, 67, 100], n_tokens=16)
    scores = np.array([observables.automated_readability_index(story) for story in stories])
    assert [c.percentile for c in chosen] == [0, 33, 67, 100]
    assert chosen[0].score == scores.min() and chosen[-1].score == scores.max()
    assert np.all(np.diff([c.score for c in chosen]) >= 0)
    for c in chosen:
        assert c.score == scores[c.story_index]
        assert stories[c.story_index].startswith(c.prompt)
        assert len(lm.encode(c.prompt)) == 16

"""Tests of rarelib.companions.exploration: ARI terms, the repeat filter and its weighted precision and recall.

The estimate under the model is checked on a Gaussian toy with exact tilted laws: base φ ~ N(0, 1),
p_λ = N(−λ, 1); a "repeat run" that grows with φ makes the filter's precision and recall exact
Gaussian tail ratios. Tolerances are k bootstrap standard errors.
"""

import warnings

import numpy as np
import pytest
from scipy import stats

from rarelib import models, observables, reweighting, storage
from rarelib.companions import exploration

LEVEL_Z = stats.norm.ppf(0.98)  # a 96% interval spans ±LEVEL_Z standard errors


def test_ari_terms_add_up_to_the_uncapped_ari():
    texts = [
        "The cat sat. It was happy!",
        "Supercalifragilistic words everywhere without any full stop",
        '"Run!" said Tom. Then he ran',
        "-- ...",
    ]
    terms = exploration.ari_terms(texts)
    assert terms.shape == (4, 2)
    for text, (word_term, sentence_term) in zip(texts[:3], terms[:3]):
        characters, words, sentences = observables.readability_counts(text)
        assert word_term == pytest.approx(4.71 * characters / words)
        assert sentence_term == pytest.approx(0.5 * words / sentences)
        assert word_term + sentence_term - 21.43 == pytest.approx(observables.automated_readability_index(text, np.inf))
    assert np.array_equal(terms[3], [0.0, 0.0])  # no words


def test_ari_terms_rejects_a_single_string():
    with pytest.raises(ValueError, match="sequence of strings"):
        exploration.ari_terms("one text")


def test_corpus_windows_have_the_requested_token_length():
    lm = models.load("default")
    stories = ["Once upon a time there was a little dog. " * 20, "Tom ran."]
    windows = exploration.corpus_windows(lm, stories, 12)
    assert len(lm.encode(windows[0])) == 12
    assert windows[1] == "Tom ran."
    with pytest.raises(ValueError, match="n_tokens"):
        exploration.corpus_windows(lm, stories, 0)


def test_repeat_filter_flags_runs_longer_than_the_cap():
    flags = exploration.repeat_filter(np.array([0, 1, 3, 7]), [0, 2, 7])
    assert np.array_equal(flags, [[False, True, True, True], [False, False, True, True], [False] * 4])
    with pytest.raises(ValueError, match="caps"):
        exploration.repeat_filter(np.array([1, 2]), [-1])
    with pytest.raises(ValueError, match="longest_repeat_run"):
        exploration.repeat_filter(np.ones((2, 2)), [1])


def test_score_filter_with_equal_weights_is_counting():
    rng = np.random.default_rng(1)
    runs, ari = rng.integers(0, 6, size=500), rng.normal(size=500)
    caps, target = np.array([0, 2, 4, 5]), ari >= 1.0
    score = exploration.score_repeat_filter(
        np.full(500, -np.log(500)), {"longest_repeat_run": runs, "ari": ari}, caps, "ari", 1.0
    )
    flagged = runs[None, :] > caps[:, None]
    caught = (flagged & target).sum(axis=1)
    with np.errstate(invalid="ignore"):
        assert np.allclose(score.precision, caught / flagged.sum(axis=1), equal_nan=True)
    assert np.allclose(score.recall, caught / target.sum())
    assert np.isnan(score.precision[-1])  # cap 5: nothing is flagged
    assert np.exp(score.log_target) == pytest.approx(target.mean())


def test_score_filter_checks_shapes_and_names():
    with pytest.raises(ValueError, match="log_weights"):
        exploration.score_filter(np.zeros(3), np.zeros((2, 4), bool), np.zeros(3, bool))
    with pytest.raises(ValueError, match="longest_repeat_run"):
        exploration.score_repeat_filter(np.zeros(3), {"ari": np.zeros(3)}, [1], "ari", 0.0)


def gaussian_run(rng: np.random.Generator, biases: list[float], n_chains: int, n_draws: int, sampler: str):
    """Exact i.i.d. draws of p_λ = N(−λ, 1) as (chain, draw, bias), with a repeat run ⌊2 + φ⌋ clipped at 0."""
    phi = rng.normal(size=(n_chains, n_draws, len(biases))) - np.asarray(biases)
    run = np.clip(np.floor(2.0 + phi), 0, None)
    posterior = {"phi": phi, "x": phi, "longest_repeat_run": run}
    return storage.make_run(posterior, biases, attrs={"observable": "x", "sampler": sampler})


def test_estimate_filter_matches_exact_gaussian_answers():
    rng = np.random.default_rng(0)
    runs = [gaussian_run(rng, [-1.0, -2.0, -3.0], 8, 400, "synthetic"), gaussian_run(rng, [0.0], 1, 2000, "direct")]
    caps, threshold = np.array([2.0, 3.0, 4.0]), 2.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", reweighting.ReweightingWarning)
        estimate = exploration.estimate_filter(
            runs, caps, "x", threshold, rng=np.random.default_rng(1), settings=reweighting.Settings(n_bootstrap=40)
        )
    # flagged ⇔ ⌊2 + φ⌋ > r ⇔ φ ≥ r − 1 (r integer); target ⇔ φ ≥ 2.5
    tail = stats.norm.sf
    exact_precision = tail(np.maximum(caps - 1.0, threshold)) / tail(caps - 1.0)
    exact_recall = tail(np.maximum(caps - 1.0, threshold)) / tail(threshold)
    for value, interval, exact in [
        (estimate.precision, estimate.precision_interval, exact_precision),
        (estimate.recall, estimate.recall_interval, exact_recall),
        (estimate.target, estimate.target_interval, tail(threshold)),
    ]:
        standard_error = (interval[1] - interval[0]) / (2 * LEVEL_Z)
        assert np.all(standard_error[exact < 1] > 0)  # cap 4 flags only targets: precision is exactly 1
        assert np.all(np.abs(value - exact) <= 4 * standard_error + 1e-12), (value, exact, standard_error)
    assert np.array_equal(estimate.undefined_precision, np.zeros(3))


def test_percentile_interval_ignores_undefined_replicas():
    replicas = np.array([[0.1, np.nan], [0.2, 0.5], [0.3, np.nan], [0.4, 0.5]])
    interval = exploration.percentile_interval(replicas, level=0.5)
    assert np.allclose(interval[:, 0], np.quantile(replicas[:, 0], [0.25, 0.75]))
    assert np.allclose(interval[:, 1], [0.5, 0.5])


def test_percentile_interval_of_undefined_replicas_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(np.isnan(exploration.percentile_interval(np.full((5, 2), np.nan))))


def test_the_chapter_figures_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    from rarelib import plots

    ax = plots.coloured_scatter(
        np.arange(5.0), np.arange(5.0), np.array([3, 0, 1, 2, 4]), "x", "y", "colour", levels={"a": 2.0}
    )
    assert ax.collections[0].get_offsets().shape == (5, 2) and len(ax.lines) == 1
    ax = plots.grouped_scatter(
        {"one": (np.ones(3), np.ones(3)), "two": (np.zeros(2), np.zeros(2))}, "x", "y", constant_sums={"x + y = 1": 1.0}
    )
    assert [c.get_offsets().shape[0] for c in ax.collections] == [3, 2] and len(ax.lines) == 1
    values = np.array([0.5, 0.0, np.nan])
    ax = plots.proportion_curves(
        np.arange(3), {"p": (values, np.array([[0.0, 0.0, np.nan], [0.9, 0.1, np.nan]]))}, "x", "p", log=True
    )
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] == pytest.approx(0.01)  # a decade below the smallest positive

"""rarelib.companions.equilearning: prediction residuals against synthetic data with a known R², and the law's fit."""

import numpy as np
import pytest

from rarelib.companions import equilearning as eq


def linear_data(rng, n, d, signal_variance, noise_variance):
    """Gaussian features (n, d) and y = x·β + noise with population R² = s / (s + σ²)."""
    features = rng.standard_normal((n, d))
    beta = rng.standard_normal(d)
    beta *= np.sqrt(signal_variance) / np.linalg.norm(beta)
    return features, features @ beta + np.sqrt(noise_variance) * rng.standard_normal(n)


def test_scalar_residual_matches_the_population_r_squared():
    rng = np.random.default_rng(0)
    n, d = 20_000, 8
    features, y = linear_data(rng, n, d, signal_variance=3.0, noise_variance=1.0)
    residual = eq.scalar_prediction_residual(features, y)
    # PR = SSE / SST with E[SSE] = σ²(n − d − 1) and E[SST] ≈ n Var(y). SSE/σ² ~ χ²(n − d − 1) and SST of
    # Gaussian y each have relative sd √(2/n); their ratio has relative sd at most the sum, 2 √(2/n).
    expected = 1.0 / 4.0 * (n - d - 1) / n
    assert abs(residual - expected) < 5 * expected * 2 * np.sqrt(2 / n)


def test_scalar_residual_is_zero_for_an_exact_affine_target_and_one_for_pure_noise():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((500, 5))
    assert eq.scalar_prediction_residual(features, 3 + features @ np.arange(5.0)) < 1e-12  # rounding of 1 − R²
    noise = eq.scalar_prediction_residual(features, rng.standard_normal(500))
    # SSE/SST of pure noise is Beta((n − d − 1)/2, d/2): mean (n − d − 1)/(n − 1), sd ≈ √(2d)/n.
    assert abs(noise - 494 / 499) < 5 * np.sqrt(2 * 5) / 500


def noisy_classes(rng, n, vocab_size, flip, d):
    """Features (n, d) that encode a class c (affinely when d ≥ V − 1); the token is c, or uniform with
    probability ``flip``."""
    classes = rng.integers(0, vocab_size, n)
    embedding = rng.standard_normal((vocab_size, d))
    tokens = np.where(rng.random(n) < flip, rng.integers(0, vocab_size, n), classes)
    return embedding[classes], tokens


def onehot_population_residual(vocab_size, flip):
    """1 − R² of the best predictor E[e_y | c] = (1 − ε) e_c + ε/V: (1 − ‖m‖²) / (1 − 1/V)."""
    on = 1 - flip + flip / vocab_size
    off = flip / vocab_size
    return (1 - on**2 - (vocab_size - 1) * off**2) / (1 - 1 / vocab_size)


def test_onehot_residual_matches_the_population_value_in_sample_and_held_out():
    rng = np.random.default_rng(2)
    vocab_size, flip, d, n = 12, 0.3, 11, 40_000
    features, tokens = noisy_classes(rng, 2 * n, vocab_size, flip, d)
    fit = eq.fit_onehot_ridge(features[:n], tokens[:n], vocab_size, ridge=0.0)
    expected = onehot_population_residual(vocab_size, flip)
    # Per-sample squared errors are bounded by 2, so the sd of the mean is ≤ √2 /√n (relative to SST/n ≈ 1 − 1/V).
    tolerance = 5 * np.sqrt(2 / n) / (1 - 1 / vocab_size)
    assert abs(eq.onehot_prediction_residual(fit, features[:n], tokens[:n]) - expected) < tolerance
    assert abs(eq.onehot_prediction_residual(fit, features[n:], tokens[n:]) - expected) < tolerance


def test_onehot_with_two_tokens_equals_the_scalar_fit_of_the_indicator():
    rng = np.random.default_rng(3)
    features = rng.standard_normal((300, 4))
    tokens = (features[:, 0] + rng.standard_normal(300) > 0).astype(int)
    fit = eq.fit_onehot_ridge(features, tokens, vocab_size=2, ridge=0.0)
    assert np.isclose(
        eq.onehot_prediction_residual(fit, features, tokens),
        eq.scalar_prediction_residual(features, tokens.astype(float)),
        rtol=1e-10,
    )


def test_onehot_residual_ignores_the_numbering_of_tokens_but_the_scalar_one_does_not():
    rng = np.random.default_rng(4)
    features, tokens = noisy_classes(rng, 3000, vocab_size=20, flip=0.2, d=8)
    relabel = rng.permutation(20)
    states, relabelled = features[None], relabel[tokens]
    assert np.allclose(
        eq.onehot_residuals(states, tokens, 20, 1e-3), eq.onehot_residuals(states, relabelled, 20, 1e-3), rtol=1e-9
    )
    assert not np.isclose(eq.scalar_residuals(states, tokens)[0], eq.scalar_residuals(states, relabelled)[0], rtol=1e-3)


def test_ridge_shrinks_towards_the_token_frequencies():
    rng = np.random.default_rng(5)
    features, tokens = noisy_classes(rng, 2000, vocab_size=6, flip=0.1, d=5)
    residuals = [
        eq.onehot_prediction_residual(eq.fit_onehot_ridge(features, tokens, 6, ridge), features, tokens)
        for ridge in (0.0, 1.0, 1e9)
    ]
    assert residuals[0] < residuals[1] < residuals[2] and np.isclose(residuals[2], 1.0, atol=1e-6)


def test_layer_norm_is_a_fresh_torch_layer_norm():
    import torch

    x = np.random.default_rng(6).standard_normal((7, 10)) * 3 + 1
    reference = torch.nn.LayerNorm(10, dtype=torch.float64)(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(eq.layer_norm(x), reference, atol=1e-12)


def test_targets_line_up_with_positions():
    windows = np.arange(20).reshape(2, 10)
    states = np.broadcast_to(windows[None, :, :, None], (3, 2, 10, 4)).astype(float)
    for name, offset in eq.TARGET_OFFSETS.items():
        features, targets = eq.features_and_targets(states, windows, name)
        assert features.shape == (3, 14, 4) and np.array_equal(targets, features[0, :, 0] + offset)
    with pytest.raises(ValueError, match="target="):
        eq.features_and_targets(states, windows, "after")


def test_hidden_states_have_one_entry_per_layer_and_position():
    from rarelib import models

    lm = models.random_model("gpt-neo", alphabet="abcd", context_length=16, n_layer=2, n_embd=8, n_head=2)
    windows = eq.token_windows(np.arange(60) % 4, n_windows=5, length=12)
    states = eq.hidden_states(lm, windows, batch_size=2)
    assert states.shape == (3, 5, 12, 8)
    with pytest.raises(ValueError, match="tokens"):
        eq.token_windows(np.arange(50), n_windows=5, length=12)


def test_fit_law_recovers_a_geometric_decay():
    residuals = 0.8 * 0.7 ** np.arange(-1, 6)
    residuals[0] = 0.99  # the embedding layer is left out of the fit
    law = eq.fit_law(residuals)
    assert np.isclose(law.rho, 0.7) and np.isclose(law.pearson_r, -1) and np.isclose(law.r_squared, 1)
    assert np.array_equal(law.layers, np.arange(1, 7))
    with pytest.raises(ValueError, match="positive"):
        eq.fit_law(np.array([1.0, 0.5, 0.0, 0.1]))


def test_bad_input_is_refused_with_the_parameter_name():
    rng = np.random.default_rng(7)
    features, tokens = noisy_classes(rng, 100, vocab_size=5, flip=0.1, d=3)
    with pytest.raises(ValueError, match="ridge"):
        eq.fit_onehot_ridge(features, tokens, 5, ridge=-1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        eq.fit_onehot_ridge(features, tokens, 4, ridge=0.0)
    with pytest.raises(ValueError, match="n_blocks"):
        eq.onehot_residuals(features[None], tokens, 5, 0.0, features[None], tokens, n_blocks=1000)


def test_a_missing_depth_model_names_the_rebuild_command():
    with pytest.raises(FileNotFoundError, match="train_depth_models.py"):
        eq.load_depth_model("depth-0")


def test_scalar_residual_stays_in_the_unit_interval_on_rank_deficient_layer_norm_features():
    # LayerNorm'd rows sum to zero: the centred features have a null direction that a solver must drop.
    rng = np.random.default_rng(3)
    for width in (2, 4, 16):
        features = eq.layer_norm(rng.standard_normal((300, width)) * rng.lognormal(0, 3, width))
        residual = eq.scalar_prediction_residual(features, rng.integers(0, 6, 300).astype(float))
        assert 0 < residual <= 1


def test_model_residuals_give_every_layer_and_block():
    from rarelib import models

    lm = models.random_model("gpt2", alphabet="abcdef", context_length=32, n_layer=2, n_embd=4, n_head=2)
    tokens = np.random.default_rng(8).integers(0, 6, 2000)
    windows = eq.token_windows(tokens, n_windows=40, length=32)
    result = eq.model_residuals(lm, windows[:20], windows[20:], targets=("current", "next"), ridge=1e-3, n_blocks=4)
    assert set(result) == {"current", "next"}
    for residuals in result.values():
        assert residuals.scalar.shape == residuals.onehot_in_sample.shape == residuals.held_out.shape == (3,)
        assert residuals.onehot_held_out.shape == (3, 4) and np.all(residuals.held_out_stderr > 0)
        assert np.all((residuals.scalar > 0) & (residuals.scalar <= 1))


def test_untrained_twin_rebuilds_the_initial_weights_of_the_default_model():
    from rarelib import models

    first, second = eq.untrained_twin(models.DEFAULT_MODEL_DIR), eq.untrained_twin(models.DEFAULT_MODEL_DIR)
    trained = models.load("default").model.state_dict()
    initial = first.model.state_dict()
    assert initial.keys() == trained.keys()
    assert all((initial[key] == second.model.state_dict()[key]).all() for key in initial)
    assert not (initial["transformer.wte.weight"] == trained["transformer.wte.weight"]).all()


def test_residual_figure_draws_each_series_and_its_law_on_a_log_axis():
    import matplotlib

    matplotlib.use("Agg")
    from rarelib import plots

    residuals = {"a": 0.9 * 0.8 ** np.arange(5), "b": np.linspace(0.9, 0.6, 5)}
    ax = plots.prediction_residuals_by_layer(
        residuals, errors={"a": np.full(5, 0.01)}, fits={name: eq.fit_law(values) for name, values in residuals.items()}
    )
    assert ax.get_yscale() == "log" and len(ax.get_lines()) >= 4
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_xdata()) for line in dashed] == [[1, 2, 3, 4]] * 2
    assert np.allclose(dashed[0].get_ydata(), residuals["a"][1:])

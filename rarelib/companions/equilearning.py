"""The law of equi-learning (He & Su): how well each layer's hidden states predict the next token.

For a causal LM with L layers, the hidden state after layer l at every position is passed through
a freshly initialised LayerNorm (weight 1, bias 0) and regressed linearly, with an intercept, on a
target token. The prediction residual PR_l = (mean squared error) / (variance of the target) is
1 − R² of that fit. He & Su find log PR_l linear in l, PR_l ≈ PR_1 ρ^(l−1), for many trained LMs.

Two targets are computed here: the token's integer id as one real number (what the authors' code
does; it depends on the arbitrary numbering of the vocabulary) and the one-hot vector of the
token (multi-output ridge regression, invariant to renumbering). The one-hot fit never forms the
(N, V) target matrix: it needs only Z^T Y (a sparse product) and (d, d) Gram matrices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.stats

from rarelib.models import DATA_DIR, DEFAULT_MODEL_DIR, HFLanguageModel, ModelNotFoundError, load, resolve_device
from rarelib.storymodel import training

__all__ = [
    "DEPTH_MODEL_DIR",
    "EquiLearningFit",
    "features_and_targets",
    "fit_law",
    "fit_onehot_ridge",
    "hidden_states",
    "layer_norm",
    "LAYER_NORM_EPS",
    "layer_residuals",
    "LayerResiduals",
    "load_depth_model",
    "model_residuals",
    "onehot_prediction_residual",
    "onehot_residuals",
    "OneHotRidge",
    "RANK_TOLERANCE",
    "REBUILD_COMMAND",
    "scalar_prediction_residual",
    "scalar_residuals",
    "TARGET_OFFSETS",
    "token_windows",
    "training_record",
    "untrained_twin",
]

TARGET_OFFSETS = {"previous": -1, "current": 0, "next": 1, "next-next": 2}
DEPTH_MODEL_DIR = DATA_DIR / "models" / "depth-models"
REBUILD_COMMAND = "OMP_NUM_THREADS=1 python scripts/train_depth_models.py"
LAYER_NORM_EPS = 1e-5
RANK_TOLERANCE = 1e-9  # singular values below this fraction of the largest are treated as zero (scalar PR)


def token_windows(tokens: np.ndarray, n_windows: int, length: int) -> np.ndarray:
    """The first ``n_windows`` non-overlapping windows of ``tokens`` (n,): (n_windows, length) int64."""
    if n_windows < 1 or length < 4:
        raise ValueError(f"n_windows must be ≥ 1 and length ≥ 4; got n_windows={n_windows}, length={length}")
    if n_windows * length > len(tokens):
        raise ValueError(
            f"tokens: {n_windows} windows of {length} need {n_windows * length} tokens; "
            f"got {len(tokens)} (generate more stories)"
        )
    return np.asarray(tokens[: n_windows * length], dtype=np.int64).reshape(n_windows, length)


def hidden_states(lm: HFLanguageModel, windows: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Hidden states of every layer at every position: (L + 1, n_windows, length, d) float32.

    Index 0 is the embedding layer; the last index is after the model's final LayerNorm, as
    Hugging Face's ``output_hidden_states=True`` returns it.
    """
    import torch

    chunks = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(np.asarray(windows[start : start + batch_size], dtype=np.int64)).to(lm.device)
            out = lm.model(input_ids=batch, output_hidden_states=True)
            chunks.append(torch.stack(out.hidden_states).float().cpu().numpy())
    return np.concatenate(chunks, axis=1)


def features_and_targets(
    states: np.ndarray, windows: np.ndarray, target: str = "next"
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten positions 1 … length − 3 of every window (where all four targets exist).

    states: (L + 1, n_windows, length, d); windows: (n_windows, length) token ids; target: one of
    ``TARGET_OFFSETS``. Returns features (L + 1, N, d) and target ids (N,), N = n_windows (length − 3).
    """
    if target not in TARGET_OFFSETS:
        raise ValueError(f"target={target!r}; use one of {tuple(TARGET_OFFSETS)}")
    if states.ndim != 4 or states.shape[1:3] != windows.shape:
        raise ValueError(
            f"states must be (L + 1, n_windows, length, d) matching windows {windows.shape}; got {states.shape}"
        )
    length = windows.shape[1]
    offset = TARGET_OFFSETS[target]
    features = states[:, :, 1 : length - 2].reshape(states.shape[0], -1, states.shape[-1])
    targets = windows[:, 1 + offset : length - 2 + offset].reshape(-1)
    return features, targets


def layer_norm(features: np.ndarray) -> np.ndarray:
    """A freshly initialised LayerNorm (weight 1, bias 0, eps 1e-5) on each row of (N, d): float64."""
    x = np.asarray(features, dtype=np.float64)
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + LAYER_NORM_EPS)


def _check_pair(features: np.ndarray, targets: np.ndarray) -> None:
    if features.ndim != 2 or targets.shape != (features.shape[0],):
        raise ValueError(f"features must be (N, d) and targets (N,); got {features.shape} and {targets.shape}")
    if features.shape[0] <= features.shape[1] + 1:
        raise ValueError(f"features: need more samples than features + 1 for a regression; got {features.shape}")


def scalar_prediction_residual(features: np.ndarray, targets: np.ndarray) -> float:
    """In-sample OLS with intercept of a real target (N,) on features (N, d): MSE / Var = 1 − R².

    Computed as 1 − ‖U_rᵀ y‖² / ‖y‖² with U_r the left singular vectors of the centred features whose
    singular values exceed ``RANK_TOLERANCE`` times the largest: the squared length of a projection,
    so the result lies in [0, 1] in floating point too. LayerNorm'd features are rank-deficient by
    construction (each row sums to zero), and a least-squares solver that keeps that null direction
    can return a residual above the variance.
    """
    _check_pair(features, targets)
    y = np.asarray(targets, dtype=np.float64)
    centred_y = y - y.mean()
    x = np.asarray(features, dtype=np.float64)
    basis, singular_values, _ = scipy.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    explained = basis[:, singular_values > RANK_TOLERANCE * singular_values[0]].T @ centred_y
    return float(max(0.0, 1.0 - (explained @ explained) / (centred_y @ centred_y)))


@dataclass(frozen=True)
class OneHotRidge:
    """A multi-output ridge fit of one-hot tokens on features: ŷ = token_means + (x − feature_means) W."""

    feature_means: np.ndarray  # (d,)
    token_means: np.ndarray  # (V,) token frequencies in the fit set
    weights: np.ndarray  # (d, V)


def _one_hot(tokens: np.ndarray, vocab_size: int) -> scipy.sparse.csr_matrix:
    """Sparse one-hot matrix (N, V) of token ids (N,)."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"tokens must lie in [0, vocab_size={vocab_size}); got range [{tokens.min()}, {tokens.max()}]")
    n = len(tokens)
    return scipy.sparse.csr_matrix((np.ones(n), (np.arange(n), tokens)), shape=(n, vocab_size))


def fit_onehot_ridge(features: np.ndarray, tokens: np.ndarray, vocab_size: int, ridge: float) -> OneHotRidge:
    """Minimise (1/N)‖Y − 1 b − (X − x̄) W‖² + ridge ‖W‖² with Y the one-hot tokens (N, V); X (N, d).

    Solved through the normal equations with a Cholesky factor; ``ridge = 0`` is ordinary least
    squares (needs a full-rank X).
    """
    _check_pair(features, tokens)
    if not ridge >= 0:
        raise ValueError(f"ridge must be ≥ 0; got {ridge!r}")
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    feature_means = x.mean(axis=0)
    centred = x - feature_means
    one_hot = _one_hot(tokens, vocab_size)
    gram = centred.T @ centred / n + ridge * np.eye(x.shape[1])
    cross = np.asarray((one_hot.T @ centred).T) / n  # (d, V) = Z^T Y / N
    weights = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), cross)
    return OneHotRidge(feature_means, np.asarray(one_hot.mean(axis=0)).ravel(), weights)


def onehot_prediction_residual(fit: OneHotRidge, features: np.ndarray, tokens: np.ndarray) -> float:
    """Σ‖e_y − ŷ‖² / Σ‖e_y − ȳ‖² of a one-hot ridge fit on (features (N, d), tokens (N,)).

    ȳ is the mean of these tokens' one-hot vectors, so on the fit set with ``ridge = 0`` this is
    1 − R²; on held-out data it is the out-of-sample analogue. Costs O(N d² + d² V), never O(N V).
    """
    _check_pair(features, tokens)
    tokens = np.asarray(tokens)
    vocab_size = len(fit.token_means)
    centred = np.asarray(features, dtype=np.float64) - fit.feature_means
    on_token = fit.token_means[tokens] + np.einsum("nd,dn->n", centred, fit.weights[:, tokens])
    squared_norm = (
        fit.token_means @ fit.token_means
        + 2 * centred @ (fit.weights @ fit.token_means)
        + np.sum((centred @ (fit.weights @ fit.weights.T)) * centred, axis=1)
    )
    squared_error = np.sum(1 - 2 * on_token + squared_norm)
    counts = np.bincount(tokens, minlength=vocab_size).astype(np.float64)
    total = len(tokens) - counts @ counts / len(tokens)
    return float(squared_error / total)


def _check_states(states: np.ndarray, targets: np.ndarray, name: str) -> None:
    if states.ndim != 3 or targets.shape != (states.shape[1],):
        raise ValueError(
            f"{name}: states must be (L + 1, N, d) and targets (N,); got {states.shape} and {targets.shape}"
        )


def scalar_residuals(states: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
    """The authors' PR of every layer: in-sample OLS of the scalar token id on LayerNorm(h_l).

    states: (L + 1, N, d); token_ids: (N,). Returns (L + 1,).
    """
    _check_states(states, token_ids, "states")
    return np.array([scalar_prediction_residual(layer_norm(layer), token_ids) for layer in states])


def onehot_residuals(
    fit_states: np.ndarray,
    fit_tokens: np.ndarray,
    vocab_size: int,
    ridge: float,
    eval_states: np.ndarray | None = None,
    eval_tokens: np.ndarray | None = None,
    n_blocks: int = 1,
) -> np.ndarray:
    """One-hot ridge PR of every layer on LayerNorm(h_l): (L + 1, n_blocks).

    Fit on (fit_states (L + 1, N, d), fit_tokens (N,)); evaluate in-sample, or on ``n_blocks``
    contiguous equal blocks of (eval_states (L + 1, M, d), eval_tokens (M,)) when given — the
    spread over blocks gives the error bar.
    """
    _check_states(fit_states, fit_tokens, "fit_states")
    if (eval_states is None) != (eval_tokens is None):
        raise ValueError("eval_states and eval_tokens must be given together")
    if eval_states is None:
        eval_states, eval_tokens = fit_states, fit_tokens
    _check_states(eval_states, eval_tokens, "eval_states")
    if len(eval_states) != len(fit_states):
        raise ValueError(f"eval_states has {len(eval_states)} layers, fit_states {len(fit_states)}")
    if not 1 <= n_blocks <= len(eval_tokens) // (eval_states.shape[-1] + 2):
        raise ValueError(
            f"n_blocks must be between 1 and {len(eval_tokens) // (eval_states.shape[-1] + 2)}; got {n_blocks}"
        )
    blocks = np.array_split(np.arange(len(eval_tokens)), n_blocks)
    residuals = np.empty((len(fit_states), n_blocks))
    for layer, (fit_layer, eval_layer) in enumerate(zip(fit_states, eval_states)):
        fit = fit_onehot_ridge(layer_norm(fit_layer), fit_tokens, vocab_size, ridge)
        normalised = layer_norm(eval_layer)
        residuals[layer] = [onehot_prediction_residual(fit, normalised[block], eval_tokens[block]) for block in blocks]
    return residuals


@dataclass(frozen=True)
class LayerResiduals:
    """PR of every layer for one target: the authors' scalar-id fit and the one-hot fits."""

    scalar: np.ndarray  # (L + 1,) scalar token id, in-sample OLS
    onehot_in_sample: np.ndarray  # (L + 1,) one-hot ridge, in-sample
    onehot_held_out: np.ndarray  # (L + 1, n_blocks) one-hot ridge on each held-out block

    @property
    def held_out(self) -> np.ndarray:
        """Mean held-out one-hot PR over blocks: (L + 1,)."""
        return self.onehot_held_out.mean(axis=1)

    @property
    def held_out_stderr(self) -> np.ndarray:
        """Standard error of :attr:`held_out` from the spread over blocks: (L + 1,)."""
        return self.onehot_held_out.std(axis=1, ddof=1) / np.sqrt(self.onehot_held_out.shape[1])


def layer_residuals(
    fit_states: np.ndarray,
    fit_windows: np.ndarray,
    eval_states: np.ndarray,
    eval_windows: np.ndarray,
    target: str,
    vocab_size: int,
    ridge: float,
    n_blocks: int,
) -> LayerResiduals:
    """All three PRs of every layer for ``target``; states (L + 1, n_windows, length, d) of the windows."""
    fit_features, fit_tokens = features_and_targets(fit_states, fit_windows, target)
    eval_features, eval_tokens = features_and_targets(eval_states, eval_windows, target)
    return LayerResiduals(
        scalar=scalar_residuals(fit_features, fit_tokens),
        onehot_in_sample=onehot_residuals(fit_features, fit_tokens, vocab_size, ridge)[:, 0],
        onehot_held_out=onehot_residuals(
            fit_features, fit_tokens, vocab_size, ridge, eval_features, eval_tokens, n_blocks
        ),
    )


def model_residuals(
    lm: HFLanguageModel,
    fit_windows: np.ndarray,
    eval_windows: np.ndarray,
    targets: tuple[str, ...] = ("next",),
    ridge: float = 1e-3,
    n_blocks: int = 8,
) -> dict[str, LayerResiduals]:
    """:func:`layer_residuals` of a model for each target; windows (n_windows, length) token ids."""
    fit_states, eval_states = hidden_states(lm, fit_windows), hidden_states(lm, eval_windows)
    return {
        target: layer_residuals(
            fit_states, fit_windows, eval_states, eval_windows, target, lm.vocab_size, ridge, n_blocks
        )
        for target in targets
    }


@dataclass(frozen=True)
class EquiLearningFit:
    """Least-squares line log10 PR_l = intercept + slope · l over layers l = first_layer … L."""

    layers: np.ndarray  # (n,)
    log10_residuals: np.ndarray  # (n,)
    slope: float
    slope_stderr: float
    intercept: float
    pearson_r: float

    @property
    def n_layers(self) -> int:
        """Number of layers in the fit."""
        return len(self.layers)

    @property
    def rho(self) -> float:
        """The per-layer factor ρ = 10^slope."""
        return float(10**self.slope)

    @property
    def r_squared(self) -> float:
        """R² of the straight-line fit (= r² for one regressor)."""
        return float(self.pearson_r**2)


def fit_law(residuals: np.ndarray, first_layer: int = 1) -> EquiLearningFit:
    """Fit log10 PR against the layer index; residuals (L + 1,) with index 0 the embedding layer.

    Layers below ``first_layer`` are left out (the embedding layer by default, as He & Su). With
    two layers the line is exact (r = ±1) and tests nothing; ``n_layers`` says how many were fitted.
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    if residuals.ndim != 1 or not 0 <= first_layer <= len(residuals) - 2:
        raise ValueError(
            f"residuals must be (L + 1,) with at least 2 layers from first_layer={first_layer}; "
            f"got shape {residuals.shape}"
        )
    if not np.all(residuals > 0):
        raise ValueError(f"residuals must be positive to take logs; got {residuals}")
    layers = np.arange(first_layer, len(residuals))
    log10_residuals = np.log10(residuals[first_layer:])
    line = scipy.stats.linregress(layers, log10_residuals)
    return EquiLearningFit(
        layers, log10_residuals, float(line.slope), float(line.stderr), float(line.intercept), float(line.rvalue)
    )


def load_depth_model(name: str, device: str = "cpu") -> HFLanguageModel:
    """A model from ``data/models/depth-models/<name>`` (tokenizer of the default model).

    name: e.g. ``"depth-4"`` or ``"depth-8-step-0100"``. A missing folder names the command
    that rebuilds it.
    """
    folder = DEPTH_MODEL_DIR / name
    if not (folder / "config.json").is_file():
        available = sorted(p.name for p in DEPTH_MODEL_DIR.glob("*") if p.is_dir()) if DEPTH_MODEL_DIR.is_dir() else []
        raise ModelNotFoundError(
            f"no trained model {name!r} in {DEPTH_MODEL_DIR} (found {available}); rebuild them with `{REBUILD_COMMAND}`"
        )
    return load(folder, device=device, tokenizer=DEFAULT_MODEL_DIR)


def untrained_twin(folder: str | Path, device: str = "cpu") -> HFLanguageModel:
    """A trained model's state before its first step: ``training.build_model`` of the config in the
    folder's training.json (a pure function of the config's seed), with the default tokenizer."""
    from transformers import AutoTokenizer

    path = Path(folder) / "training.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing: no training record to rebuild the initial model from")
    config = training.TrainingConfig(**json.loads(path.read_text())["config"])
    torch_device = resolve_device(device)
    network = training.build_model(config).to(torch_device).eval()
    network.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL_DIR, local_files_only=True)
    return HFLanguageModel(
        model=network, tokenizer=tokenizer, name=f"{Path(folder).name}-step-0000", device=torch_device
    )


def training_record(name: str) -> dict:
    """The JSON side-car (config, losses) written beside a depth model."""
    path = DEPTH_MODEL_DIR / name / "training.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing; rebuild the depth models with `{REBUILD_COMMAND}`")
    return json.loads(Path(path).read_text())

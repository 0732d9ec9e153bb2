"""Importance sampling and exponential tilting.

Draw x ~ q, weight by w(x) = p*(x)/q(x) (known up to a constant), and estimate
expectations under p* by self-normalised averages. Everything is in log space: weights of
language-model completions span hundreds of nats.

For the Log-Prob observable the tilted law is p_λ(x) ∝ e^{−λ log p_M(x)} p_M(x) = p_M(x)^{1−λ},
a sequence-level power of the model. Sampling every token at temperature T = 1/(1−λ) is a
*different* law (each step is renormalised), so it serves as a proposal q and the weights
w ∝ p_M(x)^{1−λ}/q(x) correct it exactly.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "effective_sample_size",
    "self_normalised_mean",
    "self_normalised_mean_with_error",
    "log_mean_weight",
    "log_mean_weight_with_error",
    "normalised_log_weights",
    "temperature_for_logprob_tilt",
    "tilted_log_weights",
]


def _log_weights(log_weights) -> np.ndarray:
    values = np.asarray(log_weights, dtype=np.float64).ravel()
    if values.size == 0 or np.isnan(values).any() or np.isposinf(values).any():
        raise ValueError(f"log_weights must be non-empty, without NaN or +inf; got {values.size} values")
    return values


def normalised_log_weights(log_weights) -> np.ndarray:
    """log(w_n / Σ_m w_m), (n,), from unnormalised log weights (n,)."""
    values = _log_weights(log_weights)
    return values - logsumexp(values)


def effective_sample_size(log_weights) -> float:
    """Kish's effective sample size (Σw)²/Σw² of weights given as logs (n,); between 1 and n."""
    values = _log_weights(log_weights)
    return float(np.exp(2 * logsumexp(values) - logsumexp(2 * values)))


def log_mean_weight(log_weights) -> float:
    """log((1/n) Σ w_n): with w = p̃*/q, an unbiased (in w) estimate of log of p̃*'s normaliser."""
    values = _log_weights(log_weights)
    return float(logsumexp(values) - np.log(values.size))


def log_mean_weight_with_error(log_weights) -> tuple[float, float]:
    """:func:`log_mean_weight` and its delta-method standard error sd(w) / (√n · mean(w)), from logs (n,).

    The error is √((n/ESS − 1)/(n − 1)) with ESS Kish's effective sample size, so it needs no
    weight outside log space. It is itself estimated from the weights: when a few heavy weights
    were never drawn it is too small, which a low ESS warns of.
    """
    values = _log_weights(log_weights)
    n = values.size
    if n < 2:
        raise ValueError(f"log_weights: need at least 2 weights for a standard error; got {n}")
    excess = max(n / effective_sample_size(values) - 1.0, 0.0)
    return log_mean_weight(values), float(np.sqrt(excess / (n - 1)))


def self_normalised_mean_with_error(values, log_weights) -> tuple[float, float]:
    """:func:`self_normalised_mean` and its delta-method standard error √(Σ w̄ₙ² (fₙ − mean)²).

    values, log_weights: (N,) each; w̄ are the normalised weights.
    """
    mean = self_normalised_mean(values, log_weights)
    weights = np.exp(normalised_log_weights(log_weights))
    return mean, float(np.sqrt(np.sum(weights**2 * (np.asarray(values, dtype=np.float64).ravel() - mean) ** 2)))


def self_normalised_mean(values, log_weights) -> float:
    """Self-normalised importance-sampling estimate Σ w f / Σ w of E_{p*}[f]; values, log_weights (n,)."""
    f = np.asarray(values, dtype=np.float64).ravel()
    weights = np.exp(normalised_log_weights(log_weights))
    if f.shape != weights.shape:
        raise ValueError(f"values {f.shape} and log_weights {weights.shape} must have the same length")
    return float(weights @ f)


def tilted_log_weights(phi, lam: float, model_logprob, proposal_logprob) -> np.ndarray:
    """log of e^{−λφ} p_M / q for each sample (n,): weights towards p_λ ∝ e^{−λφ} p_M from a proposal q.

    phi, model_logprob (log p_M of the completion), proposal_logprob (log q): (n,).
    """
    phi, model_logprob, proposal_logprob = (
        np.asarray(a, dtype=np.float64).ravel() for a in (phi, model_logprob, proposal_logprob)
    )
    if not phi.shape == model_logprob.shape == proposal_logprob.shape:
        raise ValueError(
            "phi, model_logprob and proposal_logprob must have the same length; got "
            f"{phi.shape}, {model_logprob.shape}, {proposal_logprob.shape}"
        )
    if not np.isfinite(lam):
        raise ValueError(f"lam must be finite; got {lam!r}")
    return -lam * phi + model_logprob - proposal_logprob


def temperature_for_logprob_tilt(lam: float) -> float:
    """The per-token temperature 1/(1−λ) whose sequence law has the same exponent as p_M^{1−λ} (λ < 1)."""
    if not np.isfinite(lam) or lam >= 1:
        raise ValueError(f"lam must be a finite number below 1 for a Log-Prob tilt; got {lam!r}")
    return 1.0 / (1.0 - lam)

"""Twisted sequential Monte Carlo: particles grown token by token, resampled, with an unbiased Z(λ).

Target: the tilted law p_λ(x) ∝ p_M(x) e^{−λφ(x)} of an *additive* observable
φ = Σ_{t=1..L} g_t (Repeats, a token-class count, Log-Prob), normaliser Z(λ) = E_{p_M}[e^{−λφ}].
Intermediate targets over prefixes x_{1:t} are γ_t = p_M(x_{1:t}) ψ_t(x_{1:t}) with the *twist*
ψ_t; the default is the partial tilt ψ_t = e^{−λ Σ_{i≤t} g_i}, and a user can supply any other
(positive) log ψ_t for t < L — ψ_L = e^{−λφ} always, so the final target is p_λ whatever the twist.
Each particle draws its next token from a proposal q (p_M, or a guide of :mod:`rarelib.guides` at
strength s) and its weight gains

    log w_t = log p_M(x_t | x_{<t}) − log q(x_t | x_{<t}) + log ψ_t − log ψ_{t−1}.

When the effective sample size of an island's weights falls below ``resample_fraction`` · N, the
island's mean weight is banked into its running Ẑ and its particles are resampled
(multinomially, with the explicit generator). The product of banked means is an unbiased
estimate of Z(λ) (Del Moral 2004; Zhao et al. 2024 use it with learned twists, and the same
product with the final weights gives unbiased estimates of ∫ γ_L f, here of the tails
P(φ ≥ a) = Z(λ) E_{p_λ}[e^{λφ} 1[φ ≥ a]]).

Variance: the particles are split into M independent *islands* of N particles (one batch, no
interaction between islands). Each island's Ẑ_m is unbiased, so is their mean, and the sample
variance of the Ẑ_m over M gives an unbiased variance estimate of the mean and a Student-t
interval (the "island" estimator of Vergé et al. 2015); intervals are reported on log Z by the
delta method. Token cost: M·N·L sampled tokens. A run is a function of (arguments, seed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from scipy.special import logsumexp
from tqdm.auto import tqdm

from rarelib import diagnostics, logspace
from rarelib.generation import (
    check_completion_length,
    check_positive_int,
    check_seed,
    prompt_token_ids,
    sample_tokens,
)
from rarelib.guides import make_guide
from rarelib.models import CausalLM

__all__ = ["SMCResult", "Twist", "increment", "run_smc"]

INCREMENTS = ("repeats", "logprob", "token_count")

#: log ψ_t for t < L: (t, completions (R, t+1) int64, partial φ (R,) float64) → (R,) float64.
Twist = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


def increment(kind: str, tokens: Sequence[int] = ()) -> Callable:
    """g_t of an additive observable: (previous token (R,), token (R,), log p_M(token) (R,)) → (R,) float64.

    kind: ``"repeats"`` 1[x_t = x_{t−1}] (x_0 the last prompt token), ``"logprob"`` log p_M(x_t | x_{<t}),
    ``"token_count"`` 1[x_t ∈ tokens].
    """
    if kind == "repeats":
        return lambda previous, token, logprob: (token == previous).double()
    if kind == "logprob":
        return lambda previous, token, logprob: logprob.double()
    if kind == "token_count":
        try:
            members = torch.tensor(sorted({int(t) for t in tokens}), dtype=torch.int64)
        except (TypeError, ValueError):
            members = torch.tensor([], dtype=torch.int64)
        if members.numel() == 0 or members.min() < 0:
            raise ValueError(f"tokens: 'token_count' needs a non-empty collection of token ids ≥ 0; got {tokens!r}")
        return lambda previous, token, logprob: torch.isin(token, members.to(token.device)).double()
    raise ValueError(f"observable kind={kind!r}; use one of {INCREMENTS}")


@dataclass(frozen=True)
class SMCResult:
    """One SMC run of M islands × N particles at bias λ.

    z: Z(λ) as a 0-d :class:`~rarelib.logspace.LogEstimate`, the mean of the islands' Ẑ_m with its ``level``
    Student-t interval (on log Z, by the delta method); log_z_islands (M,); relative_se: sd(Ẑ_m)/(√M · mean), the
    standard error of log Ẑ.
    n_resampling (M,) int: resampling steps per island. phi (M, N) float64: φ of the final particles;
    log_weights (M, N): their final log weights, normalised within each island (logsumexp 0).
    ess_history (L, M): the islands' ESS fraction before each resampling decision. tokens: M·N·L.
    """

    lam: float
    z: logspace.LogEstimate
    log_z_islands: np.ndarray
    relative_se: float
    n_resampling: np.ndarray
    phi: np.ndarray
    log_weights: np.ndarray
    ess_history: np.ndarray
    tokens: int
    level: float

    @property
    def log_z(self) -> float:
        """log Ẑ(λ), the log of the mean of the islands' estimates."""
        return float(self.z.log)

    def tail_probabilities(self, thresholds, side: str = "upper") -> tuple[logspace.LogEstimate, np.ndarray]:
        """P(φ ≥ a) (or ≤) under p_M from the final particles, thresholds (A,): the estimate (A,) with ``level``
        Student-t intervals over islands (−inf where no particle is in the event), and relative standard errors."""
        thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        logspace.check_side(side)
        inside = (self.phi[..., None] >= thresholds) if side == "upper" else (self.phi[..., None] <= thresholds)
        log_terms = np.where(inside, (self.log_weights + self.lam * self.phi)[..., None], -np.inf)  # (M, N, A)
        with np.errstate(divide="ignore"):
            per_island = self.log_z_islands[:, None] + logsumexp(log_terms, axis=1)  # (M, A)
        return _island_mean(per_island, self.level)


def _island_mean(log_values: np.ndarray, level: float) -> tuple[logspace.LogEstimate, np.ndarray]:
    """The mean over islands of exp(log_values) (M, ...) with its t interval, and its relative standard error."""
    n_islands = log_values.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.max(log_values, axis=0)
        finite = np.where(np.isfinite(shift), shift, 0.0)
        scaled = np.exp(log_values - finite)
        mean = scaled.mean(axis=0)
        relative_se = scaled.std(axis=0, ddof=1) / math.sqrt(n_islands) / mean
        log_mean = np.where(mean > 0, np.log(mean) + finite, -np.inf)
        t = stats.t.ppf((1.0 + level) / 2.0, n_islands - 1)
        half = np.where(np.isfinite(log_mean), t * relative_se, 0.0)
    return logspace.LogEstimate(log_mean, np.stack([log_mean - half, log_mean + half])), relative_se


def _log_correction(logits: torch.Tensor, proposal_logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """ρ = log p_M(x) − log q(x) of the drawn tokens (n,), float64 on the CPU, from the model's and the proposal's
    logits (n, V)."""
    index = tokens[:, None]
    log_p = logits.double().log_softmax(dim=-1).gather(1, index)[:, 0]
    log_q = proposal_logits.double().log_softmax(dim=-1).gather(1, index)[:, 0]
    return (log_p - log_q).cpu()


def _select_rows(cache, rows: torch.Tensor):
    """The cache with its batch rows replaced by ``rows`` (R,) int64 (resampling)."""
    if isinstance(cache, torch.Tensor):
        return cache[rows]
    cache.reorder_cache(rows)
    return cache


def run_smc(
    lm: CausalLM,
    prompt: str | Sequence[int] | torch.Tensor,
    completion_length: int,
    *,
    lam: float,
    observable: str = "repeats",
    tokens: Sequence[int] = (),
    guide: Sequence[int] | str | None = None,
    guide_strength: float = 0.0,
    twist: Twist | None = None,
    n_particles: int = 256,
    n_islands: int = 8,
    resample_fraction: float = 0.5,
    seed: int = 0,
    level: float = diagnostics.DEFAULT_LEVEL,
    progress: bool = True,
) -> SMCResult:
    """Estimate Z(λ) = E_{p_M}[e^{−λφ}] of an additive observable by (twisted) SMC; see the module docstring.

    observable: a kind of :func:`increment` (``tokens`` for ``"token_count"``); guide: None (propose from p_M),
    token ids, ``"temperature"`` or ``"repeats"`` (:func:`rarelib.guides.make_guide`) at ``guide_strength``;
    twist: log ψ_t for t < L (default −λ · partial φ).
    """
    prompt_ids = prompt_token_ids(lm, prompt)
    length = check_completion_length(lm, len(prompt_ids), completion_length)
    n_particles = check_positive_int("n_particles", n_particles)
    n_islands = check_positive_int("n_islands", n_islands)
    if n_islands < 2 or n_particles < 2:
        raise ValueError(
            f"n_islands and n_particles must be ≥ 2 (the variance is estimated over islands); "
            f"got {n_islands} and {n_particles}"
        )
    if not 0.0 <= resample_fraction <= 1.0:
        raise ValueError(
            f"resample_fraction must lie in [0, 1] (0: never resample, 1: every step); got {resample_fraction!r}"
        )
    if not math.isfinite(lam):
        raise ValueError(f"lam must be a finite number; got {lam!r}")
    level = diagnostics.check_level(level)
    g = increment(observable, tokens)
    guide_object = (
        None if guide is None else make_guide(lm, guide, [guide_strength], first_previous=int(prompt_ids[-1]))
    )
    generator = torch.Generator().manual_seed(check_seed(seed))
    rows = n_islands * n_particles
    strength = torch.full((rows,), float(guide_strength), dtype=torch.float64)

    logits, cache = lm.logits(prompt_ids.to(lm.device)[None].expand(rows, -1), logits_to_keep=1)
    logits = logits[:, -1]
    completions = torch.zeros((rows, 0), dtype=torch.int64)
    previous = prompt_ids[-1].expand(rows).clone()
    phi = torch.zeros(rows, dtype=torch.float64)
    log_twist = torch.zeros(rows, dtype=torch.float64)
    log_w = torch.zeros(rows, dtype=torch.float64)
    log_z = torch.zeros(n_islands, dtype=torch.float64)
    n_resampling = np.zeros(n_islands, dtype=np.int64)
    ess_history = np.ones((length, n_islands))
    island_of = torch.arange(n_islands).repeat_interleave(n_particles)
    for t in tqdm(range(length), disable=not progress, desc=f"SMC λ={lam:g}", unit="token"):
        uniforms = torch.rand(rows, generator=generator, dtype=torch.float64)
        if guide_object is None:
            token, model_lp, _ = sample_tokens(logits, uniforms)
            rho = torch.zeros(rows, dtype=torch.float64)
        else:
            log_probs = logits.log_softmax(dim=-1)
            proposal = guide_object.proposal_logits(log_probs, strength, previous.to(log_probs.device))
            token, model_lp, _ = sample_tokens(logits, uniforms, proposal_logits=proposal)
            rho = _log_correction(logits, proposal, token)
        token, model_lp = token.cpu(), model_lp.cpu()
        phi = phi + g(previous, token, model_lp)
        completions = torch.cat([completions, token[:, None]], dim=1)
        previous = token
        new_twist = -lam * phi if (twist is None or t == length - 1) else twist(t, completions, phi).double()
        log_w = log_w + rho + new_twist - log_twist
        log_twist = new_twist
        if t == length - 1:
            break
        by_island = log_w.view(n_islands, n_particles)
        ess = torch.exp(2 * by_island.logsumexp(dim=1) - (2 * by_island).logsumexp(dim=1)) / n_particles
        ess_history[t] = ess.numpy()
        resample = ess < resample_fraction
        if resample.any():
            log_z[resample] += by_island[resample].logsumexp(dim=1) - math.log(n_particles)
            n_resampling += resample.numpy()
            probabilities = torch.softmax(by_island[resample], dim=1)
            picked = torch.multinomial(probabilities, n_particles, replacement=True, generator=generator)
            ancestors = torch.arange(rows).view(n_islands, n_particles)
            ancestors[resample] = picked + (torch.nonzero(resample)[:, 0] * n_particles)[:, None]
            ancestors = ancestors.reshape(-1)
            completions, phi, log_twist, previous = (
                completions[ancestors],
                phi[ancestors],
                log_twist[ancestors],
                previous[ancestors],
            )
            log_w = torch.where(resample[island_of], torch.zeros_like(log_w), log_w)[ancestors]
            cache = _select_rows(cache, ancestors.to(lm.device))
        step_logits, cache = lm.logits(completions[:, -1:].to(lm.device), cache)
        logits = step_logits[:, -1]
    by_island = log_w.view(n_islands, n_particles)
    log_z += by_island.logsumexp(dim=1) - math.log(n_particles)
    log_z_islands = log_z.numpy()
    z, relative_se = _island_mean(log_z_islands, level)
    normalised = (by_island - by_island.logsumexp(dim=1, keepdim=True)).numpy()
    return SMCResult(
        float(lam),
        z,
        log_z_islands,
        float(relative_se),
        n_resampling,
        phi.view(n_islands, n_particles).numpy(),
        normalised,
        ess_history,
        rows * length,
        level,
    )

"""Guides: tilted proposals for TPS moves, corrected exactly in the acceptance step.

A guided move regrows each token from q(v | context) instead of p_M(v | context); the
Metropolis–Hastings ratio then gains Σ_{regrown i} ρ(x′_i) − ρ(x_i), with
ρ = log p_M − log q at each position (:mod:`rarelib.tps`). A guide has a *strength* s per
row (the kernel sets s = scale · λ, the scale of the move) and two laws:

* :class:`ClassGuide` — q ∝ p_M e^{−s 1[v ∈ G]} for a token class G, so
  ρ = s 1[x ∈ G] + log(1 − m + m e^{−s}) with m = p_M(G | context). For φ = the count of G
  and s = λ this pre-pays the tilt e^{−λφ} token by token.
* :class:`TemperatureGuide` — q ∝ p_M^{1−s}, the per-token temperature 1/(1 − s), so
  ρ = s log p_M(x) + log Σ_v p_M(v)^{1−s}. For φ = Log-Prob and s = λ this is the
  sequence-level tilt p_M^{1−λ} spread over the tokens (chapter 3's proposal, made exact).
* :class:`LocalTiltGuide` — q ∝ p_M e^{−s g(c_{i−1}, v)} for any additive observable whose
  increment depends on the previous and the next token, φ = Σ_i g(c_{i−1}, c_i) (c_0 the last
  prompt token), so ρ = s g(x_{i−1}, x_i) + log Σ_v p_M(v) e^{−s g(x_{i−1}, v)}. With s = λ it
  pre-pays the tilt token by token: Repeats (g = 1[v = c_{i−1}], ``guide="repeats"``), a token
  class (g = 1[v ∈ G]) or a user's pairwise increments (:class:`MatrixIncrement`).

ρ of a path that was grown at another strength (a replica swap moves states between
biases) must follow without running the model again, so each guide keeps a few numbers per
position, its *statistics* (R, L, S): the class mass (S = 1), or the normaliser at each of
the K strengths the run will use (S = K). The laws see the previous token of each row
(``previous`` (n,)): only the local-tilt guide reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "ClassGuide",
    "LocalTiltGuide",
    "MatrixIncrement",
    "RepeatIncrement",
    "TemperatureGuide",
    "make_guide",
]


@dataclass(frozen=True)
class ClassGuide:
    """q(v | context) ∝ p_M(v | context) e^{−s 1[v ∈ token_ids]}; token_ids (S,) int64."""

    token_ids: torch.Tensor

    @property
    def n_statistics(self) -> int:
        return 1

    def statistics(self, log_probs: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(n, 1) log p_M(class | context) for next-token log-probs (n, V)."""
        return log_probs[:, self.token_ids.to(log_probs.device)].logsumexp(dim=-1, keepdim=True)

    def proposal_logits(self, log_probs: torch.Tensor, strength: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(n, V) logits of q for log-probs (n, V) and strengths (n,)."""
        ids = self.token_ids.to(log_probs.device)
        return log_probs.index_add(1, ids, -strength.to(log_probs)[:, None].expand(-1, len(ids)))

    def log_importance(self, completions, token_logprobs, statistics, strength) -> torch.Tensor:
        """ρ = log p_M − log q at every position, (R, L) float64, for paths (R, L) and strengths (R,)."""
        in_class = torch.isin(completions, self.token_ids).double()
        log_mass = statistics[..., 0].double()
        s = strength.double()[:, None]
        return s * in_class + torch.logaddexp(torch.log1p(-log_mass.exp().clamp(max=1.0)), log_mass - s)


@dataclass(frozen=True)
class TemperatureGuide:
    """q(v | context) ∝ p_M(v | context)^{1−s}; strengths (K,) float64, every s a run will use, each < 1."""

    strengths: torch.Tensor

    @property
    def n_statistics(self) -> int:
        return len(self.strengths)

    def statistics(self, log_probs: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(n, K) log Σ_v p_M(v | context)^{1−s_k} for next-token log-probs (n, V)."""
        betas = (1.0 - self.strengths).to(log_probs)
        return torch.logsumexp(betas[None, :, None] * log_probs[:, None, :], dim=-1)

    def proposal_logits(self, log_probs: torch.Tensor, strength: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(n, V) logits of q for log-probs (n, V) and strengths (n,)."""
        return (1.0 - strength.to(log_probs))[:, None] * log_probs

    def log_importance(self, completions, token_logprobs, statistics, strength) -> torch.Tensor:
        """ρ = log p_M − log q at every position, (R, L) float64, for paths (R, L) and strengths (R,)."""
        return strength.double()[:, None] * token_logprobs.double() + _at_strength(statistics, self.strengths, strength)


def _strength_index(strengths: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """(R,) int64 position of each row's strength in ``strengths`` (K,); ValueError for one not among them."""
    distance = (strength.double()[:, None] - strengths[None, :]).abs()
    index = distance.argmin(dim=1)
    if not torch.all(distance.gather(1, index[:, None]) <= 1e-9):
        raise ValueError(
            f"this guide knows the strengths {strengths.tolist()} only; got {sorted(set(strength.tolist()))}"
        )
    return index


def _at_strength(statistics: torch.Tensor, strengths: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """(R, L) float64: each row's statistic (R, L, K) at its own strength (R,) among ``strengths`` (K,)."""
    index = _strength_index(strengths, strength)
    return statistics.double().gather(2, index[:, None, None].expand(-1, statistics.shape[1], 1))[..., 0]


@dataclass(frozen=True)
class RepeatIncrement:
    """g(c_{i−1}, v) = 1[v = c_{i−1}]: the increment of Repeats."""

    name: str = "repeats"

    def row(self, previous: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """(n, V) g(previous_n, v) for every token v."""
        return torch.nn.functional.one_hot(previous, vocab_size).to(torch.float32)

    def pair(self, previous: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """g(previous, tokens) elementwise, float64."""
        return (previous == tokens).double()


@dataclass(frozen=True)
class MatrixIncrement:
    """g(c_{i−1}, v) = matrix[c_{i−1}, v] for a user's pairwise increments; matrix (V, V) float64."""

    matrix: torch.Tensor
    name: str = "pairwise"

    def row(self, previous: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """(n, V) g(previous_n, v) for every token v."""
        return self.matrix[previous.cpu()].to(device=previous.device, dtype=torch.float32)

    def pair(self, previous: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """g(previous, tokens) elementwise, float64."""
        return self.matrix[previous.cpu(), tokens.cpu()]


@dataclass(frozen=True)
class LocalTiltGuide:
    """q(v | context) ∝ p_M(v | context) e^{−s g(c_{i−1}, v)} for φ = Σ_i g(c_{i−1}, c_i).

    increment: g (:class:`RepeatIncrement`, :class:`MatrixIncrement` or any object with their
    ``row``/``pair`` methods); strengths (K,) every s a run will use; first_previous: c_0, the
    last prompt token; vocab_size: V.
    """

    increment: RepeatIncrement | MatrixIncrement
    strengths: torch.Tensor
    first_previous: int
    vocab_size: int

    @property
    def n_statistics(self) -> int:
        return len(self.strengths)

    def statistics(self, log_probs: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(n, K) log Σ_v p_M(v | context) e^{−s_k g(previous, v)} for log-probs (n, V) and previous tokens (n,)."""
        g = self.increment.row(previous, self.vocab_size).to(log_probs)
        return torch.stack([torch.logsumexp(log_probs - float(s) * g, dim=-1) for s in self.strengths], dim=1)

    def proposal_logits(self, log_probs: torch.Tensor, strength: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(n, V) logits of q for log-probs (n, V), strengths (n,) and previous tokens (n,)."""
        g = self.increment.row(previous, self.vocab_size).to(log_probs)
        return log_probs - strength.to(log_probs)[:, None] * g

    def log_importance(self, completions, token_logprobs, statistics, strength) -> torch.Tensor:
        """ρ = log p_M − log q at every position, (R, L) float64, for paths (R, L) and strengths (R,)."""
        previous = torch.cat([torch.full_like(completions[:, :1], self.first_previous), completions[:, :-1]], dim=1)
        g = self.increment.pair(previous, completions)
        return strength.double()[:, None] * g + _at_strength(statistics, self.strengths, strength)


LOCAL_TILTS = {"repeats": RepeatIncrement()}
"""Increments of the local-tilt guide by name (``guide="repeats"``)."""


def _checked_strengths(guide: str, strengths) -> torch.Tensor:
    values = np.unique(np.asarray(strengths if strengths is not None else [], dtype=np.float64))
    if values.size == 0:
        raise ValueError(f"guide={guide!r} needs the biases of the run (its strengths scale × λ)")
    return torch.from_numpy(values)


def make_guide(lm, guide, strengths, first_previous: int | None = None):
    """The guide named by ``guide``, or ``None`` for none.

    guide: token ids (a :class:`ClassGuide`), ``"temperature"``, the name of a local tilt
    (:data:`LOCAL_TILTS`: ``"repeats"``) or a pairwise increment object such as
    :class:`MatrixIncrement` (both a :class:`LocalTiltGuide`, which needs ``first_previous``, the
    last prompt token). strengths: every strength s the run will use (scale × its
    biases), needed by the temperature and local-tilt guides; the temperature guide's must stay
    below 1. ValueError names a bad argument.
    """
    if guide is None:
        return None
    if isinstance(guide, str) and guide in LOCAL_TILTS or hasattr(guide, "pair"):
        increment = LOCAL_TILTS[guide] if isinstance(guide, str) else guide
        if first_previous is None:
            raise ValueError(f"the {increment.name!r} guide needs the last prompt token (first_previous)")
        return LocalTiltGuide(
            increment, _checked_strengths(increment.name, strengths), int(first_previous), lm.vocab_size
        )
    if isinstance(guide, str):
        if guide != "temperature":
            raise ValueError(f"guide must be token ids, 'temperature' or one of {sorted(LOCAL_TILTS)}; got {guide!r}")
        values = _checked_strengths(guide, strengths)
        if not torch.all(values < 1):
            raise ValueError(
                "guide='temperature' needs the biases of the run, with scale × λ < 1 for each "
                f"(the proposal's temperature 1/(1 − scale·λ) must be positive); got {strengths!r}"
            )
        return TemperatureGuide(values)
    try:
        ids = sorted({int(token) for token in guide})
    except (TypeError, ValueError):
        ids = []
    if not ids or ids[0] < 0 or ids[-1] >= lm.vocab_size:
        raise ValueError(
            f"guide must be a non-empty collection of token ids in 0..{lm.vocab_size - 1}, 'temperature' or one "
            f"of {sorted(LOCAL_TILTS)}; got {guide!r}"
        )
    return ClassGuide(torch.tensor(ids, dtype=torch.int64))

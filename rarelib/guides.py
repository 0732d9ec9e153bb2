"""Guides: tilted proposals for TPS moves, corrected exactly in the acceptance step.

A guided move regrows each token from q(v | context) instead of p_M(v | context); the
Metropolis–Hastings ratio then gains Σ_{regrown i} ρ(x′_i) − ρ(x_i), with
ρ = log p_M − log q at each position (:mod:`rarelib.tps`). A guide has a *strength* s per
row (the kernel sets s = guide_scale · λ) and two laws:

* :class:`ClassGuide` — q ∝ p_M e^{−s 1[v ∈ G]} for a token class G, so
  ρ = s 1[x ∈ G] + log(1 − m + m e^{−s}) with m = p_M(G | context). For φ = the count of G
  and s = λ this pre-pays the tilt e^{−λφ} token by token.
* :class:`TemperatureGuide` — q ∝ p_M^{1−s}, the per-token temperature 1/(1 − s), so
  ρ = s log p_M(x) + log Σ_v p_M(v)^{1−s}. For φ = Log-Prob and s = λ this is the
  sequence-level tilt p_M^{1−λ} spread over the tokens (chapter 3's proposal, made exact).

ρ of a path that was grown at another strength (a replica swap moves states between
biases) must follow without running the model again, so each guide keeps a few numbers per
position, its *statistics* (R, L, S): the class mass (S = 1), or the normaliser at each of
the K strengths the run will use (S = K).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ClassGuide", "make_guide", "TemperatureGuide"]


@dataclass(frozen=True)
class ClassGuide:
    """q(v | context) ∝ p_M(v | context) e^{−s 1[v ∈ token_ids]}; token_ids (S,) int64."""

    token_ids: torch.Tensor

    @property
    def n_statistics(self) -> int:
        return 1

    def statistics(self, log_probs: torch.Tensor) -> torch.Tensor:
        """(n, 1) log p_M(class | context) for next-token log-probs (n, V)."""
        return log_probs[:, self.token_ids.to(log_probs.device)].logsumexp(dim=-1, keepdim=True)

    def proposal_logits(self, log_probs: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
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

    def statistics(self, log_probs: torch.Tensor) -> torch.Tensor:
        """(n, K) log Σ_v p_M(v | context)^{1−s_k} for next-token log-probs (n, V)."""
        betas = (1.0 - self.strengths).to(log_probs)
        return torch.logsumexp(betas[None, :, None] * log_probs[:, None, :], dim=-1)

    def proposal_logits(self, log_probs: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        """(n, V) logits of q for log-probs (n, V) and strengths (n,)."""
        return (1.0 - strength.to(log_probs))[:, None] * log_probs

    def log_importance(self, completions, token_logprobs, statistics, strength) -> torch.Tensor:
        """ρ = log p_M − log q at every position, (R, L) float64, for paths (R, L) and strengths (R,)."""
        index = self.index(strength)
        log_normaliser = statistics.double().gather(2, index[:, None, None].expand(-1, statistics.shape[1], 1))[..., 0]
        return strength.double()[:, None] * token_logprobs.double() + log_normaliser

    def index(self, strength: torch.Tensor) -> torch.Tensor:
        """(R,) int64 position of each row's strength in ``strengths``; ValueError for one not among them."""
        distance = (strength.double()[:, None] - self.strengths[None, :]).abs()
        index = distance.argmin(dim=1)
        if not torch.all(distance.gather(1, index[:, None]) <= 1e-9):
            raise ValueError(
                f"a temperature guide knows the strengths {self.strengths.tolist()} only; got "
                f"{sorted(set(strength.tolist()))}"
            )
        return index


def make_guide(lm, guide, strengths) -> ClassGuide | TemperatureGuide | None:
    """The guide named by ``guide``: ``None``, token ids (a :class:`ClassGuide`) or ``"temperature"``.

    strengths: every strength s the run will use (guide_scale × its biases), needed by the
    temperature guide, whose strengths must stay below 1. ValueError names a bad argument.
    """
    if guide is None:
        return None
    if isinstance(guide, str):
        if guide != "temperature":
            raise ValueError(f"guide must be token ids or 'temperature'; got {guide!r}")
        values = np.unique(np.asarray(strengths if strengths is not None else [], dtype=np.float64))
        if values.size == 0 or not np.all(values < 1):
            raise ValueError(
                "guide='temperature' needs the biases of the run, with guide_scale × λ < 1 for each "
                f"(the proposal's temperature 1/(1 − guide_scale·λ) must be positive); got {strengths!r}"
            )
        return TemperatureGuide(torch.from_numpy(values))
    try:
        ids = sorted({int(token) for token in guide})
    except (TypeError, ValueError):
        ids = []
    if not ids or ids[0] < 0 or ids[-1] >= lm.vocab_size:
        raise ValueError(
            f"guide must be a non-empty collection of token ids in 0..{lm.vocab_size - 1} or "
            f"'temperature'; got {guide!r}"
        )
    return ClassGuide(torch.tensor(ids, dtype=torch.int64))

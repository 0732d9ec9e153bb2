"""List decoding and the reproduction-number threshold (companion result B, Chang 2023).

A *list decoder* keeps, at every step, every continuation whose next-token probability is at
least a threshold θ, and defers the choice of one sequence to the end. Chang reads the
candidates that have left the correct path as an epidemic: each erroneous candidate spawns on
average R₀ erroneous children, and the correct path spawns m_c erroneous siblings per step.
Only the abstract of the paper was readable; the branching-process model below is the book's
reconstruction of it.

Three stages, one section each:

* the branching process — a Galton–Watson process with immigration and Poisson offspring:
  the exact mean m_c (1 − R₀ⁿ)/(1 − R₀), exact extinction probabilities by iterating the
  offspring generating function, and a vectorised simulation;
* a synthetic language and the list decoder on a causal LM — sequences that follow the additive
  rule xₜ₊₁ = (xₜ + xₜ₋₁) mod V, next-token probabilities by batched ``lm.logits`` calls (the
  vocabulary is enumerated, nothing is sampled), and a decoder that records how many erroneous
  candidates each candidate spawns, from which R₀ and m_c are measured;
* the rare event — a sampled completion ever leaving the correct path: its exact probability
  1 − Π p(correct token | correct prefix), the observable that counts rule violations (≥ 1 exactly
  when the completion leaves the path), a wrapper that samples the model at a temperature, and the
  importance-sampling mean with its bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.special import lambertw, logsumexp

from rarelib import diagnostics
from rarelib.generation import check_positive_int, check_temperature
from rarelib.logspace import LogEstimate
from rarelib.models import CausalLM

__all__ = [
    "additive_rule_sequences",
    "expected_errors",
    "extinction_probability",
    "geometric_sum",
    "lineage_extinction",
    "list_decode",
    "ListDecoding",
    "log_geometric_sum",
    "log_mean_estimate",
    "log_prob_error_free",
    "log_prob_leaving_path",
    "make_rule_violations",
    "next_token_log_probs",
    "simulate_errors",
    "TemperedLM",
]

# --------------------------------------------------------------------------- the branching process


def _non_negative(name: str, value) -> np.ndarray:
    values = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{name} must be finite and ≥ 0; got {value!r}")
    return values


def _steps(value) -> np.ndarray:
    steps = np.asarray(value)
    if steps.dtype.kind not in "iu" or np.any(steps < 0):
        raise ValueError(f"steps must be non-negative integers; got {value!r}")
    return steps


def log_geometric_sum(reproduction, steps) -> np.ndarray:
    """log(1 + R₀ + … + R₀ⁿ⁻¹), finite where R₀ⁿ overflows (−inf at n = 0, log n at R₀ = 1); arrays broadcast.

    With x = n log R₀: x + log(1 − e^{−x}) − log(R₀ − 1) above 1, log(1 − eˣ) − log(1 − R₀) below,
    each through expm1/log1p so that it stays accurate as R₀ → 1.
    """
    r0 = _non_negative("reproduction", reproduction)
    n = _steps(steps).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # the branch not taken may overflow
        x = n * np.log(r0)
        above = x + np.log(-np.expm1(-x)) - np.log(r0 - 1.0)
        below = np.log(-np.expm1(x)) - np.log1p(-r0)
        result = np.where(r0 > 1.0, above, np.where(r0 < 1.0, below, np.log(n)))
    return np.where(n == 0, -np.inf, result)


def geometric_sum(reproduction, steps) -> np.ndarray:
    """1 + R₀ + … + R₀ⁿ⁻¹ = (R₀ⁿ − 1)/(R₀ − 1), exactly n at R₀ = 1; arrays broadcast."""
    r0 = _non_negative("reproduction", reproduction)
    n = _steps(steps)
    return np.where(r0 == 1.0, n, np.exp(log_geometric_sum(r0, n)))


def expected_errors(immigration, reproduction, steps) -> np.ndarray:
    """E[number of erroneous candidates after n steps] = m_c (1 − R₀ⁿ)/(1 − R₀) (n·m_c at R₀ = 1).

    immigration m_c, reproduction R₀, steps n: arrays that broadcast; starts from no errors.
    """
    return _non_negative("immigration", immigration) * geometric_sum(reproduction, steps)


def simulate_errors(
    immigration: float, reproduction: float, n_steps: int, n_runs: int, rng: np.random.Generator, initial: int = 0
) -> np.ndarray:
    """Galton–Watson process with immigration and Poisson offspring: counts (n_runs, n_steps + 1) int64.

    Z₀ = ``initial``; Zₜ = Poisson(R₀ Zₜ₋₁) + Poisson(m_c) (the sum of Zₜ₋₁ Poisson(R₀) litters).
    """
    m_c = float(_non_negative("immigration", immigration))
    r0 = float(_non_negative("reproduction", reproduction))
    n_steps, n_runs = check_positive_int("n_steps", n_steps), check_positive_int("n_runs", n_runs)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    if isinstance(initial, bool) or not isinstance(initial, (int, np.integer)) or initial < 0:
        raise ValueError(f"initial must be a non-negative integer; got {initial!r}")
    counts = np.empty((n_runs, n_steps + 1), dtype=np.int64)
    counts[:, 0] = initial
    for step in range(1, n_steps + 1):
        counts[:, step] = rng.poisson(r0 * counts[:, step - 1]) + rng.poisson(m_c, n_runs)
    return counts


def lineage_extinction(reproduction: float, n_steps: int) -> np.ndarray:
    """P(the lineage of one erroneous candidate is extinct by generation k), k = 0..n_steps: (n_steps + 1,).

    The iterates f_k(0) of the Poisson generating function f(s) = exp(R₀ (s − 1)).
    """
    r0 = float(_non_negative("reproduction", reproduction))
    n_steps = check_positive_int("n_steps", n_steps)
    iterates = np.zeros(n_steps + 1)
    for k in range(1, n_steps + 1):
        iterates[k] = np.exp(r0 * (iterates[k - 1] - 1.0))
    return iterates


def extinction_probability(reproduction) -> np.ndarray:
    """The smallest root q of q = exp(R₀ (q − 1)): 1 for R₀ ≤ 1, −W₀(−R₀ e^{−R₀})/R₀ above; broadcasts."""
    r0 = _non_negative("reproduction", reproduction)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -lambertw(-r0 * np.exp(-r0)).real / r0
    return np.where(r0 <= 1.0, 1.0, root)


def log_prob_error_free(immigration: float, reproduction: float, n_steps: int) -> np.ndarray:
    """log P(no erroneous candidate after k steps), k = 0..n_steps: (n_steps + 1,).

    An immigrant family that arrived j steps ago is extinct with probability f_j(0), so
    log P(Z_k = 0) = m_c Σ_{j<k} (f_j(0) − 1): a finite limit for R₀ < 1, → −∞ for R₀ ≥ 1.
    """
    m_c = float(_non_negative("immigration", immigration))
    iterates = lineage_extinction(reproduction, n_steps)
    return np.concatenate([[0.0], m_c * np.cumsum(iterates[:-1] - 1.0)])


# --------------------------------------------------------------------------- the synthetic language


def additive_rule_sequences(vocab_size: int, length: int) -> np.ndarray:
    """Every sequence of the rule xₜ₊₁ = (xₜ + xₜ₋₁) mod V: (V², length) int64, row a·V + b starts (a, b)."""
    vocab_size = check_positive_int("vocab_size", vocab_size)
    length = check_positive_int("length", length)
    if vocab_size < 2 or length < 2:
        raise ValueError(f"need vocab_size ≥ 2 and length ≥ 2; got {vocab_size}, {length}")
    sequences = np.zeros((vocab_size**2, length), dtype=np.int64)
    sequences[:, 0], sequences[:, 1] = np.divmod(np.arange(vocab_size**2), vocab_size)
    for t in range(2, length):
        sequences[:, t] = (sequences[:, t - 1] + sequences[:, t - 2]) % vocab_size
    return sequences


def make_rule_violations(vocab_size: int):
    """Observable: the number of completion tokens cᵢ ≠ (cᵢ₋₁ + cᵢ₋₂) mod V (context from the prompt), (B,).

    For a prompt whose continuation follows the rule, it is ≥ 1 exactly when the completion
    leaves the correct path: the first token off the path is a violation.
    """
    vocab_size = check_positive_int("vocab_size", vocab_size)

    def rule_violations(lm, prompt_ids, completions, token_logprobs) -> np.ndarray:
        if len(prompt_ids) < 2:
            raise ValueError("rule_violations needs a prompt of at least 2 tokens")
        context = prompt_ids[-2:].to(completions).expand(len(completions), 2)
        tokens = torch.cat([context, completions], dim=1)
        expected = (tokens[:, 1:-1] + tokens[:, :-2]) % vocab_size
        return (tokens[:, 2:] != expected).sum(dim=1).to(torch.float64).cpu().numpy()

    rule_violations.__name__ = "rule_violations"
    return rule_violations


# --------------------------------------------------------------------------- the model's next-token law


def next_token_log_probs(
    lm: CausalLM, prefixes: torch.Tensor, temperature: float = 1.0, batch_size: int = 4096
) -> torch.Tensor:
    """log p(x | prefix) at ``temperature`` for every token x: prefixes (B, T) int64 → (B, V) float64.

    Batched ``lm.logits`` calls; the whole vocabulary is enumerated, nothing is sampled.
    """
    temperature = check_temperature(temperature)
    batch_size = check_positive_int("batch_size", batch_size)
    if prefixes.ndim != 2 or prefixes.shape[1] > lm.context_length:
        raise ValueError(
            f"prefixes must be (B, T) with T ≤ context_length {lm.context_length}; got {tuple(prefixes.shape)}"
        )
    parts = []
    for start in range(0, len(prefixes), batch_size):
        logits, _ = lm.logits(prefixes[start : start + batch_size], logits_to_keep=1)
        parts.append(torch.log_softmax(logits[:, -1].double().cpu() / temperature, dim=-1))
    return torch.cat(parts) if parts else torch.zeros((0, lm.vocab_size), dtype=torch.float64)


def log_prob_leaving_path(lm: CausalLM, prompt: torch.Tensor, correct: torch.Tensor, temperature: float = 1.0) -> float:
    """log P(a sampled completion ever leaves ``correct`` (n,) after ``prompt`` (P,)) = log(1 − Π p(correct)).

    One forward pass; the product is taken in log space and 1 − e^s as −expm1(s).
    """
    sequence = torch.cat([prompt, correct]).to(torch.int64)
    logits, _ = lm.logits(sequence[None, :-1])
    log_probs = torch.log_softmax(logits[0].double().cpu() / check_temperature(temperature), dim=-1)
    on_path = log_probs[len(prompt) - 1 :].gather(1, correct[:, None].cpu()).sum().item()
    with np.errstate(divide="ignore"):  # a path of probability 1 is left with probability 0: log 0 = −inf
        return float(np.log(-np.expm1(on_path)))


def log_mean_estimate(
    log_values, rng: np.random.Generator, n_bootstrap: int = 1000, level: float = diagnostics.DEFAULT_LEVEL
) -> LogEstimate:
    """log((1/n) Σ e^{vₙ}) of log_values v (n,) (−inf for a zero), with a percentile-bootstrap interval.

    With vₙ = log 1[eventₙ] + log wₙ (importance weights w = p/q of draws from q) this is the
    importance-sampling estimate of P_p(event) and its ``level`` interval (resampling draws).
    """
    values = np.asarray(log_values, dtype=np.float64).ravel()
    if values.size == 0 or np.isnan(values).any() or np.isposinf(values).any():
        raise ValueError(f"log_values must be non-empty, without NaN or +inf; got {values.size} values")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    n_bootstrap = check_positive_int("n_bootstrap", n_bootstrap)
    replicas = np.array([logsumexp(values[rng.integers(0, values.size, values.size)]) for _ in range(n_bootstrap)])
    log_n = np.log(values.size)
    return LogEstimate(
        np.array(logsumexp(values) - log_n), diagnostics.log_percentile_interval(replicas - log_n, level)
    )


@dataclass(frozen=True)
class TemperedLM:
    """A :class:`~rarelib.models.CausalLM` whose logits are divided by ``temperature``: p_τ ∝ p^{1/τ}.

    Lets samplers that draw at temperature 1 (TPS, direct) sample the tempered law.
    """

    lm: Any
    temperature: float

    def __post_init__(self):
        check_temperature(self.temperature)

    @property
    def name(self) -> str:
        return f"{self.lm.name}@T{self.temperature:g}"

    @property
    def vocab_size(self) -> int:
        return self.lm.vocab_size

    @property
    def context_length(self) -> int:
        return self.lm.context_length

    @property
    def device(self) -> torch.device:
        return self.lm.device

    def logits(
        self, input_ids: torch.Tensor, cache: Any = None, logits_to_keep: int | None = None
    ) -> tuple[torch.Tensor, Any]:
        logits, cache = self.lm.logits(input_ids, cache, logits_to_keep)
        return logits / self.temperature, cache

    def encode(self, text: str) -> list[int]:
        return self.lm.encode(text)

    def decode(self, ids) -> str:
        return self.lm.decode(ids)


# --------------------------------------------------------------------------- the list decoder


class ListDecoding(NamedTuple):
    """What a list decoder did on N prompts over n steps.

    errors: (N, n + 1) float64 erroneous candidates in each prompt's list after each step
    (NaN once the list overflowed); list_size: (N, n + 1) float64 likewise, all candidates;
    overflow_step: (N,) int64 step at which the list first exceeded ``max_candidates`` (n + 1: never);
    correct_kept: (N,) bool, the correct continuation is in the final list;
    top_is_correct: (N,) bool, it is also the most probable candidate of the final list;
    error_parents, error_children: (n,) erroneous candidates at the start of each step and the
    children they spawned (prompts whose list had not overflowed, summed);
    path_parents, path_error_children: (n,) correct candidates at the start of each step and the
    erroneous children they spawned.
    """

    errors: np.ndarray
    list_size: np.ndarray
    overflow_step: np.ndarray
    correct_kept: np.ndarray
    top_is_correct: np.ndarray
    error_parents: np.ndarray
    error_children: np.ndarray
    path_parents: np.ndarray
    path_error_children: np.ndarray

    @property
    def reproduction_number(self) -> float:
        """Measured R₀: erroneous children per erroneous parent, pooled over steps (NaN with no parents)."""
        parents = self.error_parents.sum()
        return float(self.error_children.sum() / parents) if parents else float("nan")

    @property
    def immigration(self) -> float:
        """Measured m_c: erroneous children per correct candidate and step."""
        parents = self.path_parents.sum()
        return float(self.path_error_children.sum() / parents) if parents else float("nan")

    @property
    def accuracy(self) -> float:
        """Fraction of prompts whose list never overflowed and ends with the correct continuation on top."""
        return float(self.top_is_correct.mean())

    def mean_errors(self) -> np.ndarray:
        """Mean erroneous candidates per prompt after each step, (n + 1,); NaN from the first overflow on."""
        return self.errors.mean(axis=0)

    def closed_form_errors(self, steps) -> np.ndarray:
        """:func:`expected_errors` at the pooled rates m_c and R₀ for ``steps`` (n,): zeros when no error
        ever entered (m_c = 0), NaN when errors entered but none had children counted (R₀ unmeasured)."""
        steps = np.asarray(steps)
        if self.immigration == 0:
            return np.zeros(steps.shape)
        if not np.isfinite(self.reproduction_number):
            return np.full(steps.shape, np.nan)
        return expected_errors(self.immigration, self.reproduction_number, steps)


def list_decode(
    lm: CausalLM,
    prompts,
    correct,
    threshold: float,
    temperature: float = 1.0,
    max_candidates: int = 256,
    batch_size: int = 4096,
) -> ListDecoding:
    """Run the list decoder that keeps every continuation with p ≥ ``threshold`` on N prompts at once.

    prompts: (N, P) token ids; correct: (N, n) the correct continuation of each. Each step
    scores every candidate of every live list in batched ``lm.logits`` calls; a prompt whose
    list grows beyond ``max_candidates`` is marked overflowed and dropped from then on.
    """
    prompts = torch.as_tensor(np.asarray(prompts), dtype=torch.int64)
    correct = torch.as_tensor(np.asarray(correct), dtype=torch.int64)
    if prompts.ndim != 2 or correct.ndim != 2 or len(prompts) != len(correct) or correct.shape[1] < 1:
        raise ValueError(
            f"prompts (N, P) and correct (N, n) must have the same N and n ≥ 1; "
            f"got {tuple(prompts.shape)} and {tuple(correct.shape)}"
        )
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1]; got {threshold!r}")
    max_candidates = check_positive_int("max_candidates", max_candidates)
    n_prompts, n_steps = correct.shape
    tokens, owner = prompts.clone(), torch.arange(n_prompts)
    on_path, log_prob = torch.ones(n_prompts, dtype=torch.bool), torch.zeros(n_prompts, dtype=torch.float64)
    errors = np.full((n_prompts, n_steps + 1), np.nan)
    sizes = np.full((n_prompts, n_steps + 1), np.nan)
    errors[:, 0], sizes[:, 0] = 0.0, 1.0
    overflow_step = np.full(n_prompts, n_steps + 1)
    tallies = {
        name: np.zeros(n_steps) for name in ("error_parents", "error_children", "path_parents", "path_error_children")
    }
    log_threshold = np.log(threshold)
    for step in range(n_steps):
        log_probs = next_token_log_probs(lm, tokens, temperature, batch_size)
        parent, token = torch.nonzero(log_probs >= log_threshold, as_tuple=True)
        child_on_path = on_path[parent] & (token == correct[owner[parent], step])
        tallies["error_parents"][step] = (~on_path).sum().item()
        tallies["error_children"][step] = (~on_path[parent]).sum().item()
        tallies["path_parents"][step] = on_path.sum().item()
        tallies["path_error_children"][step] = (on_path[parent] & ~child_on_path).sum().item()
        tokens = torch.cat([tokens[parent], token[:, None]], dim=1)
        owner, on_path = owner[parent], child_on_path
        log_prob = log_prob[parent] + log_probs[parent, token]
        size = np.bincount(owner.numpy(), minlength=n_prompts)
        wrong = np.bincount(owner.numpy(), weights=(~on_path).numpy().astype(np.float64), minlength=n_prompts)
        live = overflow_step > n_steps
        overflowing = live & (size > max_candidates)
        overflow_step[overflowing] = step + 1
        live &= ~overflowing
        errors[live, step + 1], sizes[live, step + 1] = wrong[live], size[live]
        keep = torch.from_numpy(live[owner.numpy()])
        tokens, owner, on_path, log_prob = tokens[keep], owner[keep], on_path[keep], log_prob[keep]
    correct_kept = np.bincount(owner.numpy(), weights=on_path.numpy().astype(np.float64), minlength=n_prompts) > 0
    top_is_correct = np.zeros(n_prompts, dtype=bool)
    if len(owner):
        best = np.full(n_prompts, -np.inf)
        np.maximum.at(best, owner.numpy(), log_prob.numpy())
        top_is_correct[owner[on_path].numpy()] = log_prob[on_path].numpy() >= best[owner[on_path].numpy()]
    return ListDecoding(errors, sizes, overflow_step, correct_kept, top_is_correct, **tallies)

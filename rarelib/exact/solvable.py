"""Exactly solvable language models: Markov (n-gram) LMs and exact rare-event answers.

For a model whose next-token law depends only on the last k tokens, every additive
observable φ = Σ_{t=1..L} g(context_t, x_t) of a completion has an exact tilted partition
function, computed by transfer matrices over the context states, and every integer-valued
one has an exact distribution, computed by dynamic programming over (state, φ). Both run in
log space, so tails far below 1e-30 come out finite. These are the ground truth against
which every REA estimator in the book is checked.

Conventions (fixed across rarelib): tilting p_λ(x) ∝ e^{−λφ(x)} p_M(x), so
log Z(λ) = log E_{p_M}[e^{−λφ}] and ⟨φ⟩_λ = −d log Z/dλ; Repeats counts the positions with
c_i = c_{i−1}, c_0 being the last prompt token; log-probabilities are natural logs at
temperature 1.

Short contexts: an order-k model defines p(x | last k tokens) only, so every sequence it
scores or extends must start with at least k tokens (the prompt). ``MarkovLM.logits``
refuses a first call with fewer and returns NaN logits at the positions that have fewer than
k tokens up to and including them; the exact calculators need a prompt of at least
max(k, 1) tokens (Repeats needs c_0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy.special import logsumexp

from rarelib import logspace
from rarelib.generation import check_temperature
from rarelib.models import UNLIMITED_CONTEXT, keep_last, resolve_device

__all__ = [
    "AdditiveObservable",
    "at_temperature",
    "brute_force_distribution",
    "COARSE_GROUPS",
    "completion_log_probs",
    "encode_symbols",
    "enumerate_sequences",
    "exact_distribution",
    "ExactDistribution",
    "fit_markov_lm",
    "log_partition",
    "logprob_distribution_bounds",
    "map_to_alphabet",
    "MarkovLM",
    "MAX_WORK_ELEMENTS",
    "mean_under",
    "OBSERVABLE_KINDS",
    "observable_values",
    "random_markov_lm",
    "sample_tilted",
    "tilted_mean",
]

#: Symbol → the characters it stands for: vowels, consonants, spaces, sentence ends, other punctuation.
COARSE_GROUPS: dict[str, str] = {
    "a": "aeiouAEIOU",
    "b": "bcdfghjklmnpqrstvwxyzBCDFGHJKLMNPQRSTVWXYZ",
    " ": " \t\n",
    ".": ".!?",
    ",": ",;:\"'-",
}
OBSERVABLE_KINDS = ("logprob", "repeats", "token_count")
#: The largest intermediate array (in float64 elements) an exact computation may build.
MAX_WORK_ELEMENTS = 3 * 10**7


# --------------------------------------------------------------------------- alphabets


def map_to_alphabet(text: str, groups: Mapping[str, str] = COARSE_GROUPS, other: str | None = None) -> str:
    """Rewrite ``text`` in a small alphabet: each character becomes the symbol of its group.

    groups: symbol → the characters it stands for (each character in one group at most).
    other: the symbol for characters in no group ("" drops them); None makes them an error.
    """
    symbol_of: dict[str, str] = {}
    for symbol, members in groups.items():
        for char in members:
            if char in symbol_of:
                raise ValueError(f"groups: character {char!r} is in both {symbol_of[char]!r} and {symbol!r}")
            symbol_of[char] = symbol
    unknown = sorted({char for char in text if char not in symbol_of})
    if unknown and other is None:
        raise ValueError(f"text has characters in no group: {unknown}; add them to groups or pass other=")
    return "".join(symbol_of.get(char, other) for char in text)


def encode_symbols(text: str, symbols: Sequence[str]) -> list[int]:
    """Token ids of ``text`` over ``symbols`` (token i = symbols[i]), longest symbol first."""
    by_length = sorted(range(len(symbols)), key=lambda i: -len(symbols[i]))
    ids, position = [], 0
    while position < len(text):
        match = next((i for i in by_length if text.startswith(symbols[i], position)), None)
        if match is None:
            raise ValueError(
                f"text has {text[position]!r} at position {position}, which no symbol covers; "
                f"the alphabet is {list(symbols)}"
            )
        ids.append(match)
        position += len(symbols[match])
    return ids


def _check_symbols(symbols: Sequence[str] | None, vocab_size: int) -> tuple[str, ...]:
    """The alphabet of a vocabulary of ``vocab_size`` tokens (default: a, b, c, ...)."""
    if symbols is None:
        if vocab_size > 26:
            raise ValueError(f"symbols: give {vocab_size} symbols; the default a..z covers at most 26 tokens")
        symbols = "abcdefghijklmnopqrstuvwxyz"[:vocab_size]
    symbols = tuple(symbols)
    well_formed = all(isinstance(symbol, str) and symbol for symbol in symbols)
    if len(symbols) != vocab_size or len(set(symbols)) != vocab_size or not well_formed:
        raise ValueError(f"symbols must be {vocab_size} distinct non-empty strings; got {list(symbols)}")
    return symbols


def _check_token_ids(ids, vocab_size: int, what: str) -> np.ndarray:
    """``ids`` (list, array or tensor) as an int64 array, every entry a token id in [0, vocab_size)."""
    array = ids.detach().cpu().numpy() if torch.is_tensor(ids) else np.asarray(ids)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must hold integer token ids; got dtype {array.dtype}")
    array = array.astype(np.int64)
    outside = array[(array < 0) | (array >= vocab_size)]
    if outside.size:
        raise ValueError(
            f"{what} has token ids {sorted(set(outside.tolist()))[:10]} outside the vocabulary 0..{vocab_size - 1}"
        )
    return array


# --------------------------------------------------------------------------- the model


class MarkovLM:
    """An order-k Markov (n-gram) language model behind the :class:`~rarelib.models.CausalLM` interface.

    log_probs: (T,)*k + (T,) log p(x | c_1..c_k), contexts indexed oldest token first; rows
    must be normalised (log-sum-exp over the last axis within ``atol`` of 0) and are then
    renormalised exactly. k = 0 is an i.i.d. model. The cache of ``logits`` is the last k
    tokens of each row, (B, k) int64. Sequences need at least k tokens (see module docs).
    """

    def __init__(
        self,
        log_probs,
        symbols: Sequence[str] | None = None,
        name: str = "markov",
        context_length: int = UNLIMITED_CONTEXT,
        device: str | torch.device = "cpu",
        atol: float = 1e-6,
    ):
        table = _normalised_log_probs(log_probs, atol)
        table.flags.writeable = False  # the logits table below is derived from it
        self.log_probs = table
        self.order = table.ndim - 1
        self.vocab_size = table.shape[-1]
        self.symbols = _check_symbols(symbols, self.vocab_size)
        self.name = name
        self.context_length = int(context_length)
        self.device = resolve_device(device)
        self._logit_rows = torch.tensor(self.context_log_probs(self.order), dtype=torch.float32, device=self.device)

    def context_log_probs(self, order: int) -> np.ndarray:
        """The table as an order-``order`` model (order ≥ k): (T^order, T), row = base-T code of the context."""
        if order < self.order:
            raise ValueError(f"order={order} is below the model's order k={self.order}")
        T, k = self.vocab_size, self.order
        rows = self.log_probs.reshape(1, T**k, T)
        return np.broadcast_to(rows, (T ** (order - k), T**k, T)).reshape(T**order, T)

    def logits(
        self, input_ids: torch.Tensor, cache: torch.Tensor | None = None, logits_to_keep: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next-token logits (B, n, T) float32 for input_ids (B, n) following ``cache`` (B, k).

        Positions with fewer than k tokens up to and including them get NaN logits. Returns the
        logits (of the last ``logits_to_keep`` positions only, if given) and the new cache, the
        last k tokens of each row (B, k).
        """
        ids = self._checked_input(input_ids)
        history = ids if cache is None else torch.cat([self._checked_cache(cache, ids.shape[0]), ids], dim=1)
        if history.shape[1] < self.order:
            raise ValueError(
                f"input_ids: an order-{self.order} Markov model needs at least {self.order} tokens of prompt; "
                f"got {history.shape[1]}"
            )
        positions = torch.arange(history.shape[1] - ids.shape[1], history.shape[1], device=self.device)
        context = torch.zeros_like(ids)
        for lag in range(self.order):
            context += history[:, (positions - lag).clamp(min=0)] * self.vocab_size**lag
        logits = self._logit_rows[context]
        logits[:, positions < self.order - 1] = float("nan")
        return keep_last(logits, logits_to_keep), history[:, history.shape[1] - self.order :]

    def encode(self, text: str) -> list[int]:
        return encode_symbols(text, self.symbols)

    def decode(self, ids: Sequence[int]) -> str:
        checked = _check_token_ids([int(i) for i in ids], self.vocab_size, "ids")
        return "".join(self.symbols[i] for i in checked.tolist())

    def _checked_input(self, input_ids) -> torch.Tensor:
        ids = torch.as_tensor(input_ids)
        if ids.ndim != 2 or ids.shape[1] == 0 or ids.is_floating_point() or ids.is_complex():
            raise ValueError(
                f"input_ids must be a (batch, tokens) integer tensor with tokens ≥ 1; "
                f"got {tuple(ids.shape)} {ids.dtype}"
            )
        _check_token_ids(ids, self.vocab_size, "input_ids")
        return ids.to(device=self.device, dtype=torch.int64)

    def _checked_cache(self, cache, batch: int) -> torch.Tensor:
        cache = torch.as_tensor(cache)
        if tuple(cache.shape) != (batch, self.order):
            raise ValueError(
                f"cache must be the (batch, k) = ({batch}, {self.order}) last tokens; got shape {tuple(cache.shape)}"
            )
        return cache.to(device=self.device, dtype=torch.int64)


def _normalised_log_probs(log_probs, atol: float) -> np.ndarray:
    """Check a transition table (T,)*k + (T,) and renormalise its rows exactly; float64."""
    table = np.array(log_probs.detach().cpu().numpy() if torch.is_tensor(log_probs) else log_probs, dtype=np.float64)
    if table.ndim == 0 or len(set(table.shape)) != 1:
        raise ValueError(f"log_probs must have shape (T,)*k + (T,) (k ≥ 0); got {table.shape}")
    if np.isnan(table).any() or np.isposinf(table).any():
        raise ValueError("log_probs must not contain NaN or +inf (a zero probability is -inf)")
    row_log_sums = logsumexp(table, axis=-1)
    worst = np.unravel_index(np.argmax(np.abs(row_log_sums)), row_log_sums.shape)
    if not abs(row_log_sums[worst]) <= atol:
        raise ValueError(
            f"log_probs rows must be normalised (log-sum-exp over the next token within atol={atol} of 0); "
            f"the row of context {tuple(int(i) for i in worst)} has log-sum-exp {row_log_sums[worst]:.3g}"
        )
    return table - row_log_sums[..., None]


def random_markov_lm(
    vocab_size: int, order: int, rng: np.random.Generator, concentration: float = 1.0, **model_options
) -> MarkovLM:
    """An order-``order`` model whose rows are drawn from a symmetric Dirichlet(concentration)."""
    probabilities = rng.dirichlet(np.full(vocab_size, concentration), size=(vocab_size,) * order)
    with np.errstate(divide="ignore"):
        log_probs = np.log(probabilities)
    return MarkovLM(log_probs, **model_options)


def fit_markov_lm(
    sequences: Iterable[Sequence[int]],
    symbols: Sequence[str],
    order: int,
    smoothing: float = 1.0,
    **model_options,
) -> MarkovLM:
    """Fit an order-``order`` model to token-id sequences by counting (k+1)-grams with add-α smoothing.

    p(x | c) = (n(c, x) + α) / (n(c) + Tα), windows taken within each sequence. α = 0 gives the
    maximum-likelihood table and needs every context to occur. Text: ``encode_symbols``.
    """
    vocab_size = len(symbols)
    if not isinstance(order, (int, np.integer)) or order < 0:
        raise ValueError(f"order must be an integer ≥ 0; got {order!r}")
    if not np.isfinite(smoothing) or smoothing < 0:
        raise ValueError(f"smoothing must be a finite α ≥ 0; got {smoothing!r}")
    weights = vocab_size ** np.arange(order, -1, -1)
    counts = np.zeros(vocab_size ** (order + 1))
    for sequence in sequences:
        ids = _check_token_ids(sequence, vocab_size, "sequences")
        if ids.ndim != 1:
            raise ValueError(f"sequences must be 1-D token id sequences; got one of shape {ids.shape}")
        if ids.size > order:
            windows = np.lib.stride_tricks.sliding_window_view(ids, order + 1)
            counts += np.bincount(windows @ weights, minlength=counts.size)
    if not counts.any():
        raise ValueError(f"sequences hold no window of order + 1 = {order + 1} tokens to count")
    counts = counts.reshape(vocab_size**order, vocab_size) + smoothing
    totals = counts.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        raise ValueError(f"{int((totals == 0).sum())} contexts never occur in sequences; use smoothing > 0")
    with np.errstate(divide="ignore"):
        log_probs = np.log(counts) - np.log(totals)
    return MarkovLM(log_probs.reshape((vocab_size,) * (order + 1)), symbols, **model_options)


# --------------------------------------------------------------------------- observables


@dataclass(frozen=True)
class AdditiveObservable:
    """An additive observable φ = Σ_{t=1..L} g(context_t, x_t) of a completion c_1..c_L.

    kind: ``"logprob"`` (g = log p(c_t | context)), ``"repeats"`` (g = 1[c_t = c_{t−1}], c_0 the
    last prompt token) or ``"token_count"`` (g = 1[c_t ∈ tokens]). tokens: the class counted.
    """

    kind: str
    tokens: frozenset[int] = frozenset()

    def __post_init__(self):
        if self.kind.startswith("ari"):
            raise ValueError(
                f"observable {self.kind!r} (ARI) is not additive over tokens (it is a ratio of character, word "
                "and sentence counts, capped at 15), so it has no exact transfer-matrix answer; use an additive proxy: "
                f"one of {OBSERVABLE_KINDS}"
            )
        if self.kind not in OBSERVABLE_KINDS:
            raise ValueError(f"observable kind={self.kind!r}; use one of {OBSERVABLE_KINDS}")
        tokens = frozenset(int(t) for t in self.tokens)
        if (self.kind == "token_count") != bool(tokens) or any(t < 0 for t in tokens):
            raise ValueError("tokens: 'token_count' needs a non-empty set of token ids ≥ 0; other kinds take none")
        object.__setattr__(self, "tokens", tokens)

    @property
    def integer_valued(self) -> bool:
        return self.kind != "logprob"


def _as_observable(observable: AdditiveObservable | str) -> AdditiveObservable:
    return observable if isinstance(observable, AdditiveObservable) else AdditiveObservable(str(observable))


def _prompt_ids(model: MarkovLM, prompt: str | Sequence[int]) -> np.ndarray:
    """The prompt's token ids (P,), P ≥ max(k, 1)."""
    ids = _check_token_ids(model.encode(prompt) if isinstance(prompt, str) else prompt, model.vocab_size, "prompt")
    needed = max(model.order, 1)
    if ids.ndim != 1 or ids.size < needed:
        raise ValueError(f"prompt must be a sequence of at least max(k, 1) = {needed} tokens; got {ids.size}")
    return ids


def _check_length(length) -> int:
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length (completion tokens L) must be an integer ≥ 0; got {length!r}")
    return int(length)


def _check_work(elements: int, what: str, remedy: str) -> None:
    if elements > MAX_WORK_ELEMENTS:
        raise ValueError(
            f"{what} needs arrays of {elements:.3g} elements, above MAX_WORK_ELEMENTS = "
            f"{MAX_WORK_ELEMENTS:.3g}; {remedy}"
        )


# --------------------------------------------------------------------------- transfer matrices


class _Transfer(NamedTuple):
    """One completion step over the S = T^m context states (m = max(k, 1)), as (S, T) tables."""

    log_p: np.ndarray  # log p(x | state s)
    increments: np.ndarray  # g(s, x); 0 where p(x | s) = 0
    next_state: np.ndarray  # state after emitting x from s: (s·T + x) mod S
    start: int  # state of the prompt's last m tokens


def _transfer(model: MarkovLM, observable: AdditiveObservable | str, prompt) -> _Transfer:
    observable = _as_observable(observable)
    ids = _prompt_ids(model, prompt)
    T, m = model.vocab_size, max(model.order, 1)
    log_p = model.context_log_probs(m)
    states, tokens = np.arange(T**m)[:, None], np.arange(T)[None, :]
    if observable.kind == "logprob":
        increments = np.where(np.isfinite(log_p), log_p, 0.0)
    elif observable.kind == "repeats":
        increments = (states % T == tokens).astype(np.float64)
    else:
        if max(observable.tokens) >= T:
            raise ValueError(f"token_count tokens {sorted(observable.tokens)} lie outside the vocabulary 0..{T - 1}")
        increments = np.broadcast_to(np.isin(tokens, sorted(observable.tokens)), log_p.shape).astype(np.float64)
    start = int(ids[ids.size - m :] @ T ** np.arange(m - 1, -1, -1))
    return _Transfer(log_p, increments, (states * T + tokens) % T**m, start)


def _tilted_backward(model, observable, prompt, length, lambdas, with_mean: bool):
    """log Z(λ) and (if ``with_mean``) ⟨φ⟩_λ, each shaped like ``lambdas``, by one backward transfer-matrix pass.

    v_t(s) = log Σ_x p(x|s) e^{−λ g(s,x)} e^{v_{t+1}(s')}; the tilted mean of the remaining φ is
    carried along as m_t(s) = Σ_x q_t(x|s) (g(s,x) + m_{t+1}(s')), with q_t the tilted transition law.
    """
    problem = _transfer(model, observable, prompt)
    length = _check_length(length)
    lambdas = np.asarray(lambdas, dtype=np.float64)
    lam = lambdas.reshape(-1, 1, 1)
    _check_work(
        lam.size * problem.log_p.size, f"the transfer matrices for {lam.size} lambdas", "pass fewer lambdas per call"
    )
    allowed = np.isfinite(problem.log_p)
    log_weights = np.where(allowed, problem.log_p - lam * problem.increments, -np.inf)  # (Λ, S, T)
    log_v = np.zeros((lam.size, problem.log_p.shape[0]))
    mean = np.zeros_like(log_v)
    for _ in range(length):
        log_terms = log_weights + log_v[:, problem.next_state]
        log_v = logspace.logsumexp(log_terms, axis=-1)
        if with_mean:
            tilted = np.exp(log_terms - log_v[..., None])
            mean = np.sum(tilted * (problem.increments + mean[:, problem.next_state]), axis=-1)
    return log_v[:, problem.start].reshape(lambdas.shape), mean[:, problem.start].reshape(lambdas.shape)


def log_partition(model: MarkovLM, observable: AdditiveObservable | str, prompt, length: int, lambdas) -> np.ndarray:
    """Exact log Z(λ) = log E_{p_M}[e^{−λφ}] over completions of ``length`` tokens; shaped like ``lambdas``."""
    return _tilted_backward(model, observable, prompt, length, lambdas, with_mean=False)[0]


def tilted_mean(model: MarkovLM, observable: AdditiveObservable | str, prompt, length: int, lambdas) -> np.ndarray:
    """Exact ⟨φ⟩_λ = E_{p_λ}[φ] = −d log Z/dλ; shaped like ``lambdas``."""
    return _tilted_backward(model, observable, prompt, length, lambdas, with_mean=True)[1]


def sample_tilted(
    model: MarkovLM,
    observable: AdditiveObservable | str,
    prompt,
    length: int,
    lam: float,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` i.i.d. completions (n, L) drawn exactly from the tilted law p_λ(c) ∝ p_M(c) e^{−λφ(c)}.

    p_λ is again a (time-inhomogeneous) Markov chain over the context states: with the backward
    messages v_t(s) of :func:`log_partition`, step t draws x from p(x|s) e^{−λ g(s,x)} e^{v_{t+1}(s')} / e^{v_t(s)}.
    Reweighting these samples by Z(λ) e^{λφ} gives unbiased p_M expectations (e.g. tails of Log-Prob,
    which has no exact lattice law: :func:`rarelib.exact.validation.tilted_tail_reference`).
    """
    problem = _transfer(model, observable, prompt)
    length = _check_length(length)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (samples) must be a positive integer; got {n!r}")
    if not np.isfinite(lam):
        raise ValueError(f"lam must be a finite bias; got {lam!r}")
    allowed = np.isfinite(problem.log_p)
    log_weights = np.where(allowed, problem.log_p - lam * problem.increments, -np.inf)  # (S, T)
    log_v = np.zeros((length + 1, problem.log_p.shape[0]))  # v_t(s), t = 0..L, v_L = 0
    for t in range(length - 1, -1, -1):
        log_v[t] = logspace.logsumexp(log_weights + log_v[t + 1][problem.next_state], axis=-1)
    completions = np.empty((int(n), length), dtype=np.int64)
    state = np.full(int(n), problem.start)
    for t in range(length):
        log_q = log_weights[state] + log_v[t + 1][problem.next_state[state]] - log_v[t][state][:, None]  # (n, T)
        cumulative = np.cumsum(np.exp(log_q), axis=1)
        uniforms = rng.random(int(n)) * cumulative[:, -1]  # scaled by the row's total: immune to rounding
        token = np.minimum((cumulative < uniforms[:, None]).sum(axis=1), problem.log_p.shape[1] - 1)
        completions[:, t] = token
        state = problem.next_state[state, token]
    return completions


# --------------------------------------------------------------------------- exact distributions


@dataclass(frozen=True)
class ExactDistribution:
    """The law of an observable: atoms ``values`` (N,) ascending, ``log_pmf`` (N,) their log-probabilities."""

    values: np.ndarray
    log_pmf: np.ndarray

    def log_prob_at_least(self, threshold):
        """log P(φ ≥ a) for each a in ``threshold`` (any shape)."""
        return logspace.cumulative_log_tail(self.values, self.log_pmf, threshold, "upper")

    def log_prob_at_most(self, threshold):
        """log P(φ ≤ a) for each a in ``threshold`` (any shape)."""
        return logspace.cumulative_log_tail(self.values, self.log_pmf, threshold, "lower")

    def log_partition(self, lambdas):
        """log Σ_φ P(φ) e^{−λφ}, shaped like ``lambdas``."""
        lam = np.asarray(lambdas, dtype=np.float64)
        return logsumexp(self.log_pmf - lam[..., None] * self.values, axis=-1)

    def tilted_mean(self, lambdas):
        """Σ_φ φ P(φ) e^{−λφ} / Z(λ), shaped like ``lambdas``."""
        lam = np.asarray(lambdas, dtype=np.float64)
        log_tilted = self.log_pmf - lam[..., None] * self.values
        return np.sum(np.exp(log_tilted - logsumexp(log_tilted, axis=-1, keepdims=True)) * self.values, axis=-1)


def mean_under(sampling: MarkovLM, model: MarkovLM, observable: AdditiveObservable | str, prompt, length: int) -> float:
    """Exact E_q[φ] of ``model``'s additive observable over completions drawn from another Markov LM q = ``sampling``.

    E.g. q = the model at temperature T (:func:`at_temperature`) and φ = Log-Prob of the model: the mean
    that plain temperature sampling converges to. One forward pass over the law of the context state.
    """
    scored, drawn = _transfer(model, observable, prompt), _transfer(sampling, "logprob", prompt)
    if scored.log_p.shape != drawn.log_p.shape:
        raise ValueError(
            f"sampling and model must share vocabulary and order; got tables {drawn.log_p.shape} "
            f"and {scored.log_p.shape}"
        )
    step = np.exp(drawn.log_p)  # (S, T) q(x | s)
    state = np.zeros(step.shape[0])
    state[drawn.start] = 1.0
    mean = 0.0
    for _ in range(_check_length(length)):
        flow = state[:, None] * step
        mean += float(np.sum(flow * scored.increments))
        state = np.bincount(scored.next_state.ravel(), weights=flow.ravel(), minlength=state.size)
    return mean


def at_temperature(model: MarkovLM, temperature: float) -> MarkovLM:
    """The Markov LM whose next-token law is ``model``'s at ``temperature``: p(x | c)^{1/T} renormalised per context."""
    scaled = model.log_probs / check_temperature(temperature)
    return MarkovLM(
        scaled - logspace.logsumexp(scaled, axis=-1)[..., None],
        symbols=model.symbols,
        name=f"{model.name}@T{temperature:g}",
        context_length=model.context_length,
        device=model.device,
    )


def _lattice_distribution(problem: _Transfer, steps: np.ndarray, length: int) -> ExactDistribution:
    """Exact law of Σ_t steps(s_t, x_t) for integer steps (S, T), by a backward DP over (state, value) in log space.

    b_t(s, v) = log Σ_x p(x|s) exp b_{t+1}(s', v − steps(s, x)); values span
    [L·min(steps, 0), L·max(steps, 0)].
    """
    n_states, vocab_size = problem.log_p.shape
    lowest, highest = length * min(steps.min(), 0), length * max(steps.max(), 0)
    n_values = int(highest - lowest) + 1
    _check_work(
        n_states * vocab_size * n_values,
        f"the exact distribution over {n_values} values",
        "shorten the completion (or, for Log-Prob bounds, widen bin_width)",
    )
    source = np.arange(n_values) - steps[:, :, None]  # (S, T, N): value index before the step
    inside = (source >= 0) & (source < n_values)
    source = source.clip(0, n_values - 1)
    log_b = np.full((n_states, n_values), -np.inf)
    log_b[:, -lowest] = 0.0
    for _ in range(length):
        gathered = np.where(inside, log_b[problem.next_state[:, :, None], source], -np.inf)
        log_b = logspace.logsumexp(problem.log_p[:, :, None] + gathered, axis=1)
    return ExactDistribution(np.arange(lowest, highest + 1, dtype=np.float64), log_b[problem.start])


def exact_distribution(model: MarkovLM, observable: AdditiveObservable | str, prompt, length: int) -> ExactDistribution:
    """Exact law of an integer-valued observable (Repeats, a token count) on values 0..L, in log space."""
    observable = _as_observable(observable)
    if not observable.integer_valued:
        raise ValueError(
            "exact_distribution needs an integer-valued observable ('repeats' or 'token_count'); for 'logprob' "
            "use brute_force_distribution (T^L ≤ 1e6) or logprob_distribution_bounds"
        )
    problem = _transfer(model, observable, prompt)
    return _lattice_distribution(problem, problem.increments.astype(np.int64), _check_length(length))


def logprob_distribution_bounds(
    model: MarkovLM, prompt, length: int, bin_width: float
) -> tuple[ExactDistribution, ExactDistribution]:
    """Two exact laws that sandwich Log-Prob φ for any completion length.

    Each step's log p is rounded down (resp. up) to a multiple of ``bin_width`` h, giving
    φ_low ≤ φ ≤ φ_high ≤ φ_low + L·h path by path; hence for every a
    P(φ_low ≥ a) ≤ P(φ ≥ a) ≤ P(φ_high ≥ a) and P(φ_high ≤ a) ≤ P(φ ≤ a) ≤ P(φ_low ≤ a).
    Cost grows like L² · max|log p| / h. Returns (law of φ_low, law of φ_high), values in nats.
    """
    if not np.isfinite(bin_width) or bin_width <= 0:
        raise ValueError(f"bin_width must be a positive number of nats; got {bin_width!r}")
    problem = _transfer(model, "logprob", prompt)
    length = _check_length(length)
    scaled = problem.increments / bin_width

    def law(steps: np.ndarray) -> ExactDistribution:
        lattice = _lattice_distribution(problem, steps.astype(np.int64), length)
        return ExactDistribution(lattice.values * bin_width, lattice.log_pmf)

    return law(np.floor(scaled)), law(np.ceil(scaled))


# --------------------------------------------------------------------------- brute force


def enumerate_sequences(vocab_size: int, length: int, max_sequences: int = 10**6) -> np.ndarray:
    """Every token sequence of ``length`` over ``vocab_size`` tokens, (T^L, L) int64, in base-T order."""
    length = _check_length(length)
    count = vocab_size**length
    if count > max_sequences:
        raise ValueError(
            f"enumerating {vocab_size}^{length} = {count:,} sequences exceeds max_sequences={max_sequences:,}; "
            "shorten the completion or use the transfer-matrix functions"
        )
    return np.indices((vocab_size,) * length, dtype=np.int64).reshape(length, count).T


def _checked_completions(model: MarkovLM, completions) -> np.ndarray:
    completions = _check_token_ids(completions, model.vocab_size, "completions")
    if completions.ndim != 2:
        raise ValueError(f"completions must be a (N, L) array of token ids; got shape {completions.shape}")
    return completions


def completion_log_probs(model: MarkovLM, prompt, completions) -> np.ndarray:
    """Per-step log p(c_t | context) (N, L) of completions (N, L), read straight from the table."""
    ids = _prompt_ids(model, prompt)
    completions = _checked_completions(model, completions)
    k, (n, length) = model.order, completions.shape
    history = np.concatenate([np.broadcast_to(ids[ids.size - k :], (n, k)), completions], axis=1)
    step_log_probs = np.empty((n, length))
    for t in range(length):
        step_log_probs[:, t] = model.log_probs[tuple(history[:, t : t + k + 1].T)]
    return step_log_probs


def observable_values(model: MarkovLM, observable: AdditiveObservable | str, prompt, completions) -> np.ndarray:
    """φ of each completion (N, L) → (N,), computed on the token arrays (the reference definition)."""
    observable = _as_observable(observable)
    if observable.kind == "logprob":
        return completion_log_probs(model, prompt, completions).sum(axis=1)
    ids = _prompt_ids(model, prompt)
    completions = _checked_completions(model, completions)
    if observable.kind == "repeats":
        previous = np.concatenate([np.full((completions.shape[0], 1), ids[-1]), completions[:, :-1]], axis=1)
        return (completions == previous).sum(axis=1).astype(np.float64)
    return np.isin(completions, sorted(observable.tokens)).sum(axis=1).astype(np.float64)


def brute_force_distribution(
    model: MarkovLM, observable: AdditiveObservable | str, prompt, length: int, max_sequences: int = 10**6
) -> ExactDistribution:
    """The law of φ by enumerating all T^L completions (equal values merged); any additive kind."""
    observable = _as_observable(observable)
    completions = enumerate_sequences(model.vocab_size, length, max_sequences)
    log_p = completion_log_probs(model, prompt, completions).sum(axis=1)
    phi = log_p if observable.kind == "logprob" else observable_values(model, observable, prompt, completions)
    support = np.isfinite(log_p)
    values, group = np.unique(phi[support], return_inverse=True)
    return ExactDistribution(values, logspace.grouped_logsumexp(log_p[support], group, values.size))

"""A causal language model with a context window of K tokens, read as a Markov chain (Zekri et al. 2024).

States: every non-empty context of length ≤ K over a vocabulary of T tokens,
|states| = T(T^K − 1)/(T − 1), ordered by length and, within a length, by base-T code
(oldest token most significant). A step appends the sampled token and drops the oldest one
when the length would exceed K, so row s of the transition matrix Q holds the model's T
next-token probabilities (at a temperature) given context s. For a model whose own window is
longer, this is the model with its context truncated to the last K tokens.

Contexts shorter than K are transient (their block is nilpotent); the T^K full-length
contexts form one recurrent, aperiodic class when every next-token probability is positive,
so π is unique and zero on transient states. Its recurrent block is an order-K Markov LM
(:func:`chain_to_markov_lm`), on which the exact calculators of :mod:`rarelib.exact.solvable` run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components, shortest_path
from scipy.sparse.linalg import eigs
from scipy.special import xlog1py

from rarelib.exact.solvable import MarkovLM, enumerate_sequences
from rarelib.models import CausalLM

__all__ = [
    "chain_structure",
    "chain_to_markov_lm",
    "ChainStructure",
    "ContextChain",
    "log_epsilon",
    "mixing_time",
    "model_as_chain",
    "n_context_states",
    "spectral_gap",
    "stationary_distribution",
    "tv_distance_to_stationary",
    "zekri_bound",
]


@dataclass(frozen=True, eq=False)
class ContextChain:
    """The Markov chain on contexts of length 1..K.

    log_next_token: (S, T) log Q on its T non-zeros per row, log p(token | context s).
    """

    vocab_size: int
    window: int
    temperature: float
    log_next_token: np.ndarray
    symbols: tuple[str, ...]
    name: str

    @property
    def n_states(self) -> int:
        return self.log_next_token.shape[0]

    @property
    def first_recurrent(self) -> int:
        """Index of the first full-length context; states ≥ it are the recurrent class (T^K of them)."""
        return self.n_states - self.vocab_size**self.window

    @cached_property
    def next_state(self) -> np.ndarray:
        """(S, T) the state reached from each state by emitting each token."""
        T, K = self.vocab_size, self.window
        blocks = []
        for length in range(1, K + 1):
            codes = np.arange(T**length)[:, None] * T + np.arange(T)[None, :]  # base-T code of context + token
            # the first context of length ℓ has index n_context_states(T, ℓ − 1)
            if length < K:
                blocks.append(n_context_states(T, length) + codes)
            else:
                blocks.append(n_context_states(T, K - 1) + codes % T**K)
        return np.concatenate(blocks)

    @cached_property
    def transition(self) -> sp.csr_matrix:
        """Q (S, S) in CSR, exactly T stored entries per row."""
        S, T = self.log_next_token.shape
        return sp.csr_matrix(
            (np.exp(self.log_next_token).ravel(), self.next_state.ravel(), np.arange(0, S * T + 1, T)), shape=(S, S)
        )

    @property
    def recurrent_block(self) -> sp.csr_matrix:
        """Q restricted to the T^K full-length contexts, (T^K, T^K)."""
        start = self.first_recurrent
        return self.transition[start:, start:]

    @property
    def transient_block(self) -> sp.csr_matrix:
        """Q restricted to the contexts shorter than K, (S − T^K, S − T^K)."""
        start = self.first_recurrent
        return self.transition[:start, :start]


def n_context_states(vocab_size: int, window: int) -> int:
    """T + T² + … + T^K = T(T^K − 1)/(T − 1), the number of non-empty contexts of length ≤ K."""
    return sum(vocab_size**length for length in range(1, window + 1))


def model_as_chain(
    lm: CausalLM,
    window: int,
    temperature: float = 1.0,
    batch_size: int = 1024,
    max_states: int = 200_000,
) -> ContextChain:
    """Read ``lm`` with context window ``window`` = K as a Markov chain on its contexts.

    Evaluates the model once on every context of length 1..K (in batches of ``batch_size``);
    next-token probabilities are softmax(logits / temperature) in float64.
    """
    vocab_size = int(lm.vocab_size)
    if not isinstance(window, (int, np.integer)) or not 1 <= window <= lm.context_length:
        raise ValueError(
            f"window must be an integer K in 1..{lm.context_length} (the model's context length); got {window!r}"
        )
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number; got {temperature!r}")
    n_states = n_context_states(vocab_size, window)
    if n_states > max_states:
        raise ValueError(
            f"the chain of T={vocab_size} tokens and window K={window} has T(T^K − 1)/(T − 1) = {n_states:,} "
            f"states, more than max_states={max_states:,}; use a smaller vocabulary or window"
        )
    log_next_token = np.concatenate(
        [
            _next_token_log_probs(lm, enumerate_sequences(vocab_size, length, max_states), temperature, batch_size)
            for length in range(1, window + 1)
        ]
    )
    symbols = tuple(lm.decode([token]) for token in range(vocab_size))
    return ContextChain(
        vocab_size,
        int(window),
        float(temperature),
        log_next_token,
        symbols,
        name=f"{lm.name}-chain-K{window}-temp{temperature:g}",
    )


def _next_token_log_probs(lm: CausalLM, contexts: np.ndarray, temperature: float, batch_size: int) -> np.ndarray:
    """log softmax(logits / temperature) after each context (N, ℓ) → (N, T) float64."""
    rows = []
    for start in range(0, contexts.shape[0], batch_size):
        batch = torch.as_tensor(contexts[start : start + batch_size], device=lm.device)
        logits, _ = lm.logits(batch)
        rows.append(torch.log_softmax(logits[:, -1].double() / temperature, dim=-1).cpu().numpy())
    return np.concatenate(rows)


def chain_to_markov_lm(chain: ContextChain, **model_options) -> MarkovLM:
    """The recurrent block as an order-K :class:`~rarelib.exact.solvable.MarkovLM` (prompts need ≥ K tokens)."""
    table = chain.log_next_token[chain.first_recurrent :].reshape((chain.vocab_size,) * (chain.window + 1))
    model_options.setdefault("name", chain.name)
    return MarkovLM(table, chain.symbols, **model_options)


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class ChainStructure:
    """What :func:`chain_structure` measured; the comment gives the value a healthy chain has."""

    n_states: int  # T(T^K − 1)/(T − 1)
    n_recurrent: int  # T^K
    max_row_sum_error: float  # ≈ 1e-16
    stored_per_row: tuple[int, int]  # (min, max) = (T, T)
    positive_per_row: tuple[int, int]  # (T, T) at temperature > 0 unless a probability underflows
    nonzero_fraction: float  # = expected_nonzero_fraction
    expected_nonzero_fraction: float  # (T − 1)/(T^K − 1)
    transient_nilpotency: int | None  # smallest n with P_T^n = 0: K − 1 (None: not within K steps)
    recurrent_closed: bool  # no transition leaves the full-length contexts
    recurrent_components: int  # strongly connected components of the recurrent block: 1
    recurrent_period: int  # 1 (aperiodic)


def chain_structure(chain: ContextChain) -> ChainStructure:
    """Check the block structure Zekri et al. prove for every such chain."""
    Q = chain.transition
    S, T, K = chain.n_states, chain.vocab_size, chain.window
    positive = (Q.data > 0).reshape(S, T).sum(axis=1)
    stored = np.diff(Q.indptr)
    recurrent = _positive_part(chain.recurrent_block)
    n_components, _ = connected_components(recurrent, directed=True, connection="strong")
    return ChainStructure(
        n_states=S,
        n_recurrent=S - chain.first_recurrent,
        max_row_sum_error=float(np.abs(np.asarray(Q.sum(axis=1)).ravel() - 1).max()),
        stored_per_row=(int(stored.min()), int(stored.max())),
        positive_per_row=(int(positive.min()), int(positive.max())),
        nonzero_fraction=Q.nnz / S**2,
        expected_nonzero_fraction=(T - 1) / (T**K - 1),
        transient_nilpotency=_nilpotency_index(_positive_part(chain.transient_block), K),
        recurrent_closed=bool(Q[chain.first_recurrent :, : chain.first_recurrent].count_nonzero() == 0),
        recurrent_components=int(n_components),
        recurrent_period=_period(recurrent),
    )


def _positive_part(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The directed graph of the positive entries."""
    graph = matrix.copy()
    graph.eliminate_zeros()
    return graph


def _nilpotency_index(block: sp.csr_matrix, bound: int) -> int | None:
    """Smallest n ≤ bound with block^n = 0, else None."""
    power = sp.identity(block.shape[0], format="csr")
    for n in range(bound + 1):
        if power.count_nonzero() == 0:
            return n
        power = power @ block
    return None


def _period(graph: sp.csr_matrix) -> int:
    """gcd of the cycle lengths of the strongly connected part reachable from state 0 (1 = aperiodic)."""
    depth = shortest_path(graph, unweighted=True, indices=0)
    source, target = graph.nonzero()
    reached = np.isfinite(depth[source])
    return int(np.gcd.reduce((depth[source] + 1 - depth[target])[reached].astype(np.int64), initial=0))


# --------------------------------------------------------------------------- convergence to π


def stationary_distribution(
    chain: ContextChain, method: str = "eigs", tol: float = 1e-14, max_iter: int = 100_000
) -> np.ndarray:
    """π on the recurrent block (T^K,), π Q_R = π, Σπ = 1 (π is zero on transient contexts).

    method: ``"eigs"`` (ARPACK, the leading left eigenvector) or ``"power"`` (π ← π Q_R from
    uniform until the L1 change is below ``tol``; the error is about tol / spectral gap).
    """
    if method == "eigs":
        _, vectors = _leading_eigenpairs(chain.recurrent_block.T, 1)
        vector = vectors[:, 0]
        return np.real(vector / vector.sum())
    if method == "power":
        if not (tol > 0 and isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
            raise ValueError(
                f"power iteration needs tol > 0 and an integer max_iter ≥ 1; got tol={tol!r}, max_iter={max_iter!r}"
            )
        return _power_iteration(chain.recurrent_block.T.tocsr(), tol, max_iter)
    raise ValueError(f"method={method!r}; use 'eigs' or 'power'")


def _power_iteration(transposed: sp.csr_matrix, tol: float, max_iter: int) -> np.ndarray:
    n = transposed.shape[0]
    current = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        updated = transposed @ current
        change = np.abs(updated - current).sum()
        current = updated / updated.sum()
        if change < tol:
            return current
    raise RuntimeError(
        f"power iteration did not reach tol={tol:g} within max_iter={max_iter:,} steps (last L1 change {change:.3g}); "
        "raise max_iter or use method='eigs'"
    )


def spectral_gap(chain: ContextChain) -> float:
    """1 − |λ₂| of the recurrent block: the rate at which the chain forgets its start."""
    values, _ = _leading_eigenpairs(chain.recurrent_block, 2)
    return float(1 - np.abs(values[1]))


def _leading_eigenpairs(matrix: sp.spmatrix, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` eigenvalues of largest modulus, descending, and their right eigenvectors (n, count)."""
    n = matrix.shape[0]
    if count < n - 1:
        values, vectors = eigs(matrix, k=count, which="LM", v0=np.full(n, 1.0 / n), tol=0)
    else:  # ARPACK needs count < n − 1; such matrices are tiny
        values, vectors = np.linalg.eig(matrix.toarray())
    order = np.argsort(-np.abs(values), kind="stable")[:count]
    return values[order], vectors[:, order]


def _dense_stationary_target(chain: ContextChain, stationary: np.ndarray | None, max_states: int) -> np.ndarray:
    """π over all S states (zero on transient ones), (S,); refuses chains too large for S² dense work."""
    if chain.n_states > max_states:
        raise ValueError(
            f"the chain has {chain.n_states:,} states, more than max_states={max_states:,} for "
            "worst-start distances (S² memory); use spectral_gap for large chains"
        )
    target = np.zeros(chain.n_states)
    target[chain.first_recurrent :] = stationary_distribution(chain) if stationary is None else stationary
    return target


def tv_distance_to_stationary(
    chain: ContextChain, n_steps, stationary: np.ndarray | None = None, max_states: int = 4096
) -> np.ndarray:
    """max over every start state i of TV(δ_i Qⁿ, π) for each n in ``n_steps`` → (len(n_steps),).

    Propagates all S start distributions at once (S² memory, S²·T work per step).
    """
    steps = np.asarray(n_steps, dtype=np.int64)
    if steps.ndim != 1 or (steps < 0).any():
        raise ValueError(f"n_steps must be a 1-D sequence of integers ≥ 0; got {n_steps!r}")
    target = _dense_stationary_target(chain, stationary, max_states)
    distances = np.empty(steps.size)
    current = np.eye(chain.n_states)
    last = int(steps.max(initial=0))
    for n in range(last + 1):
        distances[steps == n] = 0.5 * np.abs(current - target).sum(axis=1).max()
        if n < last:
            current = np.asarray(current @ chain.transition)
    return distances


def log_epsilon(chain: ContextChain) -> float:
    """log ε, ε = the smallest entry of Q^K on the recurrent class.

    (Q^K)_ij is the probability of the one K-step path that writes context j from context i,
    so ε is the least probable K-step path: a min-plus transfer-matrix pass, no Q^K needed.
    """
    start, K = chain.first_recurrent, chain.window
    log_q = chain.log_next_token[start:]
    following = chain.next_state[start:] - start
    least = np.zeros(log_q.shape[0])
    for _ in range(K):
        least = np.min(log_q + least[following], axis=1)
    return float(least.min())


def zekri_bound(log_eps: float, window: int, n_steps) -> np.ndarray:
    """(1 − 2ε)^{⌊n/K⌋ − 1} for each n ≥ K: Zekri et al.'s bound on |Qⁿ_ij − π_j|.

    It bounds the worst-start TV distance too: Q_R^K ≥ ε entrywise is a Doeblin condition
    with constant T^K·ε ≥ 2ε, and a transient start enters the recurrent class within K − 1 steps.
    """
    steps = np.asarray(n_steps, dtype=np.int64)
    if (steps < window).any():
        raise ValueError(f"n_steps must all be ≥ window K={window}; the bound holds for n ≥ K")
    return np.exp(xlog1py(steps // window - 1, -2 * np.exp(log_eps)))


def mixing_time(
    chain: ContextChain,
    threshold: float = 1e-3,
    max_steps: int = 10**12,
    stationary: np.ndarray | None = None,
    max_states: int = 4096,
) -> int | None:
    """The first n with max_i TV(δ_i Qⁿ, π) ≤ ``threshold``; None if it exceeds ``max_steps``.

    The worst-start distance never increases with n, so doubling then bisection over dense
    matrix powers Qⁿ (S² memory, about 2·log2(n) products) finds n without stepping through
    every n — chains at low temperature need far more steps than :func:`tv_distance_to_stationary`
    could take one at a time.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1); got {threshold!r}")
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer; got {max_steps!r}")
    target = _dense_stationary_target(chain, stationary, max_states)
    Q = chain.transition.toarray()

    def distance(n: int) -> float:
        return 0.5 * np.abs(np.linalg.matrix_power(Q, n) - target).sum(axis=1).max()

    high = 1
    while distance(high) > threshold:
        if high >= max_steps:
            return None
        high = min(2 * high, max_steps)
    low = high // 2  # distance(low) > threshold, or low = 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if distance(middle) <= threshold else (middle, high)
    return high

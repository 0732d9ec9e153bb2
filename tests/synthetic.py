"""Synthetic chains with known laws, shared by the tests."""

import numpy as np

from rarelib import storage


def ar1_chains(rng: np.random.Generator, rho: np.ndarray, n_chains: int, n_draws: int) -> np.ndarray:
    """Stationary AR(1) chains with unit variance, one coefficient per bias: (M, N, K)."""
    rho = np.asarray(rho, dtype=float)
    noise = rng.normal(size=(n_chains, n_draws, rho.size)) * np.sqrt(1.0 - rho**2)
    chains = np.empty_like(noise)
    chains[:, 0] = rng.normal(size=(n_chains, rho.size))
    for t in range(1, n_draws):
        chains[:, t] = rho * chains[:, t - 1] + noise[:, t]
    return chains


def direct_run(phi: np.ndarray, observable: str = "x", **variables) -> object:
    """A direct run: phi (N,) i.i.d. draws at λ = 0, one chain."""
    posterior = {"phi": phi.reshape(1, -1, 1), **{k: v.reshape(1, -1, 1) for k, v in variables.items()}}
    return storage.make_run(posterior, [0.0], attrs={"observable": observable, "sampler": "direct"})


def biased_run(
    phi: np.ndarray,
    lambdas,
    sampler: str = "parallel_tempering",
    observable: str = "x",
    accepted=None,
    sample_stats=None,
    **variables,
):
    """A biased run: phi (M, N, K) with the λ of each segment; sample_stats: name → (M, N, K) (and ``accepted``)."""
    stats_ = {**({} if accepted is None else {"accepted": accepted}), **(sample_stats or {})} or None
    return storage.make_run(
        {"phi": phi, **variables}, lambdas, stats_, attrs={"observable": observable, "sampler": sampler}
    )


def gaussian_chains(rng, lambdas, n_chains: int, n_draws: int, rho: float = 0.0) -> np.ndarray:
    """Stationary AR(1) chains (coefficient rho) of each tilted law N(−λ, 1): (M, N, K)."""
    lambdas = np.asarray(lambdas, dtype=float)
    return ar1_chains(rng, np.full(lambdas.size, rho), n_chains, n_draws) - lambdas


def gaussian_runs(rng, lambdas, n_chains=10, n_draws=100, n_direct=1000, rho=0.0):
    """[direct run of N(0, 1), biased run of the tilted laws N(−λ, 1)]."""
    return [
        direct_run(rng.normal(size=n_direct)),
        biased_run(gaussian_chains(rng, lambdas, n_chains, n_draws, rho), lambdas),
    ]

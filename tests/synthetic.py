"""Synthetic chains with known laws, shared by the tests."""

import numpy as np


def ar1_chains(rng: np.random.Generator, rho: np.ndarray, n_chains: int, n_draws: int) -> np.ndarray:
    """Stationary AR(1) chains with unit variance, one coefficient per bias: (M, N, K)."""
    rho = np.asarray(rho, dtype=float)
    noise = rng.normal(size=(n_chains, n_draws, rho.size)) * np.sqrt(1.0 - rho**2)
    chains = np.empty_like(noise)
    chains[:, 0] = rng.normal(size=(n_chains, rho.size))
    for t in range(1, n_draws):
        chains[:, t] = rho * chains[:, t - 1] + noise[:, t]
    return chains

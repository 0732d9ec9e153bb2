"""MBAR reweighting: from biased runs to estimates under the unbiased model, with error bars.

The pipeline, one small function per step:

1. :func:`load_chains` reads a run (the :mod:`rarelib.storage` layout) into arrays;
2. :func:`trim_burn_in` drops the first ``burn_in`` fraction of every bias segment
   (direct runs, i.i.d. by construction, keep every draw);
3. :func:`select_samples` applies the R-hat filter per bias (not to direct runs) and pools
   the kept samples into MBAR states — λ = 0 always, plus every kept bias, equal λ merged;
4. :func:`solve_mbar` solves MBAR once with reduced potentials u_kn = λ_k φ_n;
5. estimates in log space from the weights: :func:`log_partition`, :func:`expectation`,
   :func:`log_bin_probabilities`, :func:`log_tail_probabilities`;
6. :func:`analyze` adds the percentile bootstrap over chains, widened for the few chains it
   resamples (:func:`interval_expansion`), and returns an :class:`Analysis` that saves to and
   loads from netCDF.

Sign convention: p_λ(x) ∝ e^{−λ φ(x)} p_M(x), so log Z(λ) = log E_{p_M}[e^{−λ φ}] and
λ < 0 pushes towards high φ. Log Z is always relative to λ = 0.

MBAR solver: pymbar's "robust" protocol (adaptive Newton/self-consistent iteration, then
L-BFGS-B, 1000 iterations each) without its two forced self-consistent steps, started from
a good guess so that it converges in a few Newton steps: exponential averaging between
neighbouring states for the full fit (pymbar's own BAR initialisation crashes on states
without overlap), the full fit's free energies for bootstrap replicas. Poor overlap is
reported by the overlap check, not by pymbar (whose logger is silenced).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from rarelib import __version__, diagnostics, logspace, storage

logging.getLogger("pymbar").setLevel(logging.ERROR)
import pymbar  # noqa: E402  (imported after its logger is silenced)

__all__ = [
    "Analysis",
    "analyze",
    "bootstrap",
    "RunArrays",
    "DEFAULT_BINS",
    "DIRECT_SAMPLER",
    "expectation",
    "exponential_averaging_log_z",
    "first_half",
    "first_half_comparison",
    "fit_mbar",
    "interval_expansion",
    "linked_to_unbiased",
    "load_all",
    "load_chains",
    "log_bin_probabilities",
    "log_partition",
    "log_tail_probabilities",
    "MBAR_SOLVER",
    "MBARFit",
    "neighbour_overlap",
    "overlap_matrix",
    "overlap_messages",
    "resample_chains",
    "ReweightingWarning",
    "sampled_log_partition",
    "select_samples",
    "Selection",
    "Settings",
    "solve_mbar",
    "spanning_bins",
    "tail_shares",
    "tilted_log_weights",
    "trim_burn_in",
]

DIRECT_SAMPLER = "direct"
MBAR_SOLVER = (
    "pymbar.MBAR, u_kn = lambda_k * phi_n; solver: adaptive (min_sc_iter=0, maxiter=1000) then "
    "L-BFGS-B (maxiter=1000); full fit started from exponential averaging between neighbouring "
    "states, bootstrap replicas from the full fit"
)


DEFAULT_BINS = 40
"""Bins of an analysis that was given no bin edges: only its tails were wanted."""


class ReweightingWarning(UserWarning):
    """Something a reader of the estimates should know: dropped biases, unchecked biases, low overlap."""


@dataclass(frozen=True)
class Settings:
    """Knobs of an analysis: how the estimates are computed.

    The defaults are the paper's — 10% burn-in, an R-hat filter that drops biases at 1.1 or above,
    100 bootstrap replicas, 96% intervals — except two: the library filters with the
    rank-normalised split R-hat (``"rank"``, Vehtari et al. 2021), which also sees drift within a
    segment and heavy tails; the chapters that reproduce the paper select its classic Gelman–Rubin
    statistic with ``rhat_method="identity"`` and say so. And ``small_sample_correction`` widens the
    percentile intervals for the few chains the bootstrap resamples (:func:`interval_expansion`:
    ×1.31 for 8 chains, ×1.13 for 16), without which a chain bootstrap covers like a t interval with
    one degree of freedom fewer than chains (about 89% for a nominal 96% with 10 chains); ``False``
    gives the paper's plain percentile intervals. ``min_overlap``: the overlap between
    neighbouring states below which an analysis warns and states beyond the gap are dropped.

    Whether the estimates can be trusted is a separate question with its own, stricter criteria
    (rank R-hat < 1.01, ESS ≥ 400: :class:`rarelib.convergence.Criteria`), answered threshold by
    threshold by :func:`rarelib.convergence.assess`; :func:`rarelib.rounds.run_rounds` turns the
    filter off and lets that verdict decide.
    """

    burn_in: float = diagnostics.DEFAULT_BURN_IN
    rhat_threshold: float = 1.1
    rhat_method: str = "rank"
    n_bootstrap: int = 100
    level: float = diagnostics.DEFAULT_LEVEL
    min_overlap: float = 0.03
    small_sample_correction: bool = True

    def __post_init__(self):
        diagnostics.check_burn_in(self.burn_in)
        diagnostics.check_level(self.level)
        if not self.rhat_threshold > 1.0:
            raise ValueError(f"rhat_threshold={self.rhat_threshold!r}; use a number above 1, e.g. 1.1")
        if self.rhat_method not in diagnostics.RHAT_METHODS:
            raise ValueError(f"rhat_method={self.rhat_method!r}; use one of {sorted(diagnostics.RHAT_METHODS)}")
        if not (isinstance(self.n_bootstrap, (int, np.integer)) and self.n_bootstrap >= 2):
            raise ValueError(f"n_bootstrap={self.n_bootstrap!r}; use an integer ≥ 2 (the paper uses 100)")
        if not 0.0 <= self.min_overlap < 1.0:
            raise ValueError(f"min_overlap={self.min_overlap!r}; use a number in [0, 1), e.g. 0.03")
        if not isinstance(self.small_sample_correction, (bool, np.bool_)):
            raise ValueError(f"small_sample_correction={self.small_sample_correction!r}; use True or False")


# ----------------------------------------------------------------------------- runs as arrays


@dataclass(frozen=True)
class RunArrays:
    """One run as arrays.

    observables: name → (M, N, K) float64, always with ``"phi"`` (the biased observable);
    biases: (K,) λ per segment; accepted: (M, N, K) bool or None; direct: i.i.d. draws at λ = 0.
    """

    label: str
    observable: str
    observables: Mapping[str, np.ndarray]
    biases: np.ndarray
    direct: bool
    accepted: np.ndarray | None

    @property
    def phi(self) -> np.ndarray:
        """The biased observable, (M, N, K)."""
        return self.observables["phi"]


def _transform(chains: RunArrays, take: Callable[[np.ndarray], np.ndarray]) -> RunArrays:
    """The same run with ``take`` applied to every (M, N, K) array."""
    return dataclasses.replace(
        chains,
        observables={name: take(values) for name, values in chains.observables.items()},
        accepted=None if chains.accepted is None else take(chains.accepted),
    )


def load_chains(run, index: int = 0) -> RunArrays:
    """Arrays of one run: an ``InferenceData`` in the storage layout, or the path of one."""
    idata = storage.load(run) if isinstance(run, (str, os.PathLike)) else run
    if not hasattr(idata, "groups"):
        hint = (
            " (direct samples: convert them with direct.to_inference_data(samples, observable))"
            if type(idata).__name__ == "DirectSamples"
            else ""
        )
        raise TypeError(
            f"runs[{index}] is a {type(idata).__name__}; pass InferenceData in the storage layout or the "
            f"path of a saved run{hint}"
        )
    storage.validate(idata, source=f"run {index}")
    posterior = idata.posterior
    sampler = str(posterior.attrs["sampler"])
    label = f"run {index} ({sampler})"
    biases = np.asarray(posterior["bias"].values, dtype=np.float64)
    observables = {
        str(name): np.asarray(variable.values, dtype=np.float64)
        for name, variable in posterior.data_vars.items()
        if variable.dims == storage.DIMS and (np.issubdtype(variable.dtype, np.number) or variable.dtype == bool)
    }
    phi = observables["phi"]
    if phi.shape[0] == 0 or phi.shape[1] == 0:
        raise ValueError(f"{label}: no samples (phi has shape {phi.shape})")
    incomplete = ~np.all(np.isfinite(phi), axis=(0, 1))
    if np.any(incomplete):
        raise ValueError(
            f"{label}: biases λ={biases[incomplete].tolist()} have missing samples (phi is NaN or infinite)"
        )
    direct = sampler == DIRECT_SAMPLER
    if direct and not np.array_equal(biases, [0.0]):
        raise ValueError(f"{label}: a direct run must have bias=[0.0]; got {biases.tolist()}")
    accepted = None
    if "sample_stats" in idata.groups() and "accepted" in idata.sample_stats:
        accepted = np.asarray(idata.sample_stats["accepted"].values, dtype=bool)
        if accepted.shape != phi.shape:
            raise ValueError(f"{label}: sample_stats.accepted has shape {accepted.shape}; phi has {phi.shape}")
    return RunArrays(label, str(posterior.attrs["observable"]), observables, biases, direct, accepted)


def load_all(runs) -> list[RunArrays]:
    """:func:`load_chains` of one run or a sequence of runs; checks they record the same observable."""
    runs = [runs] if isinstance(runs, (str, os.PathLike)) or hasattr(runs, "groups") else list(runs)
    if not runs:
        raise ValueError("runs is empty; pass at least one biased run")
    chains = [load_chains(run, index) for index, run in enumerate(runs)]
    observables = {c.observable for c in chains}
    if len(observables) > 1:
        raise ValueError(f"runs record different observables {sorted(observables)}; reweight one observable at a time")
    return chains


def trim_burn_in(chains: RunArrays, fraction: float) -> RunArrays:
    """Drop the first ``fraction`` of every bias segment; direct runs are returned unchanged."""
    if chains.direct:
        return chains
    return _transform(chains, lambda values: diagnostics.drop_burn_in(values, fraction))


def first_half(chains: RunArrays) -> RunArrays:
    """Only the first half of the draws of every segment (direct runs too), for the stability check."""
    half = chains.phi.shape[1] // 2
    if half == 0:
        raise ValueError(f"{chains.label}: one draw per segment cannot be halved")
    return _transform(chains, lambda values: values[:, :half])


def resample_chains(chains: RunArrays, rng: np.random.Generator) -> RunArrays:
    """One bootstrap replica: chains drawn with replacement (the same chains for every bias);
    direct runs resample their draws i.i.d. instead."""
    n_chains, n_draws, n_biases = chains.phi.shape
    if chains.direct:
        index = rng.integers(0, n_chains * n_draws, size=n_chains * n_draws)
        return _transform(
            chains, lambda values: values.reshape(n_chains * n_draws, n_biases)[index].reshape(values.shape)
        )
    index = rng.integers(0, n_chains, size=n_chains)
    return _transform(chains, lambda values: values[index])


# ----------------------------------------------------------------------------- R-hat filter and pooling


@dataclass(frozen=True)
class Selection:
    """Samples kept for MBAR after burn-in and the R-hat filter.

    states: (K,) sorted distinct λ, always including 0; samples_per_state: (K,) int;
    samples: name → (N,), every kept sample grouped by state in the order of ``states``;
    segment_run, segment_bias, segment_rhat, segment_kept: (S,), one entry per (run, bias);
    messages: what was dropped or left unchecked, in words.
    """

    states: np.ndarray
    samples_per_state: np.ndarray
    samples: Mapping[str, np.ndarray]
    segment_run: np.ndarray
    segment_bias: np.ndarray
    segment_rhat: np.ndarray
    segment_kept: np.ndarray
    messages: tuple[str, ...]


def _filter_messages(chains: RunArrays, rhat: np.ndarray, kept: np.ndarray, settings: Settings) -> list[str]:
    method = diagnostics.RHAT_METHODS[settings.rhat_method]
    messages = [
        f"{chains.label}: dropped λ={lam:g} ({method} {value:.3f} ≥ {settings.rhat_threshold})"
        for lam, value, keep in zip(chains.biases, rhat, kept)
        if not keep and value >= settings.rhat_threshold
    ]
    if not chains.direct:
        messages += [
            f"{chains.label}: kept λ={lam:g} unchecked (R-hat undefined: fewer than 2 chains "
            f"or {diagnostics.MIN_DRAWS} draws, or constant φ)"
            for lam in chains.biases[np.isnan(rhat) & kept]
        ]
    return messages


def select_samples(chains: Sequence[RunArrays], settings: Settings, excluded: Sequence[float] = ()) -> Selection:
    """R-hat filter per bias (direct runs exempt) and pooling of the kept samples into MBAR states.

    chains: runs after :func:`trim_burn_in`. A bias whose R-hat is undefined is kept, with
    a message; biases in ``excluded`` (those beyond an overlap gap, see :func:`linked_to_unbiased`)
    are dropped whatever their R-hat. Raises ValueError if no sample survives.
    """
    names = sorted(set.intersection(*(set(c.observables) for c in chains)))
    segments, runs, biases, rhats, kepts, messages = [], [], [], [], [], []
    for index, run in enumerate(chains):
        rhat = (
            np.full(run.biases.size, np.nan) if run.direct else diagnostics.rhat_per_bias(run.phi, settings.rhat_method)
        )
        kept = ~(rhat >= settings.rhat_threshold) & (run.direct | ~np.isin(run.biases, excluded))
        messages += _filter_messages(run, rhat, kept, settings)
        runs.append(np.full(run.biases.size, index))
        biases.append(run.biases)
        rhats.append(rhat)
        kepts.append(kept)
        segments += [
            (lam, {name: run.observables[name][:, :, k].ravel() for name in names})
            for k, lam in enumerate(run.biases)
            if kept[k]
        ]
    if not segments:
        raise ValueError(f"no samples survive the R-hat filter: {'; '.join(messages)}")
    states = np.unique(np.concatenate([[0.0], [lam for lam, _ in segments]]))
    state_of_segment = np.searchsorted(states, [lam for lam, _ in segments])
    order = np.argsort(state_of_segment, kind="stable")
    sizes = np.array([values["phi"].size for _, values in segments])
    return Selection(
        states=states,
        samples_per_state=np.bincount(state_of_segment, weights=sizes, minlength=states.size).astype(np.int64),
        samples={name: np.concatenate([segments[i][1][name] for i in order]) for name in names},
        segment_run=np.concatenate(runs),
        segment_bias=np.concatenate(biases),
        segment_rhat=np.concatenate(rhats),
        segment_kept=np.concatenate(kepts),
        messages=tuple(messages),
    )


# ----------------------------------------------------------------------------- MBAR


@dataclass(frozen=True)
class MBARFit:
    """One MBAR solve.

    selection: the pooled samples; log_weights: (N,) log weight of every sample under the
    unbiased model, normalised (logsumexp = 0); mbar: the ``pymbar.MBAR`` object.
    """

    selection: Selection
    log_weights: np.ndarray
    mbar: pymbar.MBAR

    @property
    def states(self) -> np.ndarray:
        """(K,) λ of the MBAR states, sorted."""
        return self.selection.states

    @property
    def samples(self) -> Mapping[str, np.ndarray]:
        """name → (N,) pooled samples (``"phi"`` and every observable all runs recorded)."""
        return self.selection.samples


def _solver_protocol() -> tuple[dict, ...]:
    """A fresh copy each call: pymbar writes into the dicts it is given."""
    return (
        {"method": "adaptive", "options": {"min_sc_iter": 0, "maxiter": 1000}},
        {"method": "L-BFGS-B", "options": {"maxiter": 1000}},
    )


def exponential_averaging_log_z(selection: Selection) -> np.ndarray:
    """A cheap starting guess of log Z(λ_k)/Z(0), (K,), by exponential averaging along the ladder.

    Each step between neighbouring states is log Z(λ_{k+1})/Z(λ_k) = log E_{λ_k}[e^{−(λ_{k+1}−λ_k) φ}],
    averaged over the samples of state k, or (if it has none) minus the reverse step averaged
    over those of state k+1. Log space throughout, so it never fails; MBAR then refines it.
    """
    states, counts = selection.states, selection.samples_per_state
    blocks = np.split(selection.samples["phi"], np.cumsum(counts)[:-1])

    def log_mean_exp(values: np.ndarray) -> float:
        return logsumexp(values) - np.log(values.size)

    steps = [
        log_mean_exp(-(states[k + 1] - states[k]) * blocks[k])
        if counts[k] > 0
        else -log_mean_exp(-(states[k] - states[k + 1]) * blocks[k + 1])
        for k in range(states.size - 1)
    ]
    log_z = np.concatenate([[0.0], np.cumsum(steps)])
    return log_z - log_z[np.searchsorted(states, 0.0)]


def solve_mbar(selection: Selection, initial_log_z: np.ndarray | None = None) -> MBARFit:
    """One MBAR solve over the pooled samples, u_kn = λ_k φ_n.

    initial_log_z: (K,) a starting guess of log Z(λ_k)/Z(0) (the bootstrap's warm start);
    None: :func:`exponential_averaging_log_z`.
    """
    states, phi = selection.states, selection.samples["phi"]
    zero = int(np.searchsorted(states, 0.0))
    if initial_log_z is None:
        initial_log_z = exponential_averaging_log_z(selection)
    mbar = pymbar.MBAR(
        np.outer(states, phi),
        selection.samples_per_state,
        solver_protocol=_solver_protocol(),
        initial_f_k=-np.asarray(initial_log_z, dtype=np.float64),
    )
    log_weights = np.asarray(mbar.Log_W_nk[:, zero])
    return MBARFit(selection, log_weights - logsumexp(log_weights), mbar)


def fit_mbar(runs, settings: Settings = Settings(), warn: bool = True) -> MBARFit:
    """Burn-in, R-hat filter and one MBAR solve over one run or a sequence of runs, on the states
    linked to λ = 0 (:func:`linked_to_unbiased`).

    With ``warn``, warns (:class:`ReweightingWarning`) about dropped or unchecked biases, low overlap
    and states beyond a gap; ``fit.selection.messages`` lists what the R-hat filter dropped either way.
    """
    fit, _, _, messages = _fit_linked(load_all(runs), settings)
    if warn:
        _warn(messages)
    return fit


def _select(chains: Sequence[RunArrays], settings: Settings, excluded: Sequence[float] = ()) -> Selection:
    return select_samples([trim_burn_in(c, settings.burn_in) for c in chains], settings, excluded)


def _fit_chains(chains: Sequence[RunArrays], settings: Settings, excluded: Sequence[float] = ()) -> MBARFit:
    """The fit of the full data, which must keep at least one biased state (unless the ``excluded`` biases,
    beyond an overlap gap, were the only ones left)."""
    selection = _select(chains, settings, excluded)
    if selection.states.size < 2 and not len(excluded):
        raise ValueError(
            "nothing to reweight: no biased samples survive "
            + ("; ".join(selection.messages) if selection.messages else "(no biased run was given)")
            + ". Run longer or more chains, or raise rhat_threshold; for direct samples alone use "
            "diagnostics.direct_histogram"
        )
    return solve_mbar(selection)


def _warn(messages: Sequence[str]) -> None:
    for message in messages:
        warnings.warn(message, ReweightingWarning, stacklevel=3)


def sampled_log_partition(fit: MBARFit) -> tuple[np.ndarray, np.ndarray]:
    """log Z(λ_k)/Z(0) at the MBAR states and pymbar's analytic standard errors, each (K,)."""
    zero = int(np.searchsorted(fit.states, 0.0))
    result = fit.mbar.compute_free_energy_differences()
    return -np.asarray(result["Delta_f"][zero]), np.asarray(result["dDelta_f"][zero])


def overlap_matrix(fit: MBARFit) -> np.ndarray:
    """pymbar's overlap matrix O (K, K): O[i, j] is the chance that a sample of state i is seen in state j.

    A single state (all others beyond an overlap gap) overlaps only itself: [[1]] (pymbar needs two).
    """
    if fit.states.size == 1:
        return np.ones((1, 1))
    return np.asarray(fit.mbar.compute_overlap()["matrix"])


def neighbour_overlap(samples_per_state: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    """Overlap of each pair of neighbouring states (adjacent λ): (K,) and (K, K) → (K−1,).

    The smaller of O[i, i+1] and O[i+1, i]; a direction into a state without samples
    (the λ = 0 state when no direct run is given) is zero by construction and is ignored.
    """
    pairs = np.arange(overlap.shape[0] - 1)
    forward = np.where(samples_per_state[1:] > 0, overlap[pairs, pairs + 1], np.inf)
    backward = np.where(samples_per_state[:-1] > 0, overlap[pairs + 1, pairs], np.inf)
    return np.minimum(forward, backward)


def linked_to_unbiased(fit: MBARFit, overlap: np.ndarray, min_overlap: float) -> np.ndarray:
    """(K,) bool: states joined to λ = 0 by a run of neighbouring pairs that each overlap ≥ ``min_overlap``.

    MBAR links a state to the unbiased one only through the states between them; past a gap
    its normaliser, and every estimate that rests on its samples, is not determined by the data.
    """
    linked_pairs = neighbour_overlap(fit.selection.samples_per_state, overlap) >= min_overlap
    zero = int(np.searchsorted(fit.states, 0.0))
    low, high = zero, zero
    while low > 0 and linked_pairs[low - 1]:
        low -= 1
    while high < linked_pairs.size and linked_pairs[high]:
        high += 1
    linked = np.zeros(fit.states.size, dtype=bool)
    linked[low : high + 1] = True
    return linked


def _fit_linked(chains: Sequence[RunArrays], settings: Settings) -> tuple[MBARFit, np.ndarray, tuple, tuple[str, ...]]:
    """MBAR on the states linked to λ = 0: states beyond an overlap gap are dropped and the solve repeated.

    Returns the fit, its overlap matrix (K, K), the excluded λ and the messages (filter, gaps, exclusions).
    """
    excluded: tuple[float, ...] = ()
    gap_messages: tuple[str, ...] = ()
    while True:
        fit = _fit_chains(chains, settings, excluded)
        overlap = overlap_matrix(fit)
        gap_messages = gap_messages or overlap_messages(fit, overlap, settings.min_overlap)
        unlinked = fit.states[~linked_to_unbiased(fit, overlap, settings.min_overlap)]
        if unlinked.size == 0:
            break
        excluded += tuple(float(lam) for lam in unlinked)
    exclusion = (
        (
            f"dropped λ={', '.join(f'{lam:g}' for lam in excluded)}: beyond an overlap gap, not linked to "
            f"the unbiased state; estimates past the data of the remaining states are unresolved",
        )
        if excluded
        else ()
    )
    return fit, overlap, excluded, fit.selection.messages + gap_messages + exclusion


def overlap_messages(fit: MBARFit, overlap: np.ndarray, min_overlap: float) -> tuple[str, ...]:
    """One message per neighbouring pair of states whose overlap is below ``min_overlap``."""
    pairs = neighbour_overlap(fit.selection.samples_per_state, overlap)
    return tuple(
        f"overlap {value:.3g} < {min_overlap} between neighbouring states λ={fit.states[i]:g} and "
        f"λ={fit.states[i + 1]:g}; add biases between them"
        for i, value in enumerate(pairs)
        if value < min_overlap
    )


# ----------------------------------------------------------------------------- estimates from the weights


def _as_grid(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim > 1 or not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be a finite number or 1-D array of them; got shape {values.shape}")
    return values


def tilted_log_weights(fit: MBARFit, lam: float) -> np.ndarray:
    """Normalised log weights (N,) of the samples under the tilted law p_λ ∝ e^{−λφ} p_M."""
    log_weights = fit.log_weights - lam * fit.samples["phi"]
    return log_weights - logsumexp(log_weights)


def log_partition(fit: MBARFit, lambdas) -> np.ndarray:
    """log Z(λ)/Z(0) = log Σ_n w_n e^{−λ φ_n} at any λ: lambdas (L,) or scalar → same shape."""
    lambdas = _as_grid(lambdas, "lambdas")
    phi = fit.samples["phi"]
    return np.reshape([logsumexp(fit.log_weights - lam * phi) for lam in lambdas.ravel()], lambdas.shape)


def expectation(fit: MBARFit, quantity: str | Callable = "phi", lambdas=0.0) -> np.ndarray:
    """⟨f⟩ under p_λ for each λ (default: the unbiased model): lambdas (L,) or scalar → same shape.

    quantity: the name of a recorded observable (``"phi"``, ``"logprob"``, ``"ari"``, ...) or a
    function of the samples mapping (name → (N,)) returning (N,). ``expectation(fit, "phi", λ)``
    is the tilted mean ⟨φ⟩_λ.
    """
    lambdas = _as_grid(lambdas, "lambdas")
    if callable(quantity):
        values = np.asarray(quantity(fit.samples), dtype=np.float64)
    elif quantity in fit.samples:
        values = fit.samples[quantity]
    else:
        raise ValueError(
            f"quantity={quantity!r} was not recorded by every run; use one of {sorted(fit.samples)} or a function"
        )
    if values.shape != fit.log_weights.shape:
        raise ValueError(f"quantity gives shape {values.shape}; expected one value per sample, {fit.log_weights.shape}")
    means = [np.exp(tilted_log_weights(fit, lam)) @ values for lam in lambdas.ravel()]
    return np.reshape(means, lambdas.shape)


def log_bin_probabilities(fit: MBARFit, bins) -> np.ndarray:
    """log P(φ in bin b) under the unbiased model: bins (J+1,) edges → (J,); −inf for an empty bin.

    numpy's histogram convention: bins are half-open [e_b, e_{b+1}) except the last, closed.
    """
    edges = diagnostics.check_bin_edges(bins)
    phi = fit.samples["phi"]
    inside = (phi >= edges[0]) & (phi <= edges[-1])
    bin_index = np.minimum(np.searchsorted(edges, phi[inside], side="right") - 1, edges.size - 2)
    return logspace.grouped_logsumexp(fit.log_weights[inside], bin_index, edges.size - 1)


def log_tail_probabilities(fit: MBARFit, thresholds, side: str = "upper") -> np.ndarray:
    """log P(φ ≥ a) (side="upper") or log P(φ ≤ a) (side="lower"): thresholds (A,) → (A,).

    Cumulative log-sum-exp of the sorted log weights, so tails far below 1e-300 stay finite.
    """
    thresholds = _as_grid(thresholds, "thresholds")
    return logspace.cumulative_log_tail(fit.samples["phi"], fit.log_weights, thresholds, side)


def tail_shares(fit: MBARFit, thresholds, side: str = "upper") -> np.ndarray:
    """(K, A): the share of the estimate of P(φ ≥ a) (or ≤ a) carried by the samples of each MBAR state.

    Which rungs a tail estimate rests on: a threshold in the bulk rests on the unbiased samples,
    a deep one on the samples of the strongest biases. Columns sum to 1 (NaN where nothing is past a).
    """
    thresholds = _as_grid(thresholds, "thresholds")
    phi, log_weights = fit.samples["phi"], fit.log_weights
    state = np.repeat(np.arange(fit.states.size), fit.selection.samples_per_state)
    per_state = np.stack(
        [
            logspace.cumulative_log_tail(phi[state == k], log_weights[state == k], thresholds, side)
            for k in range(fit.states.size)
        ]
    )
    total = log_tail_probabilities(fit, thresholds, side)
    with np.errstate(invalid="ignore"):
        return np.exp(per_state - total)


# ----------------------------------------------------------------------------- bootstrap and the result


def bootstrap(
    chains: Sequence[RunArrays],
    statistic: Callable[[MBARFit], Mapping[str, np.ndarray]],
    settings: Settings,
    rng: np.random.Generator,
    reference: MBARFit,
    excluded: Sequence[float] = (),
) -> dict[str, np.ndarray]:
    """Percentile-bootstrap replicas of ``statistic``: name → (R, ...) with R = settings.n_bootstrap.

    Each replica resamples the chains of every run with replacement (direct runs: draws),
    then redoes burn-in, the R-hat filter and MBAR (warm-started from ``reference``), without the
    ``excluded`` biases. A replica whose filter drops every bias is reweighted from its direct samples alone.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); got {type(rng).__name__}"
        )
    replicas = []
    for replica in range(settings.n_bootstrap):
        try:
            selection = _select([resample_chains(c, rng) for c in chains], settings, excluded)
            replicas.append(statistic(solve_mbar(selection, log_partition(reference, selection.states))))
        except ValueError as err:
            raise ValueError(f"bootstrap replica {replica}: {err}") from None
    return {name: np.stack([r[name] for r in replicas]) for name in replicas[0]}


_LOG_ESTIMATES = {
    "partition_function": "state",
    "bin_probability": "bin",
    "upper_tail": "threshold",
    "lower_tail": "threshold",
}
_SEGMENT_FIELDS = [f.name for f in dataclasses.fields(diagnostics.BiasDiagnostics)]


@dataclass(frozen=True)
class Analysis:
    """Estimates, 96% bootstrap intervals and diagnostics of one MBAR analysis.

    states: (K,) λ of the MBAR states; samples_per_state: (K,);
    partition_function: Z(λ_k)/Z(0) (K,), with log_z_std (K,) pymbar's analytic standard error of its log;
    overlap: (K, K); bin_edges: (J+1,); bin_probability: P(φ in bin) (J,);
    thresholds: (A,); upper_tail: P(φ ≥ a) (A,); lower_tail: P(φ ≤ a) (A,);
    upper_tail_share, lower_tail_share: (K, A) share of each tail estimate carried by each state's
    samples (:func:`tail_shares`);
    segments: diagnostics of every (run, bias) segment after burn-in (S,), with
    segment_run (S,), segment_direct (S,) (i.i.d. direct samples) and segment_kept (S,)
    (False: dropped by the R-hat filter or beyond an overlap gap);
    messages: warnings raised during the analysis, in words.
    """

    observable: str
    settings: Settings
    states: np.ndarray
    samples_per_state: np.ndarray
    partition_function: logspace.LogEstimate
    log_z_std: np.ndarray
    overlap: np.ndarray
    bin_edges: np.ndarray
    bin_probability: logspace.LogEstimate
    thresholds: np.ndarray
    upper_tail: logspace.LogEstimate
    lower_tail: logspace.LogEstimate
    upper_tail_share: np.ndarray
    lower_tail_share: np.ndarray
    segments: diagnostics.BiasDiagnostics
    segment_run: np.ndarray
    segment_direct: np.ndarray
    segment_kept: np.ndarray
    messages: tuple[str, ...]

    @property
    def density(self) -> np.ndarray:
        """Probability per unit φ in each bin, (J,)."""
        return self.bin_probability.value / np.diff(self.bin_edges)

    @property
    def density_interval(self) -> np.ndarray:
        """(2, J) bootstrap bounds on the density."""
        return self.bin_probability.interval / np.diff(self.bin_edges)

    @property
    def dropped(self) -> list[tuple[int, float, float]]:
        """(run, λ, R-hat) of every segment the R-hat filter dropped."""
        rhat = self.segments.rhat(self.settings.rhat_method)
        return [
            (int(run), float(lam), float(value))
            for run, lam, value, kept in zip(self.segment_run, self.segments.bias, rhat, self.segment_kept)
            if not kept
        ]

    def segment_table(self):
        """The per-segment diagnostics as a pandas DataFrame (S rows), sorted by λ."""
        s = self.segments
        columns = {
            "λ": s.bias,
            "draws": s.n_chains * s.n_draws,
            "R-hat (rank)": s.rhat_rank,
            "R-hat (classic)": s.rhat_identity,
            "ESS bulk": s.ess_bulk,
            "ESS tail": s.ess_tail,
            "acceptance": s.acceptance,
            "kept": self.segment_kept,
        }
        return (
            xr.Dataset({name: ("segment", values) for name, values in columns.items()}).to_dataframe().sort_values("λ")
        )

    def to_dataset(self) -> xr.Dataset:
        """The analysis as an ``xarray.Dataset`` (numbers and strings only)."""
        variables = {
            "samples_per_state": ("state", self.samples_per_state),
            "log_z_std": ("state", self.log_z_std),
            "overlap": (("state", "other_state"), self.overlap),
            "bin_edges": ("edge", self.bin_edges),
            "upper_tail_share": (("state", "threshold"), self.upper_tail_share),
            "lower_tail_share": (("state", "threshold"), self.lower_tail_share),
            "segment_run": ("segment", self.segment_run),
            "segment_direct": ("segment", self.segment_direct),
            "segment_kept": ("segment", self.segment_kept),
        }
        for name, dim in _LOG_ESTIMATES.items():
            estimate = getattr(self, name)
            variables[f"log_{name}"] = (dim, estimate.log)
            variables[f"log_{name}_interval"] = (("bound", dim), estimate.log_interval)
        for name in _SEGMENT_FIELDS:
            variables[f"segment_{name}"] = ("segment", getattr(self.segments, name))
        attrs = {
            "observable": self.observable,
            "settings": json.dumps(dataclasses.asdict(self.settings)),
            "messages": json.dumps(list(self.messages)),
            "mbar_solver": MBAR_SOLVER,
            "rarelib_version": __version__,
        }
        coords = {"state": self.states, "threshold": self.thresholds, "bound": ["lower", "upper"]}
        return xr.Dataset(variables, coords=coords, attrs=attrs)

    @classmethod
    def from_dataset(cls, dataset: xr.Dataset, source: str = "dataset") -> Analysis:
        """Inverse of :meth:`to_dataset`; ValueError naming what is missing."""
        required = ["samples_per_state", "log_z_std", "overlap", "bin_edges", "upper_tail_share", "lower_tail_share"]
        required += ["segment_run", "segment_direct", "segment_kept"]
        required += [f"log_{name}{suffix}" for name in _LOG_ESTIMATES for suffix in ("", "_interval")]
        required += [f"segment_{name}" for name in _SEGMENT_FIELDS]
        missing = [name for name in required if name not in dataset] + [
            key for key in ("observable", "settings", "messages") if key not in dataset.attrs
        ]
        if missing:
            raise ValueError(f"{source} is not an analysis file: it lacks {missing}")
        try:
            # files written before the small-sample correction existed hold plain percentile intervals
            settings = Settings(**{"small_sample_correction": False, **json.loads(dataset.attrs["settings"])})
            messages = tuple(json.loads(dataset.attrs["messages"]))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: unreadable settings or messages ({err})") from None

        def values(name: str) -> np.ndarray:
            return np.asarray(dataset[name].values)

        estimates = {
            name: logspace.LogEstimate(values(f"log_{name}"), values(f"log_{name}_interval")) for name in _LOG_ESTIMATES
        }
        return cls(
            observable=str(dataset.attrs["observable"]),
            settings=settings,
            states=values("state"),
            samples_per_state=values("samples_per_state"),
            log_z_std=values("log_z_std"),
            overlap=values("overlap"),
            bin_edges=values("bin_edges"),
            thresholds=values("threshold"),
            segments=diagnostics.BiasDiagnostics(**{name: values(f"segment_{name}") for name in _SEGMENT_FIELDS}),
            upper_tail_share=values("upper_tail_share"),
            lower_tail_share=values("lower_tail_share"),
            segment_run=values("segment_run"),
            segment_direct=values("segment_direct").astype(bool),
            segment_kept=values("segment_kept").astype(bool),
            messages=messages,
            **estimates,
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the analysis to netCDF (atomically; no pickle)."""
        return storage.save(self.to_dataset(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Analysis:
        """Read an analysis written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no analysis file at {path}; run reweighting.analyze(...).save(path) first")
        try:
            dataset = xr.load_dataset(path, engine="netcdf4")
        except (OSError, RuntimeError, ValueError) as err:
            raise ValueError(
                f"{path} is not a readable netCDF analysis file ({err}); delete it and re-run the analysis"
            ) from None
        return cls.from_dataset(dataset, source=str(path))


def interval_expansion(chains: Sequence[RunArrays], settings: Settings) -> float:
    """The factor by which an analysis widens its percentile intervals: Hesterberg's small-sample expansion
    (:func:`rarelib.diagnostics.expansion_factor`) for the independent units the bootstrap resamples in the
    biased runs, their chains (direct runs resample thousands of draws, which need none); 1 when
    ``settings.small_sample_correction`` is off or nothing is biased."""
    units = sum(c.phi.shape[0] for c in chains if not c.direct)
    return diagnostics.expansion_factor(units, settings.level) if settings.small_sample_correction else 1.0


def _analyze_chains(
    chains: Sequence[RunArrays], bins, thresholds, settings: Settings, rng: np.random.Generator, warn: bool
) -> Analysis:
    """:func:`analyze` of runs already loaded."""
    if bins is None:
        bins = spanning_bins(DEFAULT_BINS, *[c.phi for c in chains])
    bin_edges = diagnostics.check_bin_edges(bins)
    thresholds = bin_edges if thresholds is None else _as_grid(thresholds, "thresholds").ravel()
    fit, overlap, excluded, messages = _fit_linked(chains, settings)
    phi = fit.samples["phi"]
    if not np.any((phi >= bin_edges[0]) & (phi <= bin_edges[-1])):
        raise ValueError(
            f"bins span [{bin_edges[0]:g}, {bin_edges[-1]:g}] but the {phi.size} kept samples lie in "
            f"[{phi.min():g}, {phi.max():g}]; choose bins that cover the data"
        )
    if warn:
        _warn(messages)

    def statistic(replica: MBARFit) -> dict[str, np.ndarray]:
        """The logs of every bootstrapped quantity, keyed like the fields of :class:`Analysis`."""
        return {
            "partition_function": log_partition(replica, fit.states),
            "bin_probability": log_bin_probabilities(replica, bin_edges),
            "upper_tail": log_tail_probabilities(replica, thresholds, "upper"),
            "lower_tail": log_tail_probabilities(replica, thresholds, "lower"),
        }

    replicas = bootstrap(chains, statistic, settings, rng, reference=fit, excluded=excluded)
    factor = interval_expansion(chains, settings)
    estimates = {
        name: logspace.LogEstimate(
            log,
            diagnostics.expand_log_interval(
                log,
                diagnostics.log_percentile_interval(replicas[name], settings.level),
                factor,
                log_ceiling=math.inf if name == "partition_function" else 0.0,  # probabilities stay ≤ 1
            ),
        )
        for name, log in statistic(fit).items()
    }
    trimmed = [trim_burn_in(c, settings.burn_in) for c in chains]
    return Analysis(
        observable=chains[0].observable,
        settings=settings,
        states=fit.states,
        samples_per_state=fit.selection.samples_per_state,
        log_z_std=sampled_log_partition(fit)[1],
        overlap=overlap,
        bin_edges=bin_edges,
        thresholds=thresholds,
        segments=diagnostics.BiasDiagnostics.concatenate(
            [diagnostics.diagnose(c.phi, c.biases, c.accepted) for c in trimmed]
        ),
        upper_tail_share=tail_shares(fit, thresholds, "upper"),
        lower_tail_share=tail_shares(fit, thresholds, "lower"),
        segment_run=fit.selection.segment_run,
        segment_direct=np.concatenate([np.full(c.biases.size, c.direct) for c in chains]),
        segment_kept=fit.selection.segment_kept,
        messages=messages,
        **estimates,
    )


def analyze(
    runs, bins=None, *, rng: np.random.Generator, thresholds=None, settings: Settings = Settings(), warn: bool = True
) -> Analysis:
    """The full analysis of one run or a sequence of runs (InferenceData or paths).

    bins: (J+1,) edges of the density histogram (default: :data:`DEFAULT_BINS` equal bins spanning
    every sample, :func:`spanning_bins`);
    thresholds: (A,) points a of the tail curves P(φ ≥ a), P(φ ≤ a) (default: the bin edges);
    rng: drives the bootstrap. Dropped or unchecked biases and low overlap are listed in
    ``Analysis.messages`` and, with ``warn``, raised as :class:`ReweightingWarning`.
    """
    return _analyze_chains(load_all(runs), bins, thresholds, settings, rng, warn)


def first_half_comparison(
    runs, bins=None, *, rng: np.random.Generator, thresholds=None, settings: Settings = Settings(), warn: bool = True
) -> tuple[Analysis, Analysis]:
    """Stability check: (analysis of the full chains, analysis of the first half of every segment)."""
    chains = load_all(runs)
    full = _analyze_chains(chains, bins, thresholds, settings, rng, warn)
    return full, _analyze_chains([first_half(c) for c in chains], bins, thresholds, settings, rng, warn)


def spanning_bins(n_bins: int, *samples) -> np.ndarray:
    """(n_bins + 1,) equal-width bin edges from the smallest to the largest value of φ in ``samples``.

    samples: biased runs (InferenceData: their ``phi``) or arrays of φ, e.g. direct samples.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins={n_bins!r}; use a positive integer")
    values = [np.ravel(s.posterior["phi"].values if hasattr(s, "posterior") else s) for s in samples]
    values = np.concatenate(values) if values else np.empty(0)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("spanning_bins needs at least one finite sample of φ")
    return np.linspace(values.min(), values.max(), n_bins + 1)

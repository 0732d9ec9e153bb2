"""Transition path sampling, batched: forward shooting (the paper's Algorithm 2), window and guided moves.

Drivers: annealing and parallel tempering.

Target: the tilted law p_λ(x) ∝ e^{−λφ(x)} p_M(x) over completions x of length L.

Move (one step of every chain at once): draw a cut τ, keep the first τ completion tokens,
regrow the rest from p_M at temperature 1 (:func:`rarelib.generation.regrow`), accept if
log U < −λ(φ′ − φ). With τ uniform on a set T of size L, the proposal is
q(x′|x) = (1/L) Σ_{τ∈T} 1[x′_{≤τ} = x_{≤τ}] p_M(x′_{>τ} | x_{≤τ}), and each term of
p_M(x) q(x′|x) = (1/L) Σ_τ 1[x′_{≤τ} = x_{≤τ}] p_M(x_{≤τ}) p_M(x_{>τ}|x_{≤τ}) p_M(x′_{>τ}|x_{≤τ})
is symmetric in x and x′: q is in detailed balance with p_M, so the Metropolis–Hastings
ratio for p_λ is e^{−λ(φ′ − φ)} and no model probability is needed.

Window moves (``window=w``): keep the tokens after the window too, so the move regrows only
positions τ..τ+w−1 and changes the early tokens of a completion without discarding its end.
The kept suffix s is rescored under the new window, and the proposal (regrow the window from
p_M given the prefix) makes the Metropolis–Hastings ratio
e^{−λ(φ′ − φ)} p_M(s | x′_{<τ+w}) / p_M(s | x_{<τ+w}). Such a move still decodes every
position from τ on, so it costs what a forward-shooting move from τ costs, and ``cut`` keeps
its meaning (tokens before the first regrown one). With ``window=None`` (default) a move
regrows to the end: plain forward shooting. Forward shooting regrows early tokens only by
regrowing everything after them, which a strong bias almost always rejects; window moves
change them without that cost, but move φ only a little per step (chapter 4 of the book
compares the moves on an exactly solvable model).

A move is a :class:`Move` (cuts, window, guide, scale). Guided moves (``Move(guide=..., scale=g)``):
regrow each window token from a tilted law q of :mod:`rarelib.guides` at strength s = gλ instead
of p_M — the model with a token class tilted by e^{−s 1[v ∈ G]} (``guide`` = the class's token
ids), the model at temperature 1/(1 − s) (``guide="temperature"``), or repeats of the previous
token tilted by e^{−s} (``guide="repeats"``). The ratio gains Σ_{regrown i} ρ(x′_i) − ρ(x_i) with
ρ = log p_M − log q. The guide's statistics, kept in the state for every position, give ρ of
the old path at whatever bias its chain holds (also after a replica swap). When φ counts the
guide's class, or φ is Log-Prob with the temperature guide, and g = 1, the e^{−λΔφ} factor
cancels against Σ ρ and what is left is a ratio of per-token normalisers: the proposal
pre-pays the bias token by token, so strongly biased chains accept long regrowths that
forward shooting from p_M would not.

Cut law (``cuts``): ``"uniform"`` (default) draws τ uniformly in {0..L−1}; τ = 0 regrows the
whole completion, so every completion can be reached and the chain samples p_λ exactly.
``"paper"`` is the paper's rule, τ uniform in {1..L}: the first completion token is never
changed (its marginal stays p_M's, so the chain cannot sample p_λ) and τ = L is a null move.
``cut`` in the results is always the number of kept tokens.

Each driver records after every step, per chain and bias, φ and every recorded observable
(posterior), ``accepted`` and ``cut`` (sample_stats), optionally the tokens of the current
state, in the layout of :mod:`rarelib.storage`. Checkpoints (``.npz``, no pickle, atomic)
hold the state, the records so far, the generator state and the model's fingerprint; calling a
driver again with the same arguments and model resumes and returns exactly what an uninterrupted
run returns (parallel tempering may also be continued to more ``n_steps``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from rarelib import observables as obs
from rarelib import storage
from rarelib.generation import (
    Guidance,
    PromptContext,
    check_completion_length,
    check_positive_int,
    check_seed,
    encode_prompt,
    prompt_token_ids,
    regrow,
)
from rarelib.guides import ClassGuide, LocalTiltGuide, TemperatureGuide, make_guide
from rarelib.models import CausalLM, fingerprint

__all__ = [
    "build_kernel",
    "check_biases",
    "check_guide_scale",
    "CHECKPOINT_ARRAYS",
    "CUT_RULES",
    "DEFAULT_RECORD",
    "FORWARD_SHOOTING",
    "Move",
    "run_annealed",
    "run_tempering",
    "ShootingKernel",
    "START_RULES",
    "StepInfo",
    "suffix_log_ratio",
    "swap_neighbours",
    "TPSState",
]

CUT_RULES = ("uniform", "paper")
START_RULES = ("overdispersed", "model")
DEFAULT_RECORD = ("logprob", "ari", "repeats")


class TPSState(NamedTuple):
    """R chains: completions (R, L) int64, token_logprobs (R, L) float32 (log p_M at T = 1),
    phi (R,) float64 (the biased observable), recorded: name → (R,) float64, with a guide
    guide_statistics (R, L, S) float32, the guide's statistics at each position, and for models
    that carry them kv (N, 2, R, H, P + L − 1, D), the completions' keys and values on the model's
    device (:mod:`rarelib.kvcache`), which proposals reuse for their kept prefixes."""

    completions: torch.Tensor
    token_logprobs: torch.Tensor
    phi: np.ndarray
    recorded: dict[str, np.ndarray]
    guide_statistics: torch.Tensor | None = None
    kv: torch.Tensor | None = None

    def take(self, rows: np.ndarray) -> TPSState:
        """The chains in the order ``rows`` (R,)."""
        index = torch.from_numpy(rows)
        return TPSState(
            self.completions[index],
            self.token_logprobs[index],
            self.phi[rows],
            {name: values[rows] for name, values in self.recorded.items()},
            None if self.guide_statistics is None else self.guide_statistics[index],
            None if self.kv is None else self.kv.index_select(2, index.to(self.kv.device)),
        )

    def where(self, mask: np.ndarray, other: TPSState) -> TPSState:
        """Rows of ``other`` where ``mask`` (R,) is true, of ``self`` elsewhere."""
        rows = torch.from_numpy(mask)
        return TPSState(
            torch.where(rows[:, None], other.completions, self.completions),
            torch.where(rows[:, None], other.token_logprobs, self.token_logprobs),
            np.where(mask, other.phi, self.phi),
            {name: np.where(mask, other.recorded[name], values) for name, values in self.recorded.items()},
            None
            if self.guide_statistics is None
            else torch.where(rows[:, None, None], other.guide_statistics, self.guide_statistics),
            None
            if self.kv is None or other.kv is None  # a state built without keys and values: the next move rebuilds them
            else torch.where(rows.to(self.kv.device)[:, None, None, None], other.kv, self.kv),
        )


def _concatenate(first: TPSState, second: TPSState) -> TPSState:
    """The rows of ``first`` followed by those of ``second``."""
    return TPSState(
        torch.cat([first.completions, second.completions]),
        torch.cat([first.token_logprobs, second.token_logprobs]),
        np.concatenate([first.phi, second.phi]),
        {name: np.concatenate([values, second.recorded[name]]) for name, values in first.recorded.items()},
        None if first.guide_statistics is None else torch.cat([first.guide_statistics, second.guide_statistics]),
        None if first.kv is None or second.kv is None else torch.cat([first.kv, second.kv], dim=2),
    )


class StepInfo(NamedTuple):
    """accepted (R,) bool; cut (R,) int64, the number of kept tokens of each proposal."""

    accepted: np.ndarray
    cut: np.ndarray


@dataclass(frozen=True)
class Move:
    """How a TPS step proposes (module docstring): the cut law, the window and the guide.

    cuts: ``"uniform"`` or ``"paper"`` (:data:`CUT_RULES`); window: width of the regrown window
    (``None``: regrow to the end, forward shooting); guide: what regrown tokens are drawn from —
    ``None`` (p_M), token ids of a class tilted by scale·λ, ``"temperature"`` (temperature
    1/(1 − scale·λ)), ``"repeats"`` (repeats of the previous token tilted by scale·λ) or a
    pairwise increment (:mod:`rarelib.guides`); scale: the guide's strength per unit of bias.
    """

    cuts: str = "uniform"
    window: int | None = None
    guide: Sequence[int] | str | object | None = None
    scale: float = 1.0


FORWARD_SHOOTING = Move()
"""The paper's move: uniform cuts, regrowth to the end from p_M."""


@dataclass(frozen=True)
class ShootingKernel:
    """TPS moves for one model, prompt, completion length and biased observable (module docstring).

    Build with :func:`build_kernel`; ``init`` and ``step`` are pure up to the generator.
    """

    lm: CausalLM
    prompt: PromptContext
    completion_length: int
    observable: obs.Observable
    recorded: dict[str, obs.Observable]
    cuts: str = "uniform"
    window: int | None = None
    guide: ClassGuide | TemperatureGuide | LocalTiltGuide | None = None
    guide_scale: float = 1.0

    def _evaluate(self, completions: torch.Tensor, token_logprobs: torch.Tensor) -> tuple[np.ndarray, dict]:
        wanted = {self.observable.__name__: self.observable, **self.recorded}
        values = obs.evaluate(wanted, self.lm, self.prompt.ids.cpu(), completions, token_logprobs)
        return values[self.observable.__name__], {name: values[name] for name in self.recorded}

    def _grow(self, state: TPSState, cut, generator, ends=None, strength=None) -> TPSState:
        uniforms = torch.rand(state.completions.shape, generator=generator, dtype=torch.float64)
        guidance = None if self.guide is None else Guidance(self.guide, strength, state.guide_statistics)
        grown = regrow(
            self.lm,
            self.prompt,
            state.completions,
            state.token_logprobs,
            cut,
            uniforms,
            ends=ends,
            guidance=guidance,
            kv=state.kv,
        )
        phi, recorded = self._evaluate(grown.completions, grown.token_logprobs)
        return TPSState(grown.completions, grown.token_logprobs, phi, recorded, grown.guide_statistics, grown.kv)

    def init(self, n_rows: int, generator: torch.Generator, lam: float = 0.0) -> TPSState:
        """``n_rows`` completions grown whole: direct samples of p_M, or with a guide and ``lam`` ≠ 0, draws of the
        guide's proposal at bias ``lam`` (strength guide_scale·lam)."""
        empty = torch.zeros((n_rows, self.completion_length), dtype=torch.int64)
        statistics = None if self.guide is None else torch.zeros(empty.shape + (self.guide.n_statistics,))
        blank = TPSState(empty, empty.float(), np.zeros(n_rows), {}, statistics)
        strength = torch.full((n_rows,), self.guide_scale * float(lam), dtype=torch.float64)
        return self._grow(blank, torch.zeros(n_rows, dtype=torch.int64), generator, strength=strength)

    def start(self, row_biases: np.ndarray, far: np.ndarray, generator: torch.Generator) -> TPSState:
        """Initial states of R chains at ``row_biases`` (R,): direct samples of p_M, except the ``far`` rows (R,) bool.

        A far row starts *beyond* its tilted law, so that chains approach every rung from both sides
        and R-hat can see a lag (all chains started from p_M lag together, and agree). For each sign of
        λ, a pool of max(4n, 16) completions (n far rows of that sign) is grown at the sign's strongest
        bias (from the guide there, or from p_M without one), sorted by φ towards that bias's side, and
        its most extreme states go to the far rows, the most extreme to the strongest bias.
        """
        state = self.init(len(row_biases), generator)
        for sign in (-1.0, 1.0):
            rows = np.flatnonzero(far & (np.sign(row_biases) == sign))
            if rows.size == 0:
                continue
            rows = rows[np.argsort(-np.abs(row_biases[rows]), kind="stable")]
            pool = self.init(max(4 * rows.size, 16), generator, lam=row_biases[rows[0]])
            extreme_first = np.argsort(sign * pool.phi, kind="stable")[: rows.size]
            placed = np.arange(len(row_biases))
            placed[rows] = len(row_biases) + extreme_first
            state = _concatenate(state, pool).take(placed)
        return state

    def draw_cuts(self, n_rows: int, generator: torch.Generator) -> torch.Tensor:
        """(R,) int64 numbers of kept tokens: uniform in {0..L−1}, or in {1..L} for ``cuts="paper"``."""
        low = 0 if self.cuts == "uniform" else 1
        return torch.randint(low, low + self.completion_length, (n_rows,), generator=generator)

    def window_ends(self, cut: torch.Tensor) -> torch.Tensor | None:
        """(R,) int64 end of each proposal's regrown window (cut + window, at most L); ``None`` without windows."""
        return None if self.window is None else (cut + self.window).clamp_(max=self.completion_length)

    def step(self, state: TPSState, lam, generator: torch.Generator) -> tuple[TPSState, StepInfo]:
        """One move of every chain at bias ``lam`` (scalar or (R,) per chain)."""
        n_rows = len(state.phi)
        lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (n_rows,))
        strength = torch.from_numpy(self.guide_scale * lam)
        cut = self.draw_cuts(n_rows, generator)
        ends = self.window_ends(cut)
        proposal = self._grow(state, cut, generator, ends, strength)
        log_u = torch.rand(n_rows, generator=generator, dtype=torch.float64).log().numpy()
        log_ratio = -lam * (proposal.phi - state.phi)
        if ends is not None:
            log_ratio = log_ratio + suffix_log_ratio(proposal.token_logprobs, state.token_logprobs, ends)
        if self.guide is not None:
            regrown = self._window_mask(cut, ends)
            log_ratio = log_ratio + (
                self._guide_log_importance(proposal, strength, regrown)
                - self._guide_log_importance(state, strength, regrown)
            )
        accepted = log_u < log_ratio
        return state.where(accepted, proposal), StepInfo(accepted, cut.numpy())

    def _window_mask(self, cut: torch.Tensor, ends: torch.Tensor | None) -> torch.Tensor:
        """(R, L) bool: the positions a move regrows (cut ≤ i < end)."""
        positions = torch.arange(self.completion_length)
        mask = positions >= cut[:, None]
        return mask if ends is None else mask & (positions < ends[:, None])

    def _guide_log_importance(self, state: TPSState, strength: torch.Tensor, regrown: torch.Tensor) -> np.ndarray:
        """Σ over regrown positions of ρ = log p_M − log q under the guide at each row's strength, (R,) float64."""
        per_position = self.guide.log_importance(
            state.completions, state.token_logprobs, state.guide_statistics, strength
        )
        return torch.where(regrown, per_position, 0.0).sum(dim=1).numpy()


def suffix_log_ratio(new_logprobs: torch.Tensor, old_logprobs: torch.Tensor, ends: torch.Tensor) -> np.ndarray:
    """Σ_{i ≥ ends[b]} (new − old)[b, i] in float64: (R,) for token log-probs (R, L) and ends (R,)."""
    suffix = torch.arange(new_logprobs.shape[1]) >= ends[:, None]
    difference = new_logprobs.double() - old_logprobs.double()
    return torch.where(suffix, difference, 0.0).sum(dim=1).numpy()


def build_kernel(
    lm: CausalLM,
    prompt: str | Sequence[int] | torch.Tensor,
    completion_length: int,
    observable: str | obs.Observable,
    record: Sequence[str | obs.Observable] = DEFAULT_RECORD,
    move: Move = FORWARD_SHOOTING,
    biases: Sequence[float] | None = None,
) -> ShootingKernel:
    """A :class:`ShootingKernel`, with every argument checked (ValueError naming the bad one).

    move: a :class:`Move`; its temperature and local-tilt guides need the ``biases`` the kernel
    will be stepped at.
    """
    if not isinstance(move, Move):
        raise ValueError(f"move must be a tps.Move, e.g. tps.Move(guide='temperature'); got {move!r}")
    cuts, window, guide, guide_scale = move.cuts, move.window, move.guide, move.scale
    prompt_ids = prompt_token_ids(lm, prompt)
    length = check_completion_length(lm, len(prompt_ids), completion_length)
    if cuts not in CUT_RULES:
        raise ValueError(f"cuts must be one of {CUT_RULES}; got {cuts!r}")
    if window is not None:
        window = check_positive_int("window", window)
    guide_scale = check_guide_scale(guide_scale)
    strengths = None if biases is None else guide_scale * check_biases(biases)
    return ShootingKernel(
        lm,
        encode_prompt(lm, prompt_ids),
        length,
        obs.get_observable(observable),
        obs.get_observables(record),
        cuts,
        window,
        make_guide(lm, guide, strengths, first_previous=int(prompt_ids[-1])),
        guide_scale,
    )


def check_guide_scale(scale) -> float:
    """``scale`` as a finite float, else ValueError."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale):
        raise ValueError(f"the move's scale must be a finite number; got {scale!r}")
    return float(scale)


def swap_neighbours(state: TPSState, ladder: np.ndarray, parity: int, generator: torch.Generator):
    """Replica exchange between rungs (k, k+1) for k ≡ parity (mod 2), in every replica set.

    Rows are rung-major: row k·M + m is replica set m at rung k of ``ladder`` (K,). A pair
    swaps states with probability min(1, exp((λ_k − λ_{k+1})(φ_k − φ_{k+1}))).
    Returns (state, attempted (R,), accepted (R,)), flags set on the lower rung of each pair.
    """
    n_rungs = len(ladder)
    rows = np.arange(len(state.phi)).reshape(n_rungs, -1)
    lower = np.arange(parity, n_rungs - 1, 2)
    log_u = torch.rand((len(lower), rows.shape[1]), generator=generator, dtype=torch.float64).log().numpy()
    phi = state.phi[rows]
    accept = log_u < (ladder[lower] - ladder[lower + 1])[:, None] * (phi[lower] - phi[lower + 1])
    order = rows.copy()
    order[lower] = np.where(accept, rows[lower + 1], rows[lower])
    order[lower + 1] = np.where(accept, rows[lower], rows[lower + 1])
    attempted = np.zeros(rows.shape, dtype=bool)
    attempted[lower] = True
    accepted = np.zeros(rows.shape, dtype=bool)
    accepted[lower] = accept
    return state.take(order.ravel()), attempted.ravel(), accepted.ravel()


# --------------------------------------------------------------------------- drivers


def check_biases(biases) -> np.ndarray:
    """``biases`` as a non-empty 1-D float64 array of finite numbers, else ValueError."""
    try:
        values = np.asarray(biases, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"biases must be a non-empty 1-D sequence of finite numbers; got {biases!r}")
    return values


@dataclass(frozen=True)
class _Layout:
    """How the R rows and the steps map onto records (chain M, draw N, bias K).

    Annealing: R = M rows, all at biases[step // N], draw = step % N. Tempering: R = K·M
    rows, rung-major, row k·M + m at biases[k], draw = step.
    """

    biases: np.ndarray
    draws: int
    n_chains: int
    tempering: bool

    @property
    def n_rows(self) -> int:
        return self.n_chains * (len(self.biases) if self.tempering else 1)

    @property
    def total_steps(self) -> int:
        return self.draws * (1 if self.tempering else len(self.biases))

    def row_biases(self, step: int) -> np.ndarray:
        if self.tempering:
            return np.repeat(self.biases, self.n_chains)
        return np.full(self.n_chains, self.biases[step // self.draws])

    def start_biases(self) -> np.ndarray:
        """(R,) the bias each row's start is judged against: its rung, or for annealing the family's strongest bias."""
        if self.tempering:
            return self.row_biases(0)
        return np.full(self.n_chains, self.biases[np.argmax(np.abs(self.biases))])

    def far_rows(self, start: str) -> np.ndarray:
        """(R,) bool: the rows that start beyond their bias — the second half of the chains (replica sets) of
        every biased rung with ``start="overdispersed"``, none with ``"model"``."""
        chain = np.arange(self.n_rows) % self.n_chains
        return (start == "overdispersed") & (chain >= self.n_chains - self.n_chains // 2) & (self.start_biases() != 0)

    def write(self, records: dict[str, np.ndarray], step: int, values: dict[str, np.ndarray]) -> None:
        """Store per-row ``values`` (R, ...) of ``step`` into ``records`` (M, N, K, ...)."""
        if self.tempering:
            draw, rungs, columns = step, len(self.biases), slice(None)
        else:
            bias, draw = divmod(step, self.draws)
            rungs, columns = 1, slice(bias, bias + 1)
        for name, value in values.items():
            value = np.asarray(value)
            records[name][:, draw, columns] = value.reshape(rungs, self.n_chains, *value.shape[1:]).swapaxes(0, 1)


def _empty_records(layout: _Layout, names: Sequence[str], stats: Sequence[str], keep_tokens: bool, length: int):
    shape = (layout.n_chains, layout.draws, len(layout.biases))
    records = {name: np.full(shape, np.nan) for name in ("phi", *names)}
    if keep_tokens:
        records["tokens"] = np.zeros(shape + (length,), dtype=np.int32)
    for stat in stats:
        records[stat] = np.zeros(shape, dtype=np.int32 if stat == "cut" else bool)
    return records


CHECKPOINT_ARRAYS = ("steps_done", "generator_state", "state_completions", "state_token_logprobs", "state_phi")


def _save_checkpoint(path: Path, config: dict, step: int, state: TPSState, records: dict, generator) -> None:
    arrays = {
        "config": np.array(json.dumps(config)),
        "steps_done": np.array(step),
        "generator_state": generator.get_state().numpy(),
        "state_completions": state.completions.numpy(),
        "state_token_logprobs": state.token_logprobs.numpy(),
        "state_phi": state.phi,
    }
    arrays.update({f"state_recorded_{name}": values for name, values in state.recorded.items()})
    if state.guide_statistics is not None:
        arrays["state_guide_statistics"] = state.guide_statistics.numpy()
    if state.kv is not None:  # float32 holds bfloat16 and float16 values exactly: resuming is bit for bit
        arrays["state_kv"] = state.kv.float().cpu().numpy()
    arrays.update({f"record_{name}": values for name, values in records.items()})
    storage.save_arrays(path, arrays)


def _load_checkpoint(path: Path, config: dict, generator) -> tuple[int, TPSState, dict]:
    arrays, saved = storage.load_with_config(path, CHECKPOINT_ARRAYS)
    extended = _extends(saved, config)
    storage.check_same_config(
        {**saved, "n_steps": config["n_steps"]} if extended else saved, config, f"checkpoint {path}"
    )
    generator.set_state(torch.from_numpy(arrays["generator_state"]))
    statistics, kv = arrays.get("state_guide_statistics"), arrays.get("state_kv")
    state = TPSState(
        torch.from_numpy(arrays["state_completions"]),
        torch.from_numpy(arrays["state_token_logprobs"]),
        arrays["state_phi"],
        {name: arrays[f"state_recorded_{name}"] for name in config["record"]},
        None if statistics is None else torch.from_numpy(statistics),
        None if kv is None else torch.from_numpy(kv),
    )
    records = {key.removeprefix("record_"): value for key, value in arrays.items() if key.startswith("record_")}
    if extended:
        records = {name: _pad_draws(values, config["n_steps"]) for name, values in records.items()}
    return int(arrays["steps_done"]), state, records


def _extends(saved: dict, config: dict) -> bool:
    """Whether ``config`` asks to continue a finished shorter parallel-tempering run of ``saved``: more n_steps.

    Steps draw from the generator in the same order whatever n_steps is, so the continued run is bit-identical
    to one that was that long from the start. Annealing cannot be extended (its steps per bias are fixed).
    """
    return (
        config["sampler"] == "parallel_tempering"
        and isinstance(saved.get("n_steps"), int)
        and saved["n_steps"] < config["n_steps"]
    )


def _pad_draws(values: np.ndarray, draws: int) -> np.ndarray:
    """Records (M, N, K, ...) padded along draw to ``draws`` (NaN for floats, 0/False otherwise)."""
    shape = list(values.shape)
    shape[1] = draws - values.shape[1]
    fill = np.nan if values.dtype.kind == "f" else 0
    return np.concatenate([values, np.full(shape, fill, dtype=values.dtype)], axis=1)


def _run(
    kernel: ShootingKernel, layout: _Layout, config: dict, checkpoint, checkpoint_every: int, progress: bool, callback
) -> dict[str, np.ndarray]:
    """The step loop shared by both drivers; returns the filled records (M, N, K, ...)."""
    path = None if checkpoint is None else storage.check_file_path("checkpoint", checkpoint)
    generator = torch.Generator().manual_seed(config["seed"])
    swap_every = config.get("swap_every")
    stats = ("accepted", "cut") + (("swap_attempted", "swap_accepted") if swap_every else ())
    if path is not None and path.is_file():
        done, state, records = _load_checkpoint(path, config, generator)
    else:
        done = 0
        records = _empty_records(layout, list(kernel.recorded), stats, config["keep_tokens"], kernel.completion_length)
        state = kernel.start(layout.start_biases(), layout.far_rows(config["start"]), generator)
    with tqdm(total=layout.total_steps, initial=done, disable=not progress, unit="step") as bar:
        for step in range(done, layout.total_steps):
            state, info = kernel.step(state, layout.row_biases(step), generator)
            values = {"accepted": info.accepted, "cut": info.cut}
            if swap_every and (step + 1) % swap_every == 0:
                parity = ((step + 1) // swap_every - 1) % 2
                state, values["swap_attempted"], values["swap_accepted"] = swap_neighbours(
                    state, layout.biases, parity, generator
                )
            values.update({"phi": state.phi, **state.recorded})
            if config["keep_tokens"]:
                values["tokens"] = state.completions.numpy()
            layout.write(records, step, values)
            if path is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == layout.total_steps):
                _save_checkpoint(path, config, step + 1, state, records, generator)
            bar.update(1)
            if callback is not None:
                callback(step, state, info)
    return records


def _prepare(
    lm,
    prompt,
    completion_length,
    observable,
    record,
    move,
    checkpoint_every,
    *,
    biases,
    n_chains,
    seed,
    keep_tokens,
    sampler,
    start,
    **counts,
) -> tuple[ShootingKernel, dict]:
    """The kernel and the run's configuration (what a checkpoint must match), every argument checked.

    move: the run's :class:`Move`. counts: the driver's step counts (positive integers) by name.
    ``window`` and the guide enter the configuration only when set, so forward-shooting
    checkpoints keep theirs.
    """
    kernel = build_kernel(lm, prompt, completion_length, observable, record, move, biases=biases)
    check_positive_int("checkpoint_every", checkpoint_every)
    if start not in START_RULES:
        raise ValueError(f"start must be one of {START_RULES}; got {start!r}")
    config = {
        "sampler": sampler,
        "model": lm.name,
        storage.FINGERPRINT_KEY: fingerprint(lm),
        "prompt_ids": kernel.prompt.ids.tolist(),
        "completion_length": kernel.completion_length,
        "observable": kernel.observable.__name__,
        "record": list(kernel.recorded),
        "cuts": kernel.cuts,
        "biases": check_biases(biases).tolist(),
        "n_chains": check_positive_int("n_chains", n_chains),
        "seed": check_seed(seed),
        "keep_tokens": bool(keep_tokens),
        "start": start,
        **({} if kernel.window is None else {"window": kernel.window}),
        **(
            {}
            if kernel.guide is None
            else {
                "guide": _guide_name(move.guide, kernel.guide),
                "guide_scale": kernel.guide_scale,
            }
        ),
        **{name: check_positive_int(name, value) for name, value in counts.items()},
    }
    return kernel, config


def _guide_name(guide, built) -> str | list[int]:
    """What a run's configuration records of its guide: its name, or the class guide's token ids."""
    if isinstance(guide, str):
        return guide
    return built.token_ids.tolist() if isinstance(built, ClassGuide) else built.increment.name


def _inference_data(records: dict, kernel: ShootingKernel, config: dict):
    stat_names = ("accepted", "cut", "swap_attempted", "swap_accepted")
    stats = {name: values for name, values in records.items() if name in stat_names}
    posterior = {name: values for name, values in records.items() if name not in stat_names}
    attrs = {key: value for key, value in config.items() if key not in ("prompt_ids", "biases", "record", "guide")}
    attrs.update(prompt=kernel.lm.decode(config["prompt_ids"]), record=",".join(config["record"]))
    if "guide" in config:
        guide = config["guide"]
        attrs["guide"] = guide if isinstance(guide, str) else ",".join(map(str, guide))
    return storage.make_run(posterior, config["biases"], sample_stats=stats, attrs=attrs)


def _drive(lm: CausalLM, problem: tuple, output: tuple, *, sampler: str, **run):
    """Run a driver: problem = (prompt, completion_length, observable, record, move), output = (checkpoint,
    checkpoint_every, progress, callback); ``run``: the driver's other arguments (:func:`_prepare`)."""
    prompt, completion_length, observable, record, move = problem
    checkpoint, checkpoint_every, progress, callback = output
    kernel, config = _prepare(
        lm, prompt, completion_length, observable, record, move, checkpoint_every, sampler=sampler, **run
    )
    tempering = sampler == "parallel_tempering"
    steps = config["n_steps"] if tempering else config["steps_per_bias"]
    layout = _Layout(np.array(config["biases"]), steps, config["n_chains"], tempering=tempering)
    records = _run(kernel, layout, config, checkpoint, checkpoint_every, progress, callback)
    return _inference_data(records, kernel, config)


def run_annealed(
    lm: CausalLM,
    prompt: str | Sequence[int] | torch.Tensor,
    completion_length: int,
    observable: str | obs.Observable,
    biases: Sequence[float],
    steps_per_bias: int,
    n_chains: int,
    seed: int = 0,
    record: Sequence[str | obs.Observable] = DEFAULT_RECORD,
    keep_tokens: bool = False,
    move: Move = FORWARD_SHOOTING,
    start: str = "overdispersed",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    progress: bool = True,
    callback: Callable[[int, TPSState, StepInfo], None] | None = None,
):
    """Annealed TPS: ``n_chains`` chains visit ``biases`` in order, ``steps_per_bias`` steps each.

    Chains start from direct samples, or with ``start="overdispersed"`` (default) half of them from beyond
    the strongest bias (:meth:`ShootingKernel.start`); the state carries over from one bias to the next.
    Returns ``InferenceData`` (chain, draw = step within the bias, bias), ``sampler="annealed_tps"``.
    checkpoint: ``.npz`` path written every ``checkpoint_every`` steps and at the end; an
    existing one with the same arguments (and the same model weights) is resumed (ValueError if they differ).
    move: how each step proposes (:class:`Move`; default: the paper's forward shooting).
    callback(step, state, info) runs after every step (global step index from 0).
    """
    return _drive(
        lm,
        (prompt, completion_length, observable, record, move),
        (checkpoint, checkpoint_every, progress, callback),
        sampler="annealed_tps",
        biases=biases,
        n_chains=n_chains,
        seed=seed,
        keep_tokens=keep_tokens,
        start=start,
        steps_per_bias=steps_per_bias,
    )


def run_tempering(
    lm: CausalLM,
    prompt: str | Sequence[int] | torch.Tensor,
    completion_length: int,
    observable: str | obs.Observable,
    biases: Sequence[float],
    n_steps: int,
    n_chains: int,
    swap_every: int = 1,
    seed: int = 0,
    record: Sequence[str | obs.Observable] = DEFAULT_RECORD,
    keep_tokens: bool = False,
    move: Move = FORWARD_SHOOTING,
    start: str = "overdispersed",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    progress: bool = True,
    callback: Callable[[int, TPSState, StepInfo], None] | None = None,
):
    """Parallel tempering: a ladder of K ``biases`` × ``n_chains`` replica sets, one batch of K·M chains.

    Every step moves every chain at its rung's bias; every ``swap_every`` steps neighbouring
    rungs (even pairs, then odd pairs, alternating) try to swap states. Records after each
    step (and swap) the state at each rung: chain = replica set, draw = step, bias = rung;
    ``accepted``/``cut`` describe the shooting move made at that rung, ``swap_attempted`` /
    ``swap_accepted`` the exchange between rung k and k+1 (set on rung k).
    start: ``"overdispersed"`` (default): the second half of the replica sets start beyond their rung's
    tilted law at every biased rung (:meth:`ShootingKernel.start`), so that R-hat compares chains that
    approach each rung from both sides; ``"model"``: every chain starts from a direct sample of p_M.
    ``sampler="parallel_tempering"``; the move, checkpoint and callback as in :func:`run_annealed`. A checkpoint
    of the same run with fewer ``n_steps`` is continued: the result is bit-identical to a run that long from the start.
    """
    return _drive(
        lm,
        (prompt, completion_length, observable, record, move),
        (checkpoint, checkpoint_every, progress, callback),
        sampler="parallel_tempering",
        biases=biases,
        n_chains=n_chains,
        seed=seed,
        keep_tokens=keep_tokens,
        start=start,
        n_steps=n_steps,
        swap_every=swap_every,
    )

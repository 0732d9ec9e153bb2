"""One call from a question to an answer: :func:`estimate` of P(φ ≥ a) (or P(φ ≤ a)) for any model and prompt.

The workflow of the book, with every choice made from the data:

1. **pilot** — ``pilot_samples`` direct samples of p_M: the bulk of φ, and the first rungs;
2. **ladder** — biases from λ = 0 outward, each moving the tilted mean ⟨φ⟩_λ by about
   ``spacing`` standard deviations of φ. Within the pilot's reach the rule of
   :func:`rarelib.exact.validation.bias_ladder` runs on the pilot's reweighted mean; beyond it,
   short parallel-tempering runs of the ladder so far (``ladder_steps`` steps) give the outermost
   rung's mean m and spread s, and rungs are added at Δλ = spacing/s (d⟨φ⟩/dλ = −Var φ), up to
   four at a time. The ladder is long enough when the outermost mean passes the deepest threshold,
   or a quarter of that rung's samples do (φ may be bounded by the threshold) — or, with no
   thresholds, when the Chernoff bound log P ≤ log Z(λ) − log Z(0) + λ m puts the tail at that
   mean below ``depth`` (log Z from the rung means by the trapezoid rule). A rung is
   then inserted halfway wherever neighbours swapped less often than
   ``criteria.min_swap_acceptance`` or overlapped less than ``criteria.min_overlap``;
3. **move** — the book's guide for the observable (:data:`GUIDES`), else forward shooting;
4. **rounds** — :func:`rarelib.rounds.run_rounds` until the verdict is complete with every interval
   within ``target_relative_half_width``, or the budget is spent.

Every token counts towards ``budget_tokens``: pilot, ladder runs and rounds. Everything lives in
``checkpoint`` (a folder): an interrupted call loses at most the steps since a sampler's last
checkpoint, calling again with the same arguments resumes, and a larger budget (or a smaller
``target_relative_half_width``) continues. The result, an :class:`Estimate`, saves to netCDF.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from rarelib import (
    __version__,
    convergence,
    diagnostics,
    logspace,
    models,
    plots,
    reweighting,
    rounds,
    storage,
    tps,
    workflow,
)
from rarelib import observables as obs
from rarelib.exact import validation
from rarelib.generation import check_positive_int, check_seed

__all__ = ["default_move", "Estimate", "estimate", "Ladder", "load", "place_ladder", "GUIDES"]

GUIDES = {"ari": "sentence ends", "logprob": "temperature", "repeats": "repeats"}
"""The book's guide (:func:`rarelib.workflow.guided_move`) for each observable that has one."""

MAX_TEMPERATURE_STRENGTH = 0.95
"""The strongest tilt the temperature guide is asked for: scale·λ ≤ 0.95, proposals at temperature ≤ 20."""

MAX_NEW_RUNGS = 4
"""At most this many rungs are added per ladder run: beyond the outermost rung the mean is extrapolated."""

_LADDER = "ladder.npz"
_PILOT_STREAM, _LADDER_STREAM = 0xE57, 0xE58  # random streams of their own, apart from the rounds' seeds


def _derived_seed(seed: int, *keys: int) -> int:
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def default_move(lm, observable) -> tps.Move:
    """The move :func:`estimate` uses: the guide of :data:`GUIDES` for the observable, else forward shooting."""
    return workflow.guided_move(lm, GUIDES.get(obs.get_observable(observable).__name__))


# --------------------------------------------------------------------------- the ladder


@dataclass(frozen=True)
class Ladder:
    """The biases chosen by :func:`place_ladder` and how they were found.

    biases (K,): λ = 0 first, then outward; means, spreads (K,): ⟨φ⟩ and its standard deviation at
    each rung in the last ladder run that held it (NaN at rungs inserted into gaps);
    tokens: drawn by the ladder runs; notes: why the ladder stopped short, if it did.
    """

    biases: np.ndarray
    means: np.ndarray
    spreads: np.ndarray
    tokens: int
    notes: tuple[str, ...] = ()


def _direction(side: str) -> float:
    """The sign of λ that pushes towards the ``side`` tail (the tilt is e^{−λφ})."""
    return -1.0 if side == "upper" else 1.0


def _beyond(value: float, target: float, side: str) -> bool:
    return value >= target if side == "upper" else value <= target


def _pilot_ladder(phi: np.ndarray, target: float | None, side: str, spacing: float) -> np.ndarray:
    """Rungs (K,) within the pilot's reach, from the reweighted pilot mean; one rung a spacing out if it has none.

    phi (N,): direct samples. They reach about as far as their 10th most extreme value.
    """
    ordered = np.sort(phi) if side == "upper" else -np.sort(-phi)
    reach = ordered[-min(10, ordered.size)]
    goal = reach if target is None or _beyond(target, reach, side) else target
    centred = phi - phi.mean()
    spread = phi.std()

    def tilted_mean(lam: float) -> float:
        log_w = -lam * centred
        w = np.exp(log_w - log_w.max())
        return float(np.sum(w * phi) / np.sum(w))

    one_step = phi.mean() - _direction(side) * spacing * spread  # the mean one rung out
    if spread == 0 or not _beyond(goal, one_step, side):
        return np.array([_direction(side) * spacing / max(spread, 1e-6)])
    ladder = validation.bias_ladder(tilted_mean, goal, spacing=spacing)
    if ladder.size >= 2 and abs(ladder[-1] - ladder[-2]) < 0.25 * abs(ladder[-2] - np.append(0.0, ladder)[-3]):
        ladder = np.delete(ladder, -2)  # the rule's last step landed just short of the goal: one rung will do
    return ladder


def _later_draws(run) -> np.ndarray:
    """φ of the second half of a tempering run's draws, (M·N/2, K)."""
    phi = np.asarray(run.posterior["phi"].values, dtype=np.float64)
    return phi[:, phi.shape[1] // 2 :, :].reshape(-1, phi.shape[2])


def _rung_moments(run) -> tuple[np.ndarray, np.ndarray]:
    """⟨φ⟩ and sd of φ at every rung of a tempering run, from the second half of its draws: (K,), (K,)."""
    later = _later_draws(run)
    return later.mean(axis=0), later.std(axis=0)


def _reaches(run, target: float, side: str) -> bool:
    """The outermost rung's mean passes ``target``, or a quarter of its samples do (φ may be bounded by it)."""
    outermost = _later_draws(run)[:, -1]
    beyond = outermost >= target if side == "upper" else outermost <= target
    return _beyond(outermost.mean(), target, side) or beyond.mean() >= 0.25


def chernoff_log_bound(biases: np.ndarray, means: np.ndarray) -> float:
    """log of the Chernoff bound on the tail at the outermost rung's mean, log Z(λ_K) − log Z(0) + λ_K m_K.

    biases, means (K,): rungs from λ = 0 outward and their tilted means; log Z by the trapezoid rule
    on d log Z/dλ = −⟨φ⟩_λ.
    """
    log_z = -np.sum(np.diff(biases) * (means[1:] + means[:-1]) / 2.0)
    return float(log_z + biases[-1] * means[-1])


def _extension(biases: np.ndarray, means, spreads, target, side: str, spacing: float, move: tps.Move) -> np.ndarray:
    """New rungs beyond the outermost: spacing/s apart, as many as the distance to ``target`` asks, ≤ MAX_NEW_RUNGS."""
    spread = spreads[-1]
    step = spacing / spread if spread > 0 else abs(biases[-1] - biases[-2])  # no spread: repeat the last step
    wanted = (
        MAX_NEW_RUNGS if target is None or not spread > 0 else math.ceil(abs(target - means[-1]) / (spacing * spread))
    )
    count = int(np.clip(wanted, 1, MAX_NEW_RUNGS))
    return _admissible(biases[-1] + _direction(side) * step * np.arange(1, count + 1), biases[-1], move)


def _admissible(new: np.ndarray, start: float, move: tps.Move) -> np.ndarray:
    """The rungs (K,) beyond ``start`` that ``move`` can sample: the temperature guide needs scale·λ < 1, so rungs
    stop at scale·λ = :data:`MAX_TEMPERATURE_STRENGTH` (one rung there, none if ``start`` is there already)."""
    if move.guide != "temperature" or not np.any(move.scale * new > MAX_TEMPERATURE_STRENGTH):
        return new
    cap = MAX_TEMPERATURE_STRENGTH / move.scale
    kept = new[move.scale * new < MAX_TEMPERATURE_STRENGTH]
    return kept if np.isclose(start, cap) else np.append(kept, cap)


def _gaps(run, criteria: convergence.Criteria) -> np.ndarray:
    """Midpoints (G,) of the neighbouring rungs of a ladder run that swap less often than
    ``criteria.min_swap_acceptance`` or overlap less than ``criteria.min_overlap`` (one MBAR solve)."""
    biases = np.asarray(run.posterior["bias"].values, dtype=np.float64)
    settings = reweighting.Settings(rhat_threshold=math.inf, min_overlap=0.0)
    fit = reweighting.fit_mbar([run], settings, warn=False)
    pairs = reweighting.neighbour_overlap(fit.selection.samples_per_state, reweighting.overlap_matrix(fit))
    inner = np.searchsorted(fit.states, np.minimum(biases[:-1], biases[1:]))  # each run pair's place among states
    weak = (diagnostics.swap_acceptance(run) < criteria.min_swap_acceptance) | (pairs[inner] < criteria.min_overlap)
    return (biases[:-1][weak] + biases[1:][weak]) / 2.0


def place_ladder(
    lm,
    prompt,
    completion_length: int,
    observable,
    pilot_phi: np.ndarray,
    *,
    target: float | None,
    side: str,
    move: tps.Move,
    n_chains: int,
    ladder_steps: int,
    spacing: float = 1.0,
    depth: float = 1e-12,
    max_rungs: int = 24,
    criteria: convergence.Criteria = convergence.Criteria(),
    seed: int = 0,
    folder: str | os.PathLike,
    progress: bool = False,
) -> Ladder:
    """The ladder of step 2 of the module docstring, from direct samples ``pilot_phi`` (N,).

    target: the deepest threshold (None: extend until the Chernoff bound reaches ``depth``). Each ladder
    run is a tempering checkpoint in ``folder``, so calling again resumes without sampling. The ladder
    also stops, with a note, after ``max_rungs`` rungs or when the outermost mean stops moving.
    """
    folder = Path(folder)
    first = _pilot_ladder(np.asarray(pilot_phi, dtype=np.float64), target, side, spacing)
    biases = np.append(0.0, _admissible(first, 0.0, move))
    means, spreads = np.full(biases.size, np.nan), np.full(biases.size, np.nan)
    tokens, notes, gaps, start = 0, [], [], 0
    for index in itertools.count():  # each pass adds at least one rung, so max_rungs ends it
        run = tps.run_tempering(
            lm,
            prompt,
            completion_length,
            observable,
            biases[start:],
            n_steps=ladder_steps,
            n_chains=n_chains,
            seed=_derived_seed(seed, _LADDER_STREAM, index),
            record=(),
            move=move,
            checkpoint=folder / f"ladder-{index}.npz",
            progress=progress,
        )
        tokens += diagnostics.generated_tokens(run)
        previous_mean = means[start] if index > 0 else None  # the outermost mean before this run
        means[start:], spreads[start:] = _rung_moments(run)
        gaps += list(_gaps(run, criteria))
        if target is not None and _reaches(run, target, side):
            break
        if target is None and chernoff_log_bound(biases, means) <= math.log(depth):
            break
        if previous_mean is not None and abs(means[-1] - previous_mean) < 0.1 * spreads[0]:
            notes.append(
                f"the tilted mean stalls near φ = {means[-1]:.3g} at λ = {biases[-1]:.3g}: the observable may "
                "not reach further, or the move cannot carry chains there; thresholds beyond are likely unresolved"
            )
            break
        new = _extension(biases, means, spreads, target, side, spacing, move)
        if new.size == 0:
            notes.append(f"the move reaches no further than λ = {biases[-1]:.3g} (outermost mean φ = {means[-1]:.3g})")
            break
        new = new[: max(0, max_rungs + 1 - biases.size)]
        if new.size == 0:
            notes.append(f"stopped at max_rungs={max_rungs} with the outermost mean at φ = {means[-1]:.3g}")
            break
        start = biases.size - 1  # the next run: the outermost rung so far and the new ones
        biases = np.append(biases, new)
        means, spreads = np.append(means, np.full(new.size, np.nan)), np.append(spreads, np.full(new.size, np.nan))
    gaps = np.array(gaps)
    order = np.argsort(np.abs(np.concatenate([biases, gaps])), kind="stable")
    placed = np.concatenate([biases, gaps])[order]
    run_means = np.concatenate([means, np.full(gaps.size, np.nan)])[order]
    run_spreads = np.concatenate([spreads, np.full(gaps.size, np.nan)])[order]
    return Ladder(placed, run_means, run_spreads, tokens, tuple(notes))


def _save_ladder(path: Path, config: dict, ladder: Ladder) -> None:
    arrays = {name: getattr(ladder, name) for name in ("biases", "means", "spreads")}
    storage.save_arrays(
        path,
        {**arrays, "tokens": np.int64(ladder.tokens), "notes": json.dumps(ladder.notes), "config": json.dumps(config)},
    )


def _load_ladder(path: Path, config: dict) -> Ladder | None:
    if not path.is_file():
        return None
    arrays, saved = storage.load_with_config(path, ("biases", "means", "spreads", "tokens", "notes"))
    storage.check_same_config(saved, config, f"estimate checkpoint {path.parent}")
    return Ladder(
        arrays["biases"],
        arrays["means"],
        arrays["spreads"],
        int(arrays["tokens"]),
        tuple(json.loads(str(arrays["notes"]))),
    )


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Estimate:
    """The answer of :func:`estimate`: a tail curve with honest intervals, and how it was reached.

    question: model, prompt, observable, side, completion_length, seed, move (strings and numbers);
    thresholds (A,); tail: the estimate (A,) with its 96% intervals, [0, 1] where unresolved; raw: the MBAR
    estimate as computed, its intervals as if every threshold were resolved (for study, not for reporting);
    resolved (A,) bool, reasons (A,) str ('' where resolved); direct: direct sampling's tail (A,) with
    Wilson intervals, from n_direct samples; ladder (K,) λ with its rung table (:class:`rarelib.convergence.RungTable`
    fields, the biased rungs) and rung_means (K,) ⟨φ⟩ per rung in the last round; tokens / budget_tokens;
    converged, complete: the last verdict's; history: one dict per round; notes: from the ladder.
    """

    question: dict
    thresholds: np.ndarray
    tail: logspace.LogEstimate
    raw: logspace.LogEstimate
    resolved: np.ndarray
    reasons: np.ndarray
    direct: logspace.LogEstimate
    n_direct: int
    ladder: np.ndarray
    rung_means: np.ndarray
    rungs: convergence.RungTable
    tokens: int
    budget_tokens: int
    converged: bool
    complete: bool
    history: list[dict]
    notes: tuple[str, ...] = ()

    @property
    def side(self) -> str:
        """The tail asked about: ``"upper"`` (P(φ ≥ a)) or ``"lower"`` (P(φ ≤ a))."""
        return self.question["side"]

    def summary(self) -> str:
        """The answer as a text table: one line per threshold, then the ladder, the rounds and the verdict."""
        q = self.question
        symbol = logspace.SIDES[q["side"]]
        stop = "complete" if self.complete else f"NOT complete: budget of {self.budget_tokens:.3g} tokens spent"
        lines = [
            f"P({q['observable']} {symbol} a) after {q['prompt']!r} ({q['model']}, {q['completion_length']} tokens)",
            f"{len(self.history)} rounds, {self.tokens:.3g} tokens of {self.budget_tokens:.3g}; stopped: {stop}; "
            f"{'converged' if self.converged else 'NOT converged'}",
            f"{'a':>10}  {'estimate':>9}  {'96% interval':>21}  {'direct':>9}  status",
        ]
        direct = self.direct.log10
        for index, a in enumerate(self.thresholds):
            low, high = self.tail.log10_interval[:, index]
            seen = f"10^{direct[index]:.2f}" if np.isfinite(direct[index]) else "none"
            status = "resolved" if self.resolved[index] else f"UNRESOLVED: {self.reasons[index]}"
            lines.append(
                f"{a:>10.4g}  10^{self.tail.log10[index]:>6.2f}  [10^{low:>6.2f}, 10^{high:>6.2f}]  {seen:>9}  {status}"
            )
        lines.append(f"direct samples: {self.n_direct}; ladder λ = {', '.join(f'{b:.3g}' for b in self.ladder)}")
        failing = [f"  λ={b:.3g}: {why}" for b, why in zip(self.rungs.bias, self.rungs.failures) if why]
        lines += [f"failing rungs ({len(failing)}):", *failing] if failing else ["every rung passes"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def plot(self, ax=None):
        """The tail curve with bands where resolved, direct sampling's tail and the ladder's rung means."""
        return plots.estimate_tail(self, ax=ax)

    def to_dataset(self) -> xr.Dataset:
        """The estimate as an xarray Dataset (dims threshold, bound, rung, biased_rung; metadata as attributes)."""
        rung_fields = {
            f"rung_{f.name}": ("biased_rung", getattr(self.rungs, f.name)) for f in dataclasses.fields(self.rungs)
        }
        rung_fields["rung_failures"] = ("biased_rung", np.asarray(self.rungs.failures, dtype=str))
        rung_fields["rung_kept"] = ("biased_rung", np.asarray(self.rungs.kept, dtype=np.int8))
        return xr.Dataset(
            {
                "log_tail": ("threshold", self.tail.log),
                "log_tail_interval": (("bound", "threshold"), self.tail.log_interval),
                "log_raw": ("threshold", self.raw.log),
                "log_raw_interval": (("bound", "threshold"), self.raw.log_interval),
                "resolved": ("threshold", self.resolved.astype(np.int8)),
                "reason": ("threshold", np.asarray(self.reasons, dtype=str)),
                "log_direct": ("threshold", self.direct.log),
                "log_direct_interval": (("bound", "threshold"), self.direct.log_interval),
                "ladder": ("rung", self.ladder),
                "rung_mean": ("rung", self.rung_means),
                **rung_fields,
            },
            coords={"threshold": self.thresholds},
            attrs={
                "question": json.dumps(self.question),
                "n_direct": self.n_direct,
                "tokens": self.tokens,
                "budget_tokens": self.budget_tokens,
                "converged": int(self.converged),
                "complete": int(self.complete),
                "history": json.dumps(self.history),
                "notes": json.dumps(self.notes),
                "rarelib_version": __version__,
            },
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the estimate to netCDF (atomically; no pickle); read it back with :func:`load`."""
        return storage.save(self.to_dataset(), storage.check_file_path("path", path))


def load(path: str | os.PathLike) -> Estimate:
    """An :class:`Estimate` written by :meth:`Estimate.save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no estimate at {path}; write one with `rarelib estimate ... --out {path}`")
    try:
        data = xr.load_dataset(path, engine="netcdf4")
        rungs = convergence.RungTable(
            **{
                f.name: data[f"rung_{f.name}"].values
                for f in dataclasses.fields(convergence.RungTable)
                if f.name not in ("kept", "failures")
            },
            kept=data["rung_kept"].values.astype(bool),
            failures=data["rung_failures"].values.astype(object),
        )
        return Estimate(
            question=json.loads(data.attrs["question"]),
            thresholds=data["threshold"].values,
            tail=logspace.LogEstimate(data["log_tail"].values, data["log_tail_interval"].values),
            raw=logspace.LogEstimate(data["log_raw"].values, data["log_raw_interval"].values),
            resolved=data["resolved"].values.astype(bool),
            reasons=data["reason"].values.astype(object),
            direct=logspace.LogEstimate(data["log_direct"].values, data["log_direct_interval"].values),
            n_direct=int(data.attrs["n_direct"]),
            ladder=data["ladder"].values,
            rung_means=data["rung_mean"].values,
            rungs=rungs,
            tokens=int(data.attrs["tokens"]),
            budget_tokens=int(data.attrs["budget_tokens"]),
            converged=bool(data.attrs["converged"]),
            complete=bool(data.attrs["complete"]),
            history=json.loads(data.attrs["history"]),
            notes=tuple(json.loads(data.attrs["notes"])),
        )
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        raise ValueError(f"{path} is not an estimate written by Estimate.save ({type(err).__name__}: {err})") from None


# --------------------------------------------------------------------------- the call


def _thresholds(thresholds, pilot_phi: np.ndarray, ladder: Ladder, side: str, n_points: int = 25) -> np.ndarray:
    """The thresholds asked for, sorted; with none, a curve from the pilot's median to the outermost rung's mean
    (whole numbers when every pilot value is one)."""
    if thresholds is not None:
        return np.sort(np.asarray(thresholds, dtype=np.float64))
    outermost = ladder.means[np.isfinite(ladder.means)][-1]
    grid = np.linspace(np.median(pilot_phi), outermost, n_points)
    if np.all(pilot_phi == np.round(pilot_phi)):
        grid = np.round(grid)
    return np.unique(grid)


def _checked_thresholds(thresholds) -> np.ndarray | None:
    if thresholds is None:
        return None
    values = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(
            f"thresholds must be None or a non-empty list of finite numbers, e.g. [12]; got {thresholds!r}"
        )
    return values


def _model(model, device, dtype):
    return models.load(model, device=device, dtype=dtype) if isinstance(model, (str, os.PathLike)) else model


def estimate(
    model,
    prompt: str | Sequence[int],
    observable: str | obs.Observable,
    *,
    thresholds: Sequence[float] | float | None = None,
    side: str = "upper",
    budget_tokens: float = 1e7,
    target_relative_half_width: float = 0.5,
    completion_length: int = 64,
    n_chains: int = 16,
    pilot_samples: int = 2000,
    ladder_steps: int = 40,
    first_steps: int = 100,
    spacing: float = 1.0,
    depth: float = 1e-12,
    move: tps.Move | None = None,
    criteria: convergence.Criteria = convergence.Criteria(),
    settings: reweighting.Settings = reweighting.Settings(rhat_threshold=math.inf),
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
) -> Estimate:
    """P(φ ≥ a) (``side="upper"``) or P(φ ≤ a) of ``observable`` for completions of ``prompt`` (module docstring).

    model: a loaded :class:`rarelib.models.CausalLM`, or a name for :func:`rarelib.models.load` (``"default"``,
    a folder, a cached hub id) with ``device`` and ``dtype``; thresholds: the points a (None: a tail curve
    down to ``depth``); budget_tokens: every token drawn, pilot and ladder included; n_chains: replica sets
    per rung; move: overrides :func:`default_move`; criteria: of the verdict; settings: of every round's
    analysis (:func:`rarelib.rounds.run_rounds`; fewer bootstrap replicas are faster); checkpoint: the
    folder of every intermediate result (None: a temporary folder, removed at the end). Returns an
    :class:`Estimate`.
    """
    arguments = dict(locals())
    thresholds = _checked_thresholds(thresholds)
    logspace.check_side(side)
    seed = check_seed(seed)
    for name, value in (("n_chains", n_chains), ("pilot_samples", pilot_samples), ("ladder_steps", ladder_steps)):
        check_positive_int(name, value)
    if not budget_tokens > 0:
        raise ValueError(f"budget_tokens={budget_tokens!r}; use a positive number of tokens, e.g. 1e7")
    if not 0 < depth < 1:
        raise ValueError(f"depth={depth!r}; use a probability in (0, 1), e.g. 1e-12")
    if not spacing > 0:
        raise ValueError(f"spacing={spacing!r}; use a positive number of standard deviations, e.g. 1")
    observable = obs.get_observable(observable)
    if checkpoint is None:
        with tempfile.TemporaryDirectory(prefix="rarelib-estimate-") as folder:
            return estimate(**{**arguments, "checkpoint": folder})
    lm = _model(model, device, dtype)
    move = default_move(lm, observable) if move is None else move
    folder = storage.check_folder_path("checkpoint", checkpoint)
    question = {
        "model": lm.name,
        "prompt": prompt if isinstance(prompt, str) else [int(i) for i in prompt],
        "observable": observable.__name__,
        "side": side,
        "completion_length": int(completion_length),
        "seed": seed,
        "move": json.dumps(dataclasses.asdict(move), default=str),
    }
    config = {
        **question,
        storage.FINGERPRINT_KEY: models.fingerprint(lm),
        "thresholds": None if thresholds is None else thresholds.tolist(),
        "n_chains": n_chains,
        "pilot_samples": pilot_samples,
        "ladder_steps": ladder_steps,
        "spacing": spacing,
        "depth": depth,
        "criteria": dataclasses.asdict(criteria),
    }
    pilot_seed = _derived_seed(seed, _PILOT_STREAM)
    pilot = rounds.direct_run(lm, prompt, completion_length, observable, pilot_samples, pilot_seed, folder / "pilot")
    pilot_phi = pilot.posterior["phi"].values.ravel()
    ladder = _load_ladder(folder / _LADDER, config)
    if ladder is None:
        target = None if thresholds is None else (thresholds.max() if side == "upper" else thresholds.min())
        ladder = place_ladder(
            lm,
            prompt,
            completion_length,
            observable,
            pilot_phi,
            target=target,
            side=side,
            move=move,
            n_chains=n_chains,
            ladder_steps=ladder_steps,
            spacing=spacing,
            depth=depth,
            criteria=criteria,
            seed=seed,
            folder=folder / "ladder",
            progress=progress,
        )
        _save_ladder(folder / _LADDER, config, ladder)
    spent = diagnostics.generated_tokens(pilot) + ladder.tokens
    first = rounds.first_round_tokens(ladder.biases.size, n_chains, first_steps, completion_length)
    if spent + first > budget_tokens:
        raise ValueError(
            f"budget_tokens={budget_tokens:.3g} does not pay for the pilot and the ladder ({spent:.3g} tokens) and a "
            f"first round ({first:.3g}); raise it to at least {3 * (spent + first):.2g}, or lower pilot_samples, "
            "ladder_steps, n_chains or first_steps"
        )
    grid = _thresholds(thresholds, pilot_phi, ladder, side)
    result = rounds.run_rounds(
        lm,
        prompt,
        completion_length,
        observable,
        ladder.biases,
        n_chains,
        thresholds=grid,
        budget_tokens=budget_tokens - spent,
        folder=folder / "rounds",
        side=side,
        move=move,
        first_steps=first_steps,
        seed=seed,
        criteria=criteria,
        settings=settings,
        max_relative_half_width=target_relative_half_width,
        progress=progress,
    )
    return _result(question, result, pilot, ladder, spent, budget_tokens)


def _result(question: dict, result: rounds.Rounds, pilot, ladder: Ladder, spent: int, budget_tokens: float) -> Estimate:
    """The :class:`Estimate` of finished rounds; direct sampling's tail from the pilot and the rounds' direct runs."""
    verdict = result.verdict
    direct_phi = np.concatenate([run.posterior["phi"].values.ravel() for run in [pilot, *result.runs[1:]]])
    means, _ = _rung_moments(result.runs[0])
    return Estimate(
        question=question,
        thresholds=verdict.thresholds,
        tail=verdict.tail,
        raw=verdict.estimate,
        resolved=verdict.resolved,
        reasons=verdict.reasons,
        direct=diagnostics.direct_tail(direct_phi, verdict.thresholds, side=question["side"]),
        n_direct=int(direct_phi.size),
        ladder=ladder.biases,
        rung_means=means,
        rungs=verdict.rungs,
        tokens=int(spent + result.tokens),
        budget_tokens=int(budget_tokens),
        converged=verdict.converged,
        complete=bool(result.history[-1]["precise"]),
        history=result.history,
        notes=ladder.notes,
    )

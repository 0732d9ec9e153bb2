"""Convergence-driven run length: parallel tempering in rounds until the verdict holds or the budget is spent.

Round r runs the ladder to n_r = ⌈first_steps · growth^r⌉ steps — one checkpoint continued, so
round r's chains are round r − 1's, longer (bit-identical to a run that long from the start) —
and tops up i.i.d. direct samples at λ = 0 so that they make up ``direct_fraction`` of the
tokens. It then analyses everything (:func:`rarelib.reweighting.analyze`) and judges the
analysis against the previous round's (:func:`rarelib.convergence.assess`; round 0 against
the first halves of its own chains). It stops at the first round whose verdict is complete —
every rung passes every criterion and every threshold is resolved — and whose intervals are
all within ``max_relative_half_width`` (no limit by default), or when no further round fits in
``budget_tokens``; the last verdict then says which thresholds are unresolved, and
:attr:`Rounds.tail` reports them without an interval.

Tokens are counted as :func:`rarelib.diagnostics.generated_tokens` counts them (tokens drawn).
Everything lives in ``folder``: the tempering checkpoint, one folder of direct batches per
round, every round's analysis (netCDF) and the history; calling again with the same arguments
resumes where a run stopped, and with other arguments is refused — except the budget and the
precision: calling again with a larger budget, or a smaller ``max_relative_half_width``, continues
a run that stopped for lack of budget or precision.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rarelib import convergence, diagnostics, direct, logspace, reweighting, storage, tps
from rarelib import observables as obs
from rarelib.generation import check_positive_int, check_seed
from rarelib.models import CausalLM, fingerprint

__all__ = ["direct_run", "first_round_tokens", "precise", "Rounds", "run_rounds"]

_HISTORY = "rounds.npz"


@dataclass(frozen=True)
class Rounds:
    """What :func:`run_rounds` returns.

    analysis / verdict: of the last round; history: one dict per round (steps, tokens, converged,
    resolved thresholds, failed rungs); runs: the tempering run and the direct runs, as analysed.
    """

    analysis: reweighting.Analysis
    verdict: convergence.Verdict
    history: list[dict]
    runs: list
    budget_tokens: int

    @property
    def tokens(self) -> int:
        """Tokens drawn by every run."""
        return self.history[-1]["tokens"]

    @property
    def tail(self) -> logspace.LogEstimate:
        """The tail to report (:attr:`rarelib.convergence.Verdict.tail`)."""
        return self.verdict.tail

    def summary(self) -> str:
        """The rounds, one line each, then the last verdict."""
        lines = [
            f"round {h['round']}: {h['n_steps']} steps, {h['tokens']:.3g} tokens, "
            f"{'converged' if h['converged'] else 'not converged'}, {h['resolved']} of {h['thresholds']} "
            f"thresholds resolved"
            for h in self.history
        ]
        stop = (
            "complete"
            if self.history[-1].get("precise", self.verdict.complete)
            else f"budget of {self.budget_tokens:.3g} tokens spent"
        )
        return "\n".join(lines + [f"stopped: {stop}", self.verdict.summary()])


def _round_steps(first_steps: int, growth: float, index: int) -> int:
    return math.ceil(first_steps * growth**index)


def direct_run(lm, prompt, completion_length, observable, n: int, seed: int, folder: Path):
    """``n`` direct samples streamed to ``folder`` (resumed if there) as a run at λ = 0."""
    direct.sample(
        lm,
        prompt,
        n,
        completion_length,
        observables=[observable],
        seed=seed,
        batch_size=256,
        progress=False,
        out=folder,
    )
    return direct.to_inference_data(direct.load(folder), observable.__name__)


def _config(lm, prompt, completion_length, observable, biases, thresholds, **rest) -> dict:
    move = rest.pop("move")
    return {
        "model": lm.name,
        storage.FINGERPRINT_KEY: fingerprint(lm),
        "prompt": prompt if isinstance(prompt, str) else [int(i) for i in prompt],
        "completion_length": completion_length,
        "observable": observable.__name__,
        "biases": [float(b) for b in biases],
        "thresholds": [float(a) for a in thresholds],
        "move": json.dumps(dataclasses.asdict(move), default=str),
        **{
            key: (dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
            for key, value in rest.items()
        },
    }


def _read_history(folder: Path, config: dict) -> list[dict]:
    path = folder / _HISTORY
    if not path.is_file():
        return []
    arrays, saved = storage.load_with_config(path, ("history",))
    storage.check_same_config(saved, config, f"rounds folder {folder}")
    return json.loads(str(arrays["history"]))


def _write_history(folder: Path, config: dict, history: list[dict]) -> None:
    storage.save_arrays(folder / _HISTORY, {"config": json.dumps(config), "history": json.dumps(history)})


def first_round_tokens(
    n_rungs: int, n_chains: int, first_steps: int, completion_length: int, direct_fraction: float = 0.1
) -> float:
    """The expected tokens of round 0: K·M chains grown whole, then ``first_steps`` moves each regrowing
    (L + 1)/2 tokens on average (uniform cuts), with direct samples making up ``direct_fraction``."""
    tempering = (
        n_rungs * n_chains * completion_length * (1 + first_steps * (completion_length + 1) / (2 * completion_length))
    )
    return tempering / (1.0 - direct_fraction)


def precise(verdict: convergence.Verdict, max_relative_half_width: float) -> bool:
    """The verdict is complete and every interval is within ``max_relative_half_width`` of its estimate."""
    if math.isinf(max_relative_half_width):
        return verdict.complete
    return verdict.complete and bool(np.all(verdict.estimate.relative_half_width <= max_relative_half_width))


def _next_steps(done: int, proposed: int, spent: int, budget: int, tokens_per_step: float) -> int:
    """The steps of the next round: ``proposed``, or as many as the budget still pays for; 0 if too few to matter."""
    affordable = done + int((budget - spent) / tokens_per_step)
    steps = min(proposed, affordable)
    return steps if steps >= done + max(1, done // 4) else 0


def run_rounds(
    lm: CausalLM,
    prompt: str | Sequence[int],
    completion_length: int,
    observable: str | obs.Observable,
    biases: Sequence[float],
    n_chains: int,
    *,
    thresholds: Sequence[float],
    budget_tokens: float,
    folder: str | os.PathLike,
    side: str = "upper",
    move: tps.Move = tps.FORWARD_SHOOTING,
    first_steps: int = 100,
    growth: float = 2.0,
    direct_fraction: float = 0.1,
    swap_every: int = 1,
    seed: int = 0,
    criteria: convergence.Criteria = convergence.Criteria(),
    settings: reweighting.Settings = reweighting.Settings(rhat_threshold=math.inf),
    max_relative_half_width: float = math.inf,
    progress: bool = True,
) -> Rounds:
    """Parallel tempering over ``biases`` in rounds until the verdict on the ``side`` tail at ``thresholds``
    (A,) is complete or no further round fits in ``budget_tokens`` (module docstring).

    Chains start over-dispersed (:func:`rarelib.tps.run_tempering`); round r runs to
    ⌈first_steps · growth^r⌉ steps. settings: of every round's analysis; by default without the
    R-hat filter, since the verdict judges every rung by stricter criteria and flags the thresholds
    that rest on a failing one (the filter would instead drop rungs and break the overlap chain).
    max_relative_half_width: a complete verdict stops the rounds only once every interval's relative
    half-width is within it (e.g. 0.5 for estimates within ±50%). Returns :class:`Rounds`.
    """
    observable = obs.get_observable(observable)
    thresholds = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if thresholds.size == 0 or not np.isfinite(thresholds).all():
        raise ValueError(f"thresholds must be a non-empty sequence of finite numbers; got {thresholds!r}")
    logspace.check_side(side)
    if not budget_tokens > 0:
        raise ValueError(f"budget_tokens={budget_tokens!r}; use a positive number of tokens, e.g. 1e7")
    if not (isinstance(growth, (int, float)) and growth > 1.0):
        raise ValueError(f"growth={growth!r}; use a number above 1, e.g. 2 (each round doubles the steps)")
    if not max_relative_half_width > 0:
        raise ValueError(
            f"max_relative_half_width={max_relative_half_width!r}; use a positive number, e.g. 0.5 (or inf: no limit)"
        )
    if not 0.0 < direct_fraction < 1.0:
        raise ValueError(f"direct_fraction={direct_fraction!r}; use a number in (0, 1), e.g. 0.1")
    check_positive_int("first_steps", first_steps)
    seed = check_seed(seed)
    folder = storage.check_folder_path("folder", folder)
    config = _config(
        lm,
        prompt,
        completion_length,
        observable,
        biases,
        thresholds,
        n_chains=n_chains,
        side=side,
        move=move,
        first_steps=first_steps,
        growth=float(growth),
        direct_fraction=direct_fraction,
        swap_every=swap_every,
        seed=seed,
        criteria=criteria,
        settings=settings,
    )
    history = _read_history(folder, config)
    first = first_round_tokens(len(biases), n_chains, first_steps, completion_length, direct_fraction)
    if not history and first > budget_tokens:
        raise ValueError(
            f"budget_tokens={budget_tokens:.3g} cannot pay for the first round (about {first:.3g} tokens: "
            f"{len(biases)} rungs × {n_chains} chains × {first_steps} steps); raise it or lower n_chains, first_steps"
        )
    tempering_arguments = dict(
        prompt=prompt,
        completion_length=completion_length,
        observable=observable,
        biases=biases,
        n_chains=n_chains,
        swap_every=swap_every,
        seed=seed,
        record=(),
        move=move,
        checkpoint=folder / "tempering.npz",
        progress=progress,
    )
    index, n_steps, previous, directs = _resume(folder, history, observable, _round_steps(first_steps, growth, 0))
    while True:
        run = tps.run_tempering(lm, n_steps=n_steps, **tempering_arguments)
        wanted = math.ceil(
            direct_fraction / (1 - direct_fraction) * diagnostics.generated_tokens(run) / completion_length
        )
        drawn = sum(int(d.posterior["phi"].size) for d in directs)
        if wanted > drawn or not directs:
            round_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
            directs.append(
                direct_run(
                    lm,
                    prompt,
                    completion_length,
                    observable,
                    max(wanted - drawn, 1),
                    round_seed,
                    folder / f"direct-{index}",
                )
            )
        runs = [run, *directs]
        analysis, previous = _analysis(folder, runs, thresholds, settings, seed, index, previous)
        verdict = convergence.assess(analysis, previous, side=side, criteria=criteria, runs=[run])
        tokens = sum(diagnostics.generated_tokens(r) for r in runs)
        tokens_per_step = (tokens - n_chains * len(biases) * completion_length) / n_steps
        next_steps = _next_steps(
            n_steps, _round_steps(first_steps, growth, index + 1), tokens, budget_tokens, tokens_per_step
        )
        done = precise(verdict, max_relative_half_width)
        stopped = done or next_steps == 0
        history = history[:index] + [
            {
                "round": index,
                "n_steps": n_steps,
                "tokens": tokens,
                "converged": verdict.converged,
                "resolved": int(verdict.resolved.sum()),
                "thresholds": int(thresholds.size),
                "failures": verdict.failures,
                "precise": done,
                "next_steps": next_steps,
                "stopped": stopped,
            }
        ]
        _write_history(folder, config, history)
        if stopped:
            return Rounds(analysis, verdict, history, runs, int(budget_tokens))
        previous, index, n_steps = analysis, index + 1, next_steps


def _analysis(folder: Path, runs: list, thresholds, settings, seed: int, index: int, previous):
    """(analysis of round ``index``, the analysis it is judged against), read from ``folder`` if written there."""
    path, first_half = folder / f"analysis-{index}.nc", folder / "analysis-0-first-half.nc"
    if path.is_file() and (index > 0 or first_half.is_file()):
        return reweighting.Analysis.load(path), previous if index > 0 else reweighting.Analysis.load(first_half)
    rng = np.random.default_rng([seed, index])
    if index > 0:
        analysis = reweighting.analyze(runs, rng=rng, thresholds=thresholds, settings=settings, warn=False)
    else:
        analysis, previous = reweighting.first_half_comparison(
            runs, rng=rng, thresholds=thresholds, settings=settings, warn=False
        )
        previous.save(first_half)
    analysis.save(path)
    return analysis, previous


def _resume(folder: Path, history: list[dict], observable, first_steps: int):
    """(round to run, its steps, the previous round's analysis, the direct runs so far) from ``history``.

    A run that stopped is re-entered at its last round (its checkpoint holds exactly that round's steps);
    an interrupted one at the round after the last one finished.
    """
    if not history:
        return 0, first_steps, None, []
    last = history[-1]
    index = last["round"] if last["stopped"] else last["round"] + 1
    directs = [
        direct.to_inference_data(direct.load(folder / f"direct-{i}"), observable.__name__)
        for i in range(index)
        if (folder / f"direct-{i}").is_dir()
    ]
    previous = reweighting.Analysis.load(folder / f"analysis-{index - 1}.nc") if index > 0 else None
    return index, (history[index]["n_steps"] if last["stopped"] else last["next_steps"]), previous, directs

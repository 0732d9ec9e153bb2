"""The book's standard runs, cached on disk so that chapters share them.

A run is a function of (model, arguments, seed), so its cache key is a hash of exactly
those; the model enters through a fingerprint of its outputs, so a retrained model never
reuses stale runs. TPS runs are cached as their own completed checkpoints and direct runs
as their batch folders: an interrupted chapter resumes where it stopped, and a second
chapter asking for the same run reads it back instantly — also from another process running
at the same time, which waits for the first to finish instead of repeating its work.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rarelib import direct, observables, rounds, tps
from rarelib.models import REPO_ROOT, CausalLM, fingerprint

__all__ = [
    "annealed",
    "BOOK_GUIDES",
    "cached_estimate",
    "CACHE_DIR",
    "CACHE_FORMAT",
    "checkpoint_every",
    "direct_samples",
    "exclusive",
    "guided_move",
    "LOCK_POLL_S",
    "lock_timeout",
    "LOCK_TIMEOUT_S",
    "rounds_until_converged",
    "run_key",
    "tempering",
]

CACHE_DIR = REPO_ROOT / "_build" / "runs"


CACHE_FORMAT = 3
"""Version of the cached files; 2: checkpoints and batches record the model fingerprint (older ones are not reused);
3: prefill and scoring compute the logits of the needed positions only, and TPS proposals reuse the keys and values
that chains carry; both change log-probabilities in rounding, so the same seed gives another realisation."""


def _move_key(move: tps.Move) -> dict:
    """The move as a cached run's key records it: only what differs from forward shooting, guide and scale together."""
    key = {} if move.guide is None else {"guide": move.guide, "guide_scale": move.scale}
    if move.cuts != tps.FORWARD_SHOOTING.cuts:
        key["cuts"] = move.cuts
    if move.window is not None:
        key["window"] = move.window
    return key


def run_key(lm: CausalLM, **arguments) -> str:
    """Hash of the model fingerprint, the cache format and the run's arguments (JSON-serialisable values)."""
    text = json.dumps({"model": fingerprint(lm), "format": CACHE_FORMAT, **arguments}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


LOCK_TIMEOUT_S = 24 * 3600.0
"""Seconds :func:`exclusive` waits for another process's lock, unless ``RARELIB_LOCK_TIMEOUT_S`` is set."""
LOCK_POLL_S = 1.0


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``RARELIB_LOCK_TIMEOUT_S`` if set (a number > 0), else :data:`LOCK_TIMEOUT_S`."""
    text = os.environ.get("RARELIB_LOCK_TIMEOUT_S")
    if text is None:
        return LOCK_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise ValueError(f"RARELIB_LOCK_TIMEOUT_S must be a number of seconds > 0; got {text!r}")
    return seconds


@contextmanager
def exclusive(path: Path, timeout_s: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` + ``.lock``: two processes asking for one run compute it once.

    While another process holds the lock, says so on stderr once and waits; TimeoutError after ``timeout_s``
    seconds (default :func:`lock_timeout`).
    """
    timeout_s = lock_timeout() if timeout_s is None else timeout_s
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with open(lock, "w") as handle:
        _acquire(handle, lock, timeout_s)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle, lock: Path, timeout_s: float) -> None:
    """Take the exclusive lock of the open file ``handle`` (of ``lock``), waiting at most ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"waited {timeout_s:g} s for {lock}, held by another process computing the same "
                    "run; wait for it to finish, or stop it, or raise RARELIB_LOCK_TIMEOUT_S"
                ) from None
            if not announced:
                print(f"waiting for {lock}: another process is computing this run", file=sys.stderr, flush=True)
                announced = True
            time.sleep(min(LOCK_POLL_S, max(deadline - time.monotonic(), 0.0)))


def checkpoint_every(total_steps: int) -> int:
    """Steps between checkpoints of a cached run: 10, or 2% of a long run, so an interrupt loses little and
    writing stays a small share of the time."""
    return max(10, total_steps // 50)


BOOK_GUIDES = ("sentence ends", "temperature", "repeats")


def guided_move(lm: CausalLM, guide: str | None) -> tps.Move:
    """The TPS move of one of the book's guides; ``None``: forward shooting.

    ``"sentence ends"`` (for ARI): the tokens that can end a sentence, tilted by −λ, so that
    a push towards high ARI proposes longer sentences. ``"temperature"`` (for Log-Prob):
    regrown tokens at temperature 1/(1 − λ), the per-token share of the tilt p_M^{1−λ}.
    ``"repeats"`` (for Repeats): each regrown token repeats the previous one with its
    probability tilted by e^{−λ}, the per-token share of the tilt e^{−λ·Repeats}.
    """
    if guide is None:
        return tps.FORWARD_SHOOTING
    if guide == "sentence ends":
        return tps.Move(guide=observables.sentence_end_token_ids(lm), scale=-1.0)
    if guide in ("temperature", "repeats"):
        return tps.Move(guide=guide, scale=1.0)
    raise ValueError(f"guide must be None or one of {BOOK_GUIDES}; got {guide!r}")


def _run_arguments(prompt, completion_length, observable, biases, n_chains, seed, start, **rest) -> dict:
    """The keyword arguments of a TPS driver, as a cached run's key records them."""
    biases = [float(b) for b in biases]
    return dict(
        prompt=prompt,
        completion_length=completion_length,
        observable=observable,
        biases=biases,
        n_chains=n_chains,
        seed=seed,
        start=start,
        **rest,
    )


def _cached(driver, kind: str, lm: CausalLM, arguments: dict, move: tps.Move, total_steps: int, cache_dir) -> object:
    """``driver`` run with a checkpoint in ``cache_dir`` named by the run's key: resumed or reused when it exists."""
    key = run_key(lm, sampler=kind, **arguments, **_move_key(move))
    path = Path(cache_dir) / f"{kind}-{arguments['observable']}-{key}.npz"
    with exclusive(path):
        return driver(
            lm, checkpoint=path, progress=False, checkpoint_every=checkpoint_every(total_steps), move=move, **arguments
        )


def annealed(
    lm: CausalLM,
    prompt: str,
    completion_length: int,
    observable: str,
    biases: Sequence[float],
    steps_per_bias: int,
    n_chains: int,
    seed: int,
    cache_dir: str | os.PathLike = CACHE_DIR,
    start: str = "overdispersed",
    move: tps.Move = tps.FORWARD_SHOOTING,
    **options,
):
    """:func:`rarelib.tps.run_annealed`, cached in ``cache_dir``; ``options`` (record, keep_tokens)
    are passed on."""
    arguments = _run_arguments(
        prompt, completion_length, observable, biases, n_chains, seed, start, steps_per_bias=steps_per_bias, **options
    )
    return _cached(tps.run_annealed, "annealed", lm, arguments, move, steps_per_bias * len(biases), cache_dir)


def tempering(
    lm: CausalLM,
    prompt: str,
    completion_length: int,
    observable: str,
    biases: Sequence[float],
    n_steps: int,
    n_chains: int,
    seed: int,
    cache_dir: str | os.PathLike = CACHE_DIR,
    start: str = "overdispersed",
    move: tps.Move = tps.FORWARD_SHOOTING,
    **options,
):
    """:func:`rarelib.tps.run_tempering`, cached in ``cache_dir``; ``options`` (swap_every, record, ...)
    are passed on."""
    arguments = _run_arguments(
        prompt, completion_length, observable, biases, n_chains, seed, start, n_steps=n_steps, **options
    )
    return _cached(tps.run_tempering, "tempering", lm, arguments, move, n_steps, cache_dir)


def direct_samples(
    lm: CausalLM,
    prompt: str,
    completion_length: int,
    n: int,
    seed: int,
    cache_dir: str | os.PathLike = CACHE_DIR,
    **options,
) -> direct.DirectSamples:
    """:func:`rarelib.direct.sample` streamed to (and read back from) a folder in ``cache_dir``."""
    arguments = dict(prompt=prompt, completion_length=completion_length, n=n, seed=seed, **options)
    folder = Path(cache_dir) / f"direct-{run_key(lm, sampler='direct', **arguments)}"
    with exclusive(folder):
        direct.sample(lm, out=folder, progress=False, **arguments)
        return direct.load(folder)


def rounds_until_converged(
    lm: CausalLM,
    prompt: str | Sequence[int],
    completion_length: int,
    observable: str | observables.Observable,
    biases: Sequence[float],
    n_chains: int,
    seed: int,
    cache_dir: str | os.PathLike = CACHE_DIR,
    **options,
) -> rounds.Rounds:
    """:func:`rarelib.rounds.run_rounds` in a folder of ``cache_dir`` named by its arguments (the budget
    aside, so that a larger one continues the same rounds); ``options``: thresholds, budget_tokens, move, ..."""
    name = observable if isinstance(observable, str) else observable.__name__
    arguments = {key: value for key, value in options.items() if key not in ("budget_tokens", "progress")}
    key = run_key(
        lm,
        sampler="rounds",
        prompt=prompt,
        completion_length=completion_length,
        observable=name,
        biases=[float(b) for b in biases],
        n_chains=n_chains,
        seed=seed,
        **arguments,
    )
    folder = Path(cache_dir) / f"rounds-{name}-{key}"
    with exclusive(folder):
        return rounds.run_rounds(
            lm,
            prompt,
            completion_length,
            observable,
            biases,
            n_chains,
            seed=seed,
            folder=folder,
            progress=False,
            **options,
        )


_ESTIMATE_UNKEYED = ("budget_tokens", "target_relative_half_width", "progress", "checkpoint", "device", "dtype")
"""Arguments of :func:`rarelib.estimate` that do not name a cached estimate: the budget and the precision (a larger
budget, or a smaller target, continues the same estimate), and what does not change the result."""


def cached_estimate(
    lm: CausalLM,
    prompt: str | Sequence[int],
    observable: str | observables.Observable,
    cache_dir: str | os.PathLike = CACHE_DIR,
    **options,
):
    """:func:`rarelib.estimate` with its checkpoint in a folder of ``cache_dir`` named by its arguments.

    The name leaves out the budget and the target precision (:data:`_ESTIMATE_UNKEYED`), so a call with a
    larger ``budget_tokens`` continues the same pilot, ladder and rounds; a second process asking for the
    same estimate waits for the first (:func:`exclusive`). ``lm``: a loaded model; ``options``: thresholds,
    side, budget_tokens, completion_length, n_chains, seed, ... as :func:`rarelib.estimate` takes them.
    Returns its :class:`rarelib.estimation.Estimate`.
    """
    from rarelib import estimation  # estimation imports this module

    if "checkpoint" in options:
        raise ValueError("cached_estimate names its own checkpoint folder; call rarelib.estimate to choose one")
    name = observable if isinstance(observable, str) else observable.__name__
    keyed = {key: value for key, value in options.items() if key not in _ESTIMATE_UNKEYED}
    if keyed.get("thresholds") is not None:
        keyed["thresholds"] = np.atleast_1d(np.asarray(keyed["thresholds"], dtype=np.float64)).tolist()
    if keyed.get("move") is not None:
        keyed["move"] = _move_key(keyed["move"])
    if keyed.get("criteria") is not None:
        keyed["criteria"] = dataclasses.asdict(keyed["criteria"])
    if not isinstance(prompt, str):
        prompt = [int(i) for i in prompt]
    key = run_key(lm, sampler="estimate", prompt=prompt, observable=name, **keyed)
    folder = Path(cache_dir) / f"estimate-{name}-{key}"
    with exclusive(folder):
        return estimation.estimate(lm, prompt, observable, checkpoint=folder, progress=False, **options)

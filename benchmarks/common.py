"""What every benchmark shares: the machine, clocks, interleaved rounds, tables, tail reach and JSON results.

Not a benchmark itself (``make bench`` runs it as a script, which does nothing). The scripts
beside it import it as ``common`` (Python puts a script's folder first on ``sys.path``).

Timing on a shared machine: every contender of one comparison runs in the same process, in
turn, round after round (:func:`interleaved`), so that a burst of load elsewhere hits all of
them; each measurement records wall-clock seconds and this process's CPU seconds (all
threads). With one torch thread, CPU seconds are what an idle machine would take; the load
average before and after the run goes into every JSON file (:func:`machine`, :func:`write_results`).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import torch

from rarelib.exact import solvable, validation

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("numpy", "scipy", "torch", "transformers", "pymbar", "arviz", "rarelib")
MAX_RELATIVE_HALF_WIDTH = 0.5  # a tail estimate "reached": its 96% interval's half-width ≤ half the estimate
PAPER_PROMPT = (
    "Once upon a time, in a big forest, there lived a little girl named Holly. "
    "Holly played with her tractor."
)  # the chapters' standard prompt for the default model

Result = TypeVar("Result")
_IMPORTED = time.perf_counter()  # wall clock of the whole run: scripts import this module first


# --------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor()
    )


def memory_gib() -> float | None:
    """Total memory in GiB from /proc/meminfo (None where there is none)."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    total_kib = next(int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal"))
    return total_kib / 2**20


def package_version(package: str) -> str | None:
    """The installed version of ``package``, or None if it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine() -> dict:
    """The machine and software as the run starts: CPU, cores, memory, torch threads, load average, versions."""
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{package: package_version(package) for package in PACKAGES},
    }


# --------------------------------------------------------------------------- clocks


class Seconds(NamedTuple):
    """Wall-clock and CPU seconds (CPU: this process, all threads)."""

    wall: float
    cpu: float


def timed(run: Callable[..., Result], *args, **kwargs) -> tuple[Seconds, Result]:
    """Run ``run(*args, **kwargs)`` once; its wall and CPU seconds, and what it returned."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run(*args, **kwargs)
    return Seconds(time.perf_counter() - wall, time.process_time() - cpu), result


def interleaved(
    contenders: Mapping[str, Callable[[], Result]], rounds: int, warm_up: bool = True
) -> dict[str, list[Result]]:
    """Name → the ``rounds`` results of each contender, run in turn within every round (after one warm-up call each)."""
    if warm_up:
        for run in contenders.values():
            run()
    results = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            results[name].append(run())
    return results


def spread(values: Sequence[float]) -> dict:
    """Median, min, max and every value of a repeated measurement."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": list(values)}


# --------------------------------------------------------------------------- tables


def format_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence]) -> str:
    """A plain-text table: columns are (header, format spec such as ``".2f"``; ``"s"``: left-aligned text);
    None prints as ``—``."""
    cells = [
        [("—" if value is None else format(value, spec)) for value, (_, spec) in zip(row, columns)] for row in rows
    ]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, (header, _) in enumerate(columns)]
    aligns = ["<" if spec == "s" else ">" for _, spec in columns]
    return "\n".join(
        "  ".join(f"{text:{align}{width}}" for text, align, width in zip(line, aligns, widths))
        for line in [[header for header, _ in columns], *cells]
    )


# --------------------------------------------------------------------------- tail reach


# --------------------------------------------------------------------------- the solvable model

LOOP_PROBLEM = {"vocab_size": 5, "stay": 0.1, "entry": 0.005, "model_seed": 1, "prompt": "bca", "length": 14}


def loop_problem(
    vocab_size: int, stay: float, entry: float, model_seed: int, prompt: str, length: int
) -> validation.Problem:
    """The benchmarks' solvable problem: φ = number of loop tokens in a completion of a repetition-loop Markov LM.

    See :func:`rarelib.exact.validation.repetition_loop_lm`; with the defaults ``LOOP_PROBLEM``, P(φ ≥ a) falls
    roughly like 0.1^a down to P(φ = 14) = 1e-14.
    """
    model = validation.repetition_loop_lm(
        vocab_size, stay, entry, np.random.default_rng(model_seed), name=f"loop-v{vocab_size}-s{model_seed}"
    )
    return validation.Problem(model, prompt, length, solvable.AdditiveObservable("token_count", {0}))


def add_loop_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """Options --vocab-size, --stay, --entry, --model-seed, --prompt, --length with the ``LOOP_PROBLEM`` defaults."""
    parser.add_argument("--vocab-size", type=int, default=LOOP_PROBLEM["vocab_size"])
    parser.add_argument(
        "--stay", type=float, default=LOOP_PROBLEM["stay"], help="probability that the loop token follows itself"
    )
    parser.add_argument(
        "--entry", type=float, default=LOOP_PROBLEM["entry"], help="probability that it follows any other token"
    )
    parser.add_argument("--model-seed", type=int, default=LOOP_PROBLEM["model_seed"])
    parser.add_argument("--prompt", default=LOOP_PROBLEM["prompt"], help="text over the symbols a (loop), b, c, d, e")
    parser.add_argument("--length", type=int, default=LOOP_PROBLEM["length"], help="completion length L")


def loop_problem_from(args: argparse.Namespace) -> validation.Problem:
    """:func:`loop_problem` with the options of :func:`add_loop_problem_arguments`."""
    return loop_problem(args.vocab_size, args.stay, args.entry, args.model_seed, args.prompt, args.length)


# --------------------------------------------------------------------------- command line and results


def parser(description: str, output: Path) -> argparse.ArgumentParser:
    """An argument parser with --smoke (a tiny run, for the tests), --threads and --output."""
    result = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--smoke", action="store_true", help="a tiny run that only checks that the script works")
    result.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for small models)")
    result.add_argument("--output", type=Path, default=output, help="JSON file to write")
    return result


def scratch_folder(prefix: str) -> Path:
    """A new temporary folder, removed when the process exits: a smoke run starts afresh and leaves nothing."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def start(args: argparse.Namespace) -> dict:
    """Set the torch thread count from ``args.threads`` and describe the machine (call before any work)."""
    if args.threads < 1:
        raise ValueError(f"--threads must be a positive integer; got {args.threads}")
    torch.set_num_threads(args.threads)
    return machine()


def write_results(path: Path, benchmark: str, settings: Mapping, results, machine_at_start: Mapping) -> Path:
    """Write one benchmark's JSON (atomically): its settings, results, the machine with the load average at start
    and end, and the process's wall and CPU seconds so far. Arrays become lists, non-finite numbers null."""
    seconds = Seconds(time.perf_counter() - _IMPORTED, time.process_time())
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in settings.items()}
    report = {
        "benchmark": benchmark,
        "settings": settings,
        "machine": {**machine_at_start, "load_average_at_end": list(os.getloadavg())},
        "run_seconds": seconds._asdict(),
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")  # written whole, then renamed: a reader never sees half a file
    partial.write_text(json.dumps(validation.json_ready(report), indent=2) + "\n")
    os.replace(partial, path)
    print(f"wrote {path} ({seconds.wall:.0f} s wall, {seconds.cpu:.0f} s CPU)")
    return path

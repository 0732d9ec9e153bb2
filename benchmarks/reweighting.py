"""Benchmark of the MBAR solve: time and peak memory against total samples and number of states.

Synthetic data: one parallel-tempering-like run on a Gaussian ladder (base N(0, 1), tilted
law N(−λ, 1), λ_k = −k for k = 0..K−1, so neighbours overlap well), 10 chains of exact
draws, no burn-in. Timed: :func:`rarelib.reweighting.solve_mbar` (u_kn and the MBAR
solve from a zero start) and, separately, pymbar's analytic uncertainties of log Z plus
the overlap matrix. Peak memory is what tracemalloc saw (numpy's allocations included)
during both. Writes benchmarks/results/reweighting.json.

    python benchmarks/reweighting.py           # 1e4 … 4e6 samples, 2 … 40 states (a few minutes)
    python benchmarks/reweighting.py --quick   # up to 1e5 samples and 10 states
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from importlib.metadata import version
from pathlib import Path

import numpy as np

from rarelib import reweighting, storage

N_CHAINS = 10
SAMPLE_SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000, 4_000_000)
STATE_COUNTS = (2, 5, 10, 20, 40)
STATES_FOR_SIZE_SWEEP = 10
SAMPLES_FOR_STATE_SWEEP = 100_000
QUICK_MAX_SAMPLES = 100_000
QUICK_MAX_STATES = 10
RESULTS = Path(__file__).resolve().parent / "results" / "reweighting.json"


def ladder_selection(n_samples: int, n_states: int, rng: np.random.Generator) -> reweighting.Selection:
    """Pooled samples of a Gaussian ladder run, n_samples in all over n_states states."""
    lambdas = -np.arange(n_states, dtype=np.float64)
    n_draws = n_samples // (N_CHAINS * n_states)
    phi = rng.normal(size=(N_CHAINS, n_draws, n_states)) - lambdas
    run = storage.make_run({"phi": phi}, lambdas, attrs={"observable": "x", "sampler": "parallel_tempering"})
    settings = reweighting.Settings(burn_in=0.0)
    return reweighting.select_samples([reweighting.load_chains(run)], settings)


def measure(n_samples: int, n_states: int, rng: np.random.Generator) -> dict:
    """Seconds for the solve and for uncertainties + overlap, and the peak MiB of both."""
    selection = ladder_selection(n_samples, n_states, rng)
    tracemalloc.start()
    start = time.perf_counter()
    fit = reweighting.solve_mbar(selection)
    solved = time.perf_counter()
    log_z, log_z_std = reweighting.sampled_log_partition(fit)
    reweighting.overlap_matrix(fit)
    finished = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    exact = fit.states**2 / 2
    return {
        "samples": int(selection.samples_per_state.sum()),
        "states": n_states,
        "solve_s": solved - start,
        "uncertainty_and_overlap_s": finished - solved,
        "peak_mib": peak / 2**20,
        "max_log_z_error_in_std": float(np.max(np.abs(log_z - exact)[log_z_std > 0] / log_z_std[log_z_std > 0])),
    }


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())


def machine() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{package: version(package) for package in ("numpy", "scipy", "pymbar", "rarelib")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"stop at {QUICK_MAX_SAMPLES:g} samples and {QUICK_MAX_STATES} states")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args()
    sizes = [n for n in SAMPLE_SIZES if not args.quick or n <= QUICK_MAX_SAMPLES]
    counts = [k for k in STATE_COUNTS if not args.quick or k <= QUICK_MAX_STATES]
    rng = np.random.default_rng(0)
    info = machine()
    print(f"{'samples':>9} {'states':>6} {'solve s':>9} {'unc+ovl s':>9} {'peak MiB':>9} {'max |err|/σ':>11}")
    rows = []
    for sweep, cases in (("samples", [(n, STATES_FOR_SIZE_SWEEP) for n in sizes]), ("states", [(SAMPLES_FOR_STATE_SWEEP, k) for k in counts])):
        for n_samples, n_states in cases:
            row = {"sweep": sweep, **measure(n_samples, n_states, rng)}
            rows.append(row)
            print(
                f"{row['samples']:>9} {row['states']:>6} {row['solve_s']:>9.3f} {row['uncertainty_and_overlap_s']:>9.3f} "
                f"{row['peak_mib']:>9.1f} {row['max_log_z_error_in_std']:>11.2f}",
                flush=True,
            )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "reweighting", "quick": args.quick, "solver": reweighting.MBAR_SOLVER, "machine": info, "rows": rows}
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

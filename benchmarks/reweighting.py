"""Benchmark of the MBAR solve: time and peak memory against total samples and number of states.

Synthetic data: one parallel-tempering-like run on a Gaussian ladder (base N(0, 1), tilted
law N(−λ, 1), λ_k = −k for k = 0..K−1, so neighbours overlap well), 10 chains of exact
draws, no burn-in. Timed (wall and CPU seconds): :func:`rarelib.reweighting.solve_mbar`
(u_kn and the MBAR solve from its exponential-averaging start, as in every analysis); the
same solve warm-started from the solution, as each of an analysis's bootstrap replicas is
(so an analysis with R replicas costs about one cold solve plus R warm ones); and pymbar's
analytic uncertainties of log Z plus the overlap matrix. Peak memory is what tracemalloc saw
(numpy's allocations included) during the cold solve, the uncertainties and the overlap.
Writes benchmarks/results/reweighting.json.

    python benchmarks/reweighting.py           # 1e4 … 4e6 samples, 2 … 40 states (≈ 3 CPU-minutes, 3.5 GiB)
    python benchmarks/reweighting.py --smoke   # up to 1e4 samples and 5 states
"""

from __future__ import annotations

import tracemalloc

import common  # noqa: I001  (first: it starts the run's wall clock)
import numpy as np

from rarelib import reweighting, storage

N_CHAINS = 10
SAMPLE_SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000, 4_000_000)
STATE_COUNTS = (2, 5, 10, 20, 40)
STATES_FOR_SIZE_SWEEP = 10
SAMPLES_FOR_STATE_SWEEP = 100_000
SMOKE = {
    "sample_sizes": (2_000, 10_000),
    "state_counts": (2, 5),
    "states_for_size_sweep": 5,
    "samples_for_state_sweep": 10_000,
}
RESULTS = common.RESULTS_DIR / "reweighting.json"


def ladder_selection(n_samples: int, n_states: int, rng: np.random.Generator) -> reweighting.Selection:
    """Pooled samples of a Gaussian ladder run, n_samples in all over n_states states."""
    lambdas = -np.arange(n_states, dtype=np.float64)
    n_draws = n_samples // (N_CHAINS * n_states)
    phi = rng.normal(size=(N_CHAINS, n_draws, n_states)) - lambdas
    run = storage.make_run({"phi": phi}, lambdas, attrs={"observable": "x", "sampler": "parallel_tempering"})
    settings = reweighting.Settings(burn_in=0.0)
    return reweighting.select_samples([reweighting.load_chains(run)], settings)


def measure(n_samples: int, n_states: int, rng: np.random.Generator) -> dict:
    """Wall and CPU seconds of the cold solve, a warm solve and uncertainties + overlap; peak MiB; accuracy."""
    selection = ladder_selection(n_samples, n_states, rng)
    tracemalloc.start()
    solve, fit = common.timed(lambda: reweighting.solve_mbar(selection))
    uncertainty, (log_z, log_z_std) = common.timed(
        lambda: (reweighting.sampled_log_partition(fit), reweighting.overlap_matrix(fit))[0]
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    warm, _ = common.timed(lambda: reweighting.solve_mbar(selection, reweighting.log_partition(fit, fit.states)))
    exact = fit.states**2 / 2
    resolved = log_z_std > 0
    return {
        "samples": int(selection.samples_per_state.sum()),
        "states": n_states,
        **{
            f"{name}_{clock}_s": getattr(seconds, clock)
            for name, seconds in (("solve", solve), ("warm_solve", warm), ("uncertainty_and_overlap", uncertainty))
            for clock in ("wall", "cpu")
        },
        "peak_mib": peak / 2**20,
        "max_log_z_error_in_std": float(np.max(np.abs(log_z - exact)[resolved] / log_z_std[resolved])),
    }


def main() -> None:
    parser = common.parser(__doc__, RESULTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-samples",
        type=float,
        default=max(SAMPLE_SIZES),
        help="leave out the sample sizes above this (the largest needs ≈ 3.5 GiB)",
    )
    args = parser.parse_args()
    sizes, counts, states_for_sizes, samples_for_states = (
        SMOKE.values() if args.smoke else (SAMPLE_SIZES, STATE_COUNTS, STATES_FOR_SIZE_SWEEP, SAMPLES_FOR_STATE_SWEEP)
    )
    sizes = [n for n in sizes if n <= args.max_samples]
    machine = common.start(args)
    rng = np.random.default_rng(args.seed)
    columns = [
        ("sweep", "s"),
        ("samples", "d"),
        ("states", "d"),
        ("solve CPU-s", ".3f"),
        ("warm CPU-s", ".3f"),
        ("unc+ovl CPU-s", ".3f"),
        ("peak MiB", ".1f"),
        ("max |err|/σ", ".2f"),
    ]
    rows = []
    for sweep, cases in (
        ("samples", [(n, states_for_sizes) for n in sizes]),
        ("states", [(samples_for_states, k) for k in counts]),
    ):
        for n_samples, n_states in cases:
            rows.append({"sweep": sweep, **measure(n_samples, n_states, rng)})
    print(
        common.format_table(
            columns,
            [
                (
                    row["sweep"],
                    row["samples"],
                    row["states"],
                    row["solve_cpu_s"],
                    row["warm_solve_cpu_s"],
                    row["uncertainty_and_overlap_cpu_s"],
                    row["peak_mib"],
                    row["max_log_z_error_in_std"],
                )
                for row in rows
            ],
        )
    )
    settings = {**vars(args), "n_chains": N_CHAINS, "solver": reweighting.MBAR_SOLVER}
    common.write_results(args.output, "reweighting", settings, {"rows": rows}, machine)


if __name__ == "__main__":
    main()

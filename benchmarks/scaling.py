"""Scaling of TPS: the cost of a step against completion length and against the number of chains.

Two sweeps on one model, every configuration run in turn within each round
(:func:`common.interleaved`), rounds repeated: TPS steps at λ = 0 with uniform cuts
(:func:`rarelib.tps.build_kernel`, as in ``sampling.py``) for completion lengths L (default
32, 64, 100, 128) at 64 chains, and for 8 … 256 chains at L = 64. Reports CPU-seconds per
step, regrown tokens per CPU-second and the fraction of fed token positions that were
regrown tokens (medians, min–max over rounds). Writes benchmarks/results/scaling.json.

    python benchmarks/scaling.py           # ≈ 2 CPU-minutes
    python benchmarks/scaling.py --smoke   # a few seconds
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import tempfile
from pathlib import Path

import common  # noqa: I001  (first: it starts the run's wall clock)
import torch
from sampling import load_model, measure_tps

from rarelib import distributed, generation
from rarelib.exact import validation

RESULTS = common.RESULTS_DIR / "scaling.json"


def summarize(measured: list, steps: int) -> dict:
    """CPU-seconds per step, regrown tokens per CPU-second (spreads over rounds) and the useful fraction."""
    return {
        "cpu_s_per_step": common.spread([seconds.cpu / steps for seconds, _, _ in measured]),
        "wall_s_per_step": common.spread([seconds.wall / steps for seconds, _, _ in measured]),
        "tokens_per_cpu_s": common.spread([tokens / seconds.cpu for seconds, tokens, _ in measured]),
        "useful_fraction": statistics.mean(tokens / positions for _, tokens, positions in measured),
    }


def dask_plan(args) -> distributed.Plan:
    """The fixed work of the Dask comparison: ``dask_sets`` replica sets of 2 chains on a 4-rung Log-Prob ladder."""
    return distributed.Plan(
        model=args.model,
        prompt=common.PAPER_PROMPT,
        completion_length=args.dask_length,
        observable="logprob",
        biases=(0.0, -0.05, -0.1, -0.2),
        n_steps=args.dask_steps,
        n_chains=2,
        n_sets=args.dask_sets,
        seed=args.seed,
        record=("logprob",),
        checkpoint_every=args.dask_steps,
    )


def run_in_fresh_folder(plan: distributed.Plan, client) -> common.Seconds:
    """Wall and CPU seconds (CPU: this process only) of ``distributed.run`` into a new temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        seconds, _ = common.timed(distributed.run, plan, Path(folder) / "run", client)
    return seconds


def measure_dask(args) -> dict:
    """In-process against LocalClusters of 1 and 2 workers on one plan: wall seconds, speedup, overhead per task."""
    plan = dask_plan(args)
    distributed.check_plan(plan)  # loads the model here, as warm-up
    machine = common.machine()
    load_before = os.getloadavg()
    clients, start_s = {}, {}
    for workers in (1, 2):
        start_s[workers], clients[workers] = common.timed(distributed.make_client, f"local:{workers}")
        clients[workers].run(distributed.check_plan, plan)  # imports and model loading, outside the timings
    contenders = {0: lambda: run_in_fresh_folder(plan, None)}
    contenders.update({workers: (lambda c=client: run_in_fresh_folder(plan, c)) for workers, client in clients.items()})
    measured = common.interleaved(contenders, args.dask_rounds, warm_up=False)
    for client in clients.values():
        client.close()
    walls = {workers: [seconds.wall for seconds in rounds] for workers, rounds in measured.items()}
    base = statistics.median(walls[0])
    rows = [
        {
            "runner": "in-process" if workers == 0 else f"LocalCluster, {workers} worker(s)",
            "workers": workers,
            "wall_s": common.spread(values),
            "speedup": base / statistics.median(values),
            "cluster_start_s": None if workers == 0 else start_s[workers].wall,
        }
        for workers, values in walls.items()
    ]
    load = [max(a, b) for a, b in zip(load_before, os.getloadavg())]
    cores = os.cpu_count()
    return {
        "machine": {**machine, "load_average_at_end": list(os.getloadavg())},
        "settings": {name: value for name, value in vars(args).items() if name.startswith("dask") or name == "seed"},
        "plan": {**dataclasses.asdict(plan), "tasks": len(plan.tasks)},
        "rows": rows,
        "overhead_per_task_s": (statistics.median(walls[1]) - base) / len(plan.tasks),
        "load_average_max": load,
        "note": (
            f"shared machine: load average up to {max(load):.1f} on {cores} cores during the Dask runs (other jobs), "
            "so the workers competed for the cores and the speedup understates an idle machine's"
            if max(load) > cores
            else f"load average up to {max(load):.1f} on {cores} cores during the Dask runs"
        ),
    }


def print_dask(results: dict, plan_steps: int) -> None:
    print(f"\nDask runner: {results['plan']['tasks']} replica sets × {plan_steps} steps; median (min–max) wall seconds")
    columns = [("runner", "s"), ("wall s", ".1f"), ("min–max", "s"), ("speedup", ".2f"), ("start s", ".1f")]
    print(
        common.format_table(
            columns,
            [
                (
                    row["runner"],
                    row["wall_s"]["median"],
                    f"{row['wall_s']['min']:.1f}–{row['wall_s']['max']:.1f}",
                    row["speedup"],
                    row["cluster_start_s"],
                )
                for row in results["rows"]
            ],
        )
    )
    print(f"overhead per task (1 worker against in-process): {results['overhead_per_task_s']:.2f} s; {results['note']}")


def update_dask_entry(args) -> None:
    """Measure the Dask runner and replace the ``dask`` entry of an existing results file, keeping the sweeps."""
    if not args.output.is_file():
        raise FileNotFoundError(f"--dask-only updates {args.output}, which does not exist; run the whole script first")
    report = json.loads(args.output.read_text())
    dask = measure_dask(args)
    print_dask(dask, args.dask_steps)
    report["results"]["dask"] = dask
    args.output.write_text(json.dumps(validation.json_ready(report), indent=2) + "\n")
    print(f"updated the 'dask' entry of {args.output}")


def main() -> None:
    parser = common.parser(__doc__, RESULTS)
    parser.add_argument("--model", default="default", help="'default', a model folder or hub id, or 'random'")
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 100, 128])
    parser.add_argument("--chains", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--chains-for-lengths", type=int, default=64, help="chains in the length sweep")
    parser.add_argument("--length-for-chains", type=int, default=64, help="completion length in the chains sweep")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tps-steps", type=int, default=4, help="TPS steps per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dask-sets", type=int, default=4, help="replica sets (tasks) of the Dask comparison")
    parser.add_argument("--dask-steps", type=int, default=30, help="tempering steps per replica set")
    parser.add_argument("--dask-length", type=int, default=32, help="completion length of the Dask comparison")
    parser.add_argument("--dask-rounds", type=int, default=1)
    parser.add_argument(
        "--dask-only", action="store_true", help="measure only the Dask runner, into the 'dask' entry of --output"
    )
    args = parser.parse_args()
    if args.smoke:
        args.lengths, args.chains, args.chains_for_lengths, args.length_for_chains = [4, 8], [2, 4], 2, 4
        args.rounds, args.tps_steps = 1, 1
        args.dask_sets, args.dask_steps, args.dask_length, args.dask_rounds = 2, 2, 4, 1
    if args.model == "random":
        raise ValueError("--model random cannot be loaded by the Dask workers; pass 'default' or a model folder")
    machine = common.start(args)
    if args.dask_only:
        update_dask_entry(args)
        return
    lm = load_model(args.model)
    prompt_ids = generation.prompt_token_ids(lm, common.PAPER_PROMPT)
    for length in {*args.lengths, args.length_for_chains}:
        generation.check_completion_length(lm, len(prompt_ids), length)
    generator = torch.Generator().manual_seed(args.seed)
    configurations = [("length", args.chains_for_lengths, length) for length in args.lengths] + [
        ("chains", chains, args.length_for_chains) for chains in args.chains
    ]
    measure_tps(lm, prompt_ids, min(args.chains), min(args.lengths), 1, generator)  # one warm-up call suffices
    measured = common.interleaved(
        {
            (sweep, chains, length): (
                lambda chains=chains, length=length: measure_tps(
                    lm, prompt_ids, chains, length, args.tps_steps, generator
                )
            )
            for sweep, chains, length in configurations
        },
        args.rounds,
        warm_up=False,
    )

    rows = [
        {"sweep": sweep, "chains": chains, "completion_length": length, **summarize(rounds, args.tps_steps)}
        for (sweep, chains, length), rounds in measured.items()
    ]
    print(
        f"TPS steps on {lm.name}, {torch.get_num_threads()} torch thread(s); median (min–max) of {args.rounds} "
        f"interleaved rounds of {args.tps_steps} steps"
    )
    columns = [
        ("sweep", "s"),
        ("chains", "d"),
        ("L", "d"),
        ("CPU-s/step", ".3f"),
        ("min–max", "s"),
        ("tokens/CPU-s", ".0f"),
        ("useful/fed", ".2f"),
    ]
    print(
        common.format_table(
            columns,
            [
                (
                    row["sweep"],
                    row["chains"],
                    row["completion_length"],
                    row["cpu_s_per_step"]["median"],
                    f"{row['cpu_s_per_step']['min']:.3f}–{row['cpu_s_per_step']['max']:.3f}",
                    row["tokens_per_cpu_s"]["median"],
                    row["useful_fraction"],
                )
                for row in rows
            ],
        )
    )
    dask = measure_dask(args)
    print_dask(dask, args.dask_steps)
    settings = {**vars(args), "model": lm.name, "prompt": common.PAPER_PROMPT, "prompt_tokens": len(prompt_ids)}
    common.write_results(args.output, "scaling", settings, {"rows": rows, "dask": dask}, machine)


if __name__ == "__main__":
    main()

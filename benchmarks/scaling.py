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

import statistics

import common  # noqa: I001  (first: it starts the run's wall clock)
import torch
from sampling import load_model, measure_tps

from rarelib import generation

RESULTS = common.RESULTS_DIR / "scaling.json"


def summarize(measured: list, steps: int) -> dict:
    """CPU-seconds per step, regrown tokens per CPU-second (spreads over rounds) and the useful fraction."""
    return {
        "cpu_s_per_step": common.spread([seconds.cpu / steps for seconds, _, _ in measured]),
        "wall_s_per_step": common.spread([seconds.wall / steps for seconds, _, _ in measured]),
        "tokens_per_cpu_s": common.spread([tokens / seconds.cpu for seconds, tokens, _ in measured]),
        "useful_fraction": statistics.mean(tokens / positions for _, tokens, positions in measured),
    }


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
    args = parser.parse_args()
    if args.smoke:
        args.lengths, args.chains, args.chains_for_lengths, args.length_for_chains = [4, 8], [2, 4], 2, 4
        args.rounds, args.tps_steps = 1, 1
    machine = common.start(args)
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
    settings = {**vars(args), "model": lm.name, "prompt": common.PAPER_PROMPT, "prompt_tokens": len(prompt_ids)}
    common.write_results(args.output, "scaling", settings, {"rows": rows}, machine)


if __name__ == "__main__":
    main()

"""Exact validation: annealed TPS + MBAR (and parallel tempering) against a solvable model's exact tails.

The model (:func:`rarelib.exact.validation.repetition_loop_lm`): an order-1 Markov LM over 5 tokens whose
token 0 is a repetition loop — it follows itself with probability 0.1 and any other token with
probability 0.005; the other rows are random (Dirichlet). Prompt "bca" ends in the loop token;
φ = the number of loop tokens in a completion of 14 tokens. Under direct sampling
P(φ ≥ a) falls roughly like 0.1^a: P(φ ≥ 13) ≈ 1.6e-13, P(φ = 14) = 1e-14, far beyond the ~1e-7
that direct sampling with the same token budget can see. The exact law comes from
:func:`rarelib.exact.solvable.exact_distribution`.

The samplers run unchanged through the ``CausalLM`` interface: a bias ladder chosen by
:func:`rarelib.exact.validation.bias_ladder` from the exact tilted means (one tilted standard deviation
apart, up to ⟨φ⟩ = 3: under every tilt the loop length stays roughly geometric, so the last bias
still puts about 1% of its samples at φ ≥ 13), TPS over it, direct samples as
λ = 0, MBAR with the paper's settings (10% burn-in, R-hat < 1.1, 100-replica chain bootstrap, 96%
intervals). Acceptance (per sampler): the exact value inside the 96% interval at ≥ 90% of the
thresholds where TPS + MBAR has data, and |log10(estimate/exact)| ≤ 0.3 at the smallest tail it
reaches, which must be ≤ 1e-12. Writes benchmarks/results/exact_validation.json.

Also the reach of each estimator (:func:`rarelib.logspace.reach`): the smallest tail estimated with a 96%
interval no wider than ±50% of the estimate.

    python benchmarks/exact_validation.py                      # both samplers: ≈ 6 CPU-minutes
    python benchmarks/exact_validation.py --samplers annealed_tps --steps 5000
    python benchmarks/exact_validation.py --guided --target-mean 11   # guided moves, a longer ladder
    python benchmarks/exact_validation.py --smoke              # a few seconds
"""

from __future__ import annotations

import common  # noqa: I001  (first: it starts the run's wall clock)
import numpy as np

from rarelib import logspace, tps
from rarelib.exact import validation

RESULTS = common.RESULTS_DIR / "exact_validation.json"
MIN_COVERAGE = 0.9
MAX_DEEPEST_LOG10 = -12.0
MAX_ABS_LOG10_RATIO = 0.3
SMOKE = {"steps": 400, "chains": 8, "direct": 1000, "thin": 4, "samplers": ["parallel_tempering"]}


def arguments():
    parser = common.parser(__doc__.splitlines()[0], RESULTS)
    common.add_loop_problem_arguments(parser)
    parser.add_argument("--target-mean", type=float, default=3.0, help="⟨φ⟩ at the last bias of the ladder")
    parser.add_argument("--spacing", type=float, default=1.0, help="ladder spacing in tilted standard deviations")
    parser.add_argument("--samplers", nargs="+", default=list(validation.SAMPLERS), choices=validation.SAMPLERS)
    parser.add_argument("--steps", type=int, default=20000, help="draws per bias and chain")
    parser.add_argument("--chains", type=int, default=32)
    parser.add_argument("--direct", type=int, default=20000, help="direct samples used as the λ = 0 state")
    parser.add_argument("--thin", type=int, default=20, help="keep every thin-th TPS draw for MBAR")
    parser.add_argument(
        "--guided",
        action="store_true",
        help="guided moves: regrown tokens tilted towards the loop token (rarelib.tps); default forward shooting",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    return args


def acceptance(summary: dict) -> dict:
    """The issue's acceptance criteria, each with its measured value."""
    deepest = summary["deepest_log10_exact"]
    ratio = summary["deepest_log10_ratio"]
    checks = {
        "coverage_at_least_0.9": summary["coverage"] >= MIN_COVERAGE,
        "deepest_tail_at_most_1e-12": deepest is not None and deepest <= MAX_DEEPEST_LOG10,
        "deepest_abs_log10_ratio_at_most_0.3": ratio is not None and abs(ratio) <= MAX_ABS_LOG10_RATIO,
    }
    return {**checks, "passed": all(checks.values())}


def reach_summary(tails: validation.TailComparison) -> dict:
    """The estimator's reach (threshold, exact, estimate, log10 ratio, covered; None if nothing is reached)
    and, at every threshold, whether it is reached and the relative half-width of its interval."""
    index = logspace.reach_index(tails.estimate, common.MAX_RELATIVE_HALF_WIDTH)
    at_reach = {
        "threshold": tails.thresholds,
        "log10_exact": tails.log10_exact,
        "log10_estimate": tails.log10_estimate,
        "log10_ratio": tails.log10_ratio,
        "covered": tails.covered,
    }
    return {
        "reach": {name: None if index < 0 else values[index] for name, values in at_reach.items()},
        "reached": logspace.reached(tails.estimate, common.MAX_RELATIVE_HALF_WIDTH),
        "relative_half_width": tails.estimate.relative_half_width,
    }


def main() -> None:
    args = arguments()
    machine = common.start(args)
    problem = common.loop_problem_from(args)
    model = problem.model
    ladder = validation.bias_ladder(problem.exact_tilted_mean, args.target_mean, args.spacing)
    print(
        f"model {model.name}: stay={args.stay}, entry={args.entry}; prompt {args.prompt!r}, L={args.length}, "
        f"φ = count of {model.symbols[0]!r}; ⟨φ⟩_0 = {float(problem.exact_tilted_mean(0.0)):.3f}"
    )
    means = problem.exact_tilted_mean(ladder)
    print(f"ladder λ = {np.round(ladder, 4).tolist()}, ⟨φ⟩_λ = {np.round(means, 2).tolist()}\n")
    move = tps.Move(guide=sorted(problem.observable.tokens)) if args.guided else tps.FORWARD_SHOOTING
    results = []
    for sampler in args.samplers:
        seconds, outcome = common.timed(
            validation.validate,
            problem,
            ladder,
            sampler=sampler,
            n_steps=args.steps,
            n_chains=args.chains,
            n_direct=args.direct,
            seed=args.seed,
            thin=args.thin,
            move=move,
            warn=False,
        )
        summary = outcome.to_dict()
        checks = acceptance(summary)
        segments = outcome.analysis.segments
        results.append(
            {
                **summary,
                "acceptance": checks,
                "seconds": seconds._asdict(),
                "segment_bias": segments.bias,
                "rhat": segments.rhat_rank,
                "acceptance_rate": segments.acceptance,
                "mbar_reach": reach_summary(outcome.tails),
                "direct_reach": reach_summary(outcome.direct),
            }
        )
        print(validation.format_table(outcome))
        for message in outcome.analysis.messages:
            print("  note:", message)
        for label, reach in (
            ("MBAR", results[-1]["mbar_reach"]["reach"]),
            ("direct", results[-1]["direct_reach"]["reach"]),
        ):
            if reach["threshold"] is not None:
                print(
                    f"{label} reach (96% half-width ≤ 50%): P(φ ≥ {reach['threshold']:g}) = "
                    f"10^{reach['log10_exact']:.2f}, log10(estimate/exact) = {reach['log10_ratio']:+.2f}"
                )
        print(
            f"acceptance: {'PASSED' if checks['passed'] else 'FAILED'} {checks} ({seconds.cpu:.0f} CPU-s)\n", flush=True
        )
    report = {
        "ladder": ladder,
        "exact_log10_tail": problem.exact.log_prob_at_least(problem.thresholds) / np.log(10),
        "thresholds": problem.thresholds,
        "samplers": results,
    }
    common.write_results(args.output, "exact_validation", vars(args), report, machine)


if __name__ == "__main__":
    main()

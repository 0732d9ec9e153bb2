"""Tail reach at an equal token budget: direct sampling, annealed TPS + MBAR and parallel tempering + MBAR.

The reach of an estimator is the smallest tail probability it estimates with a 96% interval
no wider than ±50% of the estimate (:func:`rarelib.logspace.reach`): Wilson intervals for direct
sampling, the percentile bootstrap over chains of :func:`rarelib.reweighting.analyze` for
TPS + MBAR. Every method gets the same budget of generated tokens (counted as in
:func:`rarelib.exact.diagnostics.generated_tokens`: regrown tokens only; TPS + MBAR is charged for
its λ = 0 direct samples too, a fraction ``--zero-fraction`` of its budget).

Two problems:

* **solvable**: the repetition-loop Markov LM of ``exact_validation.py`` (φ = number of loop
  tokens in 14 tokens; P(φ = 14) = 1e-14), budget ``--exact-tokens`` (2·10^6) per method, run
  by :func:`rarelib.exact.validation.validate`; every estimate is set beside its exact value (log10
  ratio, exact value inside the interval or not). Both samplers run twice: with the paper's
  move (forward shooting from p_M) over the bias ladder to ⟨φ⟩ = 3 (longer ladders fail the
  R-hat filter and come out biased low: the chains cannot equilibrate), and with guided moves
  (regrown tokens tilted towards the loop token, :mod:`rarelib.tps`) over the ladder to
  ⟨φ⟩ = 11.
* **default**: the embedded story model, the chapters' prompt, L = 64, budget
  ``--default-tokens`` per method (10^6: 2·10^6 does not fit ``make bench``'s ≈ 40 CPU-minutes
  on one core), for the upper tail of ARI and the lower tail of Log-Prob over the chapters'
  bias ladders (04_tps, 05_mbar): annealed TPS with 32 chains, parallel tempering with 8 chains
  per bias, and parallel tempering with the chapters' guided moves (for ARI regrown tokens with
  sentence ends tilted by −λ, for Log-Prob at temperature 1/(1 − λ)). One direct run of budget/L completions serves as
  the
  baseline for both observables; thresholds are a grid over every φ any method saw.

    python benchmarks/tail_reach.py           # ≈ 30 CPU-minutes (most of it the default model)
    python benchmarks/tail_reach.py --smoke   # a few seconds
"""

from __future__ import annotations

import common  # noqa: I001  (first: it starts the run's wall clock)
import numpy as np

from rarelib import diagnostics, direct, logspace, models, reweighting, tps, workflow
from rarelib.exact import validation

RESULTS = common.RESULTS_DIR / "tail_reach.json"
SIDES = {"upper": "≥", "lower": "≤"}
DEFAULT_TAILS = ("ari:upper", "logprob:lower")
LADDERS = {  # the chapters' ladders (04_tps, 05_mbar): λ < 0 pushes φ up, λ > 0 down
    "ari:upper": [-0.3, -0.6, -1.0, -1.5, -2.0],
    "ari:lower": [0.2, 0.4, 0.6, 0.8, 1.0],
    "logprob:upper": [-0.05, -0.12, -0.2, -0.3, -0.4],
    "logprob:lower": [0.03, 0.06, 0.1, 0.14, 0.18],
}
CHAPTER_GUIDES = {"ari": "sentence ends", "logprob": "temperature"}  # the guides of the chapters (05_mbar)
SMOKE = {
    "exact_tokens": 60_000,
    "default_tokens": 2_000,
    "default_length": 8,
    "exact_chains": 8,
    "annealed_chains": 10,
    "tempering_chains": 2,
    "n_thresholds": 20,
    "n_bootstrap": 5,
    "thin": 1,
}


def arguments():
    parser = common.parser(__doc__, RESULTS)
    common.add_loop_problem_arguments(parser)
    parser.add_argument("--exact-tokens", type=float, default=2e6, help="budget per method on the solvable model")
    parser.add_argument("--exact-chains", type=int, default=32)
    parser.add_argument(
        "--target-mean", type=float, default=3.0, help="⟨φ⟩ at the last bias for forward shooting (solvable model)"
    )
    parser.add_argument(
        "--guided-target-mean", type=float, default=11.0, help="⟨φ⟩ at the last bias for guided moves (solvable model)"
    )
    parser.add_argument("--thin", type=int, default=10, help="keep every thin-th TPS draw for MBAR (solvable model)")
    parser.add_argument("--default-tokens", type=float, default=1e6, help="budget per method on the default model")
    parser.add_argument("--default-length", type=int, default=64, help="completion length on the default model")
    parser.add_argument("--annealed-chains", type=int, default=32, help="annealed TPS chains (default model)")
    parser.add_argument(
        "--tempering-chains", type=int, default=8, help="parallel-tempering chains per bias (default model)"
    )
    parser.add_argument("--tails", nargs="+", default=list(DEFAULT_TAILS), choices=sorted(LADDERS))
    parser.add_argument("--n-thresholds", type=int, default=200, help="thresholds in the grid (default model)")
    parser.add_argument(
        "--zero-fraction", type=float, default=0.1, help="share of TPS + MBAR's budget spent on direct samples at λ = 0"
    )
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--problems", nargs="+", default=["solvable", "default"], choices=["solvable", "default"])
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if not 0 < args.zero_fraction < 1:
        parser.error(f"--zero-fraction must lie in (0, 1); got {args.zero_fraction}")
    return args


def draws_for_budget(tokens: float, n_chains: int, n_biases: int, length: int) -> int:
    """Draws per bias and chain so that a TPS run spends about ``tokens``.

    n_chains: chains per bias (annealing: all rows; tempering: rows / biases). After an initial
    draw of L tokens per row (upper bound: tempering's), each chain-step regrows (L + 1)/2 tokens
    on average (cut uniform in 0..L−1).
    """
    row_steps = (tokens - n_chains * n_biases * length) / ((length + 1) / 2)
    draws = int(row_steps // (n_chains * n_biases))
    if draws < 2:
        raise ValueError(
            f"a budget of {tokens:g} tokens leaves {draws} draws per bias for {n_chains} chains × "
            f"{n_biases} biases at L = {length}; raise the budget or lower the chains"
        )
    return draws


def method_entry(estimate: logspace.LogEstimate, thresholds, tokens: int, **extra) -> dict:
    """One method's tail curve (A,) with relative half-widths, which thresholds are reached, and its reach."""
    index = logspace.reach_index(estimate, common.MAX_RELATIVE_HALF_WIDTH)
    half_width = estimate.relative_half_width
    return {
        "tokens": tokens,
        "log10_estimate": estimate.log10,
        "log10_interval": estimate.log10_interval,
        "relative_half_width": half_width,
        "reached": logspace.reached(estimate, common.MAX_RELATIVE_HALF_WIDTH),
        "reach": None
        if index < 0
        else {
            "index": index,
            "threshold": float(thresholds[index]),
            "log10_estimate": float(estimate.log10[index]),
            "relative_half_width": float(half_width[index]),
        },
        **extra,
    }


def failed_entry(tokens: int | None, error: Exception, **extra) -> dict:
    """A method whose analysis failed (its error in words): it reaches nothing."""
    print(f"  analysis failed: {error}")
    return {"tokens": tokens, "reach": None, "error": str(error), **extra}


# --------------------------------------------------------------------------- the solvable model


def solvable(args, settings: reweighting.Settings) -> dict:
    """Reach of direct sampling and of both TPS + MBAR samplers on the loop model, against the exact tails."""
    problem = common.loop_problem_from(args)
    length, chains = problem.completion_length, args.exact_chains
    n_direct = int(args.exact_tokens * args.zero_fraction) // length
    moves = {
        "": (tps.FORWARD_SHOOTING, args.target_mean),
        "guided ": (tps.Move(guide=sorted(problem.observable.tokens)), args.guided_target_mean),
    }
    methods, ladders = {}, {}
    for prefix, (move, target_mean) in moves.items():
        ladder = ladders[prefix.strip() or "forward shooting"] = validation.bias_ladder(
            problem.exact_tilted_mean, target_mean
        )
        for sampler in validation.SAMPLERS:
            name = f"{prefix}{sampler} + MBAR"
            draws = draws_for_budget(args.exact_tokens * (1 - args.zero_fraction), chains, len(ladder), length)
            try:
                seconds, outcome = common.timed(
                    validation.validate,
                    problem,
                    ladder,
                    sampler=sampler,
                    n_steps=draws,
                    n_chains=chains,
                    n_direct=n_direct,
                    seed=args.seed,
                    thin=args.thin,
                    settings=settings,
                    move=move,
                    warn=False,
                )
            except ValueError as err:  # e.g. the R-hat filter dropped every bias: nothing reached
                methods[name] = failed_entry(None, err, draws_per_bias=draws, chains=chains)
                continue
            for entry, tails in ((name, outcome.tails), (f"direct (budget of {prefix}{sampler})", outcome.direct)):
                methods[entry] = method_entry(
                    tails.estimate,
                    tails.thresholds,
                    tails.tokens,
                    covered=tails.covered,
                    log10_ratio=tails.log10_ratio,
                )
            methods[name].update(
                draws_per_bias=draws,
                chains=chains,
                cpu_s=seconds.cpu,
                wall_s=seconds.wall,
                biases=ladder,
                messages=list(outcome.analysis.messages),
            )
    return {
        "model": problem.model.name,
        "prompt": args.prompt,
        "completion_length": length,
        "observable": "count of the loop token",
        "side": "upper",
        "tokens": args.exact_tokens,
        "ladders": ladders,
        "thresholds": problem.thresholds,
        "log10_exact": problem.exact.log_prob_at_least(problem.thresholds) / np.log(10),
        "methods": methods,
    }


# --------------------------------------------------------------------------- the default model


def run_samplers(lm, args, tail: str, budget: float, seeds) -> dict:
    """Sampler name → (biased run, Seconds) for one tail; each spends ``budget`` tokens on the biased run."""
    observable = tail.split(":")[0]
    biases = LADDERS[tail]
    length = args.default_length
    common_arguments = dict(
        lm=lm,
        prompt=common.PAPER_PROMPT,
        completion_length=length,
        observable=observable,
        biases=biases,
        record=(),
        progress=False,
    )
    annealed_chains, tempering_chains = args.annealed_chains, args.tempering_chains
    tempering = dict(
        n_steps=draws_for_budget(budget, tempering_chains, len(biases), length),
        n_chains=tempering_chains,
        seed=int(seeds[1]),
        **common_arguments,
    )
    runs = {
        "annealed_tps": common.timed(
            tps.run_annealed,
            steps_per_bias=draws_for_budget(budget, annealed_chains, len(biases), length),
            n_chains=annealed_chains,
            seed=int(seeds[0]),
            **common_arguments,
        )[::-1],
        "parallel_tempering": common.timed(lambda: tps.run_tempering(**tempering))[::-1],
    }
    runs["guided parallel_tempering"] = common.timed(
        lambda: tps.run_tempering(**tempering, move=workflow.guided_move(lm, CHAPTER_GUIDES[observable]))
    )[::-1]
    return runs


def default_model(args, settings: reweighting.Settings, rng: np.random.Generator) -> dict:
    """Reach of direct sampling and of both TPS + MBAR samplers on the default model, for each tail."""
    lm = models.load("default")
    length = args.default_length
    observables = sorted({tail.split(":")[0] for tail in args.tails})
    baseline_seed, zero_seed, *sampler_seeds = np.random.SeedSequence(args.seed).generate_state(2 + 2 * len(args.tails))
    n_zero = int(args.default_tokens * args.zero_fraction) // length
    baseline_time, baseline = common.timed(
        direct.sample,
        lm,
        common.PAPER_PROMPT,
        int(args.default_tokens) // length,
        length,
        observables=observables,
        seed=int(baseline_seed),
        progress=False,
    )
    zero = direct.sample(
        lm, common.PAPER_PROMPT, n_zero, length, observables=observables, seed=int(zero_seed), progress=False
    )
    tails = []
    for index, tail in enumerate(args.tails):
        observable, side = tail.split(":")
        at_zero = direct.to_inference_data(zero, observable)
        runs = run_samplers(
            lm,
            args,
            tail,
            args.default_tokens - diagnostics.generated_tokens(at_zero),
            sampler_seeds[2 * index : 2 * index + 2],
        )
        values = [baseline.observables[observable]] + [run.posterior["phi"].values.ravel() for run, _ in runs.values()]
        low, high = min(v.min() for v in values), max(v.max() for v in values)
        thresholds = np.linspace(low, high, args.n_thresholds)
        methods = {
            "direct": method_entry(
                diagnostics.direct_tail(baseline.observables[observable], thresholds, side),
                thresholds,
                diagnostics.generated_tokens(direct.to_inference_data(baseline, observable)),
                cpu_s=baseline_time.cpu,
            )
        }
        for sampler, (run, seconds) in runs.items():
            tokens = diagnostics.generated_tokens(run) + diagnostics.generated_tokens(at_zero)
            run_facts = dict(
                cpu_s=seconds.cpu,
                wall_s=seconds.wall,
                draws_per_bias=run.posterior.sizes["draw"],
                chains=run.posterior.sizes["chain"],
                biases=LADDERS[tail],
            )
            try:
                analysis = reweighting.analyze(
                    [run, at_zero], thresholds, rng=rng, thresholds=thresholds, settings=settings, warn=False
                )
            except ValueError as err:  # e.g. the R-hat filter dropped every bias: nothing reached
                methods[f"{sampler} + MBAR"] = failed_entry(tokens, err, **run_facts)
                continue
            estimate = analysis.upper_tail if side == "upper" else analysis.lower_tail
            methods[f"{sampler} + MBAR"] = method_entry(
                estimate,
                thresholds,
                tokens,
                **run_facts,
                messages=list(analysis.messages),
                acceptance=analysis.segments.acceptance,
                kept_biases=analysis.states[analysis.states != 0],
            )
        tails.append({"observable": observable, "side": side, "thresholds": thresholds, "methods": methods})
    return {
        "model": lm.name,
        "prompt": common.PAPER_PROMPT,
        "completion_length": length,
        "tokens": args.default_tokens,
        "zero_state_completions": n_zero,
        "tails": tails,
    }


# --------------------------------------------------------------------------- tables


def print_reach(title: str, methods: dict, side: str, exact_log10=None) -> None:
    """Each method's reach as a table; with ``exact_log10`` (A,) also the exact value and error there."""
    print(title)
    columns = [("method", "s"), ("tokens", ",d"), ("reach: a", ".3g"), ("log10 P", ".2f"), ("±rel", ".2f")]
    columns += (
        [("log10 exact", ".2f"), ("log10 ratio", "+.2f"), ("exact in CI", "s")] if exact_log10 is not None else []
    )
    rows = []
    for name, entry in methods.items():
        reach = entry["reach"] or {}
        row = [
            name,
            entry["tokens"],
            reach.get("threshold"),
            reach.get("log10_estimate"),
            reach.get("relative_half_width"),
        ]
        if exact_log10 is not None:
            index = reach.get("index")
            row += (
                [None, None, None]
                if index is None
                else [
                    float(exact_log10[index]),
                    float(entry["log10_ratio"][index]),
                    "yes" if entry["covered"][index] else "NO",
                ]
            )
        rows.append(row)
    print(common.format_table(columns, rows))
    print(f"(reach: the smallest P(φ {SIDES[side]} a) with 96% half-width ≤ 50% of the estimate)\n", flush=True)


def main() -> None:
    args = arguments()
    machine = common.start(args)
    settings = reweighting.Settings(n_bootstrap=args.n_bootstrap)
    results = {}
    if "solvable" in args.problems:
        results["solvable"] = solvable(args, settings)
        print_reach(
            f"solvable model {results['solvable']['model']}, L = {results['solvable']['completion_length']}, "
            f"{args.exact_tokens:.2g} tokens per method",
            results["solvable"]["methods"],
            "upper",
            results["solvable"]["log10_exact"],
        )
        common.write_results(args.output, "tail_reach", vars(args), results, machine)  # kept if the rest fails
    if "default" in args.problems:
        results["default"] = default_model(args, settings, np.random.default_rng(args.seed))
        for tail in results["default"]["tails"]:
            print_reach(
                f"default model, {tail['observable']} {tail['side']} tail, L = {args.default_length}, "
                f"{args.default_tokens:.2g} tokens per method",
                tail["methods"],
                tail["side"],
            )
        common.write_results(args.output, "tail_reach", vars(args), results, machine)


if __name__ == "__main__":
    main()
